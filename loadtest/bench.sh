#!/usr/bin/env bash
# `make bench`, `make bench-quick` and `make test-faults`: run hookload on
# 127.0.0.1.
#
# The benchmarks run against real Kafka and Redis: unless KAFKA_BROKERS and
# REDIS_ADDR already name servers, they are started here and stopped after,
# whatever the outcome (as deploy/scripts/test.sh does for `make test`);
# servers that were already running are used and left running.
#
# The fault suite (-faults) starts private Kafka clusters, Redis servers and
# a PostgreSQL of its own, on free ports, and never touches the shared ones. hookload
# stops them itself; should it die without doing so, this script does.
#
#   bench.sh <hookload flags...>     e.g. bench.sh -size quick -scenarios fanout
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

started="" tmp=$(mktemp -d)
stop() {
  local d f port
  for d in "$tmp"/work/*/kafka; do
    [ -d "$d" ] && KAFKA_STATE=$d "$ROOT/deploy/scripts/kafka.sh" down >/dev/null 2>&1 || true
  done
  for f in "$tmp"/work/*/redis/redis/redis-*.pid; do
    [ -f "$f" ] || continue
    port=${f##*/redis-}
    REDIS_PORT=${port%.pid} HOOKLINE_CACHE=${f%/redis/*} "$ROOT/deploy/scripts/redis.sh" down >/dev/null 2>&1 || true
  done
  for d in "$tmp"/work/*/postgres/postgres/*/; do
    [ -d "$d" ] || continue
    port=$(basename "$d")
    POSTGRES_PORT=$port HOOKLINE_CACHE=${d%/postgres/*/} "$ROOT/deploy/scripts/postgres.sh" down >/dev/null 2>&1 || true
  done
  rm -rf "$tmp"
  [ -n "$started" ] && "$ROOT/deploy/scripts/infra.sh" down >/dev/null 2>&1 || true
}
trap stop EXIT

faults=""
for arg in "$@"; do [ "$arg" = -faults ] && faults=yes; done

if [ -z "$faults" ] && { [ -z "${KAFKA_BROKERS:-}" ] || [ -z "${REDIS_ADDR:-}" ]; }; then
  if "$ROOT/deploy/scripts/infra.sh" status >/dev/null 2>&1; then
    echo "bench: using the Kafka and Redis already running" >&2
  else
    echo "bench: starting Kafka and Redis" >&2
    started=yes
  fi
  eval "$("$ROOT/deploy/scripts/infra.sh" up)"
fi
if [ -z "$faults" ]; then
  export KAFKA_BROKERS REDIS_ADDR
  echo "bench: KAFKA_BROKERS=$KAFKA_BROKERS REDIS_ADDR=$REDIS_ADDR" >&2
fi

# The brokers' CPU is part of what a scenario costs: pass the pids of the
# brokers deploy/scripts/infra.sh runs here (started now or before).
broker_pids=""
if [ -z "$faults" ]; then
  for f in "${KAFKA_STATE:-${HOOKLINE_CACHE:-$ROOT/.cache}/kafka}"/run/node-*.pid; do
    [ -f "$f" ] || continue
    pid=$(<"$f")
    if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q kafka.Kafka; then
      broker_pids+="${broker_pids:+,}$pid"
    fi
  done
fi

# As root, the private PostgreSQL runs as the postgres user, which must
# reach its folder under here.
chmod 755 "$tmp"
mkdir -p "$tmp/work"
(cd "$ROOT/loadtest" && go build -o "$tmp/hookload" ./cmd/hookload)
"$tmp/hookload" -repo "$ROOT" -work "$tmp/work" ${broker_pids:+-broker-pids "$broker_pids"} "$@"
