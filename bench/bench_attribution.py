"""Benchmark: attribution patching (Session.attribute) against the exact sweep.

In one process, for each model, kind and site: time ``sess.attribute(kind, site)`` (first
order, one traced forward + backward; median of ``--repeats``), ``sess.attribute(...,
correction="block")`` (the first block after each cell computed exactly) and the exact
``sess.sweep(kind, site)`` (the causal-cone sweep, summaries only), and correlate each estimate
with the exact values over every source cell: the logit difference at the last position and the
summed Δ log p of the actual next tokens (Pearson r and Spearman ρ).

Models and prompts:

  smollm2  the bundled SmolLM2-135M, an IOI-style 33-token prompt ("... John gave a bottle of
           cold water to", logit diff " Mary" − " John"); patch source: the same prompt with
           the second " John" replaced by " Mary" (the answer flips)
  gpt2     a GPT-2-small-shaped random model (12 layers, d 768, vocab 50257), 24 random
           tokens; patch source: the same tokens with positions 6 and 12 changed

``--prompts N`` adds correlations over N IOI prompts (templates × name pairs, patch, all sites)
and N public-domain corpus prompts (the package's prompts.json, the first ``--corpus-tokens``
tokens, zero and mean, all sites, Δ log p only) on SmolLM2: the median and the spread of the
per-prompt correlations.

Bars (issue 11): attribute ≥ 20× faster than the exact sweep; Pearson r ≥ 0.5 with the exact
logit difference for patch on attn_out of the IOI pair.

    python bench/bench_attribution.py                # both models, all kinds and sites (~5 min)
    python bench/bench_attribution.py --quick        # patch and zero on attn_out and resid
    python bench/bench_attribution.py --prompts 20   # + 20 IOI and 20 corpus prompts (longer)
    python bench/bench_attribution.py --widget       # the widget: explore() -> estimate shown
    python bench/bench_attribution.py --paths --threads 1 --kinds zero,patch  # nnsight vs autograd

On a busy machine use ``--threads 1``: oversubscribed intra-op threads slow the many small
operations of attribute() far more than the sweep's large matmuls.

Measured (2026-11-27, this 2-core machine shared with other jobs, ``--threads 1``, load 2–4):

    SmolLM2, 33 tokens   atp s  sweep s  ratio | atp: ld r ρ,  lp r ρ  | block: ld r ρ,  lp r ρ
      patch attn_out      0.44     2.3    5.3x | +0.86 +0.88, +0.63 +0.93 | +0.94 +0.94, +0.60 +0.96
      patch resid         0.46     2.3    5.1x | +0.67 +0.95, +0.35 +0.85 | +0.69 +0.97, +0.35 +0.85
      zero attn_out       0.44    25.3   57.1x | +0.56 +0.74, +0.50 +0.80 | +0.50 +0.79, +0.51 +0.84
      zero resid          0.43    30.3   70.0x | +0.25 +0.02, -0.12 +0.01 | +0.20 +0.14, +0.09 +0.12
    GPT-2-small shape, 24 tokens (load 4): zero/mean, all sites: 0.33–0.66 s against 6.6–10.1 s,
      15–27x; correlations 0.75–0.99 except resid Δ log p (0.41–0.70)

The widget (``--widget``, 2026-11-27, ``--threads 1``, load 6.7 on 2 cores, medians of 3):
seconds from calling ``rw.explore`` (model loaded) to its return / to the ``estimate`` trait
being set / to the sweep's first exact cell — zero on resid 0.69 / 1.38 / 5.58 (no token pair:
overview Σ Δlog p), patch on attn_out with the IOI pair 1.60 / 2.66 / 4.01. Under that load
``attribute`` alone takes 0.86 s (0.43 s at load 2–4), so the estimate is set about one
``attribute`` after ``explore`` returns: the sweep waits for it.

attribute() on a local session (``--paths``, 2026-11-27, ``--threads 1``, load 2.2–2.5, medians
of 5 calls alternated with the other path): the nnsight trace 0.410–0.422 s, plain autograd
(:mod:`residual_widgets.attribution_local`, the local default since) 0.398–0.415 s — 1.00–1.04×,
the same cost, and bit-identical estimates (max |Δ| 0) for zero and patch on all three sites.

(a patch sweep skips the cells before the first differing token, hence its small ratio.) Over
20 IOI prompts (patch) and 20 corpus prompts of 12 tokens (zero, mean), median Pearson/Spearman:
patch attn_out logit diff +0.86/+0.92 (min r +0.29), mlp_out +0.29/+0.90, resid +0.44/+0.66;
Δ log p zero attn_out +0.27/+0.78, mlp_out +0.21/+0.73, resid +0.03/+0.10; mean attn_out
+0.17/+0.90, mlp_out +0.07/+0.61, resid +0.06/+0.03. See residual_widgets/attribution.py.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TQDM_DISABLE", "1")

import argparse
import itertools
import json
import shlex
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

try:
    import residual_widgets as rw
except ImportError:  # running from a checkout without an install
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import residual_widgets as rw
from residual_widgets.attribution import pearson, spearman
from residual_widgets.tiny import random_ids, tiny_model

BAR_SPEEDUP, BAR_PEARSON = 20.0, 0.5
IOI_33 = (
    "When Mary and John went to the store after a long and tiring day at work in the old "
    "part of the city, {} gave a bottle of cold water to"
)
TEMPLATES = [
    "When {a} and {b} went to the store, {s} gave a drink to",
    "Then, {a} and {b} had a long argument. Afterwards {s} said to",
    "After {a} and {b} went to the park, {s} gave a ball to",
    "While {a} and {b} were working at the office, {s} gave a book to",
    "Friends {a} and {b} found a bag at the station. {s} gave it to",
]
NAMES = [" Mary", " John", " Tom", " Anna", " David", " Sarah", " Paul", " Lisa", " Mark", " Kate"]


def corr(est: np.ndarray, exact: np.ndarray) -> tuple[float, float]:
    return pearson(est, exact), spearman(est, exact)


def fmt(rs) -> str:
    return " ".join(f"{v:+.2f}" if np.isfinite(v) else "  nan" for v in rs)


def measure(sess, kind: str, site: str, repeats: int, block: bool) -> dict:
    """Time and correlate the estimates of one (kind, site) against the exact sweep
    (attribute: the median of ``repeats`` calls; the sweep and the block correction: one)."""
    t_atp = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        attr = sess.attribute(kind, site)
        t_atp.append(time.perf_counter() - t0)
    out = {"t_atp": statistics.median(t_atp)}
    if block:
        t0 = time.perf_counter()
        blk = sess.attribute(kind, site, correction="block")
        out["t_block"] = time.perf_counter() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        atlas = sess.sweep(kind=kind, site=site, keep_maps=False)
        out["t_sweep"] = time.perf_counter() - t0
    exact_lp = atlas.logprob_delta.sum(-1)
    for name, est in (("atp", attr), ("block", blk if block else None)):
        if est is None:
            continue
        out[name] = {"lp": corr(est.logprob_delta, exact_lp)}
        if atlas.logit_diff is not None:
            out[name]["ld"] = corr(est.logit_diff, atlas.logit_diff)
    out["method"] = atlas.method
    return out


def run_model(label, sess, kinds, sites, repeats, block, rows):
    print(
        f"\n== {label}: L={sess.n_layers}, P={sess.n_positions} tokens, {sess.n_rows} rows ==",
        flush=True,
    )
    print(
        f"{'kind':>6} {'site':>8} | {'atp s':>6} {'block s':>7} {'sweep s':>7} | "
        f"{'sweep/atp':>9} {'sweep/blk':>9} | atp: ld r ρ, lp r ρ   | block: ld r ρ, lp r ρ"
    )
    for kind, site in itertools.product(kinds, sites):
        m = measure(sess, kind, site, repeats, block)
        ld_a = fmt(m["atp"].get("ld", (np.nan, np.nan)))
        ld_b = fmt(m["block"].get("ld", (np.nan, np.nan))) if block else ""
        print(
            f"{kind:>6} {site:>8} | {m['t_atp']:6.2f} {m.get('t_block', np.nan):7.2f} "
            f"{m['t_sweep']:7.1f} | {m['t_sweep'] / m['t_atp']:8.1f}x "
            f"{m['t_sweep'] / m.get('t_block', np.nan):8.1f}x | {ld_a}, {fmt(m['atp']['lp'])} "
            f"| {ld_b}, {fmt(m['block']['lp']) if block else ''} | load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        rows.append((label, kind, site, m))


def ioi_pairs(n: int):
    """n (clean, source, pair) IOI prompts: clean '... A and B ..., B gave ... to' (answer A),
    source with the second B replaced by A (answer B); name pairs and templates rotate."""
    perms = list(itertools.permutations(NAMES, 2))
    out = []
    for j in range(n):
        a, b = perms[(7 * j) % len(perms)]
        tmpl = TEMPLATES[j % len(TEMPLATES)]
        out.append(
            (
                tmpl.format(a=a.strip(), b=b.strip(), s=b.strip()),
                tmpl.format(a=a.strip(), b=b.strip(), s=a.strip()),
                (a, b),
            )
        )
    return out


def prompt_study(lm, n: int, corpus_tokens: int):
    print(
        f"\n== SmolLM2 over {n} IOI prompts (patch) and {n} corpus prompts "
        f"(first {corpus_tokens} tokens; zero, mean) ==",
        flush=True,
    )
    per = {}
    t0 = time.perf_counter()
    for clean, source, pair in ioi_pairs(n):
        sess = rw.Session(lm, clean, source=source, logit_diff=pair)
        for site in ("attn_out", "mlp_out", "resid"):
            m = measure(sess, "patch", site, 1, False)
            per.setdefault(("patch", site, "ld"), []).append(m["atp"]["ld"])
            per.setdefault(("patch", site, "lp"), []).append(m["atp"]["lp"])
    data = json.loads((Path(rw.__file__).parent / "data" / "prompts.json").read_text())
    texts = [t for pair in zip(data["moby_dick"], data["sotu"], strict=False) for t in pair][:n]
    for text in texts:
        ids = lm.tokenizer(text, add_special_tokens=False)["input_ids"][:corpus_tokens]
        sess = rw.Session(lm, ids)
        for kind, site in itertools.product(("zero", "mean"), ("attn_out", "mlp_out", "resid")):
            m = measure(sess, kind, site, 1, False)
            per.setdefault((kind, site, "lp"), []).append(m["atp"]["lp"])
    print(
        f"({time.perf_counter() - t0:.0f} s) per-prompt correlation of the first-order "
        "estimate with the exact sweep: median [min .. max]"
    )
    for (kind, site, metric), vals in per.items():
        r = np.array([v[0] for v in vals])
        s = np.array([v[1] for v in vals])
        print(
            f"  {kind:>6} {site:>8} {metric}: Pearson {np.nanmedian(r):+.2f} "
            f"[{np.nanmin(r):+.2f} .. {np.nanmax(r):+.2f}]  Spearman {np.nanmedian(s):+.2f} "
            f"[{np.nanmin(s):+.2f} .. {np.nanmax(s):+.2f}]  ({len(vals)} prompts)"
        )
    return per


def widget_timing(repeats: int) -> None:
    """The widget's instant overview on SmolLM2 (33-token IOI prompt): seconds from calling
    ``rw.explore`` (model already loaded; it pins a cell, starts the sweep) to the ``estimate``
    trait being set, and to the sweep's first exact cell, per setting (median of ``repeats``)."""
    from residual_widgets.explore import _load, explore

    _load("smollm2-135m")  # loaded once, untimed (explore caches it by name)
    settings = [
        ("zero", "resid", None, None),
        ("patch", "attn_out", IOI_33.format("Mary"), (" Mary", " John")),
    ]
    print("\n== widget: rw.explore() -> estimate trait set -> first exact cell (SmolLM2) ==")
    head = f"{'explore s':>9} {'estimate s':>10} {'1st cell s':>10}"
    print(f"{'kind':>6} {'site':>8} | {head} | note")
    for kind, site, source, pair in settings:
        got = {"explore": [], "estimate": [], "cell": []}
        note = ""
        for _ in range(repeats + 1):  # the first round warms up (untimed)
            t0 = time.perf_counter()
            w = explore(IOI_33.format("John"), kind=kind, site=site, source=source, logit_diff=pair)
            t_ret = time.perf_counter() - t0
            w.send = lambda *a, **k: None
            t_est = t_cell = None
            while time.perf_counter() - t0 < 120 and (t_est is None or t_cell is None):
                now = time.perf_counter() - t0
                if t_est is None and w.estimate is not None:
                    t_est = now
                if t_cell is None and w.progress.get("done", 0) >= 1:
                    t_cell = now
                time.sleep(0.002)
            note = (w.estimate or {}).get("note") or (w.estimate or {}).get("caveat", "")[:40]
            w.close()
            w.wait()
            got["explore"].append(t_ret)
            got["estimate"].append(t_est if t_est is not None else float("nan"))
            got["cell"].append(t_cell if t_cell is not None else float("nan"))
        med = {k: statistics.median(v[1:]) for k, v in got.items()}
        print(
            f"{kind:>6} {site:>8} | {med['explore']:9.2f} {med['estimate']:10.2f} "
            f"{med['cell']:10.2f} | {note}",
            flush=True,
        )


