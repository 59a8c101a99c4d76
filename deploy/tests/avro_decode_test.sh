#!/usr/bin/env bash
# The delivery log decodes with standard tooling that is not Hookline's code.
#
# Two ways to run it:
#
# 1. End to end (no arguments): runs Hookline's ingest, matcher, sender,
#    retry, notify and logs with hookstack (built from this checkout, or
#    taken from $HOOKLINE_BIN) against the real Kafka, Redis and PostgreSQL
#    (KAFKA_BROKERS, REDIS_ADDR, HOOKLINE_POSTGRES_URL: a database of its
#    own is created there and dropped after; default 127.0.0.1), on topics
#    and groups of a fresh prefix. Two tenants, three subscriptions
#    to an HTTPS test receiver answering 204, 400 and 503, five events; then
#    it waits for the 8 attempts in <prefix>delivery-log and checks them with
#    avro_decode_check.py: fastavro on the raw bytes (schema from schemas/ and
#    from ingest's /schemas/ids/{id}), confluent-kafka's AvroDeserializer with
#    ingest as its schema registry, and kcat's raw bytes. Then it checks the
#    answers of tools/analytics/report.py and, on a /metrics scrape of the
#    running services, that every Hookline metric the dashboard and alerts
#    use exists (monitoring_test.sh). Topics and groups are deleted at the
#    end (KEEP=1 keeps them and the work directory).
#
#      eval "$(deploy/scripts/infra.sh up)"    # if Kafka and Redis are not running
#      deploy/tests/avro_decode_test.sh
#      HOOKLINE_BIN=/path/to/binaries deploy/tests/avro_decode_test.sh
#
# 2. An existing topic (records produced by anything, e.g. a Go test):
#
#      deploy/tests/avro_decode_test.sh TOPIC COUNT [TENANT [OUTCOME]]
#      deploy/tests/avro_decode_test.sh --topic T --count N --expect tenant=acme ...
#
#    decodes every record and fails unless there are exactly COUNT and each
#    has the given tenant and outcome. With HOOKLINE_API_URL set (a running
#    ingest), schemas are also fetched from its registry paths and decoded
#    with confluent-kafka's AvroDeserializer.
# shellcheck source=deploy/tests/lib.sh
source "$(dirname "$0")/lib.sh"

PY=$(venv_python)
BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}
CHECK=$REPO/deploy/tests/avro_decode_check.py

