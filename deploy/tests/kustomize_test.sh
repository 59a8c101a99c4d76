#!/usr/bin/env bash
# Renders deploy/kubernetes (the base and every overlay) with kustomize and
# validates it against Kubernetes' schemas (kubernetes-validate, offline),
# then checks its structure with check_manifests.py: the expected
# Deployments (notify's and logs' among them), Services, PodDisruptionBudgets,
# ConfigMap and ScaledObjects, probes, security context, Secret references
# (the SMTP URL's too), the matcher's transactional id from the pod name.
# Needs no cluster.
#
#   deploy/tests/kustomize_test.sh
#
# kustomize comes from PATH, else .cache/bin (built with `go install` from
# the Go module proxy on first use), else `kubectl kustomize`; or set
# HOOKLINE_KUSTOMIZE_BUILD (e.g. "kubectl kustomize").
# shellcheck source=deploy/tests/lib.sh
source "$(dirname "$0")/lib.sh"

BUILD=$(kustomize_build)
PY=$(venv_python)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
log "rendering with: $BUILD"

render() { # dir -> file
  local dir=$1 file=$2
  $BUILD "$REPO/$dir" >"$file" 2>"$file.err" || {
    cat "$file.err" >&2
    fail "kustomize build $dir failed"
  }
}

# Kubernetes' own schemas, strict (unknown fields are errors), for the
# oldest version the manifests need: 1.30 (preStop sleep, PDB
# unhealthyPodEvictionPolicy). CRDs (KEDA's ScaledObject) have no schema
# there and are checked by check_manifests.py instead.
K8S_VERSION=${K8S_VERSION:-1.30.0}
validate() { # file
  "$(dirname "$PY")/kubernetes-validate" --strict --quiet --no-warn -k "$K8S_VERSION" "$1" >&2 ||
    fail "$1 does not validate against the Kubernetes $K8S_VERSION schemas (see above)"
}

render deploy/kubernetes/base "$out/base.yaml"
validate "$out/base.yaml"
"$PY" "$REPO/deploy/tests/check_manifests.py" "$out/base.yaml" >&2 || fail "the base's manifests (see above)"

for overlay in "$REPO"/deploy/kubernetes/overlays/*/; do
  name=$(basename "$overlay")
  render "deploy/kubernetes/overlays/$name" "$out/$name.yaml"
  validate "$out/$name.yaml"
  ns=$("$PY" -c 'import sys,yaml; print(next((d["metadata"]["name"] for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"]=="Namespace"), ""))' "$out/$name.yaml")
  "$PY" "$REPO/deploy/tests/check_manifests.py" --overlay --namespace "$ns" "$out/$name.yaml" >&2 ||
    fail "overlay $name's manifests (see above)"
done

# The checker itself must catch mistakes: break five things in the
# rendered base and expect each to be reported.
"$PY" - "$out/base.yaml" "$out/broken.yaml" <<'EOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
out = []
for d in docs:
    name = d["metadata"]["name"]
    if d["kind"] == "PodDisruptionBudget" and name == "hookline-sender":
        continue
    if d["kind"] == "Deployment" and name == "hookline-matcher":
        for e in d["spec"]["template"]["spec"]["containers"][0]["env"]:
            if e["name"] == "HOOKLINE_TRANSACTIONAL_ID":
                e.pop("valueFrom"); e["value"] = "matcher"
    if d["kind"] == "Deployment" and name == "hookline-ingest":
        d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["path"] = "/healthz"
    if d["kind"] == "Deployment" and name == "hookline-notify":
        for e in d["spec"]["template"]["spec"]["containers"][0]["env"]:
            if e["name"] == "HOOKLINE_SMTP_URL":
                e.pop("valueFrom"); e["value"] = "smtp://user:pass@smtp.example.com:587"
    if d["kind"] == "Deployment" and name == "hookline-logs":
        for e in d["spec"]["template"]["spec"]["containers"][0]["env"]:
            if e["name"] == "HOOKLINE_POSTGRES_URL":
                e.pop("valueFrom"); e["value"] = "postgres://hookline:pass@db:5432/hookline"
    out.append(d)
yaml.safe_dump_all(out, open(sys.argv[2], "w"))
EOF
if "$PY" "$REPO/deploy/tests/check_manifests.py" "$out/broken.yaml" 2>"$out/broken.err"; then
  fail "check_manifests.py accepted a broken base"
fi
for want in "HOOKLINE_TRANSACTIONAL_ID must come from the pod name" "readinessProbe" "PodDisruptionBudget selecting the sender pods" "HOOKLINE_SMTP_URL is not read from a Secret" "hookline-logs: HOOKLINE_POSTGRES_URL is not read from a Secret"; do
  grep -q "$want" "$out/broken.err" || { cat "$out/broken.err" >&2; fail "check_manifests.py did not report: $want"; }
done

# The generated ConfigMap's name carries a content hash: a changed setting
# must change the name (and so roll the pods).
a=$(grep -m1 -o 'hookline-config-[a-z0-9]*' "$out/base.yaml")
sed 's/HOOKLINE_LOG_LEVEL=info/HOOKLINE_LOG_LEVEL=debug/' "$REPO/deploy/kubernetes/base/kustomization.yaml" >"$out/k.yaml"
mkdir -p "$out/copy" && cp "$REPO"/deploy/kubernetes/base/*.yaml "$out/copy/" && cp "$out/k.yaml" "$out/copy/kustomization.yaml"
b=$($BUILD "$out/copy" | grep -m1 -o 'hookline-config-[a-z0-9]*')
[[ -n $a && $a != "$b" ]] || fail "changing a setting did not change the ConfigMap's name ($a vs $b)"

pass "base and overlays render and check out"