def path_timing(kinds, sites, repeats: int) -> None:
    """``--paths``: attribute() on SmolLM2 (33 tokens) through the nnsight trace (forced) and
    through plain autograd (the local default), alternated call by call so both see the same
    load; medians, their ratio and the largest difference of the estimates."""
    from residual_widgets import attribution

    lm = rw.load_model("smollm2-135m")
    sess = rw.Session(
        lm, IOI_33.format("John"), source=IOI_33.format("Mary"), logit_diff=(" Mary", " John")
    )
    assert sess.n_positions == 33, sess.n_positions
    print(f"torch threads {torch.get_num_threads()}, loadavg at start {os.getloadavg()}")
    print(f"{'kind':>6} {'site':>8} | nnsight s  local s  ratio | max |Δ| ld, lp")
    for kind, site in itertools.product(kinds, sites):
        times = {True: [], False: []}
        got = {}
        for path in [True, False] * (repeats + 1):  # the first round is a warm-up
            attribution._NNSIGHT_LOCALLY = path
            t0 = time.perf_counter()
            got[path] = sess.attribute(kind, site)
            times[path].append(time.perf_counter() - t0)
        attribution._NNSIGHT_LOCALLY = False
        old, new = (statistics.median(times[p][1:]) for p in (True, False))
        d_ld = np.abs(got[True].logit_diff - got[False].logit_diff).max()
        d_lp = np.abs(got[True].logprob_delta - got[False].logprob_delta).max()
        print(
            f"{kind:>6} {site:>8} | {old:9.3f} {new:8.3f} {old / new:6.2f} | {d_ld:.1e} {d_lp:.1e}",
            flush=True,
        )
    print(f"loadavg at end {os.getloadavg()}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="patch and zero on attn_out and resid")
    ap.add_argument("--models", default="smollm2,gpt2", help="comma list of smollm2, gpt2")
    ap.add_argument("--kinds", default=None, help="comma list (default patch,zero,mean)")
    ap.add_argument("--sites", default=None, help="comma list (default attn_out,mlp_out,resid)")
    ap.add_argument("--repeats", type=int, default=3, help="timed attribute() calls (median)")
    ap.add_argument("--no-block", action="store_true", help="skip the block correction")
    ap.add_argument("--prompts", type=int, default=0, help="IOI and corpus prompts (SmolLM2)")
    ap.add_argument("--corpus-tokens", type=int, default=16)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N)")
    ap.add_argument(
        "--widget", action="store_true", help="only: explore() -> estimate set (SmolLM2)"
    )
    ap.add_argument(
        "--paths", action="store_true", help="only: attribute() nnsight vs autograd (SmolLM2)"
    )
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.widget:
        print(f"torch threads {torch.get_num_threads()}, loadavg at start {os.getloadavg()}")
        widget_timing(args.repeats)
        print(f"loadavg at end {os.getloadavg()}")
        return 0
    kinds = (args.kinds or ("patch,zero" if args.quick else "patch,zero,mean")).split(",")
    sites = (args.sites or ("attn_out,resid" if args.quick else "attn_out,mlp_out,resid")).split(
        ","
    )
    if args.paths:
        path_timing(kinds, sites, args.repeats)
        return 0
    print("command:", " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]))
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpus {os.cpu_count()}, "
        f"loadavg at start {os.getloadavg()}"
    )
    if os.getloadavg()[0] > (os.cpu_count() or 1) - 0.5 and torch.get_num_threads() > 1:
        print(
            "WARNING: the machine is busy and torch runs >1 thread: oversubscribed intra-op "
            "threads slow the many small operations of attribute() far more than the sweep's "
            "large matmuls (seen here: 0.3 s -> 5 s), which distorts the ratios; use --threads 1"
        )
    rows = []
    smol = None
    for model in [m for m in args.models.split(",") if m]:
        if model == "smollm2":
            smol = rw.load_model("smollm2-135m")
            sess = rw.Session(
                smol,
                IOI_33.format("John"),
                source=IOI_33.format("Mary"),
                logit_diff=(" Mary", " John"),
            )
            assert sess.n_positions == 33, sess.n_positions
            label = "SmolLM2-135M, IOI pair"
        elif model == "gpt2":
            hf, tok = tiny_model(
                "gpt2", n_layers=12, d_model=768, n_heads=12, vocab_size=50257, n_ctx=64, seed=0
            )
            ids = random_ids(24, 50257, seed=1)
            src = list(ids)
            src[6], src[12] = random_ids(2, 50257, seed=2)
            sess = rw.Session(rw.load_model(hf, tok), ids, source=src, logit_diff=(ids[-2], ids[3]))
            label = "GPT-2-small shape (random weights)"
        else:
            raise SystemExit(f"unknown model {model!r}")
        sess.stepper()  # built and self-checked, untimed
        sess.attribute("zero", "mlp_out")  # warm-up, untimed
        run_model(label, sess, kinds, sites, args.repeats, not args.no_block, rows)
    if args.prompts:
        prompt_study(smol or rw.load_model("smollm2-135m"), args.prompts, args.corpus_tokens)
    print(f"\nloadavg at end {os.getloadavg()}")
    ok = True
    # a patch sweep skips the cells before the first token where the prompts differ (their
    # effect is exactly 0), so its ratio depends on the prompt pair; the bar is on the kinds
    # whose sweep computes every cell
    speedups = [m["t_sweep"] / m["t_atp"] for _, kind, _, m in rows if kind in ("zero", "mean")]
    if speedups:
        worst = min(speedups)
        ok &= worst >= BAR_SPEEDUP
        print(
            f"{'PASS' if worst >= BAR_SPEEDUP else 'FAIL'}: attribute is {worst:.1f}x to "
            f"{max(speedups):.1f}x faster than the exact all-cells sweep (zero, mean; bar >= "
            f"{BAR_SPEEDUP:g}x)"
        )
    ioi = [
        m
        for label, kind, site, m in rows
        if label.startswith("SmolLM2") and kind == "patch" and site == "attn_out"
    ]
    if ioi:
        r = ioi[0]["atp"]["ld"][0]
        ok &= r >= BAR_PEARSON
        print(
            f"{'PASS' if r >= BAR_PEARSON else 'FAIL'}: patch on attn_out of the IOI pair, "
            f"Pearson r = {r:.2f} with the exact logit difference (bar >= {BAR_PEARSON})"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
