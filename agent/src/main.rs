//! The `logship` binary: see [`logship_agent::cli`].

fn main() -> std::process::ExitCode {
    logship_agent::cli::main()
}
