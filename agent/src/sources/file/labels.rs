//! The labels of a file's lines: the source's static labels, the file name, what the decoder
//! knows (CRI: namespace, pod, container; docker: the container's name and compose labels;
//! both: the stream), and what the source's [`Enricher`] adds (kubernetes_logs: the pod's
//! labels, annotations and metadata).
//!
//! [`Enricher`]: super::Enricher

use std::path::Path;
use std::sync::Arc;

use logship_config::schema::FileDecoder;
use logship_parsers::cri::parse_cri_path;

use super::assemble::StreamLabels;
use super::enrich::Extras;
use super::server::FileServer;
use crate::containers::{ContainerInfo, LabelPlan, LogStream};

impl FileServer {
    /// For `decoder = "docker"`: the attributes of the container whose log `path` is, from its
    /// `config.v2.json`. A missing or unreadable config is reported once; the lines still ship
    /// with the file's labels.
    pub(super) fn container_of(&mut self, path: &Path) -> Option<Arc<ContainerInfo>> {
        if self.settings.decoder != FileDecoder::Docker {
            return None;
        }
        match self.containers.lookup(path) {
            Ok(info) => Some(info),
            Err(e) => {
                if self.reported.insert(path.with_extension("config")) {
                    tracing::warn!(component = %self.ctx.id, path = %path.display(), error = %e, "no container attributes for this log; shipping it with the file's labels");
                }
                None
            }
        }
    }

    /// Renamed containers: Docker rewrites `config.v2.json`; lines read from then on carry the
    /// new name. `dir` limits the refresh to the files of one container directory.
    pub(super) fn refresh_container_labels(&mut self, dir: Option<&Path>) {
        if self.settings.decoder != FileDecoder::Docker {
            return;
        }
        let ids: Vec<_> = self
            .tailers
            .iter()
            .filter(|(_, t)| dir.is_none_or(|d| t.path.parent() == Some(d)))
            .map(|(&id, t)| (id, t.path.clone()))
            .collect();
        for (id, path) in ids {
            let Some(info) = self.container_of(&path) else {
                continue;
            };
            let changed = match self.tailers.get(&id).and_then(|t| t.container.as_ref()) {
                Some(old) => !Arc::ptr_eq(old, &info),
                None => true,
            };
            if changed {
                let labels = self.labels_for(&path, Some(&info), None);
                if let Some(t) = self.tailers.get_mut(&id) {
                    t.assembler.set_labels(labels);
                    t.container = Some(info);
                }
            }
        }
    }

    /// The extras the source's enricher has for `path`, if any.
    pub(super) fn extras_of(&self, path: &Path) -> Option<Arc<Extras>> {
        self.settings.enricher.as_ref()?.extras(path)
    }

    /// When the enricher's answers may have changed (a pod's labels were edited, a pod
    /// appeared in the watch after its files were opened), open files take up their new
    /// extras for the lines read from then on. A file the enricher knows nothing about any
    /// more (its pod was deleted) keeps what it had.
    pub(super) fn refresh_extras(&mut self) {
        let Some(enricher) = self.settings.enricher.clone() else {
            return;
        };
        let generation = enricher.generation();
        if generation == self.extras_generation {
            return;
        }
        self.extras_generation = generation;
        let ids: Vec<_> = self.tailers.keys().copied().collect();
        for id in ids {
            let Some(tailer) = self.tailers.get(&id) else {
                continue;
            };
            let Some(new) = enricher.extras(&tailer.path) else {
                continue;
            };
            if tailer.extras.as_deref() == Some(&*new) {
                continue;
            }
            let labels = self.labels_for(&tailer.path, tailer.container.as_deref(), Some(&new));
            if let Some(t) = self.tailers.get_mut(&id) {
                t.assembler.set_labels(labels);
                t.extras = Some(new);
            }
        }
    }

    /// The labels of the lines of the file at `path`.
    pub(super) fn labels_for(
        &self,
        path: &Path,
        container: Option<&ContainerInfo>,
        extras: Option<&Extras>,
    ) -> StreamLabels {
        let mut extra: Vec<(String, String)> = Vec::new();
        if let Some(l) = &self.settings.filename_label {
            extra.push((l.clone(), path.to_string_lossy().into_owned()));
        }
        let path_text = path.to_string_lossy();
        if self.settings.decoder == FileDecoder::Cri
            && let Some(p) = parse_cri_path(&path_text)
        {
            extra.push(("namespace".into(), p.namespace.to_string()));
            extra.push(("pod".into(), p.pod.to_string()));
            extra.push(("container".into(), p.container.to_string()));
        }
        if let Some(e) = extras {
            extra.extend(e.labels.iter().cloned());
        }
        let metadata = extras.map(|e| e.metadata.clone()).unwrap_or_default();
        let base = self
            .settings
            .source_labels
            .merged(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if let Some(info) = container {
            // The same labels the API path gives the same container.
            let plan = LabelPlan::default_docker();
            let with = |stream| {
                let own = plan.stream_labels(info, stream).labels;
                base.merged(own.pairs().iter().map(|(k, v)| (&**k, &**v)))
            };
            return StreamLabels {
                stdout: with(LogStream::Stdout),
                stderr: with(LogStream::Stderr),
                metadata,
            };
        }
        match self.settings.decoder {
            FileDecoder::None => StreamLabels {
                stdout: base.clone(),
                stderr: base,
                metadata,
            },
            FileDecoder::Docker | FileDecoder::Cri => StreamLabels {
                stdout: base.merged([("stream", "stdout")]),
                stderr: base.merged([("stream", "stderr")]),
                metadata,
            },
        }
    }
}
