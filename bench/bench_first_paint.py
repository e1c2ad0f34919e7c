"""Benchmark: a fresh Python process to the first painted map, piece by piece (no browser).

``bench_widget.py`` measures the whole thing in real JupyterLab (kernel start, the front end's
load and paint included). This one splits the kernel side into its pieces, each in a fresh
process (``python -c``), with wall and CPU seconds (CPU time is less distorted by a loaded
machine):

* ``explore``: ``import residual_widgets``, then ``rw.explore(prompt)`` on the bundled
  SmolLM2-135M (float32 cache already written): the time until ``explore`` returns the widget
  (the grid and tokens can be painted from then on), and until its ``effect`` trait holds the
  pinned map (what the browser paints next);
* ``pieces``: the same steps one at a time (imports, model load, clean pass, clicks).

With ``--compare SRC`` (the ``src/`` folder of another checkout, e.g. a ``git worktree`` of an
older commit) the ``explore`` measurement alternates between that tree and this one, round by
round, so both see the same machine load; the medians are printed side by side.

    python bench/bench_first_paint.py                       # this tree, 3 rounds
    git worktree add /tmp/before <commit> && \\
        python bench/bench_first_paint.py --compare /tmp/before/src --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PROMPT = "When Mary and John went to the store, John gave a drink to"

EXPLORE = f"""
import json, time
W, C = time.perf_counter, time.process_time
w0, c0 = W(), C()
import residual_widgets as rw
w = rw.explore({PROMPT!r})
w.send = lambda *a, **k: None
ret = (W() - w0, C() - c0)
while w.effect is None and not w.error:
    time.sleep(0.005)
eff = (W() - w0, C() - c0)
w.cancel_sweep(wait=True)
print(json.dumps({{"returned": ret, "effect": eff, "error": w.error, "file": rw.__file__,
                  "tokens": len(w.tokens)}}))
"""

PIECES = f"""
import json, time
W, C = time.perf_counter, time.process_time
out = []
w0, c0 = W(), C()
def mark(name):
    global w0, c0
    w, c = W(), C()
    out.append((name, w - w0, c - c0))
    w0, c0 = w, c
import residual_widgets as rw; mark("import residual_widgets")
import residual_widgets.widget; mark("import the widget module (anywidget, torch via views)")
import transformers, transformers.models.auto; mark("import transformers")
import nnsight; mark("import nnsight")
lm = rw.load_model("smollm2-135m"); mark("load_model (tokenizer, from_pretrained, wrap)")
s = rw.Session(lm, {PROMPT!r}); mark("Session (the clean pass)")
s.intervene((0, 0)); mark("first click (traced)")
s.intervene((3, 5)); mark("second click (builds the stepper, cone)")
s.intervene((5, 5)); mark("third click (cone)")
print(json.dumps(out))
"""


def run(code: str, src: Path) -> dict | list:
    env = dict(os.environ, PYTHONPATH=str(src), HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--compare", type=Path, default=None, help="another tree's src/ folder")
    ap.add_argument("--no-pieces", action="store_true")
    args = ap.parse_args(argv)
    print(f"load average before: {os.getloadavg()}")
    trees = [("this tree", SRC)] + ([("compare", args.compare)] if args.compare else [])
    res: dict[str, list] = {name: [] for name, _ in trees}
    for r in range(args.rounds):
        for name, src in trees if r % 2 == 0 else trees[::-1]:
            got = run(EXPLORE, src)
            if got["error"]:
                print(f"{name}: error {got['error']}")
            res[name].append(got)
    for name, _src in trees:
        rows = res[name]
        med = {
            k: [statistics.median(x[k][j] for x in rows) for j in (0, 1)]
            for k in rows[0]
            if k in ("returned", "effect")
        }
        print(
            f"{name} ({rows[0]['file']}), {args.rounds} rounds, medians: explore returned "
            f"{med['returned'][0]:.2f} s wall ({med['returned'][1]:.2f} s CPU), pinned map "
            f"{med['effect'][0]:.2f} s wall ({med['effect'][1]:.2f} s CPU), "
            f"{rows[0]['tokens']} tokens on the grid"
        )
    if not args.no_pieces:
        print("pieces (this tree, one fresh process):")
        for name, w, c in run(PIECES, SRC):
            print(f"  {w * 1e3:7.0f} ms wall {c * 1e3:7.0f} ms CPU  {name}")
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
