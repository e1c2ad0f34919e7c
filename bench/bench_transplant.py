"""Benchmark: per-transplant time, one at a time (``Session.transplant``) vs batched
(``Session.transplant_many``), on the bundled SmolLM2-135M.

The workload is the Patchscope lecture's (``examples/patchscope.ipynb``): each entity's last-token
residual (``"I saw {entity}"``) at every row ``0..30`` written into the placeholder of the
identity prompt at the same row, and the top-5 read at the next position. In one process, the
three ways alternate round by round on the same pairs (source runs cached and the stepper built
before timing):

* ``single``: ``sess.transplant(src, (r, s), (r, t))`` per pair, then the top-5 of its residual;
* ``many``: ``sess.transplant_many(src, pairs)`` per entity: one Effect per pair (full metrics);
* ``many-topk``: the same with ``reduce=`` keeping only the top-5 at the readout (what the
  lecture does).

It prints the median seconds per transplant of each, the ratios single / batched, whether the
top-5 lists agree, the largest KL gap between single and ``many`` Effects, the torch thread
count and the load average.

    python bench/bench_transplant.py                 # 4 entities x 31 rows, 3 rounds
    python bench/bench_transplant.py --entities 2 --rounds 2
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
from residual_widgets import lecture_patchscope as ps

ENTITIES = ["Paris", "Einstein", "guitar", "tiger", "London", "Mozart", "apple", "river"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entities", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    lm = rw.load_model("smollm2-135m")
    sess, t, read = ps.inspection_session(lm)
    rows = list(range(sess.n_rows))
    work = []
    for e in ENTITIES[: args.entities]:
        src = f"I saw {e}"
        s = len(sess._tokenize(src, "source")) - 1
        work.append((src, [((r, s), (r, t)) for r in rows]))
        sess.transplant(src, (rows[-1], s), (rows[-1], t))  # caches the source run
    sess.stepper()  # built once (a sweep or the second click builds it anyway)
    reader = ps._top_k_reader(read, 5)

    def single():
        out = []
        for src, pairs in work:
            for a, b in pairs:
                out.append((sess.transplant(src, a, b), None))
        return out

    def many():
        return [(e, None) for src, pairs in work for e in sess.transplant_many(src, pairs)]

    def many_topk():
        return [
            (None, top)
            for src, pairs in work
            for top in sess.transplant_many(src, pairs, reduce=reader)
        ]

    ways = {"single": single, "many": many, "many-topk": many_topk}
    times: dict[str, list[float]] = {k: [] for k in ways}
    last = {}
    n = sum(len(p) for _, p in work)
    for _ in range(args.rounds):
        for name, fn in ways.items():
            t0 = time.perf_counter()
            last[name] = fn()
            times[name].append((time.perf_counter() - t0) / n)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"SmolLM2-135M, identity prompt ({sess.n_positions} tokens), {n} transplants per round "
        f"({args.entities} entities x {len(rows)} rows, all at position {t}), {args.rounds} rounds"
    )
    for k, v in med.items():
        print(
            f"  {k:<10} {v * 1e3:8.2f} ms per transplant  (rounds: "
            + ", ".join(f"{x * 1e3:.2f}" for x in times[k])
            + ")"
        )
    print(f"  ratio single / many      {med['single'] / med['many']:.1f}x")
    print(f"  ratio single / many-topk {med['single'] / med['many-topk']:.1f}x")

    def top(eff):
        with torch.no_grad():
            return [int(i) for i in torch.topk(lm.unembed(eff.resid[lm.n_layers, read]), 5).indices]

    singles = [top(e) for e, _ in last["single"]]
    agree = sum(a == b for a, (_, b) in zip(singles, last["many-topk"], strict=True))
    kl_gap = max(
        float(np.abs(a.kl - b.kl).max())
        for (a, _), (b, _) in zip(last["single"], last["many"], strict=True)
    )
    print(f"  top-5 lists equal: {agree}/{n}; max |KL single - KL many| = {kl_gap:.2e}")
    print(f"  torch threads {torch.get_num_threads()}, load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
