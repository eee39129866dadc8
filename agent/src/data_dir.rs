//! The agent's claim on its `data_dir`: two agents writing the same checkpoints would each
//! move the other's positions, so the first one to start holds an exclusive lock on
//! `<data_dir>/.lock` (with its pid inside, for the message the second one prints) for as long
//! as it runs. The kernel releases the lock when the process ends, even after `kill -9`.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file's name inside `data_dir`.
pub const LOCK_FILE: &str = ".lock";

/// Why `data_dir` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// It cannot be created, or a file cannot be written in it.
    #[error("data_dir {path} is not writable: {io}")]
    NotWritable {
        /// The directory.
        path: PathBuf,
        /// The cause.
        io: std::io::Error,
    },
    /// Another process holds its lock.
    #[error("data_dir {path} is in use by another logship{}; give each agent its own data_dir", holder.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    InUse {
        /// The directory.
        path: PathBuf,
        /// The pid written in the lock file, if readable.
        holder: Option<u32>,
    },
}

/// Held for the life of the agent; dropping it releases the lock.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Creates `dir` if needed and takes its lock.
pub fn claim(dir: &Path) -> Result<DataDirLock, DataDirError> {
    let not_writable = |io| DataDirError::NotWritable {
        path: dir.to_path_buf(),
        io,
    };
    std::fs::create_dir_all(dir).map_err(not_writable)?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK_FILE))
        .map_err(not_writable)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(DataDirError::InUse {
                path: dir.to_path_buf(),
                holder: text.trim().parse().ok(),
            });
        }
        Err(TryLockError::Error(io)) => return Err(not_writable(io)),
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .map_err(not_writable)?;
    Ok(DataDirLock { _file: file })
}

/// For `validate`: `dir` can be created and written. A probe file is made and removed, and
/// so are the directories made for it, so validating leaves nothing behind.
pub fn check_writable(dir: &Path) -> Result<(), DataDirError> {
    let not_writable = |io| DataDirError::NotWritable {
        path: dir.to_path_buf(),
        io,
    };
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
    let result = std::fs::create_dir_all(dir).and_then(|()| {
        let probe = dir.join(format!(".validate-{}", std::process::id()));
        File::create(&probe)?;
        std::fs::remove_file(&probe)
    });
    for d in missing {
        let _ = std::fs::remove_dir(d);
    }
    result.map_err(not_writable)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_is_refused_with_the_holders_pid_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = claim(dir.path()).unwrap();
        match claim(dir.path()) {
            Err(DataDirError::InUse { holder, .. }) => {
                assert_eq!(holder, Some(std::process::id()));
            }
            other => panic!("expected InUse, got {other:?}"),
        }
        drop(first);
        claim(dir.path()).unwrap();
    }

    #[test]
    fn an_unwritable_dir_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, "x").unwrap();
        let err = check_writable(&file.join("sub")).unwrap_err();
        assert!(matches!(err, DataDirError::NotWritable { .. }), "{err}");
        let fresh = dir.path().join("a/b");
        check_writable(&fresh).unwrap();
        assert!(
            !dir.path().join("a").exists(),
            "validate leaves nothing behind"
        );
    }
}
