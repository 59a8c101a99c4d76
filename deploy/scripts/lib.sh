# Shared by kafka.sh, redis.sh and registry.sh (sourced; each defines log).

# stop_pid PID SECONDS [SIGNAL]: send SIGNAL (TERM) to PID, wait up to
# SECONDS for it to exit, then kill it with -9 and wait until it is gone.
stop_pid() {
  local pid=$1 seconds=$2 sig=${3:-TERM} t
  kill "-$sig" "$pid" 2>/dev/null || true
  for ((t = 0; t < seconds * 5; t++)); do
    [[ -d /proc/$pid ]] || return 0
    sleep 0.2
  done
  log "pid $pid did not stop in ${seconds}s, killing it"
  kill -KILL "$pid" 2>/dev/null || true
  while [[ -d /proc/$pid ]]; do sleep 0.1; done
}
