#!/usr/bin/env bash
# Webhooks from Hookline's sender verify with libraries nobody on Hookline
# wrote, given the secret exactly as the API hands it out:
#
#   - Python: standardwebhooks (PyPI) for webhook-signature, and hmac as
#     GitHub documents X-Hub-Signature-256 (verify_signatures.py);
#   - Node: @octokit/webhooks-methods for X-Hub-Signature-256 and
#     standardwebhooks (npm) for webhook-signature (verify_signatures.mjs).
#
# It runs the four services with hookstack, built from this checkout (or
# $HOOKLINE_BIN), against the real Kafka and Redis (KAFKA_BROKERS,
# REDIS_ADDR) on a fresh topic prefix, with three subscriptions to an HTTPS receiver that records
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
cleanup() {
  local rc=$?
  [[ -n ${recv_pid:-} ]] && { kill -TERM "$recv_pid" 2>/dev/null || true; }
  stop_stack || { log "a service did not stop cleanly (hookstack.log)"; ((rc == 0)) && rc=1; }
  if ((rc != 0)); then
    for f in "$work"/*.log; do [[ -f $f ]] && { echo "---- last lines of $(basename "$f")" >&2; tail -n 15 "$f" >&2; }; done
  fi
  if [[ ${KEEP:-0} == 1 ]]; then
    log "kept topics/groups with prefix ${HOOKLINE_TOPIC_PREFIX:-} and $work"
  else
    rm -rf "$work"
  fi
  exit $rc
}
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null ||
  fail "openssl could not make a certificate"

p_recv=$(free_port)
python3 "$REPO/deploy/tests/https_receiver.py" --port "$p_recv" --cert "$work/cert.pem" --key "$work/key.pem" \
  --log "$work/received.jsonl" --dump "$work/requests.jsonl" >"$work/receiver.log" 2>&1 &
recv_pid=$!

start_stack "$work" KAFKA_BROKERS="$BROKERS" REDIS_ADDR="$REDIS" HOOKLINE_STACK_SERVICES=ingest,matcher,sender,retry \
  HOOKLINE_RETRY_SCHEDULE=1h HOOKLINE_LOG_LEVEL=info HOOKLINE_API_KEYS=acme=key-acme HOOKLINE_SENDER_CA_FILE="$work/cert.pem"
API=$HOOKLINE_API_URL

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
