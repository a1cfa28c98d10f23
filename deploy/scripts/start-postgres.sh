#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the storage contract tests.
#
#   start-postgres.sh <workdir> <port> [watch_pid]
#
# - Uses Debian's server binaries in /usr/lib/postgresql/<newest>/bin; when they are missing (and
#   we are root) installs the `postgresql` package with apt-get, and stops/disables the distro's
#   default cluster should the package have started one: only our throwaway cluster runs.
# - PostgreSQL refuses to run as root, so initdb and the server run as the `postgres` OS user.
#   <workdir> must be reachable by that user (the script adds o+x to <workdir> itself; its parent
#   directories must already be traversable, as /tmp is).
# - First run on a workdir: initdb into <workdir>/pgdata (trust auth, UTF-8). The server listens on
#   127.0.0.1:<port> only, with its Unix socket in <workdir>/pgsocket, fsync on, modest memory, and
#   logs to <workdir>/postgres.log. Database `conversa` owned by role `conversa` (LOGIN, password
#   `conversa`, not a superuser, CREATEDB so tests can make a database per run) is created if missing.
# - With watch_pid, a detached watchdog stops the server (SIGQUIT to the postmaster, then SIGKILL to
#   its process group) as soon as that process is gone (polled once a second).
# - Waits (at most 60 s) for `pg_isready`, then prints exactly one line, `ready pid=<postmaster pid>`,
#   and exits 0. On failure it prints the tail of the log to stderr, stops the server and exits 1.
# - Run again on a workdir whose server is still running on that port, it starts nothing new and
#   reports that server.
#
# Environment: CONVERSA_CACHE (cache root, for the install lock; default $HOME/.cache/conversa).
set -euo pipefail

READY_TIMEOUT_S=60

die() { echo "start-postgres: $*" >&2; exit 1; }

[ $# -ge 2 ] && [ $# -le 3 ] || die "usage: start-postgres.sh <workdir> <port> [watch_pid]"
WORKDIR_ARG=$1 PORT=$2 WATCH_PID=${3:-}
[[ "$PORT" =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ] || die "bad port: $PORT"
if [ -n "$WATCH_PID" ]; then
  [[ "$WATCH_PID" =~ ^[0-9]+$ ]] || die "bad watch_pid: $WATCH_PID"
  [ -d "/proc/$WATCH_PID" ] || die "watch_pid $WATCH_PID does not exist"
fi
[ "$(id -u)" = "0" ] || die "must run as root (it runs the server as the postgres user)"

mkdir -p "$WORKDIR_ARG"
WORKDIR="$(cd "$WORKDIR_ARG" && pwd -P)"
PGDATA="$WORKDIR/pgdata"
SOCKDIR="$WORKDIR/pgsocket"
LOG="$WORKDIR/postgres.log"
CACHE="${CONVERSA_CACHE:-${HOME:?HOME is unset; set CONVERSA_CACHE}/.cache/conversa}"

alive() {
  local stat
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != "Z" ]
}

as_pg() { runuser -u postgres -- "$@"; }

# --- 1. server binaries ------------------------------------------------------------------------------
find_pg_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/postgres" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/pg_isready" ] && [ -x "$d/psql" ]; then
      echo "$d"; return 0
    fi
  done
  return 1
}

install_postgres() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/postgres-install.lock"
  flock -w 900 9 || die "timed out waiting for another install of PostgreSQL"
  if ! find_pg_bin >/dev/null; then
    echo "start-postgres: installing Debian's postgresql package (first run only)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || true
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq postgresql >&2 \
      || die "apt-get install postgresql failed"
    # The package creates a default cluster (port 5432) and may start it: we want only ours.
    if command -v pg_lsclusters >/dev/null 2>&1; then
      local ver name _rest
      while read -r ver name _rest; do
        [ -n "$name" ] || continue
        pg_ctlcluster "$ver" "$name" stop >/dev/null 2>&1 || true
        [ -f "/etc/postgresql/$ver/$name/start.conf" ] && echo manual >"/etc/postgresql/$ver/$name/start.conf"
      done < <(pg_lsclusters -h 2>/dev/null || true)
    fi
  fi
  flock -u 9
  exec 9>&-
}

PG_BIN=$(find_pg_bin) || { install_postgres; PG_BIN=$(find_pg_bin) || die "no PostgreSQL server binaries after install"; }
id postgres >/dev/null 2>&1 || die "the postgres OS user is missing (it comes with Debian's postgresql-common)"

# --- 2. helpers --------------------------------------------------------------------------------------
postmaster_pid() { head -n 1 "$PGDATA/postmaster.pid" 2>/dev/null || true; }

kill_server() {
  local pm=$1
  [[ "$pm" =~ ^[0-9]+$ ]] && alive "$pm" || return 0
  kill -QUIT "$pm" 2>/dev/null || true
  for _ in $(seq 1 50); do alive "$pm" || return 0; sleep 0.1; done
  # Backends each lead a session of their own, so the group of the postmaster is not enough.
  # shellcheck disable=SC2046  # one argument per child pid
  kill -KILL "$pm" $(ps -o pid= --ppid "$pm" 2>/dev/null) 2>/dev/null || true
}

fail() {
  echo "start-postgres: $1" >&2
  if [ -f "$LOG" ]; then
    echo "---- last 60 lines of $LOG ----" >&2
    tail -n 60 "$LOG" >&2 || true
  fi
  kill_server "$(postmaster_pid)"
  exit 1
}

is_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -t 2 >/dev/null 2>&1; }

