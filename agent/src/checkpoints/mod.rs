//! Checkpoints on disk: one JSON file per source, written atomically.
//!
//! A source decides *what* its checkpoint is (file offsets, container timestamps) and hands a
//! snapshot function to [`spawn_writer`], which writes it every interval while it changes and
//! once more at shutdown. Writes go to a temporary file that is fsynced and renamed over the
//! old one, so a crash at any point leaves either the old or the new checkpoint, never a torn
//! one.

mod file;
mod writer;

pub use file::{CheckpointError, CheckpointFile};
pub use writer::spawn_writer;
