#!/usr/bin/env bash
# `make bench-quick`, `make bench-load` and `make test-faults`: run hookload
# against real Kafka and Redis on 127.0.0.1. Unless KAFKA_BROKERS and
# REDIS_ADDR already name servers, they are started here and stopped after,
# whatever the outcome (as deploy/scripts/test.sh does for `make test`);
# servers that were already running are used and left running.
#
#   bench.sh <hookload flags...>     e.g. bench.sh -size quick -scenarios fanout
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

started="" tmp=$(mktemp -d)
stop() {
  rm -rf "$tmp"
  [ -n "$started" ] && "$ROOT/deploy/scripts/infra.sh" down >/dev/null 2>&1 || true
}
trap stop EXIT

if [ -z "${KAFKA_BROKERS:-}" ] || [ -z "${REDIS_ADDR:-}" ]; then
  if "$ROOT/deploy/scripts/infra.sh" status >/dev/null 2>&1; then
    echo "bench: using the Kafka and Redis already running" >&2
  else
    echo "bench: starting Kafka and Redis" >&2
    started=yes
  fi
  eval "$("$ROOT/deploy/scripts/infra.sh" up)"
fi
export KAFKA_BROKERS REDIS_ADDR
echo "bench: KAFKA_BROKERS=$KAFKA_BROKERS REDIS_ADDR=$REDIS_ADDR" >&2

(cd "$ROOT/loadtest" && go build -o "$tmp/hookload" ./cmd/hookload)
"$tmp/hookload" -repo "$ROOT" "$@"
