#!/usr/bin/env bash
# Webhooks from Hookline's sender verify with libraries nobody on Hookline
# wrote, given the secret exactly as the API hands it out:
#
#   - Python: standardwebhooks (PyPI) for webhook-signature, and hmac as
#     GitHub documents X-Hub-Signature-256 (verify_signatures.py);
#   - Node: @octokit/webhooks-methods for X-Hub-Signature-256 and
#     standardwebhooks (npm) for webhook-signature (verify_signatures.mjs).
#
# It runs the four services built from this checkout (or $HOOKLINE_BIN)
# against the real Kafka and Redis (KAFKA_BROKERS, REDIS_ADDR) on a fresh
# topic prefix, with three subscriptions to an HTTPS receiver that records
# every request raw: a plain one, one with compression "gzip" (small and
# large bodies: gzip above 1 KiB only) and one whose secret was rotated (two
# signatures, the newest secret for X-Hub-Signature-256). Every request
# must verify with both checkers, and a tampered copy must not.
#
#   eval "$(deploy/scripts/infra.sh up)"    # if Kafka and Redis are not running
#   deploy/tests/signature_libs_test.sh
# shellcheck source=deploy/tests/lib.sh
source "$(dirname "$0")/lib.sh"

PY=$(venv_python)
NODE_DIR=$(node_dir)
BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}
REDIS=${REDIS_ADDR:-127.0.0.1:6379}
"$PY" -c 'import sys; from confluent_kafka.admin import AdminClient
AdminClient({"bootstrap.servers": sys.argv[1]}).list_topics(timeout=5)' "$BROKERS" 2>/dev/null ||
  fail "no Kafka at $BROKERS: start one with eval \"\$(deploy/scripts/infra.sh up)\""

