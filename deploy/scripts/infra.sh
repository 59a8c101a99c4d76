#!/usr/bin/env bash
# Kafka + Redis for local runs and CI, both on 127.0.0.1.
#
#   infra.sh up [N]   Kafka with N=1 (default) or 3 brokers, plus Redis;
#                     prints the variables to export on stdout, so
#                     `eval "$(deploy/scripts/infra.sh up)"` works
#   infra.sh down     stop both (data kept)
#   infra.sh reset    stop both and wipe their data
#   infra.sh status   exit 0 only when both run
#
# See kafka.sh and redis.sh for kill/start/restart of single nodes and for the
# environment overrides (KAFKA_VERSION, HOOKLINE_CACHE, REDIS_PORT, ...).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

case ${1:-} in
  up)
    brokers=$("$HERE/kafka.sh" up "${2:-1}" | sed -n 's/^KAFKA_BROKERS=//p')
    redis=$("$HERE/redis.sh" up | sed -n 's/^REDIS_ADDR=//p')
    echo "export KAFKA_BROKERS=$brokers REDIS_ADDR=$redis"
    ;;
  down | reset)
    # Try both even if the first fails.
    rc=0
    "$HERE/kafka.sh" "$1" || rc=$?
    "$HERE/redis.sh" "$1" || rc=$?
    exit $rc
    ;;
  status)
    rc=0
    "$HERE/kafka.sh" status || rc=$?
    "$HERE/redis.sh" status || rc=$?
    exit $rc
    ;;
  *) sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
