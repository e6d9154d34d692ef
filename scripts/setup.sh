#!/usr/bin/env bash
# Installs what parallax-docker needs on a Debian 12 machine and starts the Docker engine.
# Idempotent: each step is skipped when already done. Run as root (or with sudo).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
SOCKET=${DOCKER_SOCKET:-/var/run/docker.sock}
VENV=${PARALLAX_VENV:-$ROOT/.venv}
DOCKERD_LOG=${PARALLAX_DOCKERD_LOG:-/var/log/parallax-dockerd.log}

say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    say "missing packages: ${missing[*]}; run this script as root (or install them)"; exit 1
  fi
  if [ $apt_updated -eq 0 ]; then
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

engine_answers() {
  curl -sf --max-time 3 --unix-socket "$SOCKET" http://docker/_ping >/dev/null 2>&1
}

# 1. Tools: curl to talk to the socket; busybox-static for the test images; debootstrap to
#    build a Debian base image when no registry can be reached; headless Chromium and its
#    WebDriver for the browser tests (tests/support/browser.py).
command -v curl >/dev/null || apt_install curl ca-certificates
apt_install busybox-static debootstrap chromium chromium-driver

# 2. The Docker engine: Debian's docker.io when no engine answers on the socket.
if ! engine_answers; then
  if ! command -v dockerd >/dev/null; then
    apt_install docker.io
  fi
  if ! engine_answers; then
    say "starting dockerd (log: $DOCKERD_LOG)"
    if [ "$SOCKET" != /var/run/docker.sock ]; then
      nohup dockerd -H "unix://$SOCKET" >>"$DOCKERD_LOG" 2>&1 &
    else
      nohup dockerd >>"$DOCKERD_LOG" 2>&1 &
    fi
    for _ in $(seq 1 120); do
      engine_answers && break
      sleep 0.5
    done
    engine_answers || { say "dockerd did not come up; see $DOCKERD_LOG"; tail -20 "$DOCKERD_LOG" >&2; exit 1; }
  fi
fi
say "Docker engine $(curl -s --unix-socket "$SOCKET" http://docker/version | python3 -c 'import json,sys; print(json.load(sys.stdin)["Version"])') answers on $SOCKET"

# 3. Python: a venv with the package and its development tools, refreshed when pyproject changes.
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  say "Python 3.11 or newer is needed"; exit 1; }
python3 -m venv --help >/dev/null 2>&1 || apt_install python3-venv
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  python3 -m venv "$VENV"
fi
stamp="$VENV/.parallax-installed"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing parallax-docker and its development tools into $VENV"
  "$VENV/bin/pip" install -q --upgrade pip >/dev/null
  "$VENV/bin/pip" install -q -e ".[dev]"
  echo "$want" >"$stamp"
fi
