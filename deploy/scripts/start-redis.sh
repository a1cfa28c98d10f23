#!/usr/bin/env bash
# Starts a throwaway redis-server for the tests that need one (the bus between nodes).
#
#   start-redis.sh <workdir> <port> [watch_pid]
#
# - Uses Debian's redis-server; when it is missing (and we are root) installs the `redis-server`
#   package with apt-get and stops/disables the distro's own service should the package have started
#   one: only ours runs.
# - The server listens on 127.0.0.1:<port> only, without persistence (the bus recovers from the
#   store, not from Redis), logs to <workdir>/redis.log, daemonized with its pid in <workdir>.
# - With watch_pid, a detached watchdog kills the server as soon as that process is gone (polled once
#   a second).
# - Waits (at most 30 s) for PING to answer, then prints exactly one line, `ready pid=<server pid>`, and
#   exits 0. On failure it prints the tail of the log to stderr and exits 1.
#
# Environment: CONVERSA_CACHE (cache root, for the install lock; default $HOME/.cache/conversa).
set -euo pipefail

READY_TIMEOUT_S=30

die() { echo "start-redis: $*" >&2; exit 1; }

[ $# -ge 2 ] && [ $# -le 3 ] || die "usage: start-redis.sh <workdir> <port> [watch_pid]"
WORKDIR_ARG=$1 PORT=$2 WATCH_PID=${3:-}
[[ "$PORT" =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ] || die "bad port: $PORT"
if [ -n "$WATCH_PID" ]; then
  [[ "$WATCH_PID" =~ ^[0-9]+$ ]] || die "bad watch_pid: $WATCH_PID"
  [ -d "/proc/$WATCH_PID" ] || die "watch_pid $WATCH_PID does not exist"
fi

mkdir -p "$WORKDIR_ARG"
WORKDIR="$(cd "$WORKDIR_ARG" && pwd -P)"
LOG="$WORKDIR/redis.log"
PIDFILE="$WORKDIR/redis.pid"
CACHE="${CONVERSA_CACHE:-${HOME:?HOME is unset; set CONVERSA_CACHE}/.cache/conversa}"

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  [ "$(id -u)" = "0" ] || die "redis-server is not installed and we are not root to install it"
  mkdir -p "$CACHE"
  exec 9>"$CACHE/redis-install.lock"
  flock -w 900 9 || die "timed out waiting for another install of redis-server"
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "start-redis: installing Debian's redis-server package (first run only)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || true
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq redis-server >&2 \
      || die "apt-get install redis-server failed"
    # The package may start its own server on 6379: only ours runs.
    if command -v systemctl >/dev/null 2>&1; then systemctl disable --now redis-server >/dev/null 2>&1 || true; fi
    service redis-server stop >/dev/null 2>&1 || true
    pkill -f 'redis-server 127.0.0.1:6379' >/dev/null 2>&1 || true
  fi
  flock -u 9
  exec 9>&-
fi

redis-server --bind 127.0.0.1 --port "$PORT" --daemonize yes --pidfile "$PIDFILE" \
  --logfile "$LOG" --dir "$WORKDIR" --save '' --appendonly no >/dev/null \
  || die "redis-server did not start"

deadline=$((SECONDS + READY_TIMEOUT_S))
until [ "$(redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null)" = "PONG" ]; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "start-redis: not ready after ${READY_TIMEOUT_S}s" >&2
    tail -n 40 "$LOG" >&2 || true
    exit 1
  fi
  sleep 0.1
done
PID=$(cat "$PIDFILE")

if [ -n "$WATCH_PID" ]; then
  setsid bash -c '
    alive() { local s; { read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1; s=${s##*) }; [ "${s%% *}" != Z ]; }
    while alive "$2"; do
      if ! alive "$1"; then kill -KILL "$2" 2>/dev/null; exit 0; fi
      sleep 1
    done' _ "$WATCH_PID" "$PID" </dev/null >/dev/null 2>&1 &
fi
echo "ready pid=$PID"
