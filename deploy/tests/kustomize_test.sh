#!/usr/bin/env bash
# Renders deploy/kubernetes (the base and every overlay) with kustomize and
# checks the output's structure with check_manifests.py: the expected
# Deployments, Services, PodDisruptionBudgets, ConfigMap and ScaledObjects,
# probes, security context, Secret references, the matcher's transactional
# id from the pod name. Needs no cluster.
#
#   deploy/tests/kustomize_test.sh
#
# kustomize comes from PATH, else .cache/bin (built with `go install` from
# the Go module proxy on first use), else `kubectl kustomize`.
source "$(dirname "$0")/lib.sh"

KUSTOMIZE=$(find_kustomize)
PY=$(venv_python)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
log "using: $KUSTOMIZE ($($KUSTOMIZE version 2>/dev/null | head -1))"

render() { # dir -> file
  local dir=$1 file=$2
  $KUSTOMIZE build "$REPO/$dir" >"$file" 2>"$file.err" || {
    cat "$file.err" >&2
    fail "kustomize build $dir failed"
  }
}

render deploy/kubernetes/base "$out/base.yaml"
"$PY" "$REPO/deploy/tests/check_manifests.py" "$out/base.yaml" || fail "the base's manifests (see above)"

for overlay in "$REPO"/deploy/kubernetes/overlays/*/; do
  name=$(basename "$overlay")
  render "deploy/kubernetes/overlays/$name" "$out/$name.yaml"
  ns=$("$PY" -c 'import sys,yaml; print(next((d["metadata"]["name"] for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"]=="Namespace"), ""))' "$out/$name.yaml")
  "$PY" "$REPO/deploy/tests/check_manifests.py" --overlay --namespace "$ns" "$out/$name.yaml" ||
    fail "overlay $name's manifests (see above)"
done

# The generated ConfigMap's name carries a content hash: a changed setting
# must change the name (and so roll the pods).
a=$(grep -m1 -o 'hookline-config-[a-z0-9]*' "$out/base.yaml")
sed 's/HOOKLINE_LOG_LEVEL=info/HOOKLINE_LOG_LEVEL=debug/' "$REPO/deploy/kubernetes/base/kustomization.yaml" >"$out/k.yaml"
mkdir -p "$out/copy" && cp "$REPO"/deploy/kubernetes/base/*.yaml "$out/copy/" && cp "$out/k.yaml" "$out/copy/kustomization.yaml"
b=$($KUSTOMIZE build "$out/copy" | grep -m1 -o 'hookline-config-[a-z0-9]*')
[[ -n $a && $a != "$b" ]] || fail "changing a setting did not change the ConfigMap's name ($a vs $b)"

pass "base and overlays render and check out"
