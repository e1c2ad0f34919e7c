"""The overview as numbers: which source cells matter, exact where the sweep has been, estimated
elsewhere — the same cells the widget's overview paints (``js/estimate.ts`` ``overviewCells``).

Three summaries per source cell (the widget's ``overview_metric``):

==================  ==========================================  ==============================
``which``           exact (from the sweep's :class:`~.Atlas`)    estimate (:class:`Attribution`)
==================  ==========================================  ==============================
``logprob_delta``   ``atlas.logprob_delta.sum(-1)``: Σ Δlog p    ``attribution.logprob_delta``
                    of the prompt's actual next tokens
``logit_diff``      ``atlas.logit_diff`` (with a token pair)      ``attribution.logit_diff``
``total_kl``        ``atlas.total_kl``                            none: KL(clean ‖ new) has zero
                                                                  gradient at the clean run
==================  ==========================================  ==============================

:func:`overview` merges them: a cell shows its exact value once the sweep has done it, else the
estimate (``estimated`` marks it), else NaN. Like the widget, ``logit_diff`` without a token pair
falls back to ``logprob_delta``, and that to ``total_kl`` for an atlas without it. The estimate is
used only when it describes the same sweep (kind and site). :func:`head_figure` draws a head
sweep (:class:`~.head_sweep.HeadAtlas`) in any of these metrics, one row per ``(layer, head)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import figures

#: each metric's title and unit (the widget's words, ``OVERVIEW`` in js/estimate.ts)
METRICS = {
    "logprob_delta": ("Σ Δlog p of the next tokens", "nats"),
    "logit_diff": ("logit diff after intervening", "logits"),
    "total_kl": ("total KL over positions", "nats"),
}


def exact_values(atlas, which: str) -> np.ndarray | None:
    """The atlas's exact summary ``[S, P]`` (``[L, H, P]`` for a head atlas) of ``which``, or
    None when it has none (no token pair, no log-probabilities kept)."""
    if atlas is None:
        return None
    if which == "logit_diff":
        return getattr(atlas, "logit_diff", None)
    if which == "logprob_delta":
        lp = getattr(atlas, "logprob_delta", None)
        return None if lp is None else lp.sum(-1).astype(np.float32)
    return atlas.kl.sum(-1).astype(np.float32)


def estimate_values(attr, which: str) -> np.ndarray | None:
    """The attribution estimate ``[S, P]`` of ``which`` (None for total KL: there is none)."""
    if attr is None or which not in ("logit_diff", "logprob_delta"):
        return None
    return getattr(attr, which, None)


def _metric(atlas, attr, which: str) -> str:
    w = which if which in METRICS else "logprob_delta"
    if w == "logit_diff" and exact_values(atlas, w) is None and estimate_values(attr, w) is None:
        w = "logprob_delta"
    if w == "logprob_delta" and atlas is not None:
        if exact_values(atlas, w) is None and estimate_values(attr, w) is None:
            w = "total_kl"
    return w


@dataclass
class Overview:
    """One summary per source cell: ``values`` ``[S, P]`` float32 (NaN where nothing is known
    yet), ``estimated`` ``[S, P]`` bool (the value is the attribution estimate, not exact),
    ``which`` the metric shown, ``center`` the colour scale's middle (the clean logit difference
    for ``logit_diff``, else 0)."""

    which: str
    values: np.ndarray
    estimated: np.ndarray
    kind: str
    site: str
    tokens: list[str]
    center: float = 0.0
    method: str = ""  # the estimate's method ("atp"), "" when no cell is estimated

    @property
    def n_estimated(self) -> int:
        return int(self.estimated.sum())

    @property
    def n_exact(self) -> int:
        return int((np.isfinite(self.values) & ~self.estimated).sum())

    @property
    def title(self) -> str:
        name = METRICS[self.which][0]
        head = f"{self.kind} over {self.site}: {name}"
        if not self.n_estimated:
            return head
        return (
            f"{head} — ESTIMATE ({self.method or 'attribution patching'}) at "
            f"{self.n_estimated} of {self.values.size} cells, exact at {self.n_exact}"
        )

    def figure(self, scale: str = "linear"):
        """Plotly heatmap of :attr:`values` (diverging around :attr:`center` except total KL);
        the estimated cells are marked by a second trace ("estimate", open diamonds) and the
        title says how many there are."""
        import plotly.graph_objects as go

        title, unit = METRICS[self.which]
        name = f"{title} ({unit})"
        if self.which == "total_kl":
            fig = figures.overview_figure(
                self.values, self.tokens, site=self.site, name=name, title=self.title, scale=scale
            )
        else:  # signed: no log scale, diverging colours around the center
            fig = figures.overview_figure(
                self.values, self.tokens, site=self.site, name=name, title=self.title
            )
            fig.update_traces(colorscale="RdBu", zmid=self.center, selector=dict(type="heatmap"))
        rows, cols = np.nonzero(self.estimated)
        if len(rows):
            fig.add_trace(
                go.Scatter(
                    x=cols.tolist(),
                    y=rows.tolist(),
                    mode="markers",
                    marker=dict(symbol="diamond-open", size=9, color="black"),
                    name=f"estimate ({self.method or 'attribution patching'})",
                    hoverinfo="skip",
                )
            )
            fig.update_layout(showlegend=True, legend=dict(orientation="h", y=-0.15))
        return fig


def overview(atlas, estimate, which: str = "logprob_delta", tokens=None) -> Overview | None:
    """The overview of ``which`` from the sweep's ``atlas`` and the attribution ``estimate``
    (either may be None): exact where ``atlas.done``, the estimate elsewhere (only when it is of
    the same kind and site as the atlas), NaN where neither. None when neither has anything."""
    w = _metric(atlas, estimate, which)
    exact = exact_values(atlas, w)
    same = estimate is not None and (
        atlas is None or (atlas.kind, atlas.site) == (estimate.kind, estimate.site)
    )
    guess = estimate_values(estimate, w) if same else None
    if exact is None and guess is None:
        return None
    shape = (exact if exact is not None else guess).shape
    if exact is not None and guess is not None and guess.shape != shape:
        guess = None
    values = np.full(shape, np.nan, np.float32)
    estimated = np.zeros(shape, bool)
    done = np.asarray(atlas.done, bool) if atlas is not None else np.zeros(shape, bool)
    if exact is not None:
        values[done] = exact[done]
    if guess is not None:
        estimated = ~done if exact is not None else np.ones(shape, bool)
        values[estimated] = guess[estimated]
    src = atlas if atlas is not None else estimate
    center = 0.0
    if w == "logit_diff":
        c = getattr(atlas, "logit_diff_clean", None) if atlas is not None else None
        c = c if c is not None else getattr(estimate, "logit_diff_clean", None)
        center = float(c) if c is not None else 0.0
    return Overview(
        which=w,
        values=values,
        estimated=estimated,
        kind=src.kind,
        site=src.site,
        tokens=list(tokens if tokens is not None else src.tokens),
        center=center,
        method=str(getattr(estimate, "method", "")) if estimated.any() else "",
    )


def head_figure(atlas, which: str = "logprob_delta", scale: str = "linear", layer: int = -1):
    """Plotly heatmap of a head sweep in metric ``which`` (falls back as :func:`overview`): one
    row per ``(layer, head)`` — those of ``layer`` only when ``layer >= 0`` — positions across
    (one column per head for an ``all_positions`` atlas); cells not swept yet are blank."""
    import plotly.graph_objects as go

    w = _metric(atlas, None, which)
    vals = np.where(atlas.done, exact_values(atlas, w), np.nan)
    L, H = vals.shape[:2]
    layers = range(L) if layer < 0 else [layer]
    if atlas.all_positions:
        z, x = vals[list(layers)], [f"H{h}" for h in range(H)]
        y = [f"L{k}" for k in layers]
    else:
        z = vals[list(layers)].reshape(len(layers) * H, -1)
        x = figures.axis_labels(atlas.tokens)
        y = [f"L{k}.H{h}" for k in layers for h in range(H)]
    title, unit = METRICS[w]
    diverging = w != "total_kl"
    if diverging:
        c = atlas.logit_diff_clean if w == "logit_diff" else 0.0
        mid = float(c) if c is not None else 0.0
    else:
        z, mid = figures._scaled(z, scale), None
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=x,
            y=y,
            colorscale="RdBu" if diverging else "Viridis",
            zmid=mid,
            colorbar=dict(title=f"{title} ({unit})"),
        )
    )
    what = "every head at all positions" if atlas.all_positions else "heads by position"
    fig.update_layout(
        title=f"{atlas.kind} sweep over {what}: {title}",
        height=max(320, 16 * len(y) + 160),
        width=max(520, 40 * len(x) + 200),
    )
    return fig
