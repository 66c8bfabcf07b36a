# shellcheck shell=bash
# The local stack as scripts/stack.conf describes it, and the processes dev-up started from it.
# Sourced by scripts/dev-up and scripts/dev-down, from the repository root.

STACK_CONF=scripts/stack.conf
RUN_DIR=var/run

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

# The pid of program $1 if dev-up started it and it still runs. The name check guards against a
# stale pid file whose pid the system has since given to another process.
running_pid() {
  local pid_file="$RUN_DIR/$1.pid" pid
  [[ -f $pid_file ]] || return 1
  pid=$(<"$pid_file")
  [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 1
  # comm is the executable's name, cut to 15 characters by the kernel.
  [[ $(ps -o comm= -p "$pid" 2>/dev/null) == "${1:0:15}" ]] || return 1
  printf '%s\n' "$pid"
}
