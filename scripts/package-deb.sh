#!/usr/bin/env bash
# Builds the Debian package of the agent (release build) into target/debian/:
# /usr/bin/logship, /lib/systemd/system/logship.service, /etc/logship/logship.toml (a conffile:
# the file → Loki example), /var/lib/logship (made by postinst). Install it with
# `dpkg -i target/debian/logship_*.deb`, then `systemctl enable --now logship`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/package-tools.sh
cargo deb -p logship-agent "$@"
