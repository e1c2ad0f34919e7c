#!/usr/bin/env bash
# Recompile requirements/constraints.txt, the tested set of Python package versions that
# scripts/setup.sh installs (for every extra, every platform, Python ≥ 3.10), with uv.
# Run it after changing a dependency in pyproject.toml, then run scripts/test.sh and commit both.
#   bash scripts/lock.sh            # keep the locked versions where the ranges still allow them
#   bash scripts/lock.sh --upgrade  # move everything to the newest allowed versions
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-uv}
if ! command -v "$UV" >/dev/null 2>&1; then
  tools=$(mktemp -d)
  python3 -m venv "$tools" && "$tools/bin/pip" install -q uv && UV="$tools/bin/uv"
fi
"$UV" pip compile pyproject.toml --all-extras --universal --python-version 3.10 \
  -c requirements/pins.in -o requirements/constraints.txt "$@"
