#!/usr/bin/env bash
# Set up, then run the main job on the embedded default: start the service (local storage, a broker
# with no server), submit a saliency job over scikit-image's sample photos, wait, print the report path.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
if [ -z "${FOVEA_ASSETS_DIR:-}" ] && [ -d ../shared/data/weights ]; then
  export FOVEA_ASSETS_DIR="$(cd ../shared/data && pwd)"
fi
exec .venv/bin/fovea demo "$@"
