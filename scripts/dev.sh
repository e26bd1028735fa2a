#!/usr/bin/env bash
# Runs the three services together with their logs prefixed by name.
# When nothing answers at the configured MySQL or Redis address (and it is a
# loopback one), it first starts bin/devstack, an embedded in-memory stand-in
# for the missing ones; its data lives only while this script runs.
# Ctrl-C (or SIGTERM to this script) stops all three gracefully, then the
# embedded stack.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

answers() { # host, port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}
is_loopback() { # host
  case $1 in localhost | 127.* | ::1) return 0 ;; *) return 1 ;; esac
}
hostport() { # host, port: as a host:port address, IPv6 in brackets
  case $1 in *:*) echo "[$1]:$2" ;; *) echo "$1:$2" ;; esac
}

# The addresses the services will use, with their defaults.
mysql_host="${MYSQL_HOST:-127.0.0.1}"
mysql_port="${MYSQL_PORT:-3306}"
if [ -n "${REDIS_ADDRS:-}" ]; then # wins over REDIS_HOST and REDIS_PORT, as in the services
  redis_addrs=${REDIS_ADDRS//[[:space:]]/}
  if [[ $redis_addrs == *,* ]]; then
    # A cluster: the embedded stack cannot stand in for one.
    IFS=, read -ra nodes <<<"$redis_addrs"
    for node in "${nodes[@]}"; do
      host=${node%:*} port=${node##*:}
      host=${host#[} host=${host%]}
      if ! answers "$host" "$port"; then
        echo "make dev: nothing answers at $node (Redis cluster node, REDIS_ADDRS). Start the cluster first; see README.md." >&2
        exit 1
      fi
    done
    redis_host="" redis_port=""
  else
    redis_port=${redis_addrs##*:}
    redis_host=${redis_addrs%:*}
    redis_host=${redis_host#[} redis_host=${redis_host%]}
  fi
else
  redis_host="${REDIS_HOST:-127.0.0.1}"
  redis_port="${REDIS_PORT:-6379}"
fi

# For each of MySQL and Redis: use what answers; start the embedded one
# where nothing does. A remote address that does not answer is an error,
# as before: the embedded stack only stands in for local servers.
embed_mysql=off embed_redis=off missing=()
if ! answers "$mysql_host" "$mysql_port"; then
  if ! is_loopback "$mysql_host"; then
    echo "make dev: nothing answers at $mysql_host:$mysql_port (MySQL). Start MySQL first; see README.md." >&2
    exit 1
  fi
  embed_mysql=$(hostport "$mysql_host" "$mysql_port")
  missing+=("MySQL at $embed_mysql")
fi
if [ -n "$redis_host" ] && ! answers "$redis_host" "$redis_port"; then
  if ! is_loopback "$redis_host"; then
    echo "make dev: nothing answers at $redis_host:$redis_port (Redis). Start Redis first; see README.md." >&2
    exit 1
  fi
  embed_redis=$(hostport "$redis_host" "$redis_port")
  missing+=("Redis at $embed_redis")
fi

export LOG_FORMAT="${LOG_FORMAT:-text}"
pids=()
devstack_pid=""

# prefix: name, colour: what starts each line of name's output.
prefix() { printf '\033[%sm[%s]\033[0m ' "$2" "$1"; }

stop() {
  trap - INT TERM
  echo "make dev: stopping..."
  if [ "${#pids[@]}" -gt 0 ]; then
    kill -TERM "${pids[@]}" 2>/dev/null
    wait "${pids[@]}" 2>/dev/null
  fi
  if [ -n "$devstack_pid" ]; then
    # After the services: the worker stores what it holds before it exits.
    echo "make dev: stopping the embedded development stack; its data is gone."
    kill -TERM "$devstack_pid" 2>/dev/null
    wait "$devstack_pid" 2>/dev/null
  fi
  exit "${1:-0}"
}
trap stop INT TERM

if [ "${#missing[@]}" -gt 0 ]; then
  # Built only when needed: it links an SQL engine, a minute to compile
  # the first time.
  echo "make dev: nothing answers for ${missing[*]}; building the embedded development stack (bin/devstack)..."
  if ! go build -o bin/ ./devstack; then
    echo "make dev: could not build bin/devstack (go build -o bin/ ./devstack)." >&2
    exit 1
  fi
  # Started in the background, devstack ignores SIGINT (the shell sets
  # that, and devstack keeps it): Ctrl-C reaches the services only, and
  # stop ends devstack after them.
  p="$(prefix devstack '1;31')"
  (exec bin/devstack -mysql "$embed_mysql" -redis "$embed_redis") > >(sed -u "s/^/$p/") 2>&1 &
  devstack_pid=$!
  # Wait until each embedded server answers, or devstack gives up (a port
  # taken on another address, say).
  for addr in "$embed_mysql" "$embed_redis"; do
    [ "$addr" = off ] && continue
    host=${addr%:*} port=${addr##*:}
    host=${host#[} host=${host%]}
    tries=0
    until answers "$host" "$port"; do
      if ! kill -0 "$devstack_pid" 2>/dev/null; then
        wait "$devstack_pid"
        rc=$?
        echo "make dev: the embedded development stack did not start (exit $rc); see [devstack] above." >&2
        exit 1
      fi
      if [ $((tries += 1)) -gt 150 ]; then
        echo "make dev: the embedded development stack does not answer at $addr after 15s." >&2
        stop 1
      fi
      sleep 0.1
    done
  done
  {
    echo "*******************************************************************************"
    what="${missing[0]}"
    [ "${#missing[@]}" -gt 1 ] && what="$what, nor for ${missing[1]}"
    echo "make dev: nothing answered for $what."
    echo "make dev: USING THE EMBEDDED DEVELOPMENT STACK (bin/devstack) in their place:"
    echo "make dev: in-memory stand-ins; ALL DATA IS LOST WHEN make dev STOPS. Not for production."
    echo "make dev: to use real servers, start MySQL/Redis there and run make dev again."
    if [ "$embed_mysql" != off ] && { [ "${MYSQL_USERNAME:-root}" != root ] || [ -n "${MYSQL_PASSWORD:-}" ]; }; then
      echo "make dev: note: the embedded MySQL has only user root with an empty password."
    fi
    echo "*******************************************************************************"
  } >&2
fi

start() { # name, colour
  local p
  p="$(prefix "$1" "$2")"
  # Each service reads .env from its own folder, as the contract says.
  # $! is the service itself (the subshell execs it), not the log filter.
  # Started in the background it ignores SIGINT at first, and turns it back
  # on: Ctrl-C reaches it.
  (cd "$1" && exec "../bin/$1") > >(sed -u "s/^/$p/") 2>&1 &
  pids+=("$!")
}
start worker-server 33
start api-server 36
start client-app 35
echo "make dev: open http://localhost:3000 (API on :5000, worker on :5001). Ctrl-C stops all."
# When a service (or the embedded stack) exits, stop the others too. On
# Ctrl-C the terminal signals every service at once and each exits 0; a
# failure (a port taken, say) exits 1.
wait -n "${pids[@]}" ${devstack_pid:+"$devstack_pid"}
rc=$?
if [ -n "$devstack_pid" ] && ! kill -0 "$devstack_pid" 2>/dev/null; then
  echo "make dev: the embedded development stack exited (status $rc); stopping the services." >&2
  devstack_pid=""
  stop 1
fi
if [ "$rc" -ne 0 ]; then
  echo "make dev: a service exited with status $rc; stopping the others." >&2
  stop 1
fi
stop 0
