# shellcheck shell=bash
# Shared helpers of the deploy/tests scripts. Source it; do not run it.
#
# Tools are installed into the repository's git-ignored .cache/ and nowhere
# else: Python packages into .cache/venv, Go-built binaries into .cache/bin.
# Override with HOOKLINE_CACHE (as deploy/scripts do).

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${HOOKLINE_CACHE:-$REPO/.cache}
NAME=$(basename "$0")

log() { printf '%s: %s\n' "$NAME" "$*" >&2; }
fail() { printf '%s: FAIL: %s\n' "$NAME" "$*" >&2; exit 1; }
pass() { printf '%s: PASS: %s\n' "$NAME" "$*" >&2; }
skip() { printf '%s: SKIP: %s\n' "$NAME" "$*" >&2; }

# venv_python prints the path of a Python with deploy/tests/requirements.txt
# (which includes tools/analytics/requirements.txt) installed, creating
# .cache/venv on first use or when a requirements file changed (PyPI, pip).
venv_python() {
  venv_for venv "$REPO/deploy/tests/requirements.txt" "$REPO/tools/analytics/requirements.txt"
}

# venv_for NAME REQUIREMENTS [MORE FILES THE FIRST INCLUDES] prints the path
# of the Python of .cache/NAME with REQUIREMENTS installed, creating it on
# first use or when one of the files changed. Tools whose dependencies
# would clash with the others (schemathesis) get a venv of their own.
venv_for() {
  local venv=$CACHE/$1 req=$2
  local stamp=$venv/.requirements.sha256 want
  want=$(cat "${@:2}" | sha256sum | cut -d' ' -f1)
  if [[ ! -x $venv/bin/python || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
    log "installing Python packages into $venv ($req)"
    python3 -m venv "$venv" >&2 || fail "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2 || fail "pip install -r $req failed"
    echo "$want" >"$stamp"
  fi
  echo "$venv/bin/python"
}

# node_dir prints a directory holding deploy/tests/package.json's Node
# packages (npm registry), installed into .cache/node on first use or when
# package.json changed. ES modules resolve packages from their own
# directory: run scripts copied there.
node_dir() {
  local dir=$CACHE/node pkg=$REPO/deploy/tests/package.json want
  command -v npm >/dev/null || fail "npm not found (Debian: apt-get install nodejs npm)"
  want=$(sha256sum "$pkg" | cut -d' ' -f1)
  if [[ ! -f $dir/.package.sha256 || $(cat "$dir/.package.sha256") != "$want" ]]; then
    log "installing Node packages into $dir (deploy/tests/package.json)"
    mkdir -p "$dir"
    cp "$pkg" "$dir/package.json"
    (cd "$dir" && npm install --silent --no-audit --no-fund >&2) || fail "npm install in $dir failed"
    echo "$want" >"$dir/.package.sha256"
  fi
  echo "$dir"
}

# kustomize_build prints the command that renders a kustomization directory
# given after it: $HOOKLINE_KUSTOMIZE_BUILD if set, else `kustomize build`
# with a kustomize binary from PATH or .cache/bin (built there with go
# install from the Go module proxy on first use), else `kubectl kustomize`.
KUSTOMIZE_VERSION=${KUSTOMIZE_VERSION:-v5.8.2}
kustomize_build() {
  if [[ -n ${HOOKLINE_KUSTOMIZE_BUILD:-} ]]; then echo "$HOOKLINE_KUSTOMIZE_BUILD"; return; fi
  if command -v kustomize >/dev/null; then echo "kustomize build"; return; fi
  if [[ -x $CACHE/bin/kustomize ]]; then echo "$CACHE/bin/kustomize build"; return; fi
  if command -v go >/dev/null; then
    log "building kustomize $KUSTOMIZE_VERSION into $CACHE/bin (go install)"
    mkdir -p "$CACHE/bin"
    # GOWORK=off: this is not part of Hookline's workspace.
    if GOBIN=$CACHE/bin GOWORK=off GOFLAGS='' go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >&2; then
      echo "$CACHE/bin/kustomize build"; return
    fi
    log "go install of kustomize failed"
  fi
  if command -v kubectl >/dev/null; then echo "kubectl kustomize"; return; fi
  fail "no kustomize: install it (go install sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION) or kubectl"
}

# find_promtool prints promtool's path, installing Debian's prometheus
# package (which ships promtool) when run as root; empty when unavailable.
find_promtool() {
  if command -v promtool >/dev/null; then command -v promtool; return; fi
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    log "installing promtool (Debian package prometheus)"
    # The package would start a Prometheus server through its init script;
    # a policy-rc.d answering 101 forbids that, as deploy/scripts/redis.sh does.
    local policy=/usr/sbin/policy-rc.d added=0
    if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; added=1; fi
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; } >&2 || true
    ((added)) && rm -f "$policy"
    command -v promtool && return
  fi
  echo ""
}

# free_port prints a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_http URL SECONDS: until URL answers 2xx.
wait_http() {
  local url=$1 secs=$2 i
  for ((i = 0; i < secs * 4; i++)); do
    curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
    sleep 0.25
  done
  return 1
}

# start_stack WORK NAME=value...: runs Hookline's services with hookstack
# (cmd/hookstack, the launcher every Go test and tool uses too) against
# KAFKA_BROKERS and REDIS_ADDR, under a fresh topic prefix, with the given
# settings (HOOKLINE_STACK_SERVICES picks the services; `hookstack -h` lists
# the rest), their logs in WORK/<service>.log. It returns once every service
# is ready, with HOOKLINE_API_URL, HOOKLINE_TOPIC_PREFIX and
# HOOKLINE_<SERVICE>_OPS_ADDR set, and STACK_PID. hookstack and the
# services are built from this checkout, or taken from $HOOKLINE_BIN.
# stop_stack ends them and deletes their topics and groups (KEEP=1 keeps
# those).
start_stack() {
  local work=$1 hookstack i
  shift
  if [[ -n ${HOOKLINE_BIN:-} ]]; then
    hookstack=$HOOKLINE_BIN/hookstack
    set -- "HOOKLINE_BIN_DIR=$HOOKLINE_BIN" "$@"
  else
    hookstack=$work/hookstack
    (cd "$REPO" && go build -o "$hookstack" ./cmd/hookstack) ||
      fail "go build cmd/hookstack failed (work in progress? pass prebuilt binaries with HOOKLINE_BIN=dir)"
  fi
  [[ -x $hookstack ]] || fail "$hookstack missing"
  rm -f "$work/stack.env"
  (cd "$REPO" && exec env HOOKLINE_STACK_LOG_DIR="$work" HOOKLINE_STACK_ENV_FILE="$work/stack.env" \
    HOOKLINE_STACK_KEEP="${KEEP:-0}" "$@" "$hookstack") >"$work/hookstack.log" 2>&1 &
  STACK_PID=$!
  for ((i = 0; i < 300 * 4; i++)); do
    [[ -f $work/stack.env ]] && break
    kill -0 "$STACK_PID" 2>/dev/null || { cat "$work/hookstack.log" >&2; STACK_PID=""; fail "hookstack exited before the services were ready"; }
    sleep 0.25
  done
  [[ -f $work/stack.env ]] || { cat "$work/hookstack.log" >&2; fail "the services were not ready within 300 s"; }
  # shellcheck source=/dev/null
  source "$work/stack.env"
  log "services ready: API $HOOKLINE_API_URL, topics $HOOKLINE_TOPIC_PREFIX*"
}

# stop_stack: SIGTERM to hookstack, which stops the services gracefully
# and deletes what they created; fails when one did not stop cleanly.
stop_stack() {
  [[ -n ${STACK_PID:-} ]] || return 0
  local pid=$STACK_PID rc=0
  STACK_PID=""
  kill -TERM "$pid" 2>/dev/null || return 0
  wait "$pid" || rc=$?
  return $rc
}

# create_db NAME: a database of its own on the PostgreSQL of
# HOOKLINE_POSTGRES_URL (make test's; default 127.0.0.1:5432), for a test's
# logs service. Sets PGURL (the server) and DBURL (the new database); the
# test calls drop_db when it ends.
create_db() {
  PGURL=${HOOKLINE_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/hookline?sslmode=disable}
  psql -X -q -d "$PGURL" -c 'SELECT 1' >/dev/null 2>&1 ||
    fail "no PostgreSQL at $PGURL: start one with eval \"\$(deploy/scripts/infra.sh up)\""
  TEST_DB=$1
  psql -X -q -d "$PGURL" -c "CREATE DATABASE $TEST_DB" >/dev/null || fail "create database $TEST_DB"
  DBURL=$("$(venv_python)" -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(u.urlunsplit(p._replace(path="/" + sys.argv[2])))' "$PGURL" "$TEST_DB")
}

# drop_db: drops the database create_db made, if any.
drop_db() {
  [[ -n ${TEST_DB:-} ]] || return 0
  psql -X -q -d "$PGURL" -c "DROP DATABASE IF EXISTS $TEST_DB WITH (FORCE)" >/dev/null 2>&1 ||
    log "drop database $TEST_DB failed (harmless)"
}
