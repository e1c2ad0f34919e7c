#!/usr/bin/env bash
# Set up (idempotent) and open the quickstart notebook in JupyterLab (bundled SmolLM2-135M).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python3 -m pip install -q jupyterlab
export HF_HUB_OFFLINE=1
# Warm the model cache (first load converts the GGUF file, ≈25 s) and write a static heatmap.
python3 -m residual_widgets.demo --out demo.html
ROOT_FLAG=""; [ "$(id -u)" = 0 ] && ROOT_FLAG="--allow-root"
exec jupyter lab $ROOT_FLAG examples/quickstart.ipynb
