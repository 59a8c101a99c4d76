#!/usr/bin/env bash
# docker-compose.yml and deploy/kubernetes give each service the settings
# it requires, as the services themselves say: check_settings.py compares
# what each deployment sets with every setting each binary reads (its -h,
# through `hookstack settings -json`), and has each service validate its
# deployment's environment itself (`<service> -check`). Then it breaks
# copies of them in the ways that happen (a setting dropped from the
# shared list, a typo, a conditional setting forgotten, a listen address on
# loopback, a required Secret reference gone) and expects each reported.
# Needs Go (the binaries, and kustomize once) and no cluster.
#
#   deploy/tests/settings_test.sh
#   HOOKLINE_BIN=/path/to/binaries deploy/tests/settings_test.sh
# shellcheck source=deploy/tests/lib.sh
source "$(dirname "$0")/lib.sh"

PY=$(venv_python)
BUILD=$(kustomize_build)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

BIN=${HOOKLINE_BIN:-$work/bin}
if [[ -z ${HOOKLINE_BIN:-} ]]; then
  log "building every binary from $REPO"
  (cd "$REPO" && go run ./cmd/hookstack build -o "$BIN") || fail "building the binaries failed"
fi
BIN=$(cd "$BIN" && pwd)
"$BIN/hookstack" settings -bin "$BIN" -json >"$work/settings.json" || fail "hookstack settings failed"

$BUILD "$REPO/deploy/kubernetes/base" >"$work/base.yaml" || fail "kustomize build of the base failed"
overlays=()
for dir in "$REPO"/deploy/kubernetes/overlays/*/; do
  name=$(basename "$dir")
  $BUILD "$dir" >"$work/overlay-$name.yaml" || fail "kustomize build of overlay $name failed"
  overlays+=(--overlay "$work/overlay-$name.yaml")
done

check() { "$PY" "$REPO/deploy/tests/check_settings.py" --settings "$work/settings.json" --bin "$BIN" "$@"; }
check --compose "$REPO/docker-compose.yml" --base "$work/base.yaml" "${overlays[@]}" ||
  fail "a deployment does not give a service what it requires (above)"

# The checker itself must catch mistakes.
"$PY" - "$REPO/docker-compose.yml" "$work/base.yaml" "$work/overlay-example.yaml" "$work" <<'PYEOF'
import sys, yaml
compose, base, overlay, out = sys.argv[1:5]
c = yaml.safe_load(open(compose))
for env in [c["x-hookline"]["environment"]] + [s.get("environment", {}) for s in c["services"].values()]:
    env.pop("KAFKA_BROKERS", None)
# (the sender's environment is the anchor's own mapping: copy it first)
c["services"]["sender"]["environment"] = dict(c["services"]["sender"]["environment"], HOOKLINE_SENDER_MAX_INFLIGHT="100")
c["services"]["notify"]["environment"].pop("HOOKLINE_ALERT_FROM")
yaml.safe_dump(c, open(f"{out}/broken-compose.yml", "w"))

docs = [d for d in yaml.safe_load_all(open(overlay)) if d]
for d in docs:
    if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("hookline-config"):
        d["data"]["HOOKLINE_RETRY_SCHEDUL"] = "5s,1m"
    if d["kind"] == "Deployment" and d["metadata"]["name"] == "hookline-ingest":
        for e in d["spec"]["template"]["spec"]["containers"][0]["env"]:
            if e["name"] == "HOOKLINE_OPS_ADDR":
                e["value"] = "127.0.0.1:9100"
yaml.safe_dump_all(docs, open(f"{out}/broken-overlay.yaml", "w"))

docs = [d for d in yaml.safe_load_all(open(base)) if d]
for d in docs:
    if d["kind"] == "Deployment" and d["metadata"]["name"] == "hookline-sender":
        c = d["spec"]["template"]["spec"]["containers"][0]
        c["env"] = [e for e in c["env"] if e["name"] != "HOOKLINE_SECRET_KEY"]
yaml.safe_dump_all(docs, open(f"{out}/broken-base.yaml", "w"))
PYEOF
if check --compose "$work/broken-compose.yml" --base "$work/broken-base.yaml" --overlay "$work/broken-overlay.yaml" 2>"$work/broken.err"; then
  fail "check_settings.py accepted broken deployments"
fi
for want in \
  "matcher: KAFKA_BROKERS is not set; its default 127.0.0.1:9092 is the container itself" \
  "sender is given HOOKLINE_SENDER_MAX_INFLIGHT, which it does not read" \
  "notify -check refuses its settings: notify: configuration: HOOKLINE_ALERT_FROM" \
  "HOOKLINE_RETRY_SCHEDUL is read by none of the services given it" \
  "ingest: HOOKLINE_OPS_ADDR=127.0.0.1:9100 is on the container's own loopback" \
  "sender: HOOKLINE_SECRET_KEY is required and not set"; do
  grep -qF "$want" "$work/broken.err" || { cat "$work/broken.err" >&2; fail "check_settings.py did not report: $want"; }
done
pass "docker-compose.yml, the base and every overlay give each service the settings it requires"
