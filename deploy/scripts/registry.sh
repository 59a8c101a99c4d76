#!/usr/bin/env bash
# A Confluent-compatible schema registry on 127.0.0.1 for local runs and CI:
# Apicurio Registry (in-memory storage), whose Confluent API lives under
# /apis/ccompat/v7. Its distribution comes from Maven Central (the -all
# tar.gz of io.apicurio:apicurio-registry-app) and runs with plain `java -jar`.
#
#   registry.sh up       fetch once, start, wait until it answers; prints
#                        HOOKLINE_SCHEMA_REGISTRY_URL=... on stdout, so
#                        `eval "export $(deploy/scripts/registry.sh up)"` works
#   registry.sh down     stop it (every schema is gone: storage is in memory)
#   registry.sh status   exit 0 only when it answers
#   registry.sh fetch    only fetch and unpack the distribution
#
# Env: REGISTRY_PORT (8081, the Confluent registry's usual port),
# APICURIO_VERSION (2.6.13.Final: the 3.x line needs Java 21), HOOKLINE_CACHE
# (<repo>/.cache), REGISTRY_HEAP_OPTS (-Xms128m -Xmx384m),
# REGISTRY_WAIT_SECONDS (120).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${HOOKLINE_CACHE:-$ROOT/.cache}
APICURIO_VERSION=${APICURIO_VERSION:-2.6.13.Final}
REGISTRY_PORT=${REGISTRY_PORT:-8081}
REGISTRY_HEAP_OPTS=${REGISTRY_HEAP_OPTS:--Xms128m -Xmx384m}
REGISTRY_WAIT_SECONDS=${REGISTRY_WAIT_SECONDS:-120}

DIR=$CACHE/registry
DIST=$DIR/apicurio-$APICURIO_VERSION
PIDFILE=$DIR/registry-$REGISTRY_PORT.pid
LOGFILE=$DIR/registry-$REGISTRY_PORT.log
URL=http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7

log() { echo "registry: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_dist() {
  command -v java >/dev/null || die "java not found (Apicurio Registry $APICURIO_VERSION needs Java 17+)"
  [[ -f $DIST/.complete ]] && return 0
  command -v mvn >/dev/null || die "mvn not found: apt-get install -y maven"
  log "fetching Apicurio Registry $APICURIO_VERSION from Maven Central (once, ~140 MB)"
  mkdir -p "$DIR"
  local tmp=$DIST.tmp.$$
  rm -rf "$tmp"
  mkdir -p "$tmp"
  # No pom needed: the dependency plugin copies one artifact by coordinates.
  # Run from $DIR so that no project pom is picked up. A Maven repository of
  # its own, dropped afterwards: kafka.sh may be filling $CACHE/m2 at the
  # same time, and the tarball is not needed once unpacked.
  if ! (cd "$DIR" && mvn -B -q -Dmaven.repo.local="$tmp/m2" \
    org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
    -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" \
    -DoutputDirectory="$tmp" >"$DIR/mvn.log" 2>&1); then
    cat "$DIR/mvn.log" >&2
    rm -rf "$tmp"
    die "mvn failed to fetch Apicurio Registry (log: $DIR/mvn.log)"
  fi
  tar -xzf "$tmp"/apicurio-registry-app-*-all.tar.gz -C "$tmp"
  rm -rf "$tmp"/apicurio-registry-app-*-all.tar.gz "$tmp/m2"
  touch "$tmp/.complete"
  rm -rf "$DIST"
  mv "$tmp" "$DIST"
}

answers() { curl -sf -o /dev/null --max-time 2 "$URL/subjects"; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Pid of our registry if alive (checks its command line too, so a reused pid
# is ignored).
our_pid() {
  [[ -f $PIDFILE ]] || return 1
  local pid
  pid=$(<"$PIDFILE")
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "-Dhookline.registry.port=$REGISTRY_PORT " || return 1
  echo "$pid"
}

cmd_up() {
  ensure_dist
  mkdir -p "$DIR"
  if our_pid >/dev/null; then
    answers && { log "already running at $URL"; echo "HOOKLINE_SCHEMA_REGISTRY_URL=$URL"; return 0; }
  elif port_open "$REGISTRY_PORT"; then
    die "127.0.0.1:$REGISTRY_PORT is taken by another process; stop it or set REGISTRY_PORT"
  fi
  local runner
  runner=$(echo "$DIST"/apicurio-registry-app-*-runner.jar)
  [[ -f $runner ]] || die "no runner jar in $DIST"
  echo "--- start $(date -Is)" >>"$LOGFILE"
  # BACKWARD, the Confluent registry's default, instead of Apicurio's NONE:
  # registering an incompatible schema must fail here as it would there.
  # shellcheck disable=SC2086
  setsid java $REGISTRY_HEAP_OPTS -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -Dhookline.registry.port="$REGISTRY_PORT" \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$REGISTRY_PORT" \
    -Dregistry.rules.global.compatibility=BACKWARD \
    -jar "$runner" >>"$LOGFILE" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$PIDFILE"
  local deadline=$((SECONDS + REGISTRY_WAIT_SECONDS)) started=$SECONDS
  until answers; do
    # kill -0, not our_pid: until setsid has exec'd java, the process's
    # command line is still bash's.
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 40 "$LOGFILE" >&2
      die "the registry died during startup (log: $LOGFILE)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 40 "$LOGFILE" >&2
      die "no answer at $URL after ${REGISTRY_WAIT_SECONDS}s"
    fi
    sleep 0.5
  done
  log "ready at $URL after $((SECONDS - started))s"
  echo "HOOKLINE_SCHEMA_REGISTRY_URL=$URL"
}

cmd_down() {
  local pid
  if pid=$(our_pid); then stop_pid "$pid" 30; fi
  rm -f "$PIDFILE"
  log "down"
}

cmd_status() {
  local pid
  if pid=$(our_pid) && answers; then
    echo "registry: running pid $pid, $URL"
  else
    echo "registry: stopped"
    return 1
  fi
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  fetch) ensure_dist; echo "$DIST" ;;
  *) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
