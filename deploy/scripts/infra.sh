#!/usr/bin/env bash
# Kafka, Redis and PostgreSQL for local runs and CI, all on 127.0.0.1.
#
#   infra.sh up [N]   Kafka with N=1 (default) or 3 brokers, plus Redis and
#                     PostgreSQL; prints the variables to export on stdout,
#                     so `eval "$(deploy/scripts/infra.sh up)"` works
#   infra.sh down     stop all three (data kept)
#   infra.sh reset    stop all three and wipe their data
#   infra.sh status   exit 0 only when all three run
#
# See kafka.sh, redis.sh and postgres.sh for kill/start/restart of single
# nodes and for the environment overrides (KAFKA_VERSION, HOOKLINE_CACHE,
# REDIS_PORT, POSTGRES_PORT, ...).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

case ${1:-} in
  up)
    brokers=$("$HERE/kafka.sh" up "${2:-1}" | sed -n 's/^KAFKA_BROKERS=//p')
    redis=$("$HERE/redis.sh" up | sed -n 's/^REDIS_ADDR=//p')
    postgres=$("$HERE/postgres.sh" up | sed -n 's/^HOOKLINE_POSTGRES_URL=//p')
    echo "export KAFKA_BROKERS=$brokers REDIS_ADDR=$redis HOOKLINE_POSTGRES_URL='$postgres'"
    ;;
  down | reset)
    # Try all even if one fails.
    rc=0
    "$HERE/kafka.sh" "$1" || rc=$?
    "$HERE/redis.sh" "$1" || rc=$?
    "$HERE/postgres.sh" "$1" || rc=$?
    exit $rc
    ;;
  status)
    rc=0
    "$HERE/kafka.sh" status || rc=$?
    "$HERE/redis.sh" status || rc=$?
    "$HERE/postgres.sh" status || rc=$?
    exit $rc
    ;;
  *) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
