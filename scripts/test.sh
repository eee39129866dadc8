#!/usr/bin/env bash
# Runs every test of logship on a fresh Debian machine (root): installs what the tests need
# (Docker engine, busybox-static, PostgreSQL, Redis, kubectl, kubernetes-validate, cargo-deb, systemd-analyze),
# starts dockerd without a bridge network,
# builds the test image, then runs the whole workspace's tests.
#
#   scripts/test.sh                 # everything
#   scripts/test.sh -p logship-parsers   # extra arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."

demo/scripts/install-test-services.sh   # PostgreSQL and Redis (the tests run their own servers)
# Stop the dockerd this script starts (not one that was already running) however tests end.
if ! scripts/docker-env.sh status >/dev/null 2>&1; then
  trap 'scripts/docker-env.sh stop || true' EXIT
fi
scripts/docker-env.sh start             # docker.io + busybox-static, dockerd, the test image
# cargo-deb and systemd-analyze for the package test.
scripts/package-tools.sh
# kubectl (kustomize) and kubernetes-validate for the manifest tests.
LOGSHIP_K8S_VALIDATE="$(scripts/k8s-tools.sh)"
export LOGSHIP_K8S_VALIDATE

# Build every binary first: the end-to-end tests run them as processes.
cargo build --workspace --bins

# The end-to-end tests start real processes (the agent, dockerd containers, PostgreSQL, Redis)
# and measure what arrives; two at a time keeps a 2-core machine from starving them.
cargo test --workspace "$@" -- --test-threads="${LOGSHIP_TEST_THREADS:-2}"
