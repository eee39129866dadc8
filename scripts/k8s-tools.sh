#!/usr/bin/env bash
# Installs what the Kubernetes manifest tests need, if missing: `kubectl` (for
# `kubectl kustomize`; Debian's kubernetes-client) and `kubernetes-validate` (PyPI, in a venv
# under $LOGSHIP_TOOLS_DIR, default /tmp/logship-tools). Prints the validator's path.
#
#   LOGSHIP_K8S_VALIDATE="$(scripts/k8s-tools.sh)"
set -euo pipefail

TOOLS_DIR="${LOGSHIP_TOOLS_DIR:-/tmp/logship-tools}"
VENV="$TOOLS_DIR/venv"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

log() { echo "k8s-tools: $*" >&2; }

if ! command -v kubectl >/dev/null 2>&1; then
  log "installing kubernetes-client (kubectl)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null
fi

if [ ! -x "$VENV/bin/kubernetes-validate" ]; then
  log "installing kubernetes-validate into $VENV"
  mkdir -p "$TOOLS_DIR"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check kubernetes-validate >&2
fi
echo "$VENV/bin/kubernetes-validate"
