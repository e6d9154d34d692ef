#!/usr/bin/env bash
# Installs what is missing, builds any missing agent image, then serves the API on port 3200.
# Extra arguments go to `parallax-docker serve` (for example --human-logs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/parallax-docker images build all --missing
exec .venv/bin/parallax-docker serve "$@"
