#!/usr/bin/env bash
# Installs what the demo's tests need on Debian/Ubuntu: PostgreSQL (initdb, postgres, psql)
# and Redis (redis-server). The tests start and stop their own servers on free ports; this
# script only installs the programs, and does nothing when they are already there.
#
#   sudo demo/scripts/install-test-services.sh
set -euo pipefail

have_postgres() {
  command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

missing=()
have_postgres || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)

if [ ${#missing[@]} -eq 0 ]; then
  echo "postgresql and redis-server are installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "installing: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Debian starts the packaged servers; the tests run their own, so stop those if they started.
$SUDO service redis-server stop >/dev/null 2>&1 || true
$SUDO service postgresql stop >/dev/null 2>&1 || true
