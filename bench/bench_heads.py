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

The machine this runs on is often shared, so the by_pos sweeps are interleaved: the positions
are cut into ``--slices`` groups (default 6) and for each group both methods run, alternating
which goes first; each method's times are summed over the groups, so both see the same load.
Each method's setup (our session: clean and source runs and the stepper; TL's base logits and
source cache) runs once, in its first slice, and is timed. Bar: by_pos >= 4x faster than TL,
and both agree within 1e-4 on both metrics.

    python bench/bench_heads.py                  # the full benchmark (≈ 10 minutes on 2 idle cores)
    python bench/bench_heads.py --quick          # smoke run: 4 positions (576 cells)
    python bench/bench_heads.py --threads 1      # on a busy machine: no oversubscribed threads
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import argparse
import copy
import shlex
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


class Ours:
    """This package's head sweeps, summaries only; the session (clean and source runs, stepper)
    is built on first use, inside the timed region."""

    def __init__(self, lm, ids, src, pair):
        self.lm, self.ids, self.src, self.pair, self.sess = lm, ids, src, pair, None

    def _session(self):
        if self.sess is None:
            self.sess = rw.Session(self.lm, self.ids, source=self.src)
        return self.sess

    def by_pos(self, positions):
        """(logit diff, total KL) ``[L, len(positions), H]`` (TL's axis order)."""
        a = self._session().sweep(
            kind="patch", site="head", positions=positions, logit_diff=self.pair, keep_maps=False
        )
        sel = (slice(None), slice(None), positions)
        return a.logit_diff[sel].transpose(0, 2, 1), a.total_kl[sel].transpose(0, 2, 1)

    def all_pos(self):
        a = self._session().sweep_heads(
            kind="patch", positions="all", logit_diff=self.pair, keep_maps=False
        )
        return a.logit_diff, a.total_kl  # [L, H]


class TL:
    """TransformerLens's head patching; the base logits and the source cache are computed on
    first use, inside the timed region."""

    def __init__(self, bridge, ids, src, pair):
        self.bridge, self.ids, self.src, self.pair, self.ready = bridge, ids, src, pair, False

    def _prepare(self):
        if not self.ready:
            self.toks = torch.tensor([self.ids])
            self.base = self.bridge(self.toks)
            _, self.cache = self.bridge.run_with_cache(torch.tensor([self.src]))
            self.ready = True

    def _metric(self, ld):
        def metric(logits):  # once per cell, full logits [1, P, V]
            ld.append(float(logits[0, -1, self.pair[0]] - logits[0, -1, self.pair[1]]))
            return total_kl(self.base, logits)

        return metric

    def by_pos(self, positions):
        import pandas as pd
        from transformer_lens import patching

        self._prepare()
        L, H, ld = self.bridge.cfg.n_layers, self.bridge.cfg.n_heads, []
        if len(positions) == len(self.ids):
            kl = patching.get_act_patch_attn_head_out_by_pos(
                self.bridge, self.toks, self.cache, self._metric(ld)
            )
        else:  # a slice of positions: TL's index_df form, the same (layer, pos, head) order
            df = pd.DataFrame(
                [(k, i, h) for k in range(L) for i in positions for h in range(H)],
                columns=["layer", "pos", "head"],
            )
            kl = patching.generic_activation_patch(
                self.bridge,
                self.toks,
                self.cache,
                self._metric(ld),
                patch_setter=patching.layer_pos_head_vector_patch_setter,
                activation_name="z",
                index_df=df,
            )
        shape = (L, len(positions), H)
        return np.array(ld, np.float32).reshape(shape), kl.reshape(shape).numpy()

    def all_pos(self):
        from transformer_lens import patching

        self._prepare()
        ld = []
        kl = patching.get_act_patch_attn_head_out_all_pos(
            self.bridge, self.toks, self.cache, self._metric(ld)
        )
        L, H = kl.shape
        return np.array(ld, np.float32).reshape(L, H), kl.numpy()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="4 positions (576 cells)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N)")
    ap.add_argument(
        "--slices", type=int, default=6, help="interleave the by_pos sweeps in N position slices"
    )
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
    n_slices = max(1, min(args.slices, len(positions)))
    slices = [list(a) for a in np.array_split(positions, n_slices)]
    print(
        f"model: gpt2-shaped random, L={L} d=768 heads={H} vocab={V}; prompt {P} tokens; "
        f"patch z from a source prompt; by_pos: {L}x{H}x{len(positions)} = "
        f"{L * H * len(positions)} cells in {n_slices} interleaved slice(s) of positions; "
        f"all_pos: {L * H} sources"
    )
    with torch.no_grad():  # warm-up, untimed
        hf(torch.tensor([ids]))
        bridge(torch.tensor([ids]))
    ours, tl = Ours(lm, ids, src, pair), TL(bridge, ids, src, pair)
    times, results = {}, {}

    def timed(key, fn, *a):
        t0 = time.perf_counter()
        out = fn(*a)
        dt = time.perf_counter() - t0
        times[key] = times.get(key, 0.0) + dt
        what = f"positions {a[0][0]}..{a[0][-1]}" if a else ""
        print(
            f"  {key[0]:>7} {key[1]:>4} {what:<18}: {dt:8.2f} s   "
            f"(loadavg {os.getloadavg()[0]:.2f})",
            flush=True,
        )
        return out

    ok = True
    with torch.no_grad():
        if "by_pos" in variants:  # slice by slice, alternating which method goes first
            parts = {"ours": [], "tl": []}
            for s_i, sl in enumerate(slices):
                order = [("ours", ours), ("tl", tl)][:: 1 if s_i % 2 == 0 else -1]
                for name, m in order:
                    parts[name].append(timed(("by_pos", name), m.by_pos, sl))
            for name in parts:
                results[("by_pos", name)] = tuple(
                    np.concatenate([p[j] for p in parts[name]], axis=1) for j in (0, 1)
                )
        if "all_pos" in variants:
            for name, m in [("tl", tl), ("ours", ours)]:
                results[("all_pos", name)] = timed(("all_pos", name), m.all_pos)
    print()
    for v in variants:
        (ld_o, kl_o), (ld_t, kl_t) = results[(v, "ours")], results[(v, "tl")]
        dld = float(np.abs(ld_o.astype(np.float64) - ld_t).max())
        dkl = float(np.abs(kl_o.astype(np.float64) - kl_t).max())
        t_o, t_t = times[(v, "ours")], times[(v, "tl")]
        n = ld_o.size
        print(
            f"{v}: ours {t_o:.2f} s, TL {t_t:.2f} s ({n} cells: {1e3 * t_o / n:.1f} vs "
            f"{1e3 * t_t / n:.1f} ms/cell); ratio TL/ours {t_t / t_o:.2f}x; largest "
            f"disagreement logit diff {dld:.2e}, total KL {dkl:.2e} (scale: logit diff "
            f"{ld_t.min():.3g} .. {ld_t.max():.3g}, total KL up to {kl_t.max():.3g})"
        )
        if v == "by_pos":
            ok = t_t / t_o >= BAR_SPEEDUP and max(dld, dkl) < BAR_TOL
            print(
                f"{'PASS' if ok else 'FAIL'}: head sweep {t_t / t_o:.2f}x faster than "
                f"TransformerLens (bar >= {BAR_SPEEDUP}x); largest disagreement "
                f"{max(dld, dkl):.2e} (bar < {BAR_TOL:g})"
                + ("  [--quick: not the benchmark's shape]" * args.quick)
            )
    print(f"loadavg at end {os.getloadavg()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
