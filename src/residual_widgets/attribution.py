"""Attribution patching: a first-order estimate of every cell's effect from one forward and one
backward pass (Nanda 2023; Kramár et al. 2024, "AtP*").

For a metric ``M`` (the logit difference at the last position, or the summed log-probability of
the prompt's actual next tokens) and a cell whose activation ``a`` an intervention replaces by
``a'``, the effect is estimated as

    M(a') − M(a)  ≈  (a' − a) · ∂M/∂a            (evaluated on the clean run)

for *all* cells of a site at once: the clean forward pass records the activations, one backward
pass per metric gives every ``∂M/∂a``, and ``a'`` is what the intervention would write
(:func:`.interventions.replacement_values`: zero, the row mean, clean + noise, or the source
run's activation). Everything runs in one nnsight trace — for a remote session, one request —
and only the ``[S, P]`` dot products come back.

What it estimates (see :class:`Attribution`): the logit difference under each intervention
(clean value + estimated change, the same quantity as :attr:`Atlas.logit_diff`) and the change in
the summed log-probability of the actual next tokens (``Atlas.logprob_delta.sum(-1)``). There is
no first-order KL: KL(clean ‖ new) has a minimum at the clean run, so its gradient there is zero
and a linear estimate of it is identically 0.

How good is it? The linearisation is accurate when the intervention is a small change of the
activation (the error shrinks quadratically with its size: tested) and poor when it is large
compared with the activation — zeroing or mean-ablating a whole residual vector, which every
norm above it sees as a ~100 % change, and to which a scale-invariant norm is blind to first
order: ``(0 − h) · ∂norm(h)/∂h = 0``. Measured by ``bench/bench_attribution.py`` on the bundled
SmolLM2-135M (Pearson r / Spearman ρ of estimate vs exact sweep over all cells; 20 IOI prompts
for patch, 20 corpus prompts of 12 tokens for zero/mean; medians): patch on attn_out 0.86/0.92
(logit diff), on mlp_out 0.29/0.90, on resid 0.44/0.66; Δ log p for zero on attn_out
0.27/0.78 and mlp_out 0.21/0.73, for mean 0.17/0.90 and 0.07/0.61 (the ranking is mostly right,
a few cells' sizes are far off); zero and mean on resid ≈ 0.0–0.1 in both — useless, as Nanda
warned for whole residual vectors. The worst cells are
position 0 (SmolLM2's attention sink with massive activations: zeroing its residual costs
−41 nats exactly, estimated +4) and MLP writes with massive dimensions (block 11). Speed: one
forward and two backward passes, ≈ 0.45 s on SmolLM2 at 33 tokens against ≈ 25–30 s for the
exact sweep (57–70×); ≈ 0.35–0.65 s against 7–10 s on the GPT-2-small shape at 24 tokens (15–27×,
the floor of three passes against a cone of ≈ 100 forward-equivalents; the ratio grows ∝ L·P).

AtP* (Kramár et al. 2024). Its attention-saturation fix recomputes a softmax exactly where an
attention node's own query or key changes. ``attn_out``/``mlp_out`` cells are outputs (their
change meets softmaxes only as inputs to later blocks, which AtP* also linearises), so it does
not apply to them as such; a residual cell ``(n, i)`` *is* block ``n``'s query and key input at
``i``, so it applies there. ``correction="block"`` (local sessions) implements it in general
form with the stepper: the rest of the block the change is made in and the next ``depth`` blocks
(default 1; the first attention to read the change) run exactly — softmax, norms and MLP — on
the cell's positions with the clean prefix keys/values, and only the rest is linearised; cells
whose exact part reaches the top row are exact. With ``depth = L`` it is the exact sweep
(tested). Measured on SmolLM2 (33-token IOI pair): it helps where the change is moderate —
patch attn_out logit diff r 0.86 → 0.94, zero mlp_out Δ log p r 0.08 → 0.61, mean attn_out
Δ log p r 0.41 → 0.72 — but not whole residual vectors: zero resid stays at ρ 0.02 → 0.14
(logit diff), and on a 23-token pair it needed 16 of 30 blocks exact to reach ρ 0.87 (Pearson
0.36), at about the cone's own block work. Cost at load ≈ 3: 2.3–3.8 s for zero (7–13× faster
than the sweep), 0.8 s for patch (cells that write the clean value are skipped).
On the 3-layer tiny models, where one block is a third of the depth, it lifts zero resid from
r −0.54 to 0.57 (GPT-2). GradDrop, AtP*'s other fix, turns L extra backward passes into
unsigned upper bounds for ranking by magnitude; this module reports signed values to compare
with the exact sweep, so it is not implemented. No correction here makes zero/mean resid
usable: show the exact sweep for those.

Kinds ``set`` (one given vector for chosen cells) and ``knockout`` (removes attention edges; no
value is written) have no attribution and are refused with a message saying what to use;
``noise`` is supported (``a' − a`` is the seeded noise itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nnsight
import numpy as np
import torch

from . import figures, grid, metrics
from . import remote as rm
from .agreement import WORST_K, agreement, agreement_figure, pearson, spearman  # noqa: F401
from .interventions import noise_for

#: kinds whose intervention writes a value a' into a cell, so (a' − a) · ∇ is defined
ATTRIBUTABLE_KINDS = ("zero", "mean", "noise", "patch", "resample")
#: ``correction=`` values of :func:`attribute`
CORRECTIONS = (None, "block")


@dataclass
class Attribution:
    """Estimated effect of intervening on each source cell, from :meth:`Session.attribute`.

    * ``logit_diff`` ``[S, P]``: estimated logit(good) − logit(bad) at the last position under each
      intervention, i.e. ``logit_diff_clean + logit_diff_delta`` — the same quantity as
      :attr:`Atlas.logit_diff` (``None`` without a token pair);
    * ``logit_diff_delta`` ``[S, P]``: the estimated change itself;
    * ``logprob_delta`` ``[S, P]``: estimated change in the summed log-probability of the prompt's
      actual next tokens (compare ``atlas.logprob_delta.sum(-1)``);
    * ``method``: ``"atp"`` (first order) or ``"atp+block"`` (``depth`` blocks computed exactly);
    * ``exact`` ``[S, P]`` bool: cells whose value is exact, not estimated (cells whose
      intervention writes the clean value; with the block correction, cells whose exact part
      reaches the top row).

    ``S`` is ``L + 1`` for ``resid`` and ``L`` for ``attn_out``/``mlp_out``. There is no ``kl``:
    KL(clean ‖ new) is minimal at the clean run, so its first-order estimate is identically 0.
    """

    kind: str
    site: str
    tokens: list[str]
    logprob_delta: np.ndarray
    logit_diff: np.ndarray | None = None
    logit_diff_delta: np.ndarray | None = None
    logit_diff_clean: float | None = None
    method: str = "atp"
    depth: int = 0
    exact: np.ndarray | None = field(default=None, repr=False)

    def summary_values(self, metric: str = "auto") -> tuple[np.ndarray, str]:
        """The per-cell values of ``metric`` and their name: ``"logit_diff"`` (the default when a
        token pair was given), ``"logit_diff_delta"`` or ``"logprob_delta"``."""
        if metric == "auto":
            metric = "logit_diff" if self.logit_diff is not None else "logprob_delta"
        if metric in ("kl", "total_kl"):
            raise ValueError(
                "an attribution has no KL: KL(clean ‖ new) is minimal at the clean "
                "run, so its first-order estimate is identically 0; use "
                "'logit_diff' or 'logprob_delta', or sess.sweep() for exact KL"
            )
        if metric not in _METRIC_NAMES:
            raise ValueError(f"unknown metric {metric!r}; use one of {', '.join(_METRIC_NAMES)}")
        vals = getattr(self, metric)
        if vals is None:
            raise ValueError(f"no {metric}: give a logit_diff=(good, bad) token pair")
        return vals, _METRIC_NAMES[metric]

    def figure(self, metric: str = "auto"):
        """Plotly heatmap of the estimate over the source cells, titled as an estimate
        (diverging colours centred on 0)."""
        vals, name = self.summary_values(metric)
        fig = figures.overview_figure(
            vals,
            self.tokens,
            site=self.site,
            name=f"{name} (est.)",
            title=f"estimated ({self.method}) {self.kind} over {self.site}: {name}",
        )
        fig.update_traces(colorscale="RdBu", zmid=0)
        return fig

    def agreement(self, atlas, k: int = WORST_K) -> dict:
        """Pearson/Spearman correlation with an exact :class:`Atlas` and the ``k`` worst cells
        (see :func:`.agreement.agreement`)."""
        return agreement(self, atlas, k)

    def agreement_figure(self, atlas, metric: str = "auto", k: int = WORST_K):
        """Plotly scatter of this estimate against the exact atlas, correlations in the title,
        the ``k`` worst cells labelled (see :func:`.agreement.agreement_figure`)."""
        return agreement_figure(self, atlas, metric, k)


_METRIC_NAMES = {
    "logit_diff": "logit diff",
    "logit_diff_delta": "Δ logit diff",
    "logprob_delta": "Δ summed log p",
}


def attribute(
    sess,
    kind: str = "zero",
    site: str = "resid",
    logit_diff=None,
    *,
    correction: str | None = None,
    depth: int = 1,
    timeout: float | None = None,
) -> Attribution:
    """Estimate every source cell's effect of ``kind`` at ``site``; see the module docstring.

    ``logit_diff``: a ``(good, bad)`` token pair (default: the session's). ``correction``:
    ``None`` (first order: one traced forward + backward, local or remote) or ``"block"``
    (local sessions: the first ``depth`` blocks after the cell computed exactly, then first
    order). ``timeout``: seconds for a remote request (default: the session's).
    """
    grid.check_kind(kind)
    grid.check_site(site)
    if kind == "set":
        raise ValueError(
            "kind='set' writes one given vector into chosen cells; attribution "
            "estimates every cell at once — use sess.intervene(cells, kind='set', "
            "value=...)"
        )
    if kind == "knockout":
        raise ValueError(
            "kind='knockout' removes attention edges and writes no value, so there "
            "is no (a' − a)·∇ estimate; use sess.sweep(kind='knockout')"
        )
    if kind in ("patch", "resample") and sess.source is None:
        raise ValueError(f"kind={kind!r} needs a source prompt: Session(model, prompt, source=...)")
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown correction {correction!r}; use None or 'block'")
    if correction is not None:
        if sess.remote is not None:
            raise ValueError(
                f"correction={correction!r} steps blocks locally; a remote session "
                "attributes with correction=None (one request)"
            )
        if not (isinstance(depth, int) and depth >= 1):
            raise ValueError(f"depth must be a positive number of blocks, got {depth!r}")
    pair = sess.token_pair(logit_diff) if logit_diff is not None else sess.default_pair
    timeout = sess.timeout if timeout is None else timeout
    if correction is None:
        new, additive = _replacement(sess, kind, site)
        out = traced_attribution(
            sess.model,
            sess.ids,
            site,
            new,
            pair,
            sess.remote,
            additive=additive,
            timeout=timeout,
            on_status=sess.note_status,
        )
        ld_delta, lp_delta, exact = out["ld"], out["lp"], out["same"]
    else:
        out = traced_attribution(sess.model, sess.ids, site, None, pair, None, keep_grads=True)
        with sess.lock, torch.no_grad():
            ld_delta, lp_delta, exact = _block_corrected(sess, kind, site, pair, out, depth)
    ld_clean = (
        float(metrics.logit_diff(sess.clean_logprobs[-1], pair)) if pair is not None else None
    )
    ldd = ld_delta.numpy().astype(np.float32) if pair is not None else None
    return Attribution(
        kind=kind,
        site=site,
        tokens=sess.token_strings,
        logprob_delta=lp_delta.numpy().astype(np.float32),
        logit_diff=(ld_clean + ldd).astype(np.float32) if pair is not None else None,
        logit_diff_delta=ldd,
        logit_diff_clean=ld_clean,
        method="atp" if correction is None else f"atp+{correction}",
        depth=0 if correction is None else depth,
        exact=exact,
    )


# ---- the traced forward + backward -----------------------------------------------------------
def _replacement(sess, kind: str, site: str) -> tuple[torch.Tensor | None, bool]:
    """What the trace needs to form ``a' − a``, and whether it *is* that difference already:
    ``None`` for zero (``a' = 0``: nothing to send), the row means ``[S, 1, d]`` for mean, the
    source run's activations ``[S, P, d]`` for patch/resample, and for noise the noise itself
    ``[S, P, d]`` (additive: ``a' − a = σ·noise``, the very vectors the sweep adds)."""
    S, P = grid.n_source_rows(site, sess.n_layers), sess.n_positions
    if kind == "zero":
        return None, False
    if kind == "mean":
        return sess._mean(site)[:, None, :].float(), False
    if kind in ("patch", "resample"):
        return sess.site_acts(site, "source").float(), False
    sigma = sess.noise_scale * sess.sigma  # kind == "noise"
    d = sess.model.d_model
    noise = torch.stack([noise_for(sess.seed, site, n, i, d) for n in range(S) for i in range(P)])
    return (sigma * noise).reshape(S, P, d), True


def traced_attribution(
    lm,
    ids,
    site: str,
    new,
    pair,
    remote=None,
    *,
    additive: bool = False,
    keep_grads: bool = False,
    timeout: float | None = None,
    on_status=None,
) -> dict:
    """One nnsight trace: the clean forward, then one backward pass per metric (the logit
    difference when ``pair`` is given; the summed log p of the next tokens when ``P > 1``),
    reducing ``(a' − a) · ∂M/∂a`` to ``[S, P]`` inside the trace (on the server, when remote).

    ``new``: ``None`` (zero: ``a' = 0``), ``a'`` as ``[S, 1, d]`` or ``[S, P, d]``, or — with
    ``additive`` — ``a' − a`` itself. Returns float32 ``ld``/``lp`` ``[S, P]`` (zeros when that
    metric is absent) and ``same`` ``[S, P]`` bool (cells where ``a'`` equals ``a`` bit for bit:
    their estimate is exactly 0). With ``keep_grads`` (local use, for the block correction) it
    returns instead ``g_ld``/``g_lp`` ``[L + 1, P, d]``, the gradients at every residual row.

    The body references only envoys, tensors and plain values, so it deserializes on a server
    without this package; it reads modules in execution order and saves only the reductions.
    """
    L, P = lm.n_layers, len(ids)
    input_ids = torch.tensor([list(ids)], device=lm.input_device)
    nxt = torch.tensor(list(ids[1:]), dtype=torch.long, device=lm.input_device)
    at = torch.arange(P - 1, device=lm.input_device)
    blocks = [lm.envoy(f"{lm.blocks_path}.{k}") for k in range(L)]
    writers = (
        [lm.envoy(lm.write_path(site, k)) for k in range(L)]
        if site != "resid" and not keep_grads
        else []
    )
    use_pair = pair is not None
    good, bad = pair if use_pair else (0, 0)
    want_rows = site == "resid" or keep_grads
    compare = new is not None and not additive
    root = lm.nn
    pending = rm.trace_kwargs(lm, remote)
    with pending.guard():
        with lm.lock, torch.enable_grad(), root.trace(input_ids, **pending.kwargs):
            h0 = blocks[0].input
            h0 = h0[0] if isinstance(h0, (tuple, list)) else h0
            if not h0.requires_grad:  # frozen weights: track from the embeddings on
                h0.requires_grad_(True)
            rows, acts = [h0], []
            for k in range(L):
                for env in writers[k : k + 1]:
                    w = env.output
                    acts.append(w[0] if isinstance(w, (tuple, list)) else w)
                if want_rows:
                    h = blocks[k].output
                    rows.append(h[0] if isinstance(h, (tuple, list)) else h)
            if site == "resid":
                acts = rows
            logits = root.output.logits[0].float()
            targets = rows if keep_grads else acts
            deltas = []
            same = nnsight.save([])
            if not keep_grads:
                for k in range(len(acts)):
                    a = acts[k][0].detach().float()
                    if new is None:
                        deltas.append(-a)
                    elif additive:
                        deltas.append(new[k].to(a.device))
                    else:
                        v = new[k].to(a.device)
                        deltas.append(v - a)
                        same.append((v == a).all(-1))
            ld_est = nnsight.save([])
            lp_est = nnsight.save([])
            g_ld = nnsight.save([])
            g_lp = nnsight.save([])
            if use_pair:
                ld = logits[-1, good] - logits[-1, bad]
                with ld.backward(retain_graph=P > 1, inputs=targets):
                    for k in range(len(targets) - 1, -1, -1):  # gradients arrive top row first
                        g = targets[k].grad[0].float()
                        if keep_grads:
                            g_ld.append(g.detach())
                        else:
                            ld_est.append((g * deltas[k]).sum(-1).detach())
            if P > 1:
                lps = torch.log_softmax(logits[:-1], dim=-1)[at, nxt].sum()
                with lps.backward(inputs=targets):
                    for k in range(len(targets) - 1, -1, -1):
                        g = targets[k].grad[0].float()
                        if keep_grads:
                            g_lp.append(g.detach())
                        else:
                            lp_est.append((g * deltas[k]).sum(-1).detach())
        res = pending.result(timeout=timeout, on_status=on_status)
    if res is not None:
        ld_est, lp_est, g_ld, g_lp, same = (
            res["ld_est"],
            res["lp_est"],
            res["g_ld"],
            res["g_lp"],
            res["same"],
        )
    out = {}
    if keep_grads:
        gz = torch.zeros(L + 1, P, lm.d_model)
        out["g_ld"] = torch.stack(list(g_ld)[::-1]).float().cpu() if use_pair else gz
        out["g_lp"] = torch.stack(list(g_lp)[::-1]).float().cpu() if P > 1 else gz
        return out
    S = grid.n_source_rows(site, L)
    same = torch.stack(list(same)).cpu() if compare else torch.zeros(S, P, dtype=torch.bool)
    zeros = torch.zeros(S, P)
    for name, est, present in (("ld", ld_est, use_pair), ("lp", lp_est, P > 1)):
        est = torch.stack(list(est)[::-1]).float().cpu() if present else zeros
        out[name] = torch.where(same, zeros, est)  # writes the clean value: exactly 0
    out["same"] = same.numpy()
    return out


# ---- correction: the first blocks exactly ---------------------------------------------------
#: cells stepped together in one block call of the correction (they share the start of the
#: call's position range, so a chunk wastes at most CHUNK − 1 positions per cell); cells whose
#: intervention writes the clean value are skipped (exactly 0)
CHUNK = 8


def _block_corrected(sess, kind, site, pair, grads, depth: int = 1):
    """``correction="block"``: for every cell, compute exactly — with the stepper, on the cell's
    positions, reading the clean prefix keys/values — the rest of the block the change is made
    in (an ``attn_out`` write feeds that block's MLP) and then the next ``depth`` blocks, the
    first of which is the first attention to read the change (block ``n`` for residual row
    ``n``); then linearise from the residual row ``e`` after them:
    ``Σ_{t ≥ i} (h'_e[t] − h_e[t]) · ∂M/∂h_e[t]``. Where ``e`` is the top row, the final norm and
    unembedding are applied exactly instead and the value is exact. Returns ``ld``/``lp``
    ``[S, P]`` and the ``exact`` mask ``[S, P]``."""
    from .stepper import UnsupportedStepping

    try:
        stepper = sess.stepper()
    except UnsupportedStepping as e:
        raise ValueError(
            f"correction='block' steps single blocks, and this model's blocks "
            f"cannot be stepped ({e}); use correction=None"
        ) from e
    lm, L, P = sess.model, sess.n_layers, sess.n_positions
    S = grid.n_source_rows(site, L)
    clean = sess.clean.resid
    cells = [(n, i) for n in range(S) for i in range(P)]
    vals = sess.values_for(cells, kind, site).reshape(S, P, -1).float()
    ld, lp = torch.zeros(S, P), torch.zeros(S, P)
    exact = np.zeros((S, P), bool)
    same = (vals == sess.site_acts(site)).all(-1)  # writes the clean value: exactly 0
    for n in range(S):
        e = grid.entry_row(n, site)  # the row the change first shows in
        live = [i for i in range(P) if not same[n, i]]
        for c in range(0, len(live), CHUNK):
            pos = live[c : c + CHUNK]
            s = pos[0]
            A, rel = len(pos), torch.tensor([i - s for i in pos])
            h = clean[e, s:].expand(A, -1, -1).clone()  # [A, q, d], row e, positions s..
            if site == "resid":
                h[torch.arange(A), rel] = vals[n, pos]
                last = e  # the first block reading it: e
            elif site == "attn_out":
                h = clean[n, s:].expand(A, -1, -1).clone()  # the rest of block n: its MLP
                h = _layer_with_write(stepper, lm, site, n, h, s, rel, vals[n, pos])
                last = e  # row n + 1; block n + 1 reads it
            else:  # mlp_out: row n + 1 gets a' − a
                h[torch.arange(A), rel] += vals[n, pos] - sess.site_acts(site)[n, pos]
                last = e
            for _ in range(depth):
                if last < L:
                    h = stepper.layer(last, h, s)
                    last += 1
            keep = (torch.arange(P - s)[None, :] >= rel[:, None]).float()[..., None]
            delta = (h - clean[last, s:]) * keep  # exactly 0 before each cell
            if last == L:
                d_ld, d_lp = _exact_top(sess, h, s, rel, pair)
                exact[n, pos] = True
            else:
                d_ld = (delta * grads["g_ld"][last, s:]).sum((-1, -2))
                d_lp = (delta * grads["g_lp"][last, s:]).sum((-1, -2))
            ld[n, pos], lp[n, pos] = d_ld, d_lp
    return ld, lp, exact | same.numpy()


def _layer_with_write(stepper, lm, site, k, states, start, rel, values):
    """Block ``k`` on ``states`` ``[A, q, d]`` with the ``site`` write of batch element ``b``
    replaced by ``values[b]`` at relative position ``rel[b]``."""
    from .models import _get

    def hook(mod, args, out):
        t = out[0] if isinstance(out, tuple) else out
        t = t.clone()
        t[torch.arange(len(rel)), rel] = values.to(t.dtype)
        return (t, *out[1:]) if isinstance(out, tuple) else t

    handle = _get(lm.hf, lm.write_path(site, k)).register_forward_hook(hook)
    try:
        return stepper.layer(k, states, start)
    finally:
        handle.remove()


def _exact_top(sess, final, start, rel, pair):
    """Exact change of both metrics for top-row states ``final`` ``[A, q, d]`` (positions
    ``start..P-1``; element ``b`` differs from the clean run from ``rel[b]`` on)."""
    ids = sess.ids
    logits = sess.model.unembed(final).float()  # [A, q, V]
    lsm = torch.log_softmax(logits, dim=-1)
    clean_lp = sess.clean_logprobs[start:]
    A, q = final.shape[:2]
    tgt = torch.tensor(list(ids[start + 1 :]), dtype=torch.long)  # next tokens of start..P-2
    t = torch.arange(q - 1)
    d = lsm[:, t, tgt] - clean_lp[t, tgt]  # [A, q - 1]
    d = d * (t[None, :] >= rel[:, None])  # exactly 0 before each cell
    d_lp = d.sum(-1)
    d_ld = torch.zeros(A)
    if pair is not None:
        g, b = pair
        d_ld = (lsm[:, -1, g] - lsm[:, -1, b]) - (clean_lp[-1, g] - clean_lp[-1, b])
    return d_ld, d_lp
