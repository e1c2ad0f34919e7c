"""Benchmark: engine time of one click, full nnsight trace vs the cone (``Session.intervene``).

In one process, for each model: the GPT-2-small shape (random weights, 12 layers, d 768, vocab
50257, 24 random tokens) and the bundled SmolLM2-135M (30 layers, d 576, 33 corpus tokens).
Each click is ``sess.intervene(cell, "zero", method=...)`` with ``method="trace"`` (one nnsight
trace of the whole prompt: the path every click took before) and ``method="cone"`` (rows ≥ n at
positions ≥ i only, :mod:`residual_widgets.click`), timed from the call to the finished
:class:`Effect` (metrics included). The two run interleaved on the same cells:

* ``random``: 20 cells drawn uniformly over the grid (seeded);
* ``top-right``: 20 cells in the top three rows and last four positions, where the cone is
  smallest.

It prints the medians, their ratio (trace / cone), the largest disagreement between the two
paths on every Effect array (absolute, and relative to ``max(1, |value|)``; the tests hold the
tiny models to 1e-5; with ``--float64-check`` both paths are compared with a float64 copy of the
model where they differ most, which shows whose rounding it is), the one-off cost of building
the stepper (its self-check; a sweep builds it anyway), the torch thread count and the load
average.

    python bench/bench_click.py                  # both models (about a minute on 2 cores)
    python bench/bench_click.py --models gpt2-shape --clicks 10
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

try:
    import residual_widgets as rw
except ImportError:  # running from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import residual_widgets as rw
from residual_widgets.tiny import random_ids, tiny_model


def load(name: str, seed: int = 0):
    """``(LoadedModel, ids, description)`` as in ``bench_sweep.py``."""
    if name == "smollm2":
        from residual_widgets.lecture import load_prompts

        lm = rw.load_model("smollm2-135m")
        text = " ".join(load_prompts("both", 2))
        ids = list(lm.tokenizer(text, add_special_tokens=False)["input_ids"])[:33]
        return lm, ids, f"SmolLM2-135M (L={lm.n_layers}, d={lm.d_model}), {len(ids)} tokens"
    V = 50257
    hf, tok = tiny_model(
        "gpt2", n_layers=12, d_model=768, n_heads=12, vocab_size=V, n_ctx=64, seed=seed
    )
    ids = random_ids(24, V, seed=seed + 1)
    return rw.load_model(hf, tok), ids, f"GPT-2-small shape (random), {len(ids)} tokens"


def cells_for(sess, n: int, where: str, rng) -> list[tuple[int, int]]:
    R, P = sess.n_rows, sess.n_positions
    if where == "random":
        return [(int(rng.integers(R)), int(rng.integers(P))) for _ in range(n)]
    return [(int(rng.integers(R - 3, R)), int(rng.integers(P - 4, P))) for _ in range(n)]


def worst_gap(a, b) -> tuple[float, float]:
    """Largest absolute gap over the Effect arrays, and largest gap relative to ``max(1, |x|)``
    (float32 rounding: SmolLM2's final norm divides residuals of norm ~2e4, so a KL of 10 moves
    by ~1e-5 when the residual moves by one part in 1e9)."""
    ab = rel = 0.0
    for k in ("resid_delta", "kl", "logprob_delta"):
        x, y = getattr(a, k), getattr(b, k)
        if x.size:
            g = np.abs(x - y)
            ab = max(ab, float(g.max()))
            rel = max(rel, float((g / np.maximum(1.0, np.abs(x))).max()))
    return ab, rel


def float64_check(lm, ids, cell, a, b) -> str:
    """Both paths against a float64 copy of the model, at the entry where they differ most."""
    import copy

    ses64 = rw.Session(rw.load_model(copy.deepcopy(lm.hf).double(), lm.tokenizer), ids)
    ref = ses64.intervene(cell, "zero", method="trace")
    worst = (0.0, "", None)
    for k in ("resid_delta", "kl", "logprob_delta"):
        x, y = getattr(a, k), getattr(b, k)
        if x.size:
            g = np.abs(x - y)
            j = np.unravel_index(g.argmax(), g.shape)
            worst = max(worst, (float(g[j]), k, j), key=lambda t: t[0])
    _, k, j = worst
    r = float(getattr(ref, k)[j])
    ea, eb = abs(float(getattr(a, k)[j]) - r), abs(float(getattr(b, k)[j]) - r)
    return (
        f"  float64 check at cell {cell}, {k}{list(map(int, j))}: float64 {r:.7g}; error of the "
        f"trace {ea:.1e}, of the cone {eb:.1e}"
    )


def bench_model(name: str, clicks: int, seed: int, check64: bool = False) -> list[str]:
    lm, ids, desc = load(name, seed)
    sess = rw.Session(lm, ids)
    t0 = time.perf_counter()
    sess.stepper()
    build = time.perf_counter() - t0
    sess.intervene((0, 0), method="trace")  # warm both paths
    sess.intervene((0, 0), method="cone")
    rng = np.random.default_rng(seed)
    lines = [f"{desc}: stepper built and self-checked once in {build * 1e3:.0f} ms"]
    for where in ("random", "top-right"):
        times = {"trace": [], "cone": []}
        gap = rel = 0.0
        worst = None
        for k, cell in enumerate(cells_for(sess, clicks, where, rng)):
            order = ("trace", "cone") if k % 2 == 0 else ("cone", "trace")
            effs = {}
            for m in order:
                t = time.perf_counter()
                effs[m] = sess.intervene(cell, "zero", method=m)
                times[m].append(time.perf_counter() - t)
            g, r = worst_gap(effs["trace"], effs["cone"])
            if worst is None or g > worst[0]:
                worst = (g, cell, effs["trace"], effs["cone"])
            gap, rel = max(gap, g), max(rel, r)
        tr, co = statistics.median(times["trace"]), statistics.median(times["cone"])
        lines.append(
            f"  {where:>9} ({clicks} clicks): trace {tr * 1e3:7.1f} ms  cone {co * 1e3:7.1f} ms"
            f"  trace/cone {tr / co:5.2f}x   largest gap {gap:.1e} (relative {rel:.1e}"
            f" {'ok' if rel <= 1e-5 else 'over 1e-5'})"
        )
        if check64:
            lines.append(float64_check(lm, ids, *worst[1:]))
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="gpt2-shape,smollm2", help="comma list")
    ap.add_argument("--clicks", type=int, default=20, help="clicks per group")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--float64-check",
        action="store_true",
        help="compare both paths with a float64 copy of the model where they differ most",
    )
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"$ python bench/bench_click.py {' '.join(argv or sys.argv[1:])}")
    print(f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()}")
    for name in args.models.split(","):
        for line in bench_model(name.strip(), args.clicks, args.seed, args.float64_check):
            print(line, flush=True)
    print(f"load average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
