#!/usr/bin/env bash
# Validates the Grafana dashboard and the Prometheus alert rules.
#
#   deploy/tests/monitoring_test.sh
#   HOOKLINE_METRICS_FILE=scrape.txt deploy/tests/monitoring_test.sh   # also: names exist
#
# 1. check_monitoring.py: the dashboard parses and covers the key metrics;
#    every alert has severity, summary and a runbook anchor that exists in
#    docs/operations.md; with HOOKLINE_METRICS_FILE (a /metrics scrape of
#    running services, as avro_decode_test.sh makes) every hookline_* name
#    used is really exported.
# 2. promtool (Debian package prometheus, installed when missing and root):
#    `check rules` on alerts.yml and on the dashboard's queries, and
#    `test rules` on alerts_test.yml (alerts fire on synthetic series).
#    Without promtool the test still runs step 1, says SKIP for step 2, and
#    fails unless HOOKLINE_ALLOW_NO_PROMTOOL=1.
# shellcheck source=deploy/tests/lib.sh
source "$(dirname "$0")/lib.sh"

PY=$(venv_python)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

args=(--dashboard "$REPO/deploy/grafana/hookline.json" --alerts "$REPO/deploy/prometheus/alerts.yml"
  --ops-doc "$REPO/docs/operations.md" --emit-rules "$out/dashboard_rules.yml")
[[ -n ${HOOKLINE_METRICS_FILE:-} ]] && args+=(--metrics-file "$HOOKLINE_METRICS_FILE")
"$PY" "$REPO/deploy/tests/check_monitoring.py" "${args[@]}" >&2 || fail "dashboard or alert rules (see above)"

PROMTOOL=$(find_promtool)
if [[ -z $PROMTOOL ]]; then
  skip "promtool not available: PromQL not parsed, alert unit tests not run"
  [[ ${HOOKLINE_ALLOW_NO_PROMTOOL:-0} == 1 ]] || fail "promtool is required (apt-get install prometheus), or set HOOKLINE_ALLOW_NO_PROMTOOL=1"
  pass "structural checks only"
  exit 0
fi
log "using: $PROMTOOL ($($PROMTOOL --version 2>&1 | head -1))"
"$PROMTOOL" check rules "$REPO/deploy/prometheus/alerts.yml" >&2 || fail "promtool check rules alerts.yml"
"$PROMTOOL" check rules "$out/dashboard_rules.yml" >&2 || fail "the dashboard's queries are not valid PromQL (see above)"
(cd "$REPO/deploy/prometheus" && "$PROMTOOL" test rules alerts_test.yml) >&2 || fail "promtool test rules alerts_test.yml"
pass "dashboard JSON, alert rules and their unit tests"
