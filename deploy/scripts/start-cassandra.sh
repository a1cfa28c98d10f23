#!/usr/bin/env bash
# Starts a throwaway single-node Apache Cassandra 5.0 for the storage contract tests.
#
#   start-cassandra.sh <workdir> <cql_port> <storage_port> [watch_pid]
#
# - First run: fetches cassandra-all and its runtime dependencies from Maven Central (with the
#   dependency list in deploy/scripts/cassandra/pom.xml) into
#   ${CONVERSA_CACHE:-$HOME/.cache/conversa}/cassandra-<version>/lib; later runs reuse that cache.
#   Nothing is written into the repository.
# - Writes <workdir>/cassandra.yaml and <workdir>/logback.xml, keeps all data under <workdir>, logs
#   to <workdir>/cassandra.log, and starts the node detached (its own session) on 127.0.0.1:<cql_port>
#   (CQL) and 127.0.0.1:<storage_port> (internode). No JMX port is opened, so several nodes on
#   different ports and workdirs can run at once.
# - With watch_pid, a detached watchdog SIGKILLs the node as soon as that process is gone (polled
#   once a second), so the node dies with the test process whatever the outcome.
# - Waits (at most 240 s) until the log says it listens for CQL clients and the port accepts TCP,
#   then prints exactly one line, `ready pid=<java pid>`, and exits 0. On failure it prints the tail
#   of the log to stderr, kills the node and exits 1.
# - Run again on a workdir whose node is still running, it starts nothing new and reports that node.
#
# Environment: CONVERSA_CACHE (cache root), CONVERSA_JAVA (a Java 17 `java`; default: the one on
# PATH, else /usr/lib/jvm/java-17-*).
set -euo pipefail

CASSANDRA_VERSION=5.0.9
READY_TIMEOUT_S=240
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

die() { echo "start-cassandra: $*" >&2; exit 1; }

