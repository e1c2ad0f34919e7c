"""Benchmark: the causal-cone sweep against TransformerLens and a one-trace-per-cell loop.

In one process, on one GPT-2-small-shaped random model (12 layers, d 768, 12 heads, vocab 50257),
one 24-token prompt of random ids, zero-ablate the residual entering block n at position i for
every n in 0..11 and every position (288 cells), and get per cell:

* the total KL over positions, sum_j KL(clean_j || new_j) (natural log), and
* the logit difference logit[good] - logit[bad] at the last position.

Methods (each timed from the prompt's token ids to the per-cell numbers, clean run included):

  cone  residual_widgets Session(...).sweep(method="cone", keep_maps=False)
  tl    transformer_lens.patching.get_act_patch_resid_pre on a TransformerBridge of the same
        weights, "clean cache" = zeros, metric = the total KL (TL calls it once per cell on the
        full logits; the logit difference is read off the same logits)
  loop  residual_widgets Session(...).sweep(method="loop"): one nnsight trace per cell
  batch residual_widgets Session(...).sweep(method="batch"): many cells per trace, metrics
        reduced inside it (the remote sweep path; not run unless named in --methods)

The methods run interleaved, ``--repeats`` rounds in rotating order; the medians give the ratios.
Bar: cone >= 4x faster than TL, and every pair agrees within 1e-4 on both metrics.

    python bench/bench_sweep.py                # the full benchmark (several minutes on 2 cores)
    python bench/bench_sweep.py --quick        # smoke run: 4 positions (48 cells), 1 round
    python bench/bench_sweep.py --threads 2 --repeats 3
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import argparse
import copy
import shlex
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _flops import cone_sweep_flops, matmul_peak  # bench/ is not a package

BAR_SPEEDUP, BAR_TOL = 4.0, 1e-4


def total_kl(base_logits: torch.Tensor, new_logits: torch.Tensor) -> torch.Tensor:
    """sum over positions of KL(base || new), natural log; inputs [1, P, V] (float32, as TL
    runs)."""
    base_lp = torch.log_softmax(base_logits[0], dim=-1)
    new_lp = torch.log_softmax(new_logits[0], dim=-1)
    return (base_lp.exp() * (base_lp - new_lp)).sum()


def run_engine(method, lm, ids, positions, pair, L):
    """This package's sweep with ``method`` (cone, loop or batch), summaries only."""
    sess = rw.Session(lm, ids)
    a = sess.sweep(
        kind="zero",
        rows=range(L),
        positions=positions,
        logit_diff=pair,
        method=method,
        keep_maps=False,
    )
    return a.total_kl[:L][:, positions], a.logit_diff[:L][:, positions]


def run_tl(bridge, ids, positions, pair, L):
    import pandas as pd
    from transformer_lens import ActivationCache, patching

    toks = torch.tensor([ids])
    base = bridge(toks)
    zeros = ActivationCache(
        {
            f"blocks.{k}.hook_resid_pre": torch.zeros(1, len(ids), bridge.cfg.d_model)
            for k in range(L)
        },
        bridge,
    )
    ld = []

    def metric(logits):  # once per cell, full logits [1, P, V]
        ld.append(float(logits[0, -1, pair[0]] - logits[0, -1, pair[1]]))
        return total_kl(base, logits)

    if len(positions) == len(ids):  # the plain call: every (layer, pos)
        kl = patching.get_act_patch_resid_pre(bridge, toks, zeros, metric)
    else:  # a subset of positions (--quick): TL's index_df form, layer-major like the plain call
        df = pd.DataFrame([(n, i) for n in range(L) for i in positions], columns=["layer", "pos"])
        kl = patching.generic_activation_patch(  # what get_act_patch_resid_pre partially applies
            bridge,
            toks,
            zeros,
            metric,
            patch_setter=patching.layer_pos_patch_setter,
            activation_name="resid_pre",
            index_df=df,
        )
    return (
        kl.reshape(L, len(positions)).numpy(),
        np.array(ld, np.float32).reshape(L, len(positions)),
    )


