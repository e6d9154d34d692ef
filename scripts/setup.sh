#!/usr/bin/env bash
# Installs what parallax-docker needs on a Debian 12 machine and starts the Docker engine.
# Idempotent: each step is skipped when already done. Runs as root, or as a user with sudo (used
# only for the steps that need root). `--dev` adds what the tests need (their tools, the browser).
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
ROOT=$(pwd)
VENV=${PARALLAX_VENV:-$ROOT/.venv}
DOCKERD_LOG=${PARALLAX_DOCKERD_LOG:-/var/log/parallax-dockerd.log}
LINK=/usr/local/bin/parallax-docker
DEV=0
[ "${1:-}" = "--dev" ] && DEV=1

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ $apt_updated -eq 0 ]; then
    say "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  say "installing ${missing[*]}"
  # debconf's note that apt-utils is missing is noise on a minimal system; errors still show.
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" 2> >(grep -v '^debconf: delaying package configuration' >&2) >/dev/null
}

# 1. Tools: curl for the socket, Python with venv, debootstrap to make a Debian base image when
#    no registry can be reached. For the tests: busybox-static (the tiny test images),
#    Debian's Chromium with its WebDriver (the dashboard's browser tests), and for the 3-node
#    Swarm the suite makes (docs/swarm.md): its registry, openssl for its CA, ip for its links.
apt_install curl ca-certificates python3 python3-venv debootstrap
if [ $DEV -eq 1 ]; then
  apt_install busybox-static chromium chromium-driver docker-registry openssl iproute2
fi
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  say "Python 3.11 or newer is needed (Debian 12 has it)"; exit 1; }

# 2. The Docker engine: Debian's docker.io when no engine answers on the socket; a user who may
#    not use the socket is added to its group. An engine started here has live-restore on, so
#    that restarting it leaves the agents running (docs/reliability.md); `doctor` says whether
#    an engine has it.
start_dockerd() {
  say "starting dockerd (log: $DOCKERD_LOG)"
  local options=()
  mapfile -t options < <(dockerd_options "$SOCKET" /etc/docker/daemon.json)
  as_root sh -c 'nohup "$@" >>"$0" 2>&1 </dev/null &' "$DOCKERD_LOG" dockerd "${options[@]}"
  for _ in $(seq 1 120); do
    [ -S "$SOCKET" ] && as_root curl -sf --max-time 3 --unix-socket "$SOCKET" http://docker/_ping \
      >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  say "dockerd did not come up; see $DOCKERD_LOG"
  as_root tail -20 "$DOCKERD_LOG" >&2
  exit 1
}

if ! engine_answers && ! socket_group_needed >/dev/null; then
  command -v dockerd >/dev/null || apt_install docker.io
  engine_answers || socket_group_needed >/dev/null || start_dockerd
fi
if group=$(socket_group_needed); then
  if [ "$group" = root ] || [ "$group" = UNKNOWN ]; then
    say "$SOCKET belongs to group $group, which $(id -un) should not join; run as root instead"
    exit 1
  fi
  if ! in_group "$group"; then
    say "adding $(id -un) to group $group, which may use $SOCKET (new logins get it; these scripts use it now)"
    as_root usermod -aG "$group" "$(id -un)"
  fi
  ping_command="curl -sf --max-time 3 --unix-socket $(sh_quote "$SOCKET") http://docker/_ping"
  sg "$group" -c "$ping_command" >/dev/null || { say "the engine does not answer on $SOCKET"; exit 1; }
elif ! engine_answers; then
  say "the engine does not answer on $SOCKET"
  exit 1
fi
say "the Docker engine answers on $SOCKET"

# 3. Python: a venv with the package (and for --dev its development tools), refreshed when
#    pyproject.toml changes. pip is quiet: only errors (and the machine's own pip warnings) show.
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  python3 -m venv "$VENV"
fi
stamp="$VENV/.parallax-installed"
sum=$(sha256sum pyproject.toml | cut -d' ' -f1)
installed=$(cat "$stamp" 2>/dev/null || true)
if [ "$installed" != "$sum dev" ] && { [ $DEV -eq 1 ] || [ "$installed" != "$sum run" ]; }; then
  extras=""
  [ $DEV -eq 1 ] && extras="[dev]"
  say "installing parallax-docker${extras:+ and its development tools} into $VENV (a minute or two the first time)"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e ".$extras"
  if [ $DEV -eq 1 ]; then echo "$sum dev" >"$stamp"; else echo "$sum run" >"$stamp"; fi
fi

# 4. The CLI on the PATH: a link in /usr/local/bin (never over another checkout's that still
#    exists; a link left by a removed checkout is replaced).
cli="$VENV/bin/parallax-docker"
if [ "$(readlink "$LINK" 2>/dev/null || true)" = "$cli" ]; then
  :
elif [ -e "$LINK" ]; then
  say "$LINK is another install ($(readlink "$LINK" || echo a file)); this checkout's CLI is $cli"
elif is_root || command -v sudo >/dev/null; then
  as_root ln -sfn "$cli" "$LINK"
  say "parallax-docker is on the PATH ($LINK -> $cli)"
else
  say "to put parallax-docker on your PATH: export PATH=\"$VENV/bin:\$PATH\""
fi
