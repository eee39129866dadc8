//! Checkpoints on disk: one JSON file per source, written atomically.
//!
//! A source decides *what* its checkpoint is (file offsets, container timestamps) and gives
//! its harness a [`Checkpointing`]: the file and a snapshot function. The harness runs
//! [`run_writer`], which writes the snapshot soon after acknowledgements arrive and once more
//! when the source has stopped and its chunks have settled. Every write goes to a temporary
//! file renamed over the old one, so a crash at any point leaves either the old or the new
//! checkpoint, never a torn one. After each acknowledgement only `<name>.latest` is written
//! (no fsync: it survives the process, not the machine); about once a second, and last,
//! `<name>` itself, fsynced (see [`CheckpointFile`]).

mod file;
mod writer;

pub use file::{CheckpointError, CheckpointFile};
pub use writer::{Cadence, Checkpointing, Snapshot, run_writer};

use serde::de::DeserializeOwned;

/// Loads a source's checkpoint. A corrupt file is moved aside (`<name>.corrupt`) and
/// reported, and the source starts as if it had none: re-sending what was shipped
/// (duplicates) rather than refusing to start or skipping anything. `Ok(None)` when there is
/// no checkpoint yet; an error only when the file cannot be read at all.
pub fn load_or_reset<T: DeserializeOwned>(
    file: &CheckpointFile,
) -> Result<Option<T>, CheckpointError> {
    match file.load::<T>() {
        Err(CheckpointError::Corrupt { path, source }) => {
            let aside = path.with_extension("corrupt");
            tracing::error!(path = %path.display(), moved_to = %aside.display(), error = %source, "checkpoint is corrupt; moving it aside and reading from the beginning");
            if let Err(e) = std::fs::rename(&path, &aside) {
                tracing::error!(path = %path.display(), error = %e, "cannot move the corrupt checkpoint aside; it will be overwritten");
            }
            Ok(None)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupt_checkpoint_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let f = CheckpointFile::new(dir.path(), "c.json");
        std::fs::write(f.path(), b"{torn").unwrap();
        assert_eq!(load_or_reset::<u64>(&f).unwrap(), None);
        assert!(!f.path().exists());
        assert_eq!(
            std::fs::read(dir.path().join("c.corrupt")).unwrap(),
            b"{torn"
        );
        f.store(&7u64).unwrap();
        assert_eq!(load_or_reset::<u64>(&f).unwrap(), Some(7));
    }
}
