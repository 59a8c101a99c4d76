#!/usr/bin/env bash
# `make test`: start real Kafka, Redis and PostgreSQL on 127.0.0.1 (unless
# KAFKA_BROKERS, REDIS_ADDR and HOOKLINE_POSTGRES_URL already name servers),
# a real schema registry (unless HOOKLINE_TEST_SCHEMA_REGISTRY_URL names one)
# and a real SMTP server, mailpit (unless MAILPIT_URL names one), run every
# module's tests with -race against them, and stop what was started,
# whatever the outcome.
#
# Chromium (Debian's, for the console's browser tests) is installed with
# apt-get when missing.
#
#   test.sh <package patterns...>
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

started="" postgres="" registry="" registry_env="" mailpit=""
stop() {
  [ -n "$mailpit" ] && "$HERE/mailpit.sh" down >/dev/null 2>&1
  [ -n "$registry" ] && "$HERE/registry.sh" down >/dev/null 2>&1
  [ -n "$registry_env" ] && rm -f "$registry_env"
  [ -n "$started" ] && "$HERE/infra.sh" down >/dev/null 2>&1
  [ -n "$postgres" ] && "$HERE/postgres.sh" down >/dev/null 2>&1
  true
}
trap stop EXIT

# The registry (Apicurio, a JVM: ~10-20 s) starts in the background while
# Kafka does. One already running from registry.sh is used and left running.
if [ -z "${HOOKLINE_TEST_SCHEMA_REGISTRY_URL:-}" ]; then
  registry_env=$(mktemp)
  if "$HERE/registry.sh" status >/dev/null 2>&1; then
    "$HERE/registry.sh" up >"$registry_env" 2>/dev/null
  else
    echo "test: starting a schema registry" >&2
    registry=yes
    "$HERE/registry.sh" up >"$registry_env" &
    registry_pid=$!
  fi
fi

if [ -z "${KAFKA_BROKERS:-}" ] || [ -z "${REDIS_ADDR:-}" ]; then
  echo "test: starting Kafka, Redis and PostgreSQL" >&2
  started=yes
  pg_url=${HOOKLINE_POSTGRES_URL:-}
  # Not eval "$(...)": that would hide a failed start behind an empty eval.
  infra_env=$("$HERE/infra.sh" up) || { echo "test: Kafka, Redis or PostgreSQL did not start" >&2; exit 1; }
  eval "$infra_env"
  # A PostgreSQL named by the caller wins over the one infra.sh started.
  [ -n "$pg_url" ] && HOOKLINE_POSTGRES_URL=$pg_url
elif [ -z "${HOOKLINE_POSTGRES_URL:-}" ]; then
  echo "test: starting PostgreSQL" >&2
  postgres=yes
  pg_env=$("$HERE/postgres.sh" up) || { echo "test: PostgreSQL did not start" >&2; exit 1; }
  HOOKLINE_POSTGRES_URL=$(sed -n 's/^HOOKLINE_POSTGRES_URL=//p' <<<"$pg_env")
fi
export KAFKA_BROKERS REDIS_ADDR HOOKLINE_POSTGRES_URL
# Mailpit: notify's tests send real email to it and read it back over its
# HTTP API. The first run builds it with go install (about a minute).
if [ -z "${MAILPIT_URL:-}" ]; then
  if ! "$HERE/mailpit.sh" status >/dev/null 2>&1; then
    echo "test: starting mailpit" >&2
    mailpit=yes
  fi
  mailpit_env=$("$HERE/mailpit.sh" up) || { echo "test: mailpit did not start" >&2; exit 1; }
  eval "$mailpit_env"
fi
export MAILPIT_SMTP_ADDR MAILPIT_URL MAILPIT_BIN
if [ -n "$registry_env" ]; then
  if [ -n "$registry" ]; then
    wait "$registry_pid" || { echo "test: the schema registry did not start" >&2; exit 1; }
  fi
  # Only pkg/schemaregistry's test reads this; the services' own
  # HOOKLINE_SCHEMA_REGISTRY_URL stays unset, so tests that start services
  # get the fixed schema ids they expect.
  HOOKLINE_TEST_SCHEMA_REGISTRY_URL=$(sed -n 's/^HOOKLINE_SCHEMA_REGISTRY_URL=//p' "$registry_env")
  [ -n "$HOOKLINE_TEST_SCHEMA_REGISTRY_URL" ] || { echo "test: registry.sh printed no URL" >&2; exit 1; }
fi
export HOOKLINE_TEST_SCHEMA_REGISTRY_URL
# The console's browser tests drive Debian's chromium (installed when missing).
chromium_env=$("$HERE/chromium.sh" ensure) || { echo "test: chromium is missing and could not be installed" >&2; exit 1; }
eval "$chromium_env"
export HOOKLINE_CHROMIUM
# Integration tests fail instead of skipping when a server is missing.
export HOOKLINE_REQUIRE_INFRA=1
echo "test: KAFKA_BROKERS=$KAFKA_BROKERS REDIS_ADDR=$REDIS_ADDR HOOKLINE_POSTGRES_URL=$HOOKLINE_POSTGRES_URL HOOKLINE_TEST_SCHEMA_REGISTRY_URL=${HOOKLINE_TEST_SCHEMA_REGISTRY_URL:-} MAILPIT_URL=$MAILPIT_URL HOOKLINE_CHROMIUM=$HOOKLINE_CHROMIUM" >&2

go test -race -count=1 -timeout 20m "$@"

# What deploy/ ships: manifests, dashboards and alert rules, the delivery
# log read by tools that are not Hookline's own (Python, kcat), webhooks
# verified by signature libraries that are not Hookline's (Python, Node), and
# the OpenAPI document checked against a real ingest by schemathesis.
# HOOKLINE_TEST_GO_ONLY=1 (make console-screenshots) runs the Go tests only.
[ -n "${HOOKLINE_TEST_GO_ONLY:-}" ] && exit 0
# Every binary, built once for all of them (unless HOOKLINE_BIN names some).
if [ -z "${HOOKLINE_BIN:-}" ]; then
  HOOKLINE_BIN=$(mktemp -d)
  trap 'rm -rf "$HOOKLINE_BIN"; stop' EXIT
  (cd "$HERE/../.." && go run ./cmd/hookstack build -o "$HOOKLINE_BIN")
fi
export HOOKLINE_BIN
for t in kustomize_test.sh settings_test.sh monitoring_test.sh avro_decode_test.sh signature_libs_test.sh openapi_fuzz_test.sh; do
  echo "test: deploy/tests/$t" >&2
  "$HERE/../tests/$t"
done
