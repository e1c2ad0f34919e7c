#!/usr/bin/env bash
# Set up (idempotent) and open the quickstart notebook in JupyterLab (bundled SmolLM2-135M).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python3 -m pip install -q jupyterlab
export HF_HUB_OFFLINE=1
# Warm the model cache (the first load converts the GGUF file once, ≈25 s).
python3 -c "import residual_widgets as rw; print(rw.load_model('smollm2-135m'))"
ROOT_FLAG=""; [ "$(id -u)" = 0 ] && ROOT_FLAG="--allow-root"
exec jupyter lab $ROOT_FLAG examples/quickstart.ipynb
