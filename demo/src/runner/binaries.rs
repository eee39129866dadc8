//! Finding `logship`, `order-api` and `order-worker` next to the `demo` binary.
//!
//! `cargo run --release --bin demo` builds only `demo`, so when cargo started us (it sets
//! `CARGO`) the runner builds the other three in the same profile first: on a fresh clone the
//! README's one command works, and after an edit nothing stale runs. Cargo releases its lock
//! before running the program, so the nested build does not wait on it.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

/// The programs the demo runs.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// The agent.
    pub logship: PathBuf,
    /// The API service.
    pub order_api: PathBuf,
    /// The worker service.
    pub order_worker: PathBuf,
}

/// The cargo arguments that select `dir`'s profile (`target/release` → `--release`).
pub fn profile_args(dir: &Path) -> Vec<String> {
    match dir.file_name().and_then(|n| n.to_str()) {
        Some("release") => vec!["--release".to_owned()],
        Some("debug") | None => Vec::new(),
        Some(other) => vec!["--profile".to_owned(), other.to_owned()],
    }
}

/// The workspace root: from cargo's `CARGO_MANIFEST_DIR` at run time, else where this crate
/// was compiled.
fn workspace_root() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

/// Builds the siblings when cargo started us, then checks they exist.
pub fn locate_or_build() -> anyhow::Result<Binaries> {
    let exe = std::env::current_exe().context("finding the demo binary")?;
    let dir = exe
        .parent()
        .context("the demo binary has no directory")?
        .to_path_buf();
    let profile = profile_args(&dir);
    if let Some(cargo) = std::env::var_os("CARGO") {
        eprintln!("demo: building logship, order-api and order-worker...");
        let mut build = Command::new(&cargo);
        // Cargo set these for us; ring's build script declares them as inputs, so passing
        // them on would rebuild ring and everything above it now and again at the next
        // `cargo run` (three minutes each time).
        for (key, _) in std::env::vars_os() {
            let set_by_cargo_run = key.to_str().is_some_and(|k| {
                k.starts_with("CARGO_PKG_")
                    || k.starts_with("CARGO_MANIFEST_")
                    || matches!(
                        k,
                        "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
                    )
            });
            if set_by_cargo_run {
                build.env_remove(key);
            }
        }
        let status = build
            .args([
                "build",
                "-p",
                "logship-agent",
                "-p",
                "logship-demo",
                "--bins",
            ])
            .args(&profile)
            .current_dir(workspace_root())
            .status()
            .with_context(|| format!("running {}", cargo.to_string_lossy()))?;
        if !status.success() {
            bail!("building the demo's programs failed ({status})");
        }
    }
    let b = Binaries {
        logship: dir.join("logship"),
        order_api: dir.join("order-api"),
        order_worker: dir.join("order-worker"),
    };
    for p in [&b.logship, &b.order_api, &b.order_worker] {
        if !p.is_file() {
            bail!(
                "{} is missing; build it with `cargo build {}-p logship-agent -p logship-demo --bins`",
                p.display(),
                profile.iter().map(|a| format!("{a} ")).collect::<String>()
            );
        }
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_follows_the_target_directory() {
        assert_eq!(profile_args(Path::new("/w/target/release")), ["--release"]);
        assert!(profile_args(Path::new("/w/target/debug")).is_empty());
        assert_eq!(
            profile_args(Path::new("/w/target/bench")),
            ["--profile", "bench"]
        );
    }
}
