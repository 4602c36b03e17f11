#!/usr/bin/env bash
# Set up, then run every check CI runs: ruff, the import contracts, mypy and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
if [ -z "${FOVEA_ASSETS_DIR:-}" ] && [ -d ../shared/data/weights ]; then
  export FOVEA_ASSETS_DIR="$(cd ../shared/data && pwd)"
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports
.venv/bin/mypy
exec .venv/bin/pytest -q "$@"
