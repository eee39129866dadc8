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

/// A checkpoint at a fixed path, kept in two files.
///
/// - `<name>` is durable: written to a temporary file, fsynced, renamed over the old one, the
///   directory fsynced ([`CheckpointFile::store`]). It survives a power loss.
/// - `<name>.latest` is current: written to a temporary file and renamed, without fsync
///   ([`CheckpointFile::store_latest`]). Once `rename` returns, the kernel holds it, so it
///   survives the process being killed; after a power loss it may be older than `<name>`,
///   torn or missing, and then `<name>` is used.
///
/// Why two: an fsync costs ~0.6 ms of disk and ~0.1 ms of CPU, twice per write. Written after
/// every acknowledgement (which is what keeps a `kill -9` from re-sending an acknowledged
/// batch), two fsyncs per batch were 8 % of the agent's CPU at full speed. Now the latest
/// position is cheap to write every time and the durable one is written about once a second.
#[derive(Debug, Clone)]
pub struct CheckpointFile {
    path: PathBuf,
    tmp: PathBuf,
    latest: PathBuf,
    latest_tmp: PathBuf,
}

impl CheckpointFile {
    /// The checkpoint `name` (e.g. `checkpoints.json`) in directory `dir`.
    pub fn new(dir: &Path, name: &str) -> Self {
        Self {
            path: dir.join(name),
            tmp: dir.join(format!(".{name}.tmp")),
            latest: dir.join(format!("{name}.latest")),
            latest_tmp: dir.join(format!(".{name}.latest.tmp")),
        }
    }

    /// Where the durable checkpoint lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the latest (not fsynced) checkpoint lives.
    pub fn latest_path(&self) -> &Path {
        &self.latest
    }

    /// The stored value, or `None` when there is no checkpoint yet.
    ///
    /// The latest file is preferred when it parses; it is only believed next to a durable
    /// file, so deleting `<name>` resets the source as it always did. A latest file that does
    /// not parse (a power loss tore it) is reported and the durable one is used.
    pub fn load<T: DeserializeOwned>(&self) -> Result<Option<T>, CheckpointError> {
        let Some(bytes) = self.read(&self.path)? else {
            self.remove_latest();
            return Ok(None);
        };
        if let Some(latest) = self.read(&self.latest)? {
            match serde_json::from_slice(&latest) {
                Ok(value) => return Ok(Some(value)),
                Err(e) => tracing::warn!(
                    path = %self.latest.display(),
                    error = %e,
                    "the latest checkpoint is torn (was the machine powered off?); using the durable one, which may re-send up to a few seconds of lines"
                ),
            }
        }
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| CheckpointError::Corrupt {
                path: self.path.clone(),
                source,
            })
    }

    /// The bytes of `path`, or `None` when it does not exist.
    fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, CheckpointError> {
        match fs::read(path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CheckpointError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Replaces the durable checkpoint with `value`: write a temporary file, fsync it, rename
    /// it over the old one, fsync the directory. The latest file, now no newer, is removed.
    pub fn store<T: Serialize>(&self, value: &T) -> Result<(), CheckpointError> {
        self.replace(value, &self.tmp, &self.path, true)?;
        self.remove_latest();
        Ok(())
    }

    /// Replaces the latest checkpoint with `value`: write a temporary file and rename it, no
    /// fsync. Survives a crash of the process, not of the machine.
    pub fn store_latest<T: Serialize>(&self, value: &T) -> Result<(), CheckpointError> {
        self.replace(value, &self.latest_tmp, &self.latest, false)
    }

    fn replace<T: Serialize>(
        &self,
        value: &T,
        tmp: &Path,
        path: &Path,
        durable: bool,
    ) -> Result<(), CheckpointError> {
        let io_err = |source| CheckpointError::Io {
            path: path.to_owned(),
            source,
        };
        let bytes = serde_json::to_vec(value).map_err(|e| io_err(io::Error::other(e)))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(io_err)?;
        let mut f = fs::File::create(tmp).map_err(io_err)?;
        f.write_all(&bytes).map_err(io_err)?;
        if durable {
            f.sync_all().map_err(io_err)?;
        }
        drop(f);
        fs::rename(tmp, path).map_err(io_err)?;
        if durable {
            fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err)?;
        }
        Ok(())
    }

    /// Removes the latest file; a failure only means the next load reads a value that is
    /// no newer than the durable one, so it is not an error.
    fn remove_latest(&self) {
        match fs::remove_file(&self.latest) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %self.latest.display(), error = %e, "cannot remove the latest checkpoint")
            }
        }
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
    fn the_latest_file_wins_over_the_durable_one_until_the_next_durable_write() {
        let dir = tempfile::tempdir().unwrap();
        let f = CheckpointFile::new(dir.path(), "c.json");
        f.store(&1u64).unwrap();
        f.store_latest(&2u64).unwrap();
        f.store_latest(&3u64).unwrap();
        assert_eq!(f.load::<u64>().unwrap(), Some(3));
        // The durable file still holds 1: a power loss would fall back to it.
        assert_eq!(fs::read(f.path()).unwrap(), b"1");
        f.store(&4u64).unwrap();
        assert!(!f.latest_path().exists());
        assert_eq!(f.load::<u64>().unwrap(), Some(4));
    }

    #[test]
    fn a_torn_latest_file_falls_back_to_the_durable_one() {
        let dir = tempfile::tempdir().unwrap();
        let f = CheckpointFile::new(dir.path(), "c.json");
        f.store(&5u64).unwrap();
        fs::write(f.latest_path(), b"").unwrap();
        assert_eq!(f.load::<u64>().unwrap(), Some(5));
    }

    #[test]
    fn without_a_durable_file_the_latest_one_is_not_believed() {
        // Deleting the checkpoint is how an operator resets a source.
        let dir = tempfile::tempdir().unwrap();
        let f = CheckpointFile::new(dir.path(), "c.json");
        f.store_latest(&9u64).unwrap();
        assert_eq!(f.load::<u64>().unwrap(), None);
        assert!(!f.latest_path().exists());
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
