"""A 1,024-token prompt on the bundled SmolLM2-135M: what one intervention costs, what a full
sweep would cost, and what the memory guard chooses.

    python bench/bench_long.py                 # defaults: 1,024 tokens, 3 sample positions
    python bench/bench_long.py --tokens 512 --positions 500,400

Prints: the clean run (session creation), a single intervention's latency (median of
``--repeats``), the full sweep's atlas size in each storage form and the guard's choice under the
default budget, and a *measured sample* of the full cone sweep — every row at a few source
positions — with its time and this process's peak memory. The full sweep's time is extrapolated
from the sample: the cone's work at position ``i`` grows with ``P - i`` (all rows enter there and
run to the top on positions ``i..P-1``), so ``T ≈ Σ_i (c + a·(P - i))`` with ``c``, ``a`` fitted to
the sample by least squares. Runs offline.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TEXT = (
    "The quick brown fox jumps over the lazy dog. In the beginning the universe was created; "
    "this has made a lot of people very angry and been widely regarded as a bad move. "
    "Call me Ishmael. Some years ago, never mind how long precisely, having little or no "
    "money in my purse, I thought I would sail about a little and see the watery part of the "
    "world. "
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=1024)
    ap.add_argument(
        "--positions",
        default="",
        help="sample source positions (default: 3 near "
        "the end, with 24, 128 and 256 positions after them)",
    )
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import torch

    import residual_widgets as rw
    from residual_widgets.sweep import available_memory, choose_storage, estimate_bytes

    t0 = time.perf_counter()
    lm = rw.load_model("smollm2-135m")
    t_load = time.perf_counter() - t0
    ids = lm.tokenizer(TEXT * 200, add_special_tokens=False)["input_ids"][: args.tokens]
    P, L = len(ids), lm.n_layers
    R = S = L + 1
    print(f"{sys.argv[0]} {' '.join(sys.argv[1:])}".strip())
    print(
        f"model: {lm!r}; prompt: {P} tokens; torch threads {torch.get_num_threads()}; "
        f"load average {os.getloadavg()[0]:.2f}; model load {t_load:.1f} s"
    )

    t0 = time.perf_counter()
    sess = rw.Session(lm, ids)
    print(
        f"clean run (session creation, every row and write saved): {time.perf_counter() - t0:.2f} s"
    )
    lat = []
    for k in range(args.repeats):
        t0 = time.perf_counter()
        eff = sess.ablate((L // 2, P // 2 + k))
        lat.append(time.perf_counter() - t0)
    print(
        f"single intervention (zero, row {L // 2}, position ~{P // 2}): median "
        f"{statistics.median(lat):.2f} s, min {min(lat):.2f} s over {len(lat)}; total KL "
        f"{eff.total_kl:.3g} nats"
    )

    budget = available_memory() // 2
    gib = 2**30
    print(
        f"full sweep atlas ({S} x {P} source cells): float32 maps "
        f"{estimate_bytes(S, R, P) / gib:.2f} GiB, "
        f"float16 {estimate_bytes(S, R, P, map_bytes=2) / gib:.2f} GiB, "
        f"summaries only {estimate_bytes(S, R, P, keep_maps=False) / gib:.3f} GiB; default budget "
        f"{budget / gib:.1f} GiB -> guard chooses {choose_storage(S, R, P, budget)!r}"
    )
    tight = estimate_bytes(S, R, P) // 3
    print(
        f"  under a {tight / gib:.2f} GiB budget the guard chooses "
        f"{choose_storage(S, R, P, tight)!r}"
    )

    pos = (
        [int(x) for x in args.positions.split(",")]
        if args.positions
        else [P - 24, P - 128, P - 256]
    )
    t0 = time.perf_counter()
    sess.sweep(positions=[P - 1], keep_maps=False)  # builds the stepper (prefix K/V, checks)
    print(f"  cone stepper set-up + last position: {time.perf_counter() - t0:.1f} s")
    times = {}
    for i in pos:
        t0 = time.perf_counter()
        atlas = sess.sweep(positions=[i], keep_maps=False)
        times[i] = time.perf_counter() - t0
        assert atlas.done[:, i].all()
        print(
            f"  cone sweep, all {S} rows at position {i} ({P - i} positions downstream): "
            f"{times[i]:.1f} s"
        )
    xs = [P - i for i in pos]
    ys = [times[i] for i in pos]
    if len(pos) >= 2:  # t(i) = c + a·(P - i): least squares
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        a = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / max(
            1e-12, sum((x - mx) ** 2 for x in xs)
        )
        c = max(0.0, my - a * mx)
    else:
        a, c = ys[0] / xs[0], 0.0
    total = c * P + a * P * (P + 1) / 2
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"full cone sweep, extrapolated: {total / 3600:.1f} h (fit: {c:.2f} s per source "
        f"position + {a * 1e3:.1f} ms per downstream position); peak memory of this process "
        f"so far {peak:.2f} GiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
