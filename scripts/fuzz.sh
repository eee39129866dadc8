#!/usr/bin/env bash
# Runs the fuzz targets under libFuzzer: scripts/fuzz.sh [TARGET ...] [-- SECONDS]
#
# Each target runs for SECONDS (60 by default) from fuzz/corpus/<target>/, adding what it
# finds to a scratch corpus in target/fuzz-corpus/<target>/. A crash is saved in
# fuzz/libfuzzer/artifacts/<target>/; reproduce it with
#   cargo +nightly fuzz run --fuzz-dir fuzz/libfuzzer <target> <file>
# then fix it and copy the file into fuzz/corpus/<target>/, where the stable smoke test
# (`cargo test -p logship-fuzz`, part of scripts/test.sh) keeps it as a regression test.
#
# Needs a nightly toolchain (`rustup toolchain install nightly`) and cargo-fuzz, which this
# script installs when missing. CI has only the stable toolchain and runs the smoke test.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=()
secs=60
while [ $# -gt 0 ]; do
    case "$1" in
        --) secs="${2:?seconds after --}"; shift 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(ls fuzz/libfuzzer/fuzz_targets | sed 's/\.rs$//')
fi
if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz.sh: needs a nightly toolchain: rustup toolchain install nightly" >&2
    exit 2
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2 --locked

for t in "${targets[@]}"; do
    scratch="target/fuzz-corpus/$t"
    mkdir -p "$scratch"
    echo "== $t for ${secs}s"
    cargo +nightly fuzz run --fuzz-dir fuzz/libfuzzer "$t" "$scratch" "fuzz/corpus/$t" -- \
        -max_total_time="$secs" -max_len=65536 -timeout=10
done
