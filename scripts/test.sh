#!/usr/bin/env bash
# Set up (idempotent) and run every test: engine (pytest), JS unit tests (vitest), real-browser
# tests in JupyterLab/Notebook 7 (Chromium), executed example notebooks.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
npm run typecheck
npm test
python3 -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning "$@"
