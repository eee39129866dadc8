#!/usr/bin/env bash
# The Docker engine the end-to-end tests run containers on, on a fresh Debian machine (root).
#
#   scripts/docker-env.sh start     # install docker.io + busybox-static if missing, start dockerd
#                                   # if no daemon answers, build logship-test-busybox:latest
#   scripts/docker-env.sh stop      # stop the dockerd this script started (by its pid file)
#   scripts/docker-env.sh restart   # stop + start the daemon with the same flags (tests use it)
#   scripts/docker-env.sh status    # exit 0 when a daemon answers
#
# dockerd runs without a bridge network or iptables rules (containers use --network none), and
# with --live-restore: a daemon restart leaves containers running, their output waits in the
# shim's pipe and is logged when the daemon is back. That is what a production host with
# live-restore does, and it lets the tests restart dockerd under running writers.
#
# No registry is reachable, so the test image is made with `docker import` from a rootfs that
# holds only the static busybox and a symlink per applet (sh, echo, seq, sleep, printf, ...).
#
# Environment: LOGSHIP_DOCKERD_DIR (default /tmp/logship-dockerd) holds dockerd.pid and
# dockerd.log.
set -euo pipefail

STATE_DIR="${LOGSHIP_DOCKERD_DIR:-/tmp/logship-dockerd}"
PIDFILE="$STATE_DIR/dockerd.pid"
LOG="$STATE_DIR/dockerd.log"
IMAGE="logship-test-busybox:latest"
DOCKERD_FLAGS=(--bridge=none --iptables=false --ip-masq=false --live-restore --pidfile "$PIDFILE")

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

log() { echo "docker-env: $*" >&2; }

install_missing() {
  local need=()
  command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
  command -v docker >/dev/null 2>&1 || need+=(docker.io)
  [ -x /bin/busybox ] || need+=(busybox-static)
  if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
}

daemon_up() { timeout 10 docker info >/dev/null 2>&1; }

our_pid() {
  local pid
  [ -s "$PIDFILE" ] || return 1
  pid="$(cat "$PIDFILE")"
  [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "dockerd" ] || return 1
  echo "$pid"
}

start_daemon() {
  if daemon_up; then
    return 0
  fi
  mkdir -p "$STATE_DIR"
  if our_pid >/dev/null; then
    log "dockerd (pid $(our_pid)) runs but does not answer yet; waiting"
  else
    rm -f "$PIDFILE"
    log "starting dockerd ${DOCKERD_FLAGS[*]} (log: $LOG)"
    # setsid: the daemon must outlive this script and the test process that called it.
    setsid $SUDO dockerd "${DOCKERD_FLAGS[@]}" >>"$LOG" 2>&1 </dev/null &
  fi
  for _ in $(seq 1 120); do
    if daemon_up; then
      log "dockerd answers (pid $(cat "$PIDFILE" 2>/dev/null || echo '?'))"
      return 0
    fi
    sleep 0.5
  done
  log "dockerd did not answer within 60 s; last lines of $LOG:"
  tail -n 30 "$LOG" >&2 || true
  return 1
}

stop_daemon() {
  local pid
  if ! pid="$(our_pid)"; then
    log "no dockerd started by this script is running (pid file $PIDFILE)"
    return 0
  fi
  log "stopping dockerd (pid $pid)"
  $SUDO kill -TERM "$pid"
  for _ in $(seq 1 120); do
    [ -e "/proc/$pid" ] || { log "dockerd stopped"; return 0; }
    sleep 0.25
  done
  log "dockerd (pid $pid) did not stop within 30 s"
  return 1
}

build_image() {
  if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    return 0
  fi
  local root
  root="$(mktemp -d)"
  mkdir -p "$root/bin" "$root/tmp" "$root/proc" "$root/sys" "$root/dev" "$root/etc"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  echo "root:x:0:0:root:/:/bin/sh" >"$root/etc/passwd"
  tar -C "$root" -c . | docker import -c 'ENV PATH=/bin' - "$IMAGE" >/dev/null
  rm -rf "$root"
  log "built $IMAGE"
}

case "${1:-start}" in
  start)
    install_missing
    start_daemon
    build_image
    ;;
  stop) stop_daemon ;;
  restart)
    stop_daemon
    start_daemon
    ;;
  status) daemon_up ;;
  *)
    echo "usage: $0 start|stop|restart|status" >&2
    exit 2
    ;;
esac