work=$(mktemp -d)
prefix="sigtest$(date +%s)$$."
declare -A pids=()
cleanup() {
  local rc=$?
  for name in "${!pids[@]}"; do kill -TERM "${pids[$name]}" 2>/dev/null || true; done
  for name in "${!pids[@]}"; do
    for _ in $(seq 40); do kill -0 "${pids[$name]}" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "${pids[$name]}" 2>/dev/null || true
  done
  if ((rc != 0)); then
    for f in "$work"/*.log; do [[ -f $f ]] && { echo "---- last lines of $(basename "$f")" >&2; tail -n 15 "$f" >&2; }; done
  fi
  if [[ ${KEEP:-0} == 1 ]]; then
    log "kept topics/groups with prefix $prefix and $work"
  else
    "$PY" - "$BROKERS" "$prefix" <<'PYEOF' || log "cleanup of $prefix topics failed (harmless)"
import sys
from confluent_kafka.admin import AdminClient
adm = AdminClient({"bootstrap.servers": sys.argv[1]})
topics = [t for t in adm.list_topics(timeout=10).topics if t.startswith(sys.argv[2])]
for f in (adm.delete_topics(topics, operation_timeout=30).values() if topics else []):
    f.result()
PYEOF
    rm -rf "$work"
  fi
  exit $rc
}
trap cleanup EXIT

BIN=${HOOKLINE_BIN:-$work/bin}
if [[ -z ${HOOKLINE_BIN:-} ]]; then
  log "building ingest, matcher, sender, retry from $REPO"
  mkdir -p "$BIN"
  for s in ingest matcher sender retry; do
    (cd "$REPO/services/$s" && go build -o "$BIN/$s" .) || fail "go build services/$s failed"
  done
fi
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null ||
  fail "openssl could not make a certificate"

p_recv=$(free_port) p_api=$(free_port) p_iops=$(free_port) p_mops=$(free_port) p_sops=$(free_port) p_rops=$(free_port)
API=http://127.0.0.1:$p_api
python3 "$REPO/deploy/tests/https_receiver.py" --port "$p_recv" --cert "$work/cert.pem" --key "$work/key.pem" \
  --log "$work/received.jsonl" --dump "$work/requests.jsonl" >"$work/receiver.log" 2>&1 &
pids[receiver]=$!

export KAFKA_BROKERS=$BROKERS REDIS_ADDR=$REDIS
export HOOKLINE_TOPIC_PREFIX=$prefix HOOKLINE_TOPIC_PARTITIONS=3 HOOKLINE_TOPIC_REPLICATION=1 HOOKLINE_RETRY_SCHEDULE=1h
HOOKLINE_SECRET_KEY=$(openssl rand -base64 32)
export HOOKLINE_SECRET_KEY HOOKLINE_ALLOW_HOSTS=127.0.0.1 HOOKLINE_LOG_LEVEL=info
start() {
  local name=$1; shift
  env "$@" "$BIN/$name" >"$work/$name.log" 2>&1 &
  pids[$name]=$!
}
start ingest "HOOKLINE_HTTP_ADDR=127.0.0.1:$p_api" "HOOKLINE_OPS_ADDR=127.0.0.1:$p_iops" HOOKLINE_API_KEYS=acme=key-acme
start matcher "HOOKLINE_OPS_ADDR=127.0.0.1:$p_mops" "HOOKLINE_MATCHER_GROUP=${prefix}matcher" "HOOKLINE_TRANSACTIONAL_ID=${prefix}matcher-0"
start sender "HOOKLINE_OPS_ADDR=127.0.0.1:$p_sops" "HOOKLINE_SENDER_GROUP=${prefix}sender" "HOOKLINE_SENDER_CA_FILE=$work/cert.pem"
start retry "HOOKLINE_OPS_ADDR=127.0.0.1:$p_rops" "HOOKLINE_RETRY_GROUP=${prefix}retry"
for svc in ingest:$p_iops matcher:$p_mops sender:$p_sops retry:$p_rops; do
  wait_http "http://127.0.0.1:${svc#*:}/readyz" 120 || fail "${svc%%:*} not ready within 120 s"
done

post() { # path, JSON body -> the answer
  curl -fsS --max-time 10 -H "Authorization: Bearer key-acme" -H 'Content-Type: application/json' "$API$1" -d "$2"
}
field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
R=https://127.0.0.1:$p_recv
plain=$(post /v1/subscriptions "{\"url\":\"$R/ok/plain\",\"event_types\":[\"order.*\"]}") || fail "create subscription"
gzipped=$(post /v1/subscriptions "{\"url\":\"$R/ok/gzip\",\"event_types\":[\"order.*\"],\"compression\":\"gzip\"}") || fail "create subscription"
rotated=$(post /v1/subscriptions "{\"url\":\"$R/ok/rotated\",\"event_types\":[\"order.*\"]}") || fail "create subscription"
rotated=$(post "/v1/subscriptions/$(field id <<<"$rotated")/secrets/rotate" '{}') || fail "rotate secret"
python3 - "$work/secrets.json" "$plain" "$gzipped" "$rotated" <<'PYEOF'
import json, sys
out, plain, gz, rot = sys.argv[1], *map(json.loads, sys.argv[2:5])
json.dump({"/ok/plain": plain["secret"], "/ok/gzip": gz["secret"], "/ok/rotated": rot["secret"]}, open(out, "w"))
PYEOF
sleep 3 # the matcher and the sender learn of the subscriptions from Kafka
big=$(python3 -c 'print("x" * 4000)')
for i in 1 2; do
  post /v1/events "{\"type\":\"order.created\",\"subject\":\"ord_$i\",\"data\":{\"n\":$i,\"note\":\"caf\u00e9 \u2603\"}}" >/dev/null || fail "send event"
  post /v1/events "{\"type\":\"order.updated\",\"subject\":\"ord_$i\",\"data\":{\"n\":$i,\"notes\":\"$big\"}}" >/dev/null || fail "send event"
done
want=12 # 4 events x 3 subscriptions
for _ in $(seq 240); do
  [[ -f $work/requests.jsonl ]] && (($(wc -l <"$work/requests.jsonl") >= want)) && break
  sleep 0.25
done
n=$(wc -l <"$work/requests.jsonl" 2>/dev/null || echo 0)
((n == want)) || fail "the receiver got $n requests, want $want"
grep -q '"content-encoding": "gzip"' "$work/requests.jsonl" || fail "no request was gzipped"

"$PY" "$REPO/deploy/tests/verify_signatures.py" "$work/requests.jsonl" "$work/secrets.json" ||
  fail "the Python libraries did not verify every request (see above)"
cp "$REPO/deploy/tests/verify_signatures.mjs" "$NODE_DIR/"
node "$NODE_DIR/verify_signatures.mjs" "$work/requests.jsonl" "$work/secrets.json" ||
  fail "the Node libraries did not verify every request (see above)"
pass "$n requests from the sender (plain, gzip, rotated secret) verified by standardwebhooks (PyPI, npm), @octokit/webhooks-methods and hmac"
