#!/usr/bin/env bash
# Installs what is missing, then runs the whole suite: lint, types, layer contracts, and every
# test (unit, integration against the real engine, and the slow image builds).
# Extra arguments go to pytest (for example -k spawn, or -m "not slow" for a quick run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff"; .venv/bin/ruff check src tests bench
echo "== ruff format"; .venv/bin/ruff format --check src tests bench
echo "== mypy"; .venv/bin/mypy
echo "== import contracts"; .venv/bin/lint-imports
echo "== pytest"; exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
