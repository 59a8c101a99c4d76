#!/usr/bin/env bash
# `make bench-logstore`: the delivery-history store's benchmarks on a real
# PostgreSQL (started here unless HOOKLINE_POSTGRES_URL names one, and
# stopped after): write throughput, then the API's queries over a dataset
# of HOOKLINE_BENCH_ATTEMPTS attempts (10 million by default), generated
# in the server the first time (a few minutes) and kept in the database
# bench_logstore_<N> for the next runs. Output: results/logstore-bench.txt.
#
# Env: HOOKLINE_BENCH_ATTEMPTS (10000000), BENCH_WRITE_OPS (300 batches of
# 1,000 attempts), BENCH_QUERIES (2000 of each query), POSTGRES_PORT.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

started=""
stop() { [ -n "$started" ] && "$ROOT/deploy/scripts/postgres.sh" down >/dev/null 2>&1; true; }
trap stop EXIT
if [ -z "${HOOKLINE_POSTGRES_URL:-}" ]; then
  echo "bench-logstore: starting PostgreSQL" >&2
  started=yes
  HOOKLINE_POSTGRES_URL=$("$ROOT/deploy/scripts/postgres.sh" up | sed -n 's/^HOOKLINE_POSTGRES_URL=//p')
fi
export HOOKLINE_POSTGRES_URL HOOKLINE_BENCH_ATTEMPTS=${HOOKLINE_BENCH_ATTEMPTS:-10000000}
mkdir -p "$ROOT/results"
out=$ROOT/results/logstore-bench.txt
{
  echo "# make bench-logstore $(date -Is), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  cd "$ROOT/pkg"
  go test -run='^$' -bench='^BenchmarkWrite$' -benchtime="${BENCH_WRITE_OPS:-300}x" -timeout 30m -v ./logstore/pglogstore/
  go test -run='^$' -bench='^BenchmarkQuery$' -benchtime="${BENCH_QUERIES:-2000}x" -timeout 90m -v ./logstore/pglogstore/
  echo "# done $(date -Is), load average $(cut -d' ' -f1-3 /proc/loadavg)"
} 2>&1 | tee "$out"
echo "bench-logstore: results in $out" >&2
