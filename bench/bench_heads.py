"""Benchmark: the head sweep (site="head") against TransformerLens's head patching.

In one process, on one GPT-2-small-shaped random model (12 layers, d 768, 12 heads, vocab 50257),
a 24-token prompt of random ids and a 24-token source prompt, patch each attention head's output
``z`` (TransformerLens's ``hook_z``) from the source run into the prompt's run, one cell at a
time, and get per cell:

* the logit difference logit[good] - logit[bad] at the last position, and
* the total KL over positions, sum_j KL(base_j || new_j) (natural log).

Two sweeps, each timed from the token ids to the per-cell numbers (clean and source runs
included):

  by_pos   every (layer, head, pos): 12 × 12 × 24 = 3456 cells (the bar)
           ours: Session(prompt, source).sweep(kind="patch", site="head", keep_maps=False)
           TL:   patching.get_act_patch_attn_head_out_by_pos on a TransformerBridge of the same
                 weights, clean cache = the source run; TL's metric computes both numbers from
                 the full patched logits
  all_pos  every (layer, head) at all positions at once: 144 sources
           ours: sess.sweep_heads(kind="patch", positions="all", keep_maps=False)
           TL:   patching.get_act_patch_attn_head_out_all_pos

The methods run interleaved, ``--repeats`` rounds in rotating order (default 1: the TL by-pos
sweep alone takes minutes); the medians give the ratios. Bar: by_pos >= 4x faster than TL, and
both agree within 1e-4 on both metrics.

    python bench/bench_heads.py                  # the full benchmark (≈ 10 minutes on 2 cores)
    python bench/bench_heads.py --quick          # smoke run: 4 positions (576 cells)
    python bench/bench_heads.py --threads 2 --repeats 2
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

BAR_SPEEDUP, BAR_TOL = 4.0, 1e-4


def total_kl(base_logits: torch.Tensor, new_logits: torch.Tensor) -> torch.Tensor:
    """sum over positions of KL(base || new), natural log; inputs [1, P, V]."""
    base_lp = torch.log_softmax(base_logits[0], dim=-1)
    new_lp = torch.log_softmax(new_logits[0], dim=-1)
    return (base_lp.exp() * (base_lp - new_lp)).sum()


def run_ours(variant, lm, ids, src, positions, pair):
    """This package's head sweep, summaries only: (logit diff, total KL), TL's axis order."""
    sess = rw.Session(lm, ids, source=src)
    if variant == "all_pos":
        a = sess.sweep_heads(kind="patch", positions="all", logit_diff=pair, keep_maps=False)
        return a.logit_diff, a.total_kl  # [L, H]
    a = sess.sweep(kind="patch", site="head", positions=positions, logit_diff=pair, keep_maps=False)
    sel = (slice(None), slice(None), positions)
    # ours [L, H, P] -> TL's [L, P, H]
    return a.logit_diff[sel].transpose(0, 2, 1), a.total_kl[sel].transpose(0, 2, 1)


def run_tl(variant, bridge, ids, src, positions, pair):
    import pandas as pd
    from transformer_lens import patching

    toks = torch.tensor([ids])
    base = bridge(toks)
    _, cache = bridge.run_with_cache(torch.tensor([src]))
    ld = []

    def metric(logits):  # once per cell, full logits [1, P, V]
        ld.append(float(logits[0, -1, pair[0]] - logits[0, -1, pair[1]]))
        return total_kl(base, logits)

    L, H = bridge.cfg.n_layers, bridge.cfg.n_heads
    if variant == "all_pos":
        kl = patching.get_act_patch_attn_head_out_all_pos(bridge, toks, cache, metric)
        return np.array(ld, np.float32).reshape(L, H), kl.numpy()
    if len(positions) == len(ids):
        kl = patching.get_act_patch_attn_head_out_by_pos(bridge, toks, cache, metric)
    else:  # a subset of positions (--quick): TL's index_df form, same (layer, pos, head) order
        df = pd.DataFrame(
            [(k, i, h) for k in range(L) for i in positions for h in range(H)],
            columns=["layer", "pos", "head"],
        )
        kl = patching.generic_activation_patch(
            bridge,
            toks,
            cache,
            metric,
            patch_setter=patching.layer_pos_head_vector_patch_setter,
            activation_name="z",
            index_df=df,
        )
    shape = (L, len(positions), H)
    return np.array(ld, np.float32).reshape(shape), kl.reshape(shape).numpy()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="4 positions (576 cells)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N)")
    ap.add_argument("--repeats", type=int, default=1, help="interleaved rounds (default 1)")
    ap.add_argument("--variants", default="by_pos,all_pos", help="comma list: by_pos, all_pos")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    variants = [v for v in args.variants.split(",") if v]

    L, H, P, V = 12, 12, 24, 50257
    print("command:", " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]))
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpus {os.cpu_count()}, "
        f"loadavg at start {os.getloadavg()}"
    )
    hf, tok = tiny_model(
        "gpt2", n_layers=L, d_model=768, n_heads=H, vocab_size=V, n_ctx=64, seed=args.seed
    )
    ids = random_ids(P, V, seed=args.seed + 1)
    src = random_ids(P, V, seed=args.seed + 2)
    pair = (ids[-2], ids[3])  # any two tokens
    positions = [0, 7, 15, 23] if args.quick else list(range(P))
    lm = rw.load_model(hf, tok)
    from transformer_lens.model_bridge import TransformerBridge

    hf_copy = copy.deepcopy(hf)  # boot_transformers rewires the module it is given
    hf_copy.config.architectures = [type(hf).__name__]
    tl_tok = copy.deepcopy(tok)  # local tokenizer: stop TL re-loading it by name
    tl_tok.init_kwargs["name_or_path"] = "residual-widgets-local-word-tokenizer"
    tl_tok.init_kwargs["add_bos_token"] = True
    bridge = TransformerBridge.boot_transformers("gpt2", hf_model=hf_copy, tokenizer=tl_tok)
    bridge.eval()
    print(
        f"model: gpt2-shaped random, L={L} d=768 heads={H} vocab={V}; prompt {P} tokens; "
        f"patch z from a source prompt; by_pos: {L}x{H}x{len(positions)} = "
        f"{L * H * len(positions)} cells, all_pos: {L * H} sources; {args.repeats} round(s)"
    )
    runners = {}
    for v in variants:
        runners[(v, "ours")] = lambda v=v: run_ours(v, lm, ids, src, positions, pair)
        runners[(v, "tl")] = lambda v=v: run_tl(v, bridge, ids, src, positions, pair)
    keys = list(runners)
    with torch.no_grad():  # warm-up, untimed
        hf(torch.tensor([ids]))
        bridge(torch.tensor([ids]))
    times = {k: [] for k in keys}
    results = {}
    with torch.no_grad():
        for r in range(args.repeats):
            for key in keys[r % len(keys) :] + keys[: r % len(keys)]:
                t0 = time.perf_counter()
                results[key] = runners[key]()
                times[key].append(time.perf_counter() - t0)
                print(
                    f"  round {r + 1} {key[0]:>7} {key[1]:>4}: {times[key][-1]:8.2f} s   "
                    f"(loadavg {os.getloadavg()[0]:.2f})",
                    flush=True,
                )
    ok = True
    print()
    for v in variants:
        med = {m: statistics.median(times[(v, m)]) for m in ("ours", "tl")}
        (ld_o, kl_o), (ld_t, kl_t) = results[(v, "ours")], results[(v, "tl")]
        dld = float(np.abs(ld_o.astype(np.float64) - ld_t).max())
        dkl = float(np.abs(kl_o.astype(np.float64) - kl_t).max())
        speed = med["tl"] / med["ours"]
        n = ld_o.size
        print(
            f"{v}: ours {med['ours']:.2f} s, TL {med['tl']:.2f} s ({n} cells: "
            f"{1e3 * med['ours'] / n:.1f} vs {1e3 * med['tl'] / n:.1f} ms/cell); "
            f"ratio TL/ours {speed:.2f}x; largest disagreement logit diff {dld:.2e}, "
            f"total KL {dkl:.2e} (scale: logit diff {ld_t.min():.3g} .. {ld_t.max():.3g}, "
            f"total KL up to {kl_t.max():.3g})"
        )
        if v == "by_pos":
            ok = speed >= BAR_SPEEDUP and max(dld, dkl) < BAR_TOL
            verdict = "PASS" if ok else "FAIL"
            print(
                f"{verdict}: head sweep {speed:.2f}x faster than TransformerLens "
                f"(bar >= {BAR_SPEEDUP}x); largest disagreement {max(dld, dkl):.2e} "
                f"(bar < {BAR_TOL:g})" + ("  [--quick: not the benchmark's shape]" * args.quick)
            )
    print(f"loadavg at end {os.getloadavg()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
