#!/usr/bin/env bash
# Debian's chromium for the console's browser tests (loadtest/e2e, driven
# headless by chromedp).
#
#   chromium.sh ensure   install chromium with apt-get when missing (root),
#                        then print HOOKLINE_CHROMIUM=<path>
#
# Env: HOOKLINE_CHROMIUM (a browser to use instead; nothing is installed).
set -euo pipefail

log() { echo "chromium: $*" >&2; }
die() { log "$*"; exit 1; }

cmd_ensure() {
  local bin=${HOOKLINE_CHROMIUM:-}
  if [[ -z $bin ]]; then
    bin=$(command -v chromium || true)
  fi
  if [[ -z $bin ]]; then
    [[ $(id -u) == 0 ]] || die "chromium missing; install it: apt-get install -y chromium"
    log "installing chromium with apt-get (a few minutes the first time)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } ||
      die "apt-get install chromium failed"
    bin=$(command -v chromium) || die "chromium installed but not on PATH"
  fi
  log "$("$bin" --version 2>/dev/null || echo "$bin")"
  echo "HOOKLINE_CHROMIUM=$bin"
}

case "${1:-}" in
  ensure) cmd_ensure ;;
  *) echo "usage: $0 ensure" >&2; exit 2 ;;
esac
