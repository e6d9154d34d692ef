# shellcheck shell=bash
# Sourced by scripts/run.sh, scripts/test.sh and scripts/setup.sh: messages, root for the steps
# that need it, and access to the Docker engine's socket.
#
# Root steps run directly as root, through sudo for a user who has it, and otherwise stop with
# the exact command to run. A user who may not use the socket is added to the group that owns it
# (through sudo) and the scripts' own engine steps run in that group (sg), so that nothing needs
# a new login first.

SOCKET=${DOCKER_SOCKET:-/var/run/docker.sock}

say() { printf '\033[1m[parallax]\033[0m %s\n' "$*" >&2; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# One POSIX-shell word for "$1" (for sg -c, which hands its command to /bin/sh).
sh_quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# as_root CMD...: CMD as root, or the reason it cannot be, with the command to run instead.
as_root() {
  if is_root; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    say "this step needs root and sudo is not installed; run as root: $*"
    say "or run the whole script as root: su -c 'bash $0'"
    exit 1
  fi
}

engine_answers() {
  curl -sf --max-time 3 --unix-socket "$SOCKET" http://docker/_ping >/dev/null 2>&1
}

# The group that owns the socket when this user may not write to it (and is not root).
socket_group_needed() {
  ! is_root && [ -S "$SOCKET" ] && [ ! -w "$SOCKET" ] && stat -c %G "$SOCKET"
}

in_group() {
  getent group "$1" | cut -d: -f4 | tr ',' '\n' | grep -qx "$(id -un)"
}

# with_engine CMD...: exec CMD able to use the engine's socket: as it is when it already can,
# else in the socket's group (this user must be a member: setup.sh makes it one).
with_engine() {
  local group
  if ! group=$(socket_group_needed); then
    exec "$@"
  fi
  if ! in_group "$group"; then
    say "$(id -un) may not use $SOCKET (group $group); run: sudo usermod -aG $group $(id -un)"
    exit 1
  fi
  local command="exec" word
  for word in "$@"; do command+=" $(sh_quote "$word")"; done
  exec sg "$group" -c "$command"
}

# dockerd_options SOCKET DAEMON_JSON: the flags these scripts start dockerd with, one a line: its
# socket when not the default one, and live-restore (agents keep running through an engine
# restart) unless daemon.json decides it (dockerd refuses an option given both ways).
dockerd_options() {
  [ "$1" != /var/run/docker.sock ] && printf '%s\n' -H "unix://$1"
  grep -qs '"live-restore"' "$2" || printf '%s\n' --live-restore
  return 0
}
