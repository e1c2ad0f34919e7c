#!/usr/bin/env bash
# Set up (idempotent, into .venv) and open the quickstart notebook in JupyterLab, with the
# bundled SmolLM2-135M. JupyterLab and the notebook's kernel both run from .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --demo
# shellcheck disable=SC1091
source .venv/bin/activate
export HF_HUB_OFFLINE=1
# Warm the model cache (the first load converts the GGUF file once, ≈25 s).
python -c "import residual_widgets as rw; print(rw.load_model('smollm2-135m'))"
ROOT_FLAG=""; [ "$(id -u)" = 0 ] && ROOT_FLAG="--allow-root"
exec jupyter lab $ROOT_FLAG examples/quickstart.ipynb
