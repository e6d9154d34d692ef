#!/usr/bin/env bash
# Installs what is missing, builds any missing agent image, then serves the API (and the
# dashboard at /ui) on port 3200. Run as root or as a user with sudo; no sudo in front.
# Extra arguments go to `parallax-docker serve` (for example --human-logs).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
bash scripts/setup.sh
# Building a missing image can need root (debootstrap makes the Debian base when no registry
# answers): a user with sudo builds through it, with its parallax settings kept.
if is_root; then
  .venv/bin/parallax-docker images build all --missing
elif ! command -v sudo >/dev/null; then
  (with_engine .venv/bin/parallax-docker images build all --missing)
else
  settings=()
  for name in $(compgen -e); do
    case $name in PARALLAX_* | DOCKER_* | LOG_LEVEL) settings+=("$name=${!name}") ;; esac
  done
  as_root env "${settings[@]}" .venv/bin/parallax-docker images build all --missing
fi
# The service keeps its store and the agents' secret files in system folders; a user who is not
# root gets them made (through sudo) as its own, once. /run is emptied at each boot.
if ! is_root; then
  for dir in "${PARALLAX_STATE_DIR:-/var/lib/parallax-docker}" \
    "${PARALLAX_SECRETS_DIR:-/run/parallax-docker/secrets}"; do
    if [ ! -e "$dir" ]; then
      as_root install -d -m 0700 -o "$(id -un)" -g "$(id -gn)" "$dir"
    elif [ ! -w "$dir" ]; then
      say "$dir belongs to another user; set PARALLAX_STATE_DIR and PARALLAX_SECRETS_DIR to folders of yours"
      exit 1
    fi
  done
fi
# with_engine execs: the service replaces this shell.
say "serving on http://${HOST:-127.0.0.1}:${PORT:-3200} (dashboard: /ui)"
with_engine .venv/bin/parallax-docker serve "$@"
