//! One checkpoint file and its atomic replacement.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Reading or writing a checkpoint failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file or its directory could not be read or written (permissions, full disk).
    #[error("checkpoint {path}: {source}")]
    Io {
        /// The checkpoint file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The file exists but is not a checkpoint this version understands.
    #[error("checkpoint {path} is corrupt: {source}")]
    Corrupt {
        /// The checkpoint file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
}

/// A checkpoint file at a fixed path.
#[derive(Debug, Clone)]
pub struct CheckpointFile {
    path: PathBuf,
    tmp: PathBuf,
}

impl CheckpointFile {
    /// The checkpoint `name` (e.g. `checkpoints.json`) in directory `dir`.
    pub fn new(dir: &Path, name: &str) -> Self {
        Self {
            path: dir.join(name),
            tmp: dir.join(format!(".{name}.tmp")),
        }
    }

    /// Where the checkpoint lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored value, or `None` when there is no checkpoint yet.
    pub fn load<T: DeserializeOwned>(&self) -> Result<Option<T>, CheckpointError> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(CheckpointError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| CheckpointError::Corrupt {
                path: self.path.clone(),
                source,
            })
    }

    /// Replaces the checkpoint with `value`: write a temporary file, fsync it, rename it over
    /// the old one, fsync the directory.
    pub fn store<T: Serialize>(&self, value: &T) -> Result<(), CheckpointError> {
        let io_err = |source| CheckpointError::Io {
            path: self.path.clone(),
            source,
        };
        let bytes = serde_json::to_vec(value).map_err(|e| io_err(io::Error::other(e)))?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(io_err)?;
        let mut f = fs::File::create(&self.tmp).map_err(io_err)?;
        f.write_all(&bytes).map_err(io_err)?;
        f.sync_all().map_err(io_err)?;
        drop(f);
        fs::rename(&self.tmp, &self.path).map_err(io_err)?;
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let f = CheckpointFile::new(&dir.path().join("src"), "checkpoints.json");
        assert_eq!(f.load::<Vec<u64>>().unwrap(), None);
        f.store(&vec![1u64, 2]).unwrap();
        f.store(&vec![3u64]).unwrap();
        assert_eq!(f.load::<Vec<u64>>().unwrap(), Some(vec![3]));
    }

    #[test]
    fn corrupt_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let f = CheckpointFile::new(dir.path(), "c.json");
        fs::write(f.path(), b"{not json").unwrap();
        assert!(matches!(
            f.load::<Vec<u64>>(),
            Err(CheckpointError::Corrupt { .. })
        ));
    }
}
