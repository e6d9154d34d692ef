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
echo "== pytest"; with_engine .venv/bin/python -m pytest -p no:cacheprovider "$@"
