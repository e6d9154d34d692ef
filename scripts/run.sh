#!/usr/bin/env bash
# Installs what is missing, builds any missing agent image, then serves the API (and the
# dashboard at /ui) on port 3200. Run as root or as a user with sudo; no sudo in front.
# Extra arguments go to `parallax-docker serve` (for example --human-logs).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
bash scripts/setup.sh
# with_engine execs: the image build runs in a child shell, the service replaces this one.
(with_engine .venv/bin/parallax-docker images build all --missing)
say "serving on http://${HOST:-127.0.0.1}:${PORT:-3200} (dashboard: /ui)"
with_engine .venv/bin/parallax-docker serve "$@"
