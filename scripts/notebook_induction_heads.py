"""The cells of examples/induction_heads.ipynb (imported by make_notebooks.py, which writes it).

Induction heads on SmolLM2-135M found two independent ways — head patching (causal) and the
attention from the second ``x[k]`` to the first ``x[k+1]`` (observational) — with the unrepeated
control; then the same on ``induction-2l`` and its untrained twin, whose circuit is not the
textbook one. The computation lives in ``residual_widgets.lecture_induction``.
"""

CELLS: list[tuple[str, str]] = [
    (
        "md",
        """# Induction heads, found two independent ways

Repeat a sequence of random tokens: `[<|endoftext|>, x0 … x5, x0 … x5]`. In the second copy the
next token can only be predicted by **copying**: find the earlier occurrence of the current
token and output the one after it. An *induction head* does that look-up: from the second
`x[k]` it attends to the first `x[k+1]` and writes that token. Which of SmolLM2-135M's
30 × 9 = 270 heads do it? Two measures that share no computation:

* **Head patching (causal).** The corrupted run resamples the first copy (`[eos, y, x]`, `y`
  disjoint from `x`), so nothing can be copied. Into it we write **one head's output** (`z`,
  before the output projection: a `site="head"` cell) **from the clean run**, at every
  second-copy position, and measure how much the mean log p of the copied tokens `x[1..5]`
  comes back (nats per token). We patch clean into corrupted ("which heads restore the copy")
  because a head that lifts the copy on its own carries it, whereas knocking single heads out
  of the clean run would also flag heads the copy merely passes through and would show little
  for each of several redundant induction heads. The numbers equal
  `Session.intervene(cells, "patch", site="head")` with the head's second-copy cells (tested
  in `tests/test_lecture_induction.py`); the lecture module computes all heads at once with
  the engine's cone stepper.
* **Induction score (observational).** Each head's attention probability from the second
  `x[k]` to the first `x[k+1]`, from an eager forward pass. SmolLM2 shares 3 key/value heads
  among 9 query heads (GQA); each query head has its own pattern and its own `z`.

**The skeptic:** (1) two measures on the same heads can agree by chance: we compare their
top-5 sets against the overlap of two random 5-subsets of 270 heads; (2) a head that matters
for *any* sequence would show up in patching too: on **unrepeated** sequences `[eos, x, w]`
(corrupted alike to `[eos, y, w]`) there is nothing to copy, so the named heads' patching
effect and their attention to "the token after the earlier occurrence" must vanish. 20
sequences; 95% t-intervals over sequences.""",
    ),
    (
        "code",
        """import os
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import numpy as np
import residual_widgets as rw
from residual_widgets import lecture_induction as li
from residual_widgets.lecture import interval_figure, t_interval, untrained_twin

smol = rw.load_model("smollm2-135m")
# 20 sequences of 6 distinct random tokens (ids 1000..19999) after <|endoftext|> (id 0, the
# separator SmolLM2 saw between documents; it copies far worse after <|im_start|>);
# every head patched, one at a time (about 2 minutes on 2 cores)
case = li.run_case(smol, n_seqs=20, n=6, lo=1000, hi=20000, bos=0, k=5, name="SmolLM2-135M")
print("mean log p of the copied tokens: clean", t_interval(case.patch.given),
      "| corrupted", t_interval(case.patch.received))""",
    ),
    (
        "code",
        """import plotly.graph_objects as go
P, S = case.patch_iv, case.score_iv
by_p, by_a = case.by_patching, case.by_attention
ov, k, N = li.overlap(by_p, by_a), case.k, case.n_heads_total
print("top-5 by patching: ", li.names(by_p), np.round([P.mean[h] for h in by_p], 2))
print("top-5 by attention:", li.names(by_a), np.round([S.mean[h] for h in by_a], 2))
print(f"overlap {ov} of {k}; chance {li.chance_overlap(k, N):.2f}; "
      f"p = {li.overlap_p_value(ov, k, N):.1e} (two random 5-subsets of {N} heads)")
top10 = li.overlap(li.top_k(P.mean, 10), li.top_k(S.mean, 10))
print(f"top-10: overlap {top10} of 10; chance {li.chance_overlap(10, N):.2f}; "
      f"p = {li.overlap_p_value(top10, 10, N):.1e}")
lab = set(by_p) | set(by_a)
L, H = P.mean.shape
fig = go.Figure(go.Scatter(
    x=S.mean.ravel(), y=P.mean.ravel(), mode="markers+text",
    text=[f"{a}.{b}" if (a, b) in lab else "" for a in range(L) for b in range(H)],
    textposition="top center", marker=dict(color=np.repeat(np.arange(L), H), colorscale="Viridis",
                                           colorbar=dict(title="layer")),
    error_y=dict(type="data", symmetric=False, array=(P.hi - P.mean).ravel(),
                 arrayminus=(P.mean - P.lo).ravel(), thickness=0.5)))
fig.update_layout(title="SmolLM2-135M, 270 heads: two measures of copying (20 sequences)",
                  xaxis_title="attention from 2nd x[k] to 1st x[k+1]",
                  yaxis_title="log p restored by patching the head (nats/token)",
                  height=480, width=760)""",
    ),
    (
        "code",
        """heads = sorted(lab)
C, CS = t_interval(case.control_patch.delta), t_interval(case.control_score)
x = li.names(heads)
fig = interval_figure(x, {"patching, repeated": li.at(P, heads),
                          "patching, unrepeated (control)": li.at(C, heads)},
                      kind="bar", title="The named heads: patching effect with and without a "
                      "copy", xaxis="head (layer.head)", yaxis="nats per copied token")
fig.show()
interval_figure(x, {"attention, repeated": li.at(S, heads),
                    "attention, unrepeated (control)": li.at(CS, heads)}, kind="bar",
                title="The named heads: attention from 2nd x[k] to 1st x[k+1]",
                xaxis="head (layer.head)", yaxis="attention probability")""",
    ),
    (
        "md",
        """**Reading it.** The two measures name largely the same heads, in layers 17–24: the
top-10 sets share 7 (17.3, 17.5, 18.6, 20.6, 23.2, 23.7, 23.8; chance 0.37), the top-5 sets 2
(18.6, 23.7; chance 0.09, p ≈ 0.003). On unrepeated sequences every named head's patching
effect stays within ±0.06 nats and its attention to "the token after" below 0.04: these heads
act only when there is something to copy. The disagreements are findings, not noise:

* **29.1**, the head whose output restores the most (≈ 1.65 nats per token), puts almost no
  attention (≤ 0.03) on the first copy at offset 1 — or at any offset from −2 to 4. It must
  read the copy from the second copy's own residuals, downstream of the induction heads (a
  head that moves an already computed prediction, we guess; not tested here).
* **17.4** attends to `x[k+1]` as sharply as any head (0.90) yet lifts the copy by only
  ≈ 0.08 nats on its own.
* **24.4** is in the attention top-10 but *lowers* the copy by ≈ 1.0 nats when restored: a head
  that looks where an induction head looks and writes against the copy. The top-k overlap
  counts only positive effects, so it cannot see such heads.

SmolLM2 copies a 6-token sequence at ≈ −2.8 nats per token (≈ −14 with the first copy
resampled), so single heads restore up to ≈ 15% of the gap: the copy is spread over many
heads.""",
    ),
    (
        "md",
        """## The same on `induction-2l`, and on its untrained twin

`induction-2l` (2 layers × 4 heads, trained only to copy) copies almost perfectly, but not the
textbook way: its layer-0 heads attend by *absolute position* (head 0 looks back 3 positions
early in the context, heads 2–3 look back 2; `scripts/induction_lookback.py`), so layer 1
finds the earlier `x[k]` through head 0's copy of it three positions later. The prediction is
that the attention score at offset 1 finds nothing while patching finds layer 1, and that the
attention at offset **3** (second `x[k]` → first `x[k+3]`) names the same heads. 20 sequences of
10 tokens after `<bos>` (inside positions 4–16, where those look-backs are fixed); the untrained
twin (same architecture, random weights) must show nothing.""",
    ),
    (
        "code",
        """ind = li.run_case("induction-2l", n_seqs=20, n=10, lo=4, hi=512, bos=1, k=4,
                  name="induction-2l")
twin = li.run_case(untrained_twin("induction-2l"), n_seqs=20, n=10, lo=4, hi=512, bos=1, k=4,
                   name="untrained twin")
off = {d: t_interval(v) for d, v in ind.offsets.items()}
IP, IC = ind.patch_iv, t_interval(ind.control_patch.delta)
print("copied tokens' mean log p: clean", t_interval(ind.patch.given), "| corrupted",
      t_interval(ind.patch.received))
print("head  patching (repeated)        patching (unrepeated)   attn offset 1   attn offset 3")
for h in [(a, b) for a in range(2) for b in range(4)]:
    c = f"{IC.mean[h]:+.2f} [{IC.lo[h]:+.2f}, {IC.hi[h]:+.2f}]" if not np.isnan(IC.mean[h]) else "-"
    print(f"{h[0]}.{h[1]}   {IP.mean[h]:+.2f} [{IP.lo[h]:+.2f}, {IP.hi[h]:+.2f}]   {c:>22}"
          f"   {off[1].mean[h]:.3f}           {off[3].mean[h]:.3f}")
by3 = li.top_k(off[3].mean, 4)
print("top-4 by patching:", li.names(ind.by_patching), "| by attention at offset 1:",
      li.names(ind.by_attention), "| at offset 3:", li.names(by3))
o3 = li.overlap(ind.by_patching, by3)
print(f"patching vs offset-3 attention: overlap {o3} of 4; chance {li.chance_overlap(4, 8):.0f}; "
      f"p = {li.overlap_p_value(o3, 4, 8):.3f}")
print("untrained twin: copied tokens' log p", t_interval(twin.patch.given),
      "| largest head effect", round(float(np.abs(twin.patch.delta.mean(0)).max()), 3),
      "| largest offset-1 / offset-3 attention",
      round(float(twin.score.mean(0).max()), 3), round(float(twin.offsets[3].mean(0).max()), 3))
ds = sorted(ind.offsets)
interval_figure(ds, {
    "induction-2l, layer-1 heads (mean)": t_interval(
        np.stack([ind.offsets[d][:, 1].mean(-1) for d in ds], 1)),
    "SmolLM2, its top-5 heads by patching (mean)": t_interval(
        np.stack([np.stack([case.offsets[d][:, a, b] for a, b in by_p], -1).mean(-1)
                  for d in ds], 1)),
    "untrained twin, layer-1 heads (mean)": t_interval(
        np.stack([twin.offsets[d][:, 1].mean(-1) for d in ds], 1))},
    title="Where the copying heads look: attention from 2nd x[k] to 1st x[k + offset]",
    xaxis="offset", yaxis="attention probability")""",
    ),
    (
        "md",
        """**Reading it.** Patching names exactly the four layer-1 heads (≈ 1.4–1.7 nats each); the
textbook score finds nothing: offset-1 attention is ≤ 0.06 for every head, so by that measure
this model, which copies at ≈ −0.01 nats per token, would have no induction heads at all. Its
layer-1 heads look **3 tokens on**: ≈ 0.85–0.94 of their attention goes from the second `x[k]`
to the first `x[k+3]`, where layer-0 head 0 has written `x[k]` (the match) and heads 2–3
`x[k+1]` (the copy). At the model's own offset the attention measure names the same four heads
as patching (4 of 4; chance 2, p = 1/70). A circuit that differs from the textbook is a finding,
not a failure; a score built on the textbook would have missed it. One more surprise:
restoring layer-0 head 0 alone *lowers* the copy by ≈ 1.6 nats (a guess: at the first
second-copy positions its 3-back look reaches into the first copy and hands layer 1 keys that
match in the wrong place). Controls: on unrepeated sequences the layer-1 heads' effect falls to
≈ 0.03–0.15 nats (a tenth, not exactly zero) and their offset-3 attention below 0.1; the
untrained twin predicts uniformly (≈ −6.3 nats = −ln 512 in both runs), no head moves the copy
by even 0.01 nats, and its attention is flat (≈ 0.065 at every offset).

## What this does not show

* **That these are *all* the copying heads, or how they compose.** Single-head patching ranks
  heads one at a time; heads that act only jointly, or that are redundant with others, rank low.
  Previous-token heads (the other half of the textbook circuit) are not looked for: patching
  the second copy's positions only cannot reach a head whose work is done in the first copy.
* **That denoising and noising agree.** Heads were restored one at a time into the corrupted
  run; knocking them out of the clean run may rank them differently (redundant heads hide).
* **A mechanism for the heads the two measures disagree on.** A head with large patching effect
  and low offset-1 attention (or the reverse) is reported, not explained.
* **Generality.** Random tokens, copies of 6 (SmolLM2) or 10 (induction-2l) tokens early in the
  context, one corruption (first copy resampled), 20 sequences; natural text repeats differently.
* **Top-k is a coarse comparison**: k = 5 of 270 is a choice; the top-10 overlap is printed too.""",
    ),
    (
        "code",
        """# the claims, checked on 95% t-intervals over 20 sequences
P, S, C, CS = case.patch_iv, case.score_iv, t_interval(case.control_patch.delta), CS
assert t_interval(case.patch.given).lo > t_interval(case.patch.received).hi + 5  # it copies
ov5 = li.overlap(by_p, by_a)
assert ov5 >= 2 and li.overlap_p_value(ov5, 5, N) < 0.01      # far above chance (0.09)
assert li.overlap(li.top_k(P.mean, 10), li.top_k(S.mean, 10)) >= 5   # chance 0.37
assert all(P.lo[h] > 0.5 for h in by_p) and all(S.lo[h] > 0.3 for h in by_a)
assert all(-0.1 < C.lo[h] and C.hi[h] < 0.1 for h in lab)     # control: nothing to copy,
assert all(CS.hi[h] < 0.06 for h in lab)                       # no effect, no such attention
assert S.mean[by_p[0]] < 0.05                                  # the top patching head: no look-up
# induction-2l: patching and attention at offset 3 name layer 1; offset 1 names nothing
L1 = [(1, b) for b in range(4)]
assert sorted(ind.by_patching) == L1 and sorted(by3) == L1
assert all(IP.lo[h] > 1.0 for h in L1) and all(IP.hi[(0, b)] < 0.2 for b in range(4))
assert off[1].hi.max() < 0.1 and all(off[3].lo[h] > 0.8 for h in L1)
IC3 = t_interval(ind.control_offsets[3])
assert all(IC.hi[h] < 0.3 and IC3.hi[h] < 0.15 for h in L1)   # control: unrepeated
assert np.abs(twin.patch.delta.mean(0)).max() < 0.02           # the untrained twin: nothing
assert max(twin.offsets[d].mean(0).max() for d in twin.offsets) < 0.1""",
    ),
]
