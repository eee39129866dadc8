//! The hook through which a source built on the file server adds what it knows about a file
//! beyond its path. The `kubernetes_logs` source uses it for the pod a log belongs to: whether
//! to read it (namespace filters, the exclusion annotation), when (a new pod's metadata may
//! arrive a moment after its first line), and the pod's labels and metadata.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::pipeline::Metadata;

/// Whether a file found by the globs is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Read it now.
    Read,
    /// Look again shortly; what decides it is not known yet. The enricher bounds the wait:
    /// it answers `Read` once `waited` is long enough.
    Wait,
    /// Never read it (while this answer holds).
    Skip,
}

/// Labels and structured metadata added to every line of a file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Extras {
    /// Label pairs, applied over the path labels.
    pub labels: Vec<(String, String)>,
    /// Structured-metadata pairs.
    pub metadata: Metadata,
}

/// What a source knows about its files beyond their paths. Called from the file server's
/// thread: every method must be quick and must not block on I/O.
pub trait Enricher: Send + Sync {
    /// Whether the file at `path`, first considered `waited` ago, is read.
    fn admit(&self, path: &Path, waited: Duration) -> Admission;
    /// The extras of the lines of `path`, if anything is known.
    fn extras(&self, path: &Path) -> Option<Arc<Extras>>;
    /// A number that changes whenever [`Enricher::extras`] may answer differently, so open
    /// files can take up new labels.
    fn generation(&self) -> u64;
}