wait_ready() {
  local pm=$1 deadline=$((SECONDS + READY_TIMEOUT_S))
  until is_ready; do
    alive "$pm" || fail "postmaster (pid $pm) exited during startup"
    [ "$SECONDS" -lt "$deadline" ] || fail "PostgreSQL not ready after ${READY_TIMEOUT_S}s"
    sleep 0.1
  done
}

# On SIGQUIT (immediate shutdown) the postmaster takes its backends down itself; SIGKILL to it and
# its children is the fallback if it is still there 5 s later.
start_watchdog() {
  local pm=$1
  [ -n "$WATCH_PID" ] || return 0
  setsid bash -c '
    alive() { local s; { read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1; s=${s##*) }; [ "${s%% *}" != Z ]; }
    while alive "$2"; do
      if ! alive "$1"; then
        kill -QUIT "$2" 2>/dev/null
        for i in 1 2 3 4 5 6 7 8 9 10; do alive "$2" || exit 0; sleep 0.5; done
        kill -KILL "$2" $(ps -o pid= --ppid "$2" 2>/dev/null) 2>/dev/null
        exit 0
      fi
      sleep 1
    done' postgres-watchdog "$WATCH_PID" "$pm" </dev/null >/dev/null 2>&1 9>&- &
}

ensure_database() {
  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres -d postgres >/dev/null <<'SQL'
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'conversa') THEN
    CREATE ROLE conversa LOGIN CREATEDB PASSWORD 'conversa';
  END IF;
END
$$;
SELECT 'CREATE DATABASE conversa OWNER conversa'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'conversa')\gexec
SQL
}

# --- 3. already running in this workdir? --------------------------------------------------------------
old=$(postmaster_pid)
if [[ "$old" =~ ^[0-9]+$ ]] && alive "$old" \
    && [ "$(readlink "/proc/$old/cwd" 2>/dev/null || true)" = "$PGDATA" ]; then
  [ "$(sed -n 4p "$PGDATA/postmaster.pid")" = "$PORT" ] \
    || die "a server (pid $old) already runs in $WORKDIR on another port"
  start_watchdog "$old"
  wait_ready "$old"
  ensure_database >&2 || fail "could not create role/database conversa"
  echo "ready pid=$old"
  exit 0
fi

# A postmaster.pid left by a killed server would be read as ours below: it is stale, drop it.
rm -f "$PGDATA/postmaster.pid"

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  die "port $PORT on 127.0.0.1 is already in use"
fi

# --- 4. the cluster ----------------------------------------------------------------------------------
# The postgres user must be able to reach <workdir>.
if ! as_pg test -x "$WORKDIR"; then
  chmod o+x "$WORKDIR"
  as_pg test -x "$WORKDIR" \
    || die "the postgres user cannot reach $WORKDIR (a parent directory is not traversable); use a workdir under /tmp"
fi
cd "$WORKDIR"

if [ ! -f "$PGDATA/PG_VERSION" ]; then
  # initdb into a scratch directory, renamed into place only once complete, so an interrupted
  # first run never leaves a half-made cluster behind.
  rm -rf "$PGDATA" "$WORKDIR"/pgdata.init.*
  init="$WORKDIR/pgdata.init.$$"
  install -d -o postgres -g postgres -m 0700 "$init"
  if ! as_pg "$PG_BIN/initdb" -D "$init" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
      --no-sync >"$WORKDIR/initdb.log" 2>&1; then
    cat "$WORKDIR/initdb.log" >&2
    rm -rf "$init"
    die "initdb failed"
  fi
  cat >>"$init/postgresql.conf" <<'EOF'

# ---- added by deploy/scripts/start-postgres.sh (throwaway test server) ----
listen_addresses = '127.0.0.1'
fsync = on
synchronous_commit = on
full_page_writes = on
shared_buffers = 64MB
max_connections = 100
log_destination = 'stderr'
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
# port and unix_socket_directories (which change per run) live here:
include_if_exists = 'conversa-runtime.conf'
EOF
  # 127.0.0.1 only, trust (initdb --auth=trust already wrote trust for local and loopback).
  mv "$init" "$PGDATA"
fi

install -d -o postgres -g postgres -m 0700 "$SOCKDIR"
cat >"$PGDATA/conversa-runtime.conf" <<EOF
# Rewritten by start-postgres.sh on every start.
port = $PORT
unix_socket_directories = '$SOCKDIR'
EOF
chown postgres:postgres "$PGDATA/conversa-runtime.conf"

[ -f "$LOG" ] && mv -f "$LOG" "$LOG.prev"
install -o postgres -g postgres -m 0644 /dev/null "$LOG"

# pg_ctl starts the postmaster in a session of its own with stdio on the log, detached from us.
if ! as_pg "$PG_BIN/pg_ctl" start -D "$PGDATA" -l "$LOG" -W -s </dev/null >/dev/null 2>>"$LOG" 9>&-; then
  fail "pg_ctl could not start the server"
fi

pm=""
deadline=$((SECONDS + READY_TIMEOUT_S))
while :; do
  pm=$(postmaster_pid)
  [[ "$pm" =~ ^[0-9]+$ ]] && break
  [ "$SECONDS" -lt "$deadline" ] || fail "no postmaster.pid after ${READY_TIMEOUT_S}s"
  if grep -q -E "FATAL|PANIC" "$LOG" 2>/dev/null; then fail "PostgreSQL failed to start"; fi
  sleep 0.05
done

trap 'fail "interrupted"' INT TERM
start_watchdog "$pm"
wait_ready "$pm"
ensure_database >&2 || fail "could not create role/database conversa"
trap - INT TERM
echo "ready pid=$pm"
