//! Container attributes for logs read straight from disk (`decoder = "docker"` over
//! `/var/lib/docker/containers/<id>/<id>-json.log`): the container's `config.v2.json`, next
//! to its log, holds the same name, id, image and labels the API reports.
//!
//! Parsing that file costs far more than a line, so results are cached (the `lru` crate
//! bounds the cache) and re-read only when the file's modification time or size changes,
//! which is how a rename shows up: Docker rewrites the file.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use lru::LruCache;
use serde::Deserialize;

use super::ContainerInfo;

/// The file Docker keeps a container's configuration in.
pub const CONFIG_FILE: &str = "config.v2.json";

/// Reading a container's `config.v2.json` failed.
#[derive(Debug, thiserror::Error)]
pub enum ContainerConfigError {
    /// The log path has no parent directory.
    #[error("{0} is not inside a container directory")]
    NoDirectory(PathBuf),
    /// The file could not be read (the container was just removed, permissions).
    #[error("reading {path}: {source}")]
    Io {
        /// The config file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a container config.
    #[error("{path} is not a Docker container config: {source}")]
    Corrupt {
        /// The config file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
}

/// The part of `config.v2.json` that labels are made of.
#[derive(Deserialize)]
struct ConfigV2 {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "Config", default)]
    config: Option<InnerConfig>,
}

#[derive(Deserialize, Default)]
struct InnerConfig {
    #[serde(rename = "Image", default)]
    image: Option<String>,
    #[serde(rename = "Labels", default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "Tty", default)]
    tty: Option<bool>,
}

struct Cached {
    modified: Option<SystemTime>,
    len: u64,
    info: Arc<ContainerInfo>,
}

/// A bounded cache of container attributes keyed by container directory.
pub struct ContainerConfigCache {
    cache: LruCache<PathBuf, Cached>,
}

impl std::fmt::Debug for ContainerConfigCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerConfigCache")
            .field("entries", &self.cache.len())
            .finish()
    }
}

impl Default for ContainerConfigCache {
    fn default() -> Self {
        Self::new(NonZeroUsize::new(1024).unwrap_or(NonZeroUsize::MIN))
    }
}

impl ContainerConfigCache {
    /// A cache holding at most `capacity` containers.
    pub fn new(capacity: NonZeroUsize) -> Self {
        Self {
            cache: LruCache::new(capacity),
        }
    }

    /// The attributes of the container whose json-file log is `log_path`. Costs one `stat`
    /// when cached and unchanged; call it per read batch, not per line.
    pub fn lookup(&mut self, log_path: &Path) -> Result<Arc<ContainerInfo>, ContainerConfigError> {
        let dir = log_path
            .parent()
            .ok_or_else(|| ContainerConfigError::NoDirectory(log_path.to_owned()))?;
        let path = dir.join(CONFIG_FILE);
        let io_err = |source| ContainerConfigError::Io {
            path: path.clone(),
            source,
        };
        let meta = std::fs::metadata(&path).map_err(io_err)?;
        let modified = meta.modified().ok();
        if let Some(c) = self.cache.get(dir)
            && c.modified == modified
            && c.len == meta.len()
        {
            return Ok(c.info.clone());
        }
        let bytes = std::fs::read(&path).map_err(io_err)?;
        let info =
            Arc::new(
                parse_config(&bytes).map_err(|source| ContainerConfigError::Corrupt {
                    path: path.clone(),
                    source,
                })?,
            );
        self.cache.put(
            dir.to_owned(),
            Cached {
                modified,
                len: bytes.len() as u64,
                info: info.clone(),
            },
        );
        Ok(info)
    }
}

/// The attributes in the text of a `config.v2.json`.
pub fn parse_config(bytes: &[u8]) -> Result<ContainerInfo, serde_json::Error> {
    let c: ConfigV2 = serde_json::from_slice(bytes)?;
    let inner = c.config.unwrap_or_default();
    let name = if c.name.is_empty() {
        c.id.clone()
    } else {
        c.name
    };
    Ok(ContainerInfo::new(
        c.id,
        &name,
        inner.image.unwrap_or_default(),
        inner.labels.unwrap_or_default(),
        inner.tty.unwrap_or(false),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::{LabelPlan, LogStream};

    const ID: &str = "3f1b2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";

    fn config_json(name: &str) -> String {
        format!(
            r#"{{"StreamConfig":{{}},"State":{{"Running":true}},"ID":"{ID}","Created":"2026-11-22T20:30:32Z",
               "Config":{{"Hostname":"3f1b2c4d5e6f","Tty":false,"Image":"shop/api:1",
                 "Labels":{{"com.docker.compose.service":"api","com.docker.compose.project":"shop"}}}},
               "Image":"sha256:abc","Name":"/{name}","RestartCount":0}}"#
        )
    }

    #[test]
    fn reads_the_same_attributes_as_the_api() {
        let dir = tempfile::tempdir().unwrap();
        let cdir = dir.path().join(ID);
        std::fs::create_dir(&cdir).unwrap();
        std::fs::write(cdir.join(CONFIG_FILE), config_json("order-api")).unwrap();
        let mut cache = ContainerConfigCache::default();
        let info = cache.lookup(&cdir.join(format!("{ID}-json.log"))).unwrap();
        assert_eq!(info.id, ID);
        assert_eq!(info.name, "order-api");
        let s = LabelPlan::default_docker().stream_labels(&info, LogStream::Stdout);
        assert_eq!(
            s.labels.selector(),
            r#"{compose_project="shop", compose_service="api", container="order-api", stream="stdout"}"#
        );
        // Cached: the same Arc comes back while the file is unchanged.
        let again = cache.lookup(&cdir.join(format!("{ID}-json.log"))).unwrap();
        assert!(Arc::ptr_eq(&info, &again));
    }

    #[test]
    fn a_rename_is_picked_up() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join(CONFIG_FILE);
        std::fs::write(&cfg, config_json("old")).unwrap();
        let mut cache = ContainerConfigCache::default();
        let log = dir.path().join("x-json.log");
        assert_eq!(cache.lookup(&log).unwrap().name, "old");
        std::fs::write(&cfg, config_json("brand-new-name")).unwrap();
        // Length changed even if the mtime tick did not.
        assert_eq!(cache.lookup(&log).unwrap().name, "brand-new-name");
    }

    #[test]
    fn missing_and_corrupt_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = ContainerConfigCache::default();
        let log = dir.path().join("x-json.log");
        assert!(matches!(
            cache.lookup(&log),
            Err(ContainerConfigError::Io { .. })
        ));
        std::fs::write(dir.path().join(CONFIG_FILE), "{nope").unwrap();
        assert!(matches!(
            cache.lookup(&log),
            Err(ContainerConfigError::Corrupt { .. })
        ));
    }
}
