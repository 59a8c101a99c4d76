#!/usr/bin/env bash
# `make test`: start real Kafka and Redis on 127.0.0.1 (unless KAFKA_BROKERS
# and REDIS_ADDR already name servers), run every module's tests with -race
# against them, and stop what was started, whatever the outcome.
#
#   test.sh <package patterns...>
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

started=""
stop() { [ -n "$started" ] && "$HERE/infra.sh" down >/dev/null 2>&1 || true; }
trap stop EXIT

if [ -z "${KAFKA_BROKERS:-}" ] || [ -z "${REDIS_ADDR:-}" ]; then
  echo "test: starting Kafka and Redis" >&2
  eval "$("$HERE/infra.sh" up)"
  started=yes
fi
export KAFKA_BROKERS REDIS_ADDR
# Integration tests fail instead of skipping when a server is missing.
export HOOKLINE_REQUIRE_INFRA=1
echo "test: KAFKA_BROKERS=$KAFKA_BROKERS REDIS_ADDR=$REDIS_ADDR" >&2

go test -race -count=1 -timeout 20m "$@"

# What deploy/ ships: manifests, dashboards and alert rules, and the delivery
# log read by tools that are not Hookline's own (Python, kcat).
for t in kustomize_test.sh monitoring_test.sh avro_decode_test.sh; do
  echo "test: deploy/tests/$t" >&2
  "$HERE/../tests/$t"
done