# --- 2. an existing topic ----------------------------------------------------
if (($# > 0)); then
  args=(--bootstrap "$BROKERS")
  [[ -n ${HOOKLINE_API_URL:-} ]] && args+=(--registry "$HOOKLINE_API_URL")
  if [[ $1 != -* ]]; then # positional form
    (($# >= 2)) || fail "usage: $NAME TOPIC COUNT [TENANT [OUTCOME]]"
    args+=(--topic "$1" --count "$2")
    [[ -n ${3:-} ]] && args+=(--expect "tenant=$3")
    [[ -n ${4:-} ]] && args+=(--expect "outcome=$4")
  else
    args+=("$@")
  fi
  "$PY" "$CHECK" "${args[@]}" || fail "delivery-log records did not decode as expected (see above)"
  pass "every record decoded as expected"
  exit 0
fi

# --- 1. end to end -------------------------------------------------------------
REDIS=${REDIS_ADDR:-127.0.0.1:6379}
"$PY" -c 'import sys; from confluent_kafka.admin import AdminClient
AdminClient({"bootstrap.servers": sys.argv[1]}).list_topics(timeout=5)' "$BROKERS" 2>/dev/null ||
  fail "no Kafka at $BROKERS: start one with eval \"\$(deploy/scripts/infra.sh up)\""
{ exec 3<>"/dev/tcp/${REDIS%:*}/${REDIS##*:}" && printf 'PING\r\n' >&3 && read -r -t 2 pong <&3 && [[ $pong == +PONG* ]]; } 2>/dev/null ||
  fail "no Redis at $REDIS: start one with eval \"\$(deploy/scripts/infra.sh up)\""
exec 3>&-
# A database of its own on make test's PostgreSQL, for the logs service.
create_db "avrotest$(date +%s)$$"
work=$(mktemp -d)

cleanup() {
  local rc=$?
  [[ -n ${recv_pid:-} ]] && { kill -TERM "$recv_pid" 2>/dev/null || true; }
  stop_stack || { log "a service did not stop cleanly (hookstack.log)"; ((rc == 0)) && rc=1; }
  if ((rc != 0)); then
    for f in "$work"/*.log; do
      [[ -f $f ]] || continue
      echo "---- last lines of $(basename "$f")" >&2
      tail -n 15 "$f" >&2
    done
  fi
  if [[ ${KEEP:-0} == 1 ]]; then
    log "kept topics/groups with prefix ${HOOKLINE_TOPIC_PREFIX:-} and $work"
  else
    rm -rf "$work"
    drop_db
  fi
  exit $rc
}
trap cleanup EXIT

# A self-signed certificate for 127.0.0.1; the sender trusts it through
# HOOKLINE_SENDER_CA_FILE, and HOOKLINE_ALLOW_HOSTS lets it call 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null ||
  fail "openssl could not make a certificate"

p_recv=$(free_port)
python3 "$REPO/deploy/tests/https_receiver.py" --port "$p_recv" --cert "$work/cert.pem" --key "$work/key.pem" \
  --log "$work/received.jsonl" >"$work/receiver.log" 2>&1 &
recv_pid=$!

# The six services (notify without an SMTP server logs what it would
# send; it is here for its metrics; logs writes the delivery history). One long tier: a 503 is logged as
# "retrying" and nothing comes back during the test, so the count of
# attempts is exact.
start_stack "$work" KAFKA_BROKERS="$BROKERS" REDIS_ADDR="$REDIS" HOOKLINE_RETRY_SCHEDULE=1h HOOKLINE_LOG_LEVEL=info \
  HOOKLINE_API_KEYS=acme=key-acme,globex=key-globex HOOKLINE_SENDER_CA_FILE="$work/cert.pem" HOOKLINE_POSTGRES_URL="$DBURL"
API=$HOOKLINE_API_URL prefix=$HOOKLINE_TOPIC_PREFIX
wait_http "$API/schemas/ids/12" 10 || fail "ingest does not serve /schemas/ids/12"

api() { # key, path, JSON body -> the answer's id
  curl -fsS --max-time 10 -H "Authorization: Bearer $1" -H 'Content-Type: application/json' "$API$2" -d "$3" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}
R=https://127.0.0.1:$p_recv
sub_ok=$(api key-acme /v1/subscriptions "{\"url\":\"$R/ok\",\"event_types\":[\"order.*\"]}") || fail "create subscription"
sub_reject=$(api key-acme /v1/subscriptions "{\"url\":\"$R/reject\",\"event_types\":[\"order.*\"]}") || fail "create subscription"
sub_fail=$(api key-globex /v1/subscriptions "{\"url\":\"$R/fail\",\"event_types\":[\"invoice.*\"],\"max_attempts\":3}") ||
  fail "create subscription"
# The matcher and the sender learn of subscriptions from Kafka, a moment
# after ingest answered: give them that moment before the events.
sleep 3
for i in 1 2 3; do api key-acme /v1/events "{\"type\":\"order.created\",\"subject\":\"ord_$i\",\"data\":{\"n\":$i}}" >/dev/null || fail "send event"; done
for i in 1 2; do api key-globex /v1/events "{\"type\":\"invoice.paid\",\"subject\":\"inv_$i\",\"data\":{\"n\":$i}}" >/dev/null || fail "send event"; done

cat >"$work/expect.json" <<EOF
{
  "$sub_ok":     {"count": 3, "fields": {"tenant": "acme",   "outcome": "delivered",     "status_code": 204, "attempt": 1, "event_type": "order.created", "url": "$R/ok"}},
  "$sub_reject": {"count": 3, "fields": {"tenant": "acme",   "outcome": "dead_lettered", "status_code": 400, "attempt": 1, "event_type": "order.created", "url": "$R/reject"}},
  "$sub_fail":   {"count": 2, "fields": {"tenant": "globex", "outcome": "retrying",      "status_code": 503, "attempt": 1, "event_type": "invoice.paid",  "url": "$R/fail"}}
}
EOF
"$PY" "$CHECK" --bootstrap "$BROKERS" --topic "${prefix}delivery-log" --count 8 --wait 90 --registry "$API" \
  --expect-file "$work/expect.json" --dump "$work/records.jsonl" || fail "delivery-log records (see above)"

n=$(wc -l <"$work/received.jsonl")
[[ $n == 8 ]] || fail "the receiver got $n requests, want 8"

# The kcat pipeline docs/analytics.md shows, as written there.
if command -v kcat >/dev/null; then
  kcat -b "$BROKERS" -C -t "${prefix}delivery-log" -o beginning -e -q -f '%p %o %S\n%s' |
    "$PY" "$REPO/tools/analytics/decode.py" --registry "$API" >"$work/kcat.jsonl" || fail "kcat | decode.py failed"
  got=$("$PY" -c 'import json,sys,collections
print(sorted(collections.Counter((r["tenant"], r["outcome"]) for r in map(json.loads, open(sys.argv[1]))).items()))' "$work/kcat.jsonl")
  want="[(('acme', 'dead_lettered'), 3), (('acme', 'delivered'), 3), (('globex', 'retrying'), 2)]"
  [[ $got == "$want" ]] || fail "kcat | decode.py read $got, want $want"
fi

# The analytics report's three answers for this traffic.
"$PY" "$REPO/tools/analytics/report.py" --bootstrap "$BROKERS" --topic "${prefix}delivery-log" --registry "$API" \
  --json >"$work/report.json" || fail "tools/analytics/report.py failed"
"$PY" - "$work/report.json" "$sub_ok" "$sub_reject" "$sub_fail" <<'EOF' || fail "report.py's answers are wrong (see above)"
import json, sys
r = json.load(open(sys.argv[1]))
ok, reject, bad = sys.argv[2:5]
eps = {e["subscription_id"]: e for e in r["endpoints"]}
want = {ok: (3, 1.0, 1.0), reject: (3, 0.0, 0.0), bad: (2, 0.0, 0.0)}
errs = []
for sub, (attempts, rate, drate) in want.items():
    e = eps.get(sub)
    if not e or (e["attempts"], e["attempt_success_rate"], e["delivery_success_rate"]) != (attempts, rate, drate):
        errs.append(f"endpoint {sub}: {e}")
tenants = {t["tenant"]: t for t in r["tenants"]}
if sorted(tenants) != ["acme", "globex"] or tenants["acme"]["attempts"] != 6 or tenants["globex"]["attempts"] != 2:
    errs.append(f"tenants: {r['tenants']}")
if any(t["p99_ms"] is None or t["p99_ms"] < t["p50_ms"] for t in r["tenants"]):
    errs.append(f"latency percentiles: {r['tenants']}")
if r["attempt_numbers"] != [{"attempt": 1, "attempts": 8, "delivered": 3, "retrying": 2, "dead_lettered": 3, "success_rate": 3 / 8}]:
    errs.append(f"attempt numbers: {r['attempt_numbers']}")
for e in errs:
    print("  -", e, file=sys.stderr)
sys.exit(1 if errs else 0)
EOF

# The delivery history holds the same 8 attempts.
for _ in $(seq 60); do
  stored=$(psql -X -q -t -A -d "$DBURL" -c 'SELECT count(*) FROM attempts' 2>/dev/null || echo 0)
  [[ $stored == 8 ]] && break
  sleep 0.5
done
[[ $stored == 8 ]] || fail "the delivery history holds $stored attempts, want 8"

# Every Hookline metric the dashboard and the alerts use, in a real scrape.
for addr in "$HOOKLINE_INGEST_OPS_ADDR" "$HOOKLINE_MATCHER_OPS_ADDR" "$HOOKLINE_SENDER_OPS_ADDR" "$HOOKLINE_RETRY_OPS_ADDR" \
  "$HOOKLINE_NOTIFY_OPS_ADDR" "$HOOKLINE_LOGS_OPS_ADDR"; do
  curl -fsS "http://$addr/metrics" || fail "scrape of $addr/metrics failed"
done >"$work/metrics.txt"
HOOKLINE_METRICS_FILE=$work/metrics.txt "$REPO/deploy/tests/monitoring_test.sh" ||
  fail "the dashboard or alerts use metrics the services do not export"

pass "8 delivery-log records produced by Hookline decoded by fastavro, confluent-kafka and kcat, and stored in the delivery history; report.py and metric names check out"
