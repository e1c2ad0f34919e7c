"""Attribution patching: a first-order estimate of every cell's effect from one forward and one
backward pass (Nanda 2023; Kramár et al. 2024, "AtP*").

For a metric ``M`` (the logit difference at the last position, or the summed log-probability of
the prompt's actual next tokens) and a cell whose activation ``a`` an intervention replaces by
``a'``, the effect is estimated as

    M(a') − M(a)  ≈  (a' − a) · ∂M/∂a            (evaluated on the clean run)

for *all* cells of a site at once: the clean forward pass records the activations, one backward
pass per metric gives every ``∂M/∂a``, and ``a'`` is what the intervention would write
(:func:`.interventions.replacement_values`: zero, the row mean, clean + noise, or the source
run's activation). A remote session runs it all in one nnsight trace — one request — and only
the ``[S, P]`` dot products come back (:mod:`.attribution_trace`); a local one asks torch's
autograd directly (:mod:`.attribution_local`), since nnsight's traced backward patches
``Tensor.grad`` for the whole process while it runs.

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

The AtP* correction (``correction="block"``: the first blocks after each cell computed exactly)
is :mod:`.attribution_block`; the traced forward + backward is :mod:`.attribution_trace`.

Kinds ``set`` (one given vector for chosen cells) and ``knockout`` (removes attention edges; no
value is written) have no attribution and are refused with a message saying what to use;
``noise`` is supported (``a' − a`` is the seeded noise itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from . import figures, grid, metrics
from .agreement import WORST_K, agreement, agreement_figure, pearson, spearman  # noqa: F401
from .attribution_trace import traced_attribution
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
    ``None`` (first order: one forward + backward; remote: one traced request) or ``"block"``
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
        out = _forward_backward(sess, site, new, pair, additive=additive, timeout=timeout)
        ld_delta, lp_delta, exact = out["ld"], out["lp"], out["same"]
    else:
        from .attribution_block import block_corrected

        out = _forward_backward(sess, site, None, pair, keep_grads=True)
        with sess.lock, torch.no_grad():
            ld_delta, lp_delta, exact = block_corrected(sess, kind, site, pair, out, depth)
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


#: force the nnsight trace for local sessions too (tests compare the two paths with it)
_NNSIGHT_LOCALLY = False


def _forward_backward(sess, site, new, pair, *, additive=False, keep_grads=False, timeout=None):
    """The clean forward + backward and the ``[S, P]`` dot products: plain torch autograd for a
    local session (:mod:`.attribution_local`: nothing global patched, so other threads may
    touch ``.grad`` meanwhile), nnsight's one trace for a remote one
    (:mod:`.attribution_trace`; ``remote="local"`` included)."""
    if sess.remote is None and not _NNSIGHT_LOCALLY:
        from .attribution_local import local_attribution

        return local_attribution(
            sess.model, sess.ids, site, new, pair, additive=additive, keep_grads=keep_grads
        )
    return traced_attribution(
        sess.model,
        sess.ids,
        site,
        new,
        pair,
        sess.remote,
        additive=additive,
        keep_grads=keep_grads,
        timeout=timeout,
        on_status=sess.note_status,
    )


# ---- what the intervention writes -------------------------------------------------------------
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
