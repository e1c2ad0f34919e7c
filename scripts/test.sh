#!/usr/bin/env bash
# Set up (idempotent, into .venv) and run every check: ruff and biome (lint + format), the JS
# type check and unit tests (vitest), engine tests (pytest), real-browser tests in
# JupyterLab/Notebook 7/marimo/Voilà (Chromium), executed example notebooks. Extra arguments
# go to pytest. This is what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
# shellcheck disable=SC1091
source .venv/bin/activate      # python, jupyter and the notebooks' kernel all come from .venv
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
ruff check .                   # Python lint (pyproject.toml [tool.ruff])
ruff format --check .          # Python formatting
npm run lint                   # TypeScript lint + formatting (biome.json)
npm run typecheck
npm test
python -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning "$@"
