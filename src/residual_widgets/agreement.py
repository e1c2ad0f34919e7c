"""How well an estimate agrees with the exact sweep: correlations, the worst cells, a scatter.

An :class:`~.attribution.Attribution` (attribution patching: every cell estimated from one
forward + backward pass) and an :class:`~.effects.Atlas` (the exact sweep) of the same kind and
site both hold, per source cell ``(n, i)``, the logit difference under the intervention
(``[S, P]``, with a token pair) and the change of the summed log-probability of the prompt's
actual next tokens (``attr.logprob_delta [S, P]`` against ``atlas.logprob_delta.sum(-1)``).
:func:`agreement` compares them over the cells the atlas has done — a partial atlas (a sweep
still running) gives the agreement so far:

* ``pearson`` — linear correlation (are the sizes right?);
* ``spearman`` — rank correlation (is the order right? ties share their average rank);
* ``max_abs_error`` and ``worst`` — the ``k`` cells where ``|estimate − exact|`` is largest,
  largest first, as ``[n, i]`` (the widget outlines them on the overview);
* ``n`` — how many cells were compared.

Both correlations are NaN when either side is constant (or fewer than two cells are done).
:func:`agreement_figure` draws estimate against exact as a plotly scatter with the numbers in
the title and the worst cells labelled — the Python twin of the widget's small scatter.
"""

from __future__ import annotations

import numpy as np

#: how many of the worst-estimated cells :func:`agreement` lists (the widget outlines them)
WORST_K = 5

#: the metrics compared (the names of the :class:`Attribution` fields)
METRICS = ("logit_diff", "logprob_delta")

_TITLES = {"logit_diff": "logit diff", "logprob_delta": "Δ summed log p"}


def pearson(x, y) -> float:
    """Pearson correlation of two arrays (flattened); NaN when either is constant."""
    x = np.asarray(x, np.float64).ravel()
    y = np.asarray(y, np.float64).ravel()
    if x.size < 2:
        return float("nan")
    x, y = x - x.mean(), y - y.mean()
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 0 else float("nan")


def ranks(x) -> np.ndarray:
    """Ranks ``0..n-1`` of a 1-d array, ties given their average rank (vectorised)."""
    x = np.asarray(x, np.float64).ravel()
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts  # rank of each distinct value's first occurrence
    return (first + (counts - 1) / 2)[inverse.ravel()]


def spearman(x, y) -> float:
    """Spearman rank correlation (ties share their average rank); NaN when either is constant."""
    return pearson(ranks(x), ranks(y))


def exact_values(atlas, metric: str) -> np.ndarray | None:
    """The atlas's ``[S, P]`` values of ``metric`` (``None`` when it has none)."""
    if metric == "logit_diff":
        return atlas.logit_diff
    if metric == "logprob_delta":
        lp = getattr(atlas, "logprob_delta", None)
        return None if lp is None else lp.sum(-1)
    raise ValueError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")


def compare(est, exact, done, k: int = WORST_K) -> dict:
    """Agreement of ``est`` and ``exact`` (``[S, P]`` each) over the cells where ``done``:
    ``{pearson, spearman, max_abs_error, n, worst: [[n, i], …]}`` (see the module docstring)."""
    done = np.asarray(done, bool)
    e = np.asarray(est, np.float64)[done]
    x = np.asarray(exact, np.float64)[done]
    err = np.abs(e - x)
    cells = np.argwhere(done)  # row-major, the order of e and x
    order = np.argsort(-err, kind="stable")[: max(0, int(k))]
    return {
        "pearson": pearson(e, x),
        "spearman": spearman(e, x),
        "max_abs_error": float(err.max()) if err.size else 0.0,
        "n": int(e.size),
        "worst": [[int(a), int(b)] for a, b in cells[order]],
    }


def agreement(attr, atlas, k: int = WORST_K) -> dict:
    """How an :class:`Attribution` agrees with an exact :class:`Atlas` of the same kind and site,
    over the cells the atlas has done: ``{"logit_diff": {...}, "logprob_delta": {...}}`` (the
    logit difference only when both have one), each as :func:`compare` returns it."""
    if (attr.kind, attr.site) != (atlas.kind, atlas.site):
        raise ValueError(
            f"the attribution is {attr.kind}/{attr.site} but the atlas {atlas.kind}/{atlas.site}"
        )
    res = {}
    for name in METRICS:
        est, ex = getattr(attr, name), exact_values(atlas, name)
        if est is not None and ex is not None:
            res[name] = compare(est, ex, atlas.done, k)
    return res


def agreement_figure(attr, atlas, metric: str = "auto", k: int = WORST_K):
    """Plotly scatter of estimate (x) against exact (y) over the atlas's done cells, one point
    per source cell (hover: row, position, token), the identity line dashed, the ``k`` worst
    cells labelled, Pearson and Spearman in the title."""
    import plotly.graph_objects as go

    if metric == "auto":
        metric = "logit_diff" if attr.logit_diff is not None else "logprob_delta"
    res = agreement(attr, atlas, k).get(metric)
    if res is None:
        raise ValueError(f"no {metric} in both: give a logit_diff=(good, bad) token pair")
    done = np.asarray(atlas.done, bool)
    est, ex = getattr(attr, metric)[done], exact_values(atlas, metric)[done]
    cells = np.argwhere(done)
    text = [f"({n}, {i}) {attr.tokens[i]!r}" for n, i in cells]
    name = _TITLES[metric]
    fig = go.Figure(
        go.Scatter(
            x=est, y=ex, mode="markers", text=text, name="cells", marker=dict(size=5, opacity=0.7)
        )
    )
    if est.size:
        lo = float(min(est.min(), ex.min()))
        hi = float(max(est.max(), ex.max()))
        fig.add_trace(
            go.Scatter(
                x=[lo, hi],
                y=[lo, hi],
                mode="lines",
                name="exact = estimate",
                line=dict(dash="dash"),
            )
        )
    worst = {tuple(c) for c in res["worst"]}
    wi = [j for j, c in enumerate(map(tuple, cells.tolist())) if c in worst]
    fig.add_trace(
        go.Scatter(
            x=est[wi],
            y=ex[wi],
            mode="markers+text",
            text=[f"({cells[j][0]}, {cells[j][1]})" for j in wi],
            textposition="top center",
            name=f"{len(wi)} worst",
            marker=dict(size=9, symbol="circle-open", color="#e8590c"),
        )
    )
    fig.update_layout(
        title=(
            f"{attr.kind} on {attr.site}: {name}, estimated ({attr.method}) vs exact — Pearson r "
            f"{res['pearson']:.2f}, Spearman ρ {res['spearman']:.2f} over {res['n']} cells"
        ),
        xaxis_title=f"{name} (estimate)",
        yaxis_title=f"{name} (exact sweep)",
    )
    return fig