def load(args):
    """The model, the prompt's ids and a description, for ``--model``."""
    if args.model == "smollm2":
        from residual_widgets.lecture import load_prompts

        lm = rw.load_model("smollm2-135m")
        text = " ".join(load_prompts("both", 2))  # two corpus sentences, cut to 33 tokens
        ids = list(lm.tokenizer(text, add_special_tokens=False)["input_ids"])[:33]
        return lm, ids, f"bundled SmolLM2-135M (L={lm.n_layers}, d={lm.d_model})"
    V = 50257
    hf, tok = tiny_model(
        "gpt2", n_layers=12, d_model=768, n_heads=12, vocab_size=V, n_ctx=64, seed=args.seed
    )
    ids = random_ids(24, V, seed=args.seed + 1)
    return rw.load_model(hf, tok), ids, f"gpt2-shaped random, L=12 d=768 heads=12 vocab={V}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="4 positions (48 cells), 1 round")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N)")
    ap.add_argument(
        "--repeats", type=int, default=None, help="interleaved rounds (default 2; 1 with --quick)"
    )
    ap.add_argument("--methods", default="cone,tl,loop", help="comma list of cone, tl, loop, batch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--model",
        default="gpt2-shape",
        choices=("gpt2-shape", "smollm2"),
        help="gpt2-shape: random GPT-2-small shape, 24 tokens (the benchmark); smollm2: the "
        "bundled SmolLM2-135M on a 33-token corpus prompt (no TransformerLens)",
    )
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = args.repeats or (1 if args.quick else 2)
    methods = [m for m in args.methods.split(",") if m]

    if args.model == "smollm2":
        methods = [m for m in methods if m != "tl"]  # TL's bridge is checked on the GPT-2 shape
    print("command:", " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]))
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpus {os.cpu_count()}, "
        f"loadavg at start {os.getloadavg()}"
    )
    if os.getloadavg()[0] > (os.cpu_count() or 1) - 0.5 and torch.get_num_threads() > 1:
        print(
            "WARNING: the machine is busy and torch runs >1 thread: oversubscribed intra-op "
            "threads can slow every method several-fold (seen here: 10x); consider --threads 1"
        )

    lm, ids, what = load(args)
    L, P = lm.n_layers, len(ids)
    hf, tok = lm.hf, lm.tokenizer
    pair = (ids[-2], ids[3])  # any two tokens
    positions = [0, 7, 15, 23] if args.quick else list(range(P))
    bridge = None
    if "tl" in methods:
        from transformer_lens.model_bridge import TransformerBridge

        hf_copy = copy.deepcopy(hf)  # boot_transformers rewires the module it is given
        hf_copy.config.architectures = [type(hf).__name__]
        tl_tok = copy.deepcopy(tok)  # local tokenizer: stop TL re-loading it by name
        tl_tok.init_kwargs["name_or_path"] = "residual-widgets-local-word-tokenizer"
        tl_tok.init_kwargs["add_bos_token"] = True
        bridge = TransformerBridge.boot_transformers("gpt2", hf_model=hf_copy, tokenizer=tl_tok)
        bridge.eval()
    print(
        f"model: {what}; prompt {P} tokens; "
        f"zero-ablate resid rows 0..{L - 1} x {len(positions)} positions = "
        f"{L * len(positions)} cells; {repeats} interleaved round(s)"
    )

    runners = {
        m: (lambda m=m: run_engine(m, lm, ids, positions, pair, L))
        for m in ("cone", "loop", "batch")
    }
    runners["tl"] = lambda: run_tl(bridge, ids, positions, pair, L)
    with torch.no_grad():  # warm-up (allocators, first-call costs), untimed
        hf(torch.tensor([ids]))
        if bridge is not None:
            bridge(torch.tensor([ids]))
    peak_before = matmul_peak() if "cone" in methods else 0.0
    times = {m: [] for m in methods}
    results = {}
    with torch.no_grad():
        for r in range(repeats):
            order = methods[r % len(methods) :] + methods[: r % len(methods)]
            for m in order:
                t0 = time.perf_counter()
                results[m] = runners[m]()
                times[m].append(time.perf_counter() - t0)
                print(
                    f"  round {r + 1} {m:>4}: {times[m][-1]:8.2f} s   "
                    f"(loadavg {os.getloadavg()[0]:.2f})",
                    flush=True,
                )

    med = {m: statistics.median(t) for m, t in times.items()}
    print("\nseconds (median [min..max]):")
    for m in methods:
        print(
            f"  {m:>4}: {med[m]:8.2f}  [{min(times[m]):.2f} .. {max(times[m]):.2f}]"
            f"  = {1e3 * med[m] / (L * len(positions)):.1f} ms/cell"
        )
    ok = True
    if "cone" in med:
        for m in ("tl", "loop", "batch"):
            if m in med:
                print(
                    f"  ratio {m}/cone: {med[m] / med['cone']:.2f}x (median), "
                    f"{min(times[m]) / min(times['cone']):.2f}x (min)"
                )
    print("\nlargest disagreement (total KL, logit diff):")
    names = list(results)
    worst = 0.0
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            x, y = results[names[a]], results[names[b]]
            dk = float(np.abs(x[0].astype(np.float64) - y[0]).max())
            dl = float(np.abs(x[1].astype(np.float64) - y[1]).max())
            worst = max(worst, dk, dl)
            print(f"  {names[a]} vs {names[b]}: {dk:.2e}, {dl:.2e}")
    if "cone" in results:
        kl = results["cone"][0]
        print(f"  (scale: cone total KL range {kl.min():.3g} .. {kl.max():.3g} nats)")
    if "cone" in med:
        flops = cone_sweep_flops(lm, P, [(n, i) for n in range(L) for i in positions])
        peak_after = matmul_peak()
        peak = max(peak_before, peak_after)  # the conservative fraction on a shared machine
        achieved = flops / med["cone"] / 1e9
        print(
            f"\ncone arithmetic: {flops / 1e9:.1f} GFLOP in {med['cone']:.2f} s = "
            f"{achieved:.1f} GFLOP/s; float32 matmul peak ({torch.get_num_threads()} threads) "
            f"measured before / after the rounds: {peak_before:.1f} / {peak_after:.1f} GFLOP/s "
            f"-> {achieved / peak:.0%} of the higher"
        )
    print(f"loadavg at end {os.getloadavg()}")
    if "tl" in med and "cone" in med:
        speedup = med["tl"] / med["cone"]
        ok = speedup >= BAR_SPEEDUP and worst < BAR_TOL
        print(
            f"\n{'PASS' if ok else 'FAIL'}: cone {speedup:.2f}x faster than TransformerLens "
            f"(bar >= {BAR_SPEEDUP}x); largest disagreement {worst:.2e} (bar < {BAR_TOL:g})"
            + ("  [--quick: not the benchmark's shape]" if args.quick else "")
        )
    else:
        print(f"\n(no PASS/FAIL: needs both cone and tl; largest disagreement {worst:.2e})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
