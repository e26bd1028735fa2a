#!/usr/bin/env bash
# Runs the three services together with their logs prefixed by name.
# Ctrl-C (or SIGTERM to this script) stops all three gracefully.
set -uo pipefail
cd "$(dirname "$0")/.."

check() { # name, host, port
  if ! (exec 3<>"/dev/tcp/$2/$3") 2>/dev/null; then
    echo "make dev: nothing answers at $2:$3 ($1). Start $1 first; see README.md." >&2
    exit 1
  fi
}
check MySQL "${MYSQL_HOST:-127.0.0.1}" "${MYSQL_PORT:-3306}"
check Redis "${REDIS_HOST:-127.0.0.1}" "${REDIS_PORT:-6379}"

export LOG_FORMAT="${LOG_FORMAT:-text}"
pids=()
start() { # name, colour
  local name=$1 colour=$2
  # Each service reads .env from its own folder, as the contract says.
  local prefix
  prefix="$(printf '\033[%sm[%s]\033[0m ' "$colour" "$name")"
  # $! is the service itself (the subshell execs it), not the log filter.
  ( cd "$name" && exec "../bin/$name" ) > >(sed -u "s/^/$prefix/") 2>&1 &
  pids+=("$!")
}

stop() {
  trap - INT TERM
  echo "make dev: stopping..."
  kill -TERM "${pids[@]}" 2>/dev/null
  wait "${pids[@]}" 2>/dev/null
  exit "${1:-0}"
}
trap stop INT TERM

start worker-server 33
start api-server 36
start client-app 35
echo "make dev: open http://localhost:3000 (API on :5000, worker on :5001). Ctrl-C stops all."
# When one service exits, stop the others too. On Ctrl-C the terminal
# signals every service at once and each exits 0; a failure (a port taken,
# say) exits 1.
wait -n "${pids[@]}"
rc=$?
if [ "$rc" -ne 0 ]; then
  echo "make dev: a service exited with status $rc; stopping the others." >&2
  stop 1
fi
stop 0
