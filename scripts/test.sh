#!/usr/bin/env bash
# Installs what is missing, then runs the whole suite: lint, types, layer contracts, and every
# test (unit, integration against the real engine, browser tests, and the slow image builds).
# Run as root or as a user with sudo; no sudo in front. Extra arguments go to pytest (for
# example -k spawn, or -m "not slow" for a quick run).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
bash scripts/setup.sh --dev
echo "== ruff"; .venv/bin/ruff check src tests bench
echo "== ruff format"; .venv/bin/ruff format --check src tests bench
echo "== mypy"; .venv/bin/mypy
echo "== import contracts"; .venv/bin/lint-imports
# pytest's temp files go in a folder of this script's own, one per run (named by the pid pytest
# will have). A private engine of a run that was killed leaves mounts there; they are undone and
# the folder removed by the next run (pytest's own clean-up fails the run on such a folder).
# (Short: private engines put Unix sockets under it, and a socket path has at most 107 bytes.)
temp_root=/tmp/parallax-tests
mkdir -p "$temp_root"
for old in "$temp_root"/*; do
  [ -d "$old" ] || continue
  kill -0 "${old##*/}" 2>/dev/null && continue
  awk -v p="$old" '$5 == p || index($5, p "/") == 1 {print $5}' /proc/self/mountinfo |
    sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$old"
done
echo "== pytest"
with_engine .venv/bin/python -m pytest -p no:cacheprovider --basetemp "$temp_root/$$" "$@"
