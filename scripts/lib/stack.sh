# shellcheck shell=bash
# The local stack as scripts/stack.conf describes it, and the processes dev-up started from it.
# Sourced by scripts/dev-up and scripts/dev-down, from the repository root.

STACK_CONF=scripts/stack.conf
# Where a stack keeps its pids, logs and generated files, and how far its ports are moved from
# stack.conf's: the defaults are the developer's stack. `loadtest drill` runs a second, private
# stack with DEV_UP_STATE_DIR and DEV_UP_PORT_OFFSET set (and its own PostgreSQL, Redis and
# RabbitMQ URLs exported), so it never touches this one.
STATE_DIR=${DEV_UP_STATE_DIR:-var}
PORT_OFFSET=${DEV_UP_PORT_OFFSET:-0}
[[ $PORT_OFFSET =~ ^[0-9]+$ ]] || { echo "error: DEV_UP_PORT_OFFSET must be a number, not '$PORT_OFFSET'" >&2; exit 2; }
RUN_DIR=$STATE_DIR/run
# What dev-up started, in start order: one `instance program port-offset` line each.
INSTANCES=$RUN_DIR/instances
# The programs dev-up can run several of (--replicas N); the gateway runs twice behind HAProxy
# when N > 1.
SCALED_PROGRAMS="stock-service order-service order-worker"

# The program names, in start order, one per line.
stack_programs() {
  sed -n 's/^\[\(.*\)\]$/\1/p' "$STACK_CONF"
}

# The `KEY=value` lines of program $1, as written in stack.conf.
stack_settings() {
  awk -v section="[$1]" '
    /^\[/ { inside = ($0 == section); next }
    inside && /^SECKILL_[A-Z0-9_]*=/ { print }
  ' "$STACK_CONF"
}

# `port program` for every port a program listens on in stack.conf (its SECKILL_*LISTEN values
# as written), one per line.
stack_ports() {
  local name line
  for name in $(stack_programs); do
    while IFS= read -r line; do
      if [[ ${line%%=*} == *LISTEN && $line =~ :([0-9]+)$ ]]; then echo "${BASH_REMATCH[1]} $name"; fi
    done < <(stack_settings "$name")
  done
}

# The value program $1 gets for key $2: the caller's environment wins over stack.conf, so a
# variable exported before dev-up reaches every program that has this setting.
stack_setting() {
  local line key value
  while IFS= read -r line; do
    key=${line%%=*}
    value=${line#*=}
    if [[ $key == "$2" ]]; then
      printf '%s\n' "${!key-$value}"
      return 0
    fi
  done < <(stack_settings "$1")
  return 1
}

# Whether process $1 runs: it exists and is not a zombie waiting for a parent to reap it (the
# programs outlive dev-up, so their parent is whatever adopted them).
alive() {
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $state != Z* ]]
}

# The pid of instance $1 (of program $2, by default the same name) if dev-up started it and it
# still runs. The name check guards against a stale pid file whose pid the system has since
# given to another process.
running_pid() {
  local pid_file="$RUN_DIR/$1.pid" program=${2:-$1} pid
  [[ -f $pid_file ]] || return 1
  pid=$(<"$pid_file")
  [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 1
  # comm is the executable's name, cut to 15 characters by the kernel.
  [[ $(ps -o comm= -p "$pid" 2>/dev/null) == "${program:0:15}" ]] || return 1
  printf '%s\n' "$pid"
}

# The `instance program port-offset` lines for $1 replicas, in start order: each scaled program
# $1 times (the first under its own name, then name-2, ...; ports 100 apart), every other program
# once; with $1 > 1 two gateways (ports +100, +200) and haproxy on the gateway's own port. Every
# offset includes PORT_OFFSET.
stack_instances() {
  local replicas=$1 name i
  for name in $(stack_programs); do
    if [[ " $SCALED_PROGRAMS " == *" $name "* ]]; then
      for ((i = 0; i < replicas; i++)); do
        echo "$(instance_name "$name" "$i") $name $((PORT_OFFSET + i * 100))"
      done
    elif [[ $name == gateway ]] && ((replicas > 1)); then
      echo "gateway gateway $((PORT_OFFSET + 100))"
      echo "gateway-2 gateway $((PORT_OFFSET + 200))"
      echo "haproxy haproxy $PORT_OFFSET"
    else
      echo "$name $name $PORT_OFFSET"
    fi
  done
}

# Instance $2 (from 0) of program $1: the program's name, then name-2, name-3, ...
instance_name() {
  if (($2 == 0)); then echo "$1"; else echo "$1-$(($2 + 1))"; fi
}

# What dev-up started (its instances file), or one of each program if it left none.
started_instances() {
  if [[ -f $INSTANCES ]]; then cat "$INSTANCES"; else stack_instances 1; fi
}
