//! Sources: components that read log lines and emit chunks.
//!
//! Every source has the same shape: `new(config, ctx)` checks the config and loads state,
//! `run(out)` reads until `ctx.shutdown` is cancelled (or its input ends), sending chunks
//! through its [`Fanout`](crate::topology::Fanout). A source that can resume gives each chunk
//! a token from an [`AckLedger`](crate::acks::AckLedger) and checkpoints the ledger's
//! committed cursor.

pub mod docker;
pub mod file;
pub mod stdin;
