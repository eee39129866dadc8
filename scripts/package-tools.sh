#!/usr/bin/env bash
# Installs what building and checking the Debian package needs, if missing: cargo-deb (a
# pinned version, from crates.io) and systemd-analyze (Debian's systemd, for
# `systemd-analyze verify`). dpkg comes with Debian.
#
#   scripts/package-tools.sh
set -euo pipefail

CARGO_DEB_VERSION="3.8.0"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

log() { echo "package-tools: $*" >&2; }

if ! cargo deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
  log "installing cargo-deb $CARGO_DEB_VERSION"
  cargo install --quiet --locked --version "$CARGO_DEB_VERSION" cargo-deb
fi

if ! command -v systemd-analyze >/dev/null 2>&1; then
  log "installing systemd (for systemd-analyze)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi
