#!/usr/bin/env bash
# Mailpit (github.com/axllent/mailpit), a real SMTP server that keeps what it
# receives and shows it over HTTP, on 127.0.0.1 for notify's tests and
# `make run`. Built once with `go install` into <cache>/mailpit/<version>/.
#
#   mailpit.sh up       install if missing, start, wait until it answers; prints
#                       `export MAILPIT_SMTP_ADDR=... MAILPIT_URL=... MAILPIT_BIN=...`
#                       so `eval "$(deploy/scripts/mailpit.sh up)"` works
#   mailpit.sh down     stop it (safe when nothing runs); its mail is gone
#   mailpit.sh status   exit 0 only when it answers
#   mailpit.sh restart  down + up
#   mailpit.sh install  only build the binary; prints its path
#
# It accepts any SMTP user and password (or none, even without TLS) and has
# Mailpit's chaos triggers enabled, so tests can make it refuse mail.
#
# Env: MAILPIT_VERSION (v1.33.1), MAILPIT_SMTP_PORT (1025), MAILPIT_HTTP_PORT
# (8025), HOOKLINE_CACHE (<repo>/.cache).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${HOOKLINE_CACHE:-$ROOT/.cache}
MAILPIT_VERSION=${MAILPIT_VERSION:-v1.33.1}
MAILPIT_SMTP_PORT=${MAILPIT_SMTP_PORT:-1025}
MAILPIT_HTTP_PORT=${MAILPIT_HTTP_PORT:-8025}
BIN=$CACHE/mailpit/$MAILPIT_VERSION/mailpit
DIR=$CACHE/mailpit/run
PIDFILE=$DIR/mailpit-$MAILPIT_SMTP_PORT.pid
LOGFILE=$DIR/mailpit-$MAILPIT_SMTP_PORT.log
URL=http://127.0.0.1:$MAILPIT_HTTP_PORT

log() { echo "mailpit: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_installed() {
  [[ -x $BIN ]] && return 0
  command -v go >/dev/null || die "go not found: it builds mailpit"
  log "building mailpit $MAILPIT_VERSION with go install (once, about a minute)"
  # Into a temp dir first, so an interrupted build never looks complete.
  local tmp=$CACHE/mailpit/.tmp.$$
  rm -rf "$tmp"
  mkdir -p "$tmp"
  if ! GOBIN=$tmp GOFLAGS=-mod=mod GOWORK=off go install "github.com/axllent/mailpit@$MAILPIT_VERSION" >"$CACHE/mailpit/install.log" 2>&1; then
    tail -n 20 "$CACHE/mailpit/install.log" >&2 || true
    rm -rf "$tmp"
    die "go install github.com/axllent/mailpit@$MAILPIT_VERSION failed"
  fi
  mkdir -p "$(dirname "$BIN")"
  mv "$tmp/mailpit" "$BIN"
  rm -rf "$tmp"
}

answers() { curl -fsS -m 2 "$URL/readyz" >/dev/null 2>&1; }

# Pid of our mailpit if alive (checks the name too, so a reused pid is ignored).
our_pid() {
  [[ -f $PIDFILE ]] || return 1
  local pid
  pid=$(<"$PIDFILE")
  [[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null) == mailpit ]] || return 1
  echo "$pid"
}

print_env() {
  echo "export MAILPIT_SMTP_ADDR=127.0.0.1:$MAILPIT_SMTP_PORT MAILPIT_URL=$URL MAILPIT_BIN=$BIN"
}

cmd_up() {
  ensure_installed
  mkdir -p "$DIR"
  if our_pid >/dev/null; then
    answers && { log "already running: SMTP 127.0.0.1:$MAILPIT_SMTP_PORT, HTTP $URL"; print_env; return 0; }
  elif answers; then
    die "something else answers on $URL; stop it or set MAILPIT_HTTP_PORT"
  fi
  # No database file: its mail lives as long as the process.
  nohup "$BIN" --smtp "127.0.0.1:$MAILPIT_SMTP_PORT" --listen "127.0.0.1:$MAILPIT_HTTP_PORT" \
    --smtp-auth-accept-any --smtp-auth-allow-insecure --enable-chaos \
    --max 20000 --disable-version-check --smtp-disable-rdns \
    >"$LOGFILE" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$PIDFILE"
  # Seconds on a quiet machine; while a broker and a registry start beside
  # it on two busy cores, it once took more than 10. Alive is asked with
  # kill -0, not our_pid: until nohup has exec'd mailpit the process is
  # still named bash or nohup, and our_pid took that for a death (the
  # "no answer" with an empty log seen now and then).
  local t
  for ((t = 0; t < 600; t++)); do
    answers && { log "ready: SMTP 127.0.0.1:$MAILPIT_SMTP_PORT, HTTP $URL"; print_env; return 0; }
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$LOGFILE" >&2 || true; die "mailpit exited at start"; }
    sleep 0.1
  done
  tail -n 20 "$LOGFILE" >&2 || true
  die "no answer on $URL after 60 s"
}

cmd_down() {
  local pid
  if pid=$(our_pid); then stop_pid "$pid" 10; fi
  rm -f "$PIDFILE"
  log "down"
}

cmd_status() {
  local pid
  if pid=$(our_pid) && answers; then
    echo "mailpit: running pid $pid, SMTP 127.0.0.1:$MAILPIT_SMTP_PORT, HTTP $URL"
  else
    echo "mailpit: stopped"
    return 1
  fi
}

case ${1:-} in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  restart) cmd_down; cmd_up ;;
  install) ensure_installed; echo "$BIN" ;;
  *) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