[ $# -ge 3 ] && [ $# -le 4 ] || die "usage: start-cassandra.sh <workdir> <cql_port> <storage_port> [watch_pid]"
WORKDIR_ARG=$1 CQL_PORT=$2 STORAGE_PORT=$3 WATCH_PID=${4:-}
for p in "$CQL_PORT" "$STORAGE_PORT"; do
  [[ "$p" =~ ^[0-9]+$ ]] && [ "$p" -ge 1 ] && [ "$p" -le 65535 ] || die "bad port: $p"
done
[ "$CQL_PORT" != "$STORAGE_PORT" ] || die "cql_port and storage_port must differ"
if [ -n "$WATCH_PID" ]; then
  [[ "$WATCH_PID" =~ ^[0-9]+$ ]] || die "bad watch_pid: $WATCH_PID"
  [ -d "/proc/$WATCH_PID" ] || die "watch_pid $WATCH_PID does not exist"
fi

mkdir -p "$WORKDIR_ARG"
WORKDIR="$(cd "$WORKDIR_ARG" && pwd -P)"
LOG="$WORKDIR/cassandra.log"
PIDFILE="$WORKDIR/cassandra.pid"
CACHE="${CONVERSA_CACHE:-${HOME:?HOME is unset; set CONVERSA_CACHE}/.cache/conversa}"
DIST="$CACHE/cassandra-$CASSANDRA_VERSION"
LIB="$DIST/lib"

# A process counts as alive while /proc has it and it is not a zombie.
alive() {
  local stat
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != "Z" ]
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- 1. Cassandra's jars, fetched once into the cache -------------------------------------------
fetch_cassandra() {
  [ -f "$DIST/.complete" ] && return 0
  mkdir -p "$CACHE"
  # One fetch at a time per cache (concurrent first runs wait for the first one).
  exec 9>"$CACHE/cassandra-$CASSANDRA_VERSION.lock"
  flock -w 1200 9 || die "timed out waiting for another fetch of Cassandra ($CACHE)"
  if [ ! -f "$DIST/.complete" ]; then
    command -v mvn >/dev/null 2>&1 || die "mvn (Maven) is needed to fetch Cassandra"
    echo "start-cassandra: fetching cassandra-all $CASSANDRA_VERSION into $DIST (first run only)" >&2
    local tmp="$CACHE/.cassandra-$CASSANDRA_VERSION.tmp.$$"
    rm -rf "$tmp" "$CACHE"/.cassandra-"$CASSANDRA_VERSION".tmp.*   # leftovers of interrupted runs
    mkdir -p "$tmp/lib"
    cp "$SCRIPT_DIR/cassandra/pom.xml" "$tmp/pom.xml"
    if ! mvn -B -q -ntp -Dstyle.color=never -f "$tmp/pom.xml" \
        -Dmaven.repo.local="$CACHE/m2" \
        -Dcassandra.version="$CASSANDRA_VERSION" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp/lib" \
        >"$tmp/mvn.log" 2>&1; then
      cat "$tmp/mvn.log" >&2
      rm -rf "$tmp"
      die "Maven could not fetch cassandra-all $CASSANDRA_VERSION"
    fi
    [ -f "$tmp/lib/cassandra-all-$CASSANDRA_VERSION.jar" ] || { rm -rf "$tmp"; die "cassandra-all jar missing after fetch"; }
    compgen -G "$tmp/lib/jamm-*.jar" >/dev/null || { rm -rf "$tmp"; die "jamm jar missing after fetch"; }
    rm -f "$tmp/pom.xml" "$tmp/mvn.log"
    touch "$tmp/.complete"
    rm -rf "$DIST"          # a partial directory without the marker, if any
    mv "$tmp" "$DIST"
  fi
  flock -u 9
  exec 9>&-
}

# --- 2. Java 17 ------------------------------------------------------------------------------------
java_major() { "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p'; }
find_java() {
  local j
  for j in "${CONVERSA_JAVA:-}" "$(command -v java || true)" /usr/lib/jvm/java-17-*/bin/java /usr/lib/jvm/*17*/bin/java; do
    [ -n "$j" ] && [ -x "$j" ] || continue
    if [ "$(java_major "$j")" = "17" ]; then echo "$j"; return 0; fi
  done
  die "Cassandra $CASSANDRA_VERSION needs Java 17 (set CONVERSA_JAVA)"
}

# --- 3. readiness ----------------------------------------------------------------------------------
fail() {
  local pid=${1:-} msg=$2
  echo "start-cassandra: $msg" >&2
  if [ -f "$LOG" ]; then
    echo "---- last 60 lines of $LOG ----" >&2
    tail -n 60 "$LOG" >&2 || true
  fi
  if [ -n "$pid" ] && alive "$pid"; then
    kill -9 "$pid" 2>/dev/null || true
  fi
  exit 1
}

# The listener on the CQL port must be our java process (not some other program on that port).
listener_is() {
  command -v ss >/dev/null 2>&1 || return 0
  local out
  out=$(ss -Hltnp "sport = :$CQL_PORT" 2>/dev/null || true)
  [[ "$out" == *"pid=$1,"* ]]
}

wait_ready() {
  local pid=$1 deadline=$((SECONDS + READY_TIMEOUT_S))
  while :; do
    alive "$pid" || fail "" "Cassandra (pid $pid) exited during startup"
    if grep -q "Starting listening for CQL clients on .*:$CQL_PORT " "$LOG" 2>/dev/null \
        && port_open "$CQL_PORT" && listener_is "$pid"; then
      return 0
    fi
    [ "$SECONDS" -lt "$deadline" ] || fail "$pid" "Cassandra not ready after ${READY_TIMEOUT_S}s"
    sleep 0.25
  done
}

# --- 4. watchdog -----------------------------------------------------------------------------------
start_watchdog() {
  local node_pid=$1
  [ -n "$WATCH_PID" ] || return 0
  setsid bash -c '
    alive() { local s; { read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1; s=${s##*) }; [ "${s%% *}" != Z ]; }
    while alive "$2"; do
      if ! alive "$1"; then kill -9 "$2" 2>/dev/null; exit 0; fi
      sleep 1
    done' cassandra-watchdog "$WATCH_PID" "$node_pid" </dev/null >/dev/null 2>&1 9>&- &
}

# --- already running in this workdir? ---------------------------------------------------------
if [ -f "$PIDFILE" ]; then
  old=$(cat "$PIDFILE" 2>/dev/null || true)
  old_cmd=""
  if [[ "$old" =~ ^[0-9]+$ ]] && alive "$old"; then
    old_cmd=$(tr '\0' ' ' <"/proc/$old/cmdline" 2>/dev/null || true)
  fi
  if [[ "$old_cmd" == *"-Dcassandra.config=file://$WORKDIR/cassandra.yaml"* ]]; then
    grep -q "^native_transport_port: $CQL_PORT\$" "$WORKDIR/cassandra.yaml" \
      && grep -q "^storage_port: $STORAGE_PORT\$" "$WORKDIR/cassandra.yaml" \
      || die "a node (pid $old) already runs in $WORKDIR with other ports"
    start_watchdog "$old"
    wait_ready "$old"
    echo "ready pid=$old"
    exit 0
  fi
  rm -f "$PIDFILE"
fi

for p in "$CQL_PORT" "$STORAGE_PORT"; do
  if port_open "$p"; then die "port $p on 127.0.0.1 is already in use: $(ss -Htanp "sport = :$p" 2>/dev/null | head -3)"; fi
done

fetch_cassandra
JAVA=$(find_java)
JAMM=$(compgen -G "$LIB/jamm-*.jar" | head -n 1)

mkdir -p "$WORKDIR"/{data,commitlog,saved_caches,hints,cdc_raw,triggers,tmp,logs}

# --- 5. configuration ------------------------------------------------------------------------------
cat >"$WORKDIR/cassandra.yaml" <<EOF
# Generated by deploy/scripts/start-cassandra.sh: a throwaway single node for tests.
cluster_name: conversa-test-$CQL_PORT
num_tokens: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:$STORAGE_PORT"
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: $STORAGE_PORT
native_transport_port: $CQL_PORT
start_native_transport: true

data_file_directories:
  - $WORKDIR/data
commitlog_directory: $WORKDIR/commitlog
saved_caches_directory: $WORKDIR/saved_caches
hints_directory: $WORKDIR/hints
cdc_raw_directory: $WORKDIR/cdc_raw
cdc_enabled: false

# One node and no replicas: an acknowledged write must be on disk before the ack, so that the contract's
# kill -9 + restart case holds (a production cluster keeps "periodic" and relies on replication).
commitlog_sync: batch
commitlog_segment_size: 32MiB

authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
role_manager: CassandraRoleManager
network_authorizer: AllowAllNetworkAuthorizer

auto_snapshot: false
snapshot_before_compaction: false
incremental_backups: false
hinted_handoff_enabled: false
# A fresh single node with no older peers: use the 5.0 formats and limits (not the 4.x-compatible ones).
storage_compatibility_mode: NONE
# Small machine: keep background work and caches modest.
concurrent_compactors: 1
key_cache_size: 16MiB
counter_cache_size: 8MiB
EOF

cat >"$WORKDIR/logback.xml" <<'EOF'
<configuration scan="false">
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="STDOUT"/></root>
</configuration>
EOF

# --- 6. the JVM ------------------------------------------------------------------------------------
JVM_OPTS=(
  -Xms512m -Xmx1g -Xss256k
  -XX:+UseG1GC -XX:+ParallelRefProcEnabled -XX:MaxTenuringThreshold=1
  -XX:G1RSetUpdatingPauseTimePercent=5 -XX:MaxGCPauseMillis=300 -XX:InitiatingHeapOccupancyPercent=70
  -XX:+UseThreadPriorities -XX:+UseTLAB -XX:+ResizeTLAB -XX:+PerfDisableSharedMem
  -XX:+ExitOnOutOfMemoryError
  -ea -da:net.openhft...
  -Djava.net.preferIPv4Stack=true
  # JPMS flags from Cassandra 5.0's conf/jvm17-server.options
  -Djdk.attach.allowAttachSelf=true
  --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
  --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
  --add-exports java.sql/java.sql=ALL-UNNAMED
  --add-exports java.base/java.lang.ref=ALL-UNNAMED
  --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
  --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
  --add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
  --add-opens java.base/java.lang.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
  --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
  --add-opens java.base/jdk.internal.math=ALL-UNNAMED
  --add-opens java.base/jdk.internal.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
  --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
  --add-opens java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens java.base/java.io=ALL-UNNAMED
  --add-opens java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
  --add-opens java.base/java.lang=ALL-UNNAMED
  --add-opens java.base/java.util=ALL-UNNAMED
  -Dio.netty.tryReflectionSetAccessible=true
  -Dio.netty.allocator.useCacheForAllThreads=true
  -Dio.netty.allocator.maxOrder=11
  "-javaagent:$JAMM"
  "-Djava.io.tmpdir=$WORKDIR/tmp"
  "-Dlogback.configurationFile=file://$WORKDIR/logback.xml"
  "-Dcassandra.logdir=$WORKDIR/logs"
  "-Dcassandra.config=file://$WORKDIR/cassandra.yaml"
  "-Dcassandra.storagedir=$WORKDIR"
  "-Dcassandra.triggers_dir=$WORKDIR/triggers"
  -Dcassandra-foreground=yes
  # Single node: nothing to wait for.
  -Dcassandra.skip_wait_for_gossip_to_settle=0
  -Dcassandra.ring_delay_ms=0
  -Dcassandra.superuser_setup_delay_ms=0
  # Neither cassandra.jmx.local.port nor cassandra.jmx.remote.port is set: Cassandra 5.0 then opens
  # no JMX connector at all (no port 7199), so nodes never clash on it. nodetool cannot connect.
)

[ -f "$LOG" ] && mv -f "$LOG" "$LOG.prev"
cd "$WORKDIR"
# The node gets its own session, no terminal, and none of our descriptors (so a caller reading our
# stdout to EOF is not held open by it). The inner shell writes its pid, which `exec` keeps for java.
setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' cassandra-launch "$PIDFILE" \
  "$JAVA" "${JVM_OPTS[@]}" -cp "$LIB/*" org.apache.cassandra.service.CassandraDaemon \
  </dev/null >>"$LOG" 2>&1 9>&- &
launcher=$!

node_pid=""
for _ in $(seq 1 200); do
  node_pid=$(cat "$PIDFILE" 2>/dev/null || true)
  [[ "$node_pid" =~ ^[0-9]+$ ]] && break
  node_pid=""
  alive "$launcher" || break
  sleep 0.05
done
[ -n "$node_pid" ] || fail "" "could not launch java"

trap 'fail "$node_pid" "interrupted"' INT TERM
start_watchdog "$node_pid"
wait_ready "$node_pid"
trap - INT TERM
echo "ready pid=$node_pid"
