#!/usr/bin/env bash
# Mutation testing of the engine's core (not run in CI: it takes long). mutmut changes the code
# one small mutation at a time (a + for a -, a 0 for a 1, a dropped call...) and runs the tests
# that cover it; a mutant that no test notices ("survived") points at a missing assertion.
# Runs in a scratch copy of the tree, so the checkout is never touched.
#
#   bash scripts/mutation.sh                      # the default modules below
#   bash scripts/mutation.sh src/residual_widgets/metrics.py   # just these
# Prints the score and each survivor's diff (`mutmut show NAME`) into mutation-report.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
[ -x .venv/bin/python ] || bash scripts/setup.sh --dev
.venv/bin/python -m pip install -q "mutmut==3.8.1"
MODULES=("$@")
[ ${#MODULES[@]} -gt 0 ] || MODULES=(src/residual_widgets/stepper.py src/residual_widgets/cone.py
  src/residual_widgets/interventions.py src/residual_widgets/metrics.py src/residual_widgets/_codec.py)
# the fast engine tests (MUTATION_TESTS overrides: the TransformerLens oracle, say, is thorough
# but slow enough to time mutants out on 2 cores)
read -r -a TESTS <<< "${MUTATION_TESTS:-tests/test_engine.py tests/test_stepping.py tests/test_knockout.py tests/test_codec.py tests/test_metrics.py tests/test_interventions.py}"
WORK=$(mktemp -d /tmp/rw-mutation-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cp -r src tests pyproject.toml "$WORK/"
cd "$WORK"
{
  echo; echo "[tool.mutmut]"
  echo 'source_paths = ["src/residual_widgets"]'
  printf 'only_mutate = [%s]\n' "$(printf '"%s",' "${MODULES[@]}" | sed 's/,$//')"
  printf 'pytest_add_cli_args_test_selection = [%s]\n' "$(printf '"%s",' "${TESTS[@]}" | sed 's/,$//')"
  echo 'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x", "-W", "ignore::DeprecationWarning"]'
  echo 'also_copy = ["tests"]'
  # torch is not fork-safe once it has run: fork workers from a clean server process
  echo 'process_isolation = "forkserver"'
} >> pyproject.toml
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1
"$ROOT/.venv/bin/mutmut" run --max-children "${MUTMUT_JOBS:-2}" || true
"$ROOT/.venv/bin/mutmut" results --all true > results.txt 2>&1 || "$ROOT/.venv/bin/mutmut" results > results.txt 2>&1 || true
{
  echo "mutation run $(date -u +%F) over: ${MODULES[*]}"
  for s in killed survived timeout suspicious "no tests" skipped; do
    printf '%-10s %s\n' "$s:" "$(grep -c ": $s\$" results.txt || true)"
  done
  echo; echo "== survivors =="
  grep ": survived$" results.txt | cut -d: -f1 | while read -r m; do
    echo "--- $m"; "$ROOT/.venv/bin/mutmut" show "$m" 2>/dev/null | tail -n +1
  done
} > "$ROOT/mutation-report.txt"
head -8 "$ROOT/mutation-report.txt"
