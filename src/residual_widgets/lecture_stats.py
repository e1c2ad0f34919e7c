"""Intervals over prompts, and their figures: what makes a lecture claim survive a skeptic.

Every real-model claim in ``examples/`` is an average over many prompts with an interval:

* :class:`Interval` — a mean with its interval over ``n`` prompts (``excludes(0)``: the whole
  interval lies on one side);
* :func:`t_interval` (Student-t, :func:`t_quantile`) / :func:`bootstrap_interval` (percentile
  bootstrap) — confidence intervals over the first axis;
* :func:`interval_figure` — plotly curves with their confidence bands, or bars with error bars.

Everything here is also reachable as ``residual_widgets.lecture.<name>``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


# ---- intervals -----------------------------------------------------------------------------
@dataclass
class Interval:
    """A mean with a confidence interval over ``n`` samples (prompts)."""

    mean: np.ndarray | float
    lo: np.ndarray | float
    hi: np.ndarray | float
    n: int
    conf: float = 0.95

    def __str__(self) -> str:
        if np.ndim(self.mean) == 0:
            return f"{self.mean:.3g} [{self.lo:.3g}, {self.hi:.3g}] ({self.conf:.0%}, n={self.n})"
        return f"Interval(n={self.n}, shape={np.shape(self.mean)})"

    def excludes(self, value: float = 0.0) -> bool:
        """True where the whole interval lies above or below ``value`` (all entries)."""
        return bool(np.all((np.asarray(self.lo) > value) | (np.asarray(self.hi) < value)))


def t_quantile(p: float, df: int) -> float:
    """Student-t quantile (Cornish-Fisher expansion of the normal one; error < 1e-3 for df ≥ 5)."""
    if df < 1:
        raise ValueError("need at least 2 samples for an interval")
    z = _norm_ppf(p)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def _norm_ppf(p: float) -> float:
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1), got {p}")
    lo, hi = -10.0, 10.0
    for _ in range(100):  # bisection on the exact normal CDF
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def t_interval(samples, axis: int = 0, conf: float = 0.95) -> Interval:
    """Mean and two-sided Student-t interval over ``axis`` (one sample per prompt)."""
    x = np.asarray(samples, dtype=np.float64)
    n = x.shape[axis]
    mean = x.mean(axis=axis)
    se = x.std(axis=axis, ddof=1) / math.sqrt(n)
    h = t_quantile(0.5 + conf / 2, n - 1) * se
    return Interval(mean=mean, lo=mean - h, hi=mean + h, n=n, conf=conf)


def bootstrap_interval(
    samples, stat=np.mean, n_boot: int = 2000, conf: float = 0.95, seed: int = 0
) -> Interval:
    """Percentile bootstrap interval of ``stat`` over the first axis (prompts)."""
    x = np.asarray(samples, dtype=np.float64)
    n = x.shape[0]
    g = np.random.default_rng(seed)
    boots = np.stack([stat(x[g.integers(0, n, n)], axis=0) for _ in range(n_boot)])
    a = (1 - conf) / 2
    return Interval(
        mean=stat(x, axis=0),
        lo=np.quantile(boots, a, axis=0),
        hi=np.quantile(boots, 1 - a, axis=0),
        n=n,
        conf=conf,
    )


def interval_figure(
    x,
    curves: dict[str, Interval],
    *,
    title: str = "",
    xaxis: str = "",
    yaxis: str = "",
    kind: str = "line",
):
    """Plotly curves (``kind="line"``, with shaded bands) or bars (``kind="bar"``, with error
    bars) of several :class:`Interval` s over ``x``."""
    import plotly.graph_objects as go

    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]
    fig = go.Figure()
    x = list(np.asarray(x).tolist())
    for c, (name, iv) in enumerate(curves.items()):
        col = palette[c % len(palette)]
        m, lo, hi = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (iv.mean, iv.lo, iv.hi))
        if kind == "bar":
            fig.add_trace(
                go.Bar(
                    x=x,
                    y=m,
                    name=name,
                    marker_color=col,
                    error_y=dict(type="data", symmetric=False, array=hi - m, arrayminus=m - lo),
                )
            )
            continue
        rgba = "rgba({},{},{},0.18)".format(*(int(col[k : k + 2], 16) for k in (1, 3, 5)))
        fig.add_trace(
            go.Scatter(
                x=x + x[::-1],
                y=list(hi) + list(lo[::-1]),
                fill="toself",
                fillcolor=rgba,
                line=dict(width=0),
                hoverinfo="skip",
                showlegend=False,
                name=name + " band",
            )
        )
        fig.add_trace(go.Scatter(x=x, y=m, mode="lines+markers", name=name, line=dict(color=col)))
    conf = next(iter(curves.values())).conf if curves else 0.95
    fig.update_layout(
        title=title + f" (bands: {conf:.0%} interval over prompts)",
        xaxis_title=xaxis,
        yaxis_title=yaxis,
        barmode="group",
    )
    return fig
