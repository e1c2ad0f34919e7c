"""Derived views that answer the lecture questions from measured effects.

* :func:`first_reached` — for one source cell, the lowest row at which each later position first
  changes at all. With full attention every later position is reached one row up (one attention
  hop); with a sliding window of ``w`` tokens a position ``d`` tokens ahead needs about
  ``d / (w - 1)`` hops, one row each, so no path is longer than the depth.
* :func:`future_profile` — the effect of intervening at position ``i`` on the prediction made at
  ``j`` as a function of the distance ``j - i``, aggregated (mean or max) over source cells,
  with the next-token term (``j = i``: the prediction position ``i`` itself makes) separated from
  the far-future terms (``j > i``: read later through attention).
* :func:`similarity` — cosine similarity between the residual vectors of every pair of positions,
  per row, and its average by distance: a slowly evolving shared part shows up as similarity
  that stays high across distance.
* :func:`prefix_stability` — run a prompt and the prompt plus a suffix; every cell of the
  prompt's positions is identical (why a KV cache is exact).
* :func:`position_content` — over many prompts, split each residual into a *shared* part (the
  row's mean over prompts and positions), a *position* part (the mean over prompts at that
  absolute position, minus the shared part) and a *content* part (the rest); find the
  massive-activation dimensions; and measure how similarity decays with distance for the raw
  residual, the residual without the massive dimensions, and the content part — against the
  same measurement between *different* prompts (the baseline any "memory" must beat).

All take and return numpy arrays; the ``*_figure`` helpers in :mod:`.figures` draw them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


def first_reached(resid_delta: np.ndarray, threshold: float = 0.0) -> np.ndarray:
    """``[R, P]`` map of one intervention → ``[P]``: the lowest row whose delta exceeds
    ``threshold`` at each position, or ``-1`` where no row does."""
    hit = resid_delta > threshold
    first = np.argmax(hit, axis=0)
    return np.where(hit.any(axis=0), first, -1)


@dataclass
class FutureProfile:
    """Effect on the prediction at ``j`` by distance ``d = j - i`` (``d = 0..P-1``).

    ``value[d]`` is the aggregate over source cells with a position ``d`` ahead; ``count[d]`` how
    many source cells contributed. ``next_token`` is ``value[0]`` (the prediction at ``i``
    itself); ``far_future`` the sum over ``d ≥ 1``; ``far_share`` its share of the total.
    """

    distance: np.ndarray
    value: np.ndarray
    count: np.ndarray
    agg: str
    metric: str

    @property
    def next_token(self) -> float:
        return float(self.value[0])

    @property
    def far_future(self) -> float:
        return float(np.nansum(self.value[1:]))

    @property
    def far_share(self) -> float:
        total = self.next_token + self.far_future
        return self.far_future / total if total > 0 else 0.0

    def figure(self, title: str = ""):
        from .figures import profile_figure

        return profile_figure(
            self.distance,
            {f"{self.agg} {self.metric}": self.value},
            title=title or "effect on the prediction d tokens ahead",
            yaxis=self.metric,
        )


def future_profile(
    per_position: np.ndarray, cells, agg: str = "mean", metric: str = "KL (nats)"
) -> FutureProfile:
    """Aggregate ``per_position`` ``[S, P, P]`` (e.g. ``atlas.kl``; entry ``[n, i, j]`` is the
    effect of source ``(n, i)`` on the prediction at ``j``) over the source ``cells`` by ``j - i``.

    ``cells``: a list of ``(n, i)``, or an int ``n`` for a whole row.
    """
    if agg not in ("mean", "max"):
        raise ValueError(f"agg must be 'mean' or 'max', got {agg!r}")
    S, P, _ = per_position.shape
    if isinstance(cells, (int, np.integer)):
        cells = [(int(cells), i) for i in range(P)]
    vals: list[list[float]] = [[] for _ in range(P)]
    for n, i in cells:
        for j in range(i, P):
            vals[j - i].append(float(abs(per_position[n, i, j])))
    value = np.array(
        [(np.mean(v) if agg == "mean" else np.max(v)) if v else np.nan for v in vals], np.float32
    )
    return FutureProfile(
        distance=np.arange(P),
        value=value,
        count=np.array([len(v) for v in vals]),
        agg=agg,
        metric=metric,
    )


def similarity(resid: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Residuals ``[R, P, d]`` → (cosine similarity ``[R, P, P]``, mean by distance ``[R, P]``).

    ``by_distance[r, d]`` averages the similarity of positions ``d`` apart at row ``r``.
    """
    x = torch.nn.functional.normalize(resid.float(), dim=-1)
    sim = (x @ x.transpose(1, 2)).numpy()
    R, P, _ = sim.shape
    by_d = np.stack([[np.diagonal(sim[r], offset=d).mean() for d in range(P)] for r in range(R)])
    return sim.astype(np.float32), by_d.astype(np.float32)


def prefix_stability(model, prompt, suffix, other_suffix) -> dict[str, np.ndarray]:
    """Does anything after a prompt change the prompt's cells? Max difference per row ``[R]``.

    * ``"other_suffix"``: prompt + ``suffix`` against prompt + ``other_suffix`` (same length):
      exactly 0.0 — bit for bit, whatever comes later, the earlier cells are the same;
    * ``"appended"``: the prompt alone against prompt + ``suffix``, relative to the row's largest
      entry: zero up to float rounding (about 1e-7), because matrix products of a different shape
      round differently — not because information flowed backwards.
    """
    from .session import Session

    short = Session(model, prompt)
    tok = short.model.tokenizer

    def ids(x):
        return tok(x, add_special_tokens=False)["input_ids"] if isinstance(x, str) else list(x)

    a, b = ids(suffix), ids(other_suffix)
    if len(a) != len(b):
        raise ValueError(
            f"suffix and other_suffix must have the same token length, got {len(a)} and {len(b)}"
        )
    P = short.n_positions
    run_a = Session(short.model, short.ids + a).clean.resid[:, :P]
    run_b = Session(short.model, short.ids + b).clean.resid[:, :P]
    scale = short.clean.resid.abs().amax(dim=(1, 2))
    return {
        "other_suffix": (run_a - run_b).abs().amax(dim=(1, 2)).numpy(),
        "appended": ((run_a - short.clean.resid).abs().amax(dim=(1, 2)) / scale).numpy(),
    }


@dataclass
class PositionContent:
    """Result of :func:`position_content`. ``R`` rows, ``N`` prompts, distances ``1..D``.

    * ``massive_dims`` ``[M]``: dimensions whose mean |value| exceeds ``factor`` × the median
      dimension's at some row ≥ 1 (largest first); ``massive_abs`` ``[R, M]`` their mean |value|
      per row, ``median_abs`` ``[R]`` the median dimension's;
    * ``energy`` ``[R, 3]``: share of the residual's mean squared norm in the shared, position
      and content parts (they are orthogonal on average, so each row sums to 1);
      ``energy_no_massive`` the same with the massive dimensions removed first;
    * ``sim[kind]`` ``[N, R, D]``: per prompt, the mean cosine similarity of positions ``d``
      apart. Kinds: ``"raw"``; ``"no_massive"`` (massive dimensions zeroed); ``"centred"``
      (the shared part removed); ``"content"`` (position part removed too — the position mean
      leaves the prompt itself out); ``"content_other"`` (content of position ``p`` in this
      prompt vs position ``p + d`` in a *different* prompt: the baseline).
    """

    massive_dims: np.ndarray
    massive_abs: np.ndarray
    median_abs: np.ndarray
    energy: np.ndarray
    energy_no_massive: np.ndarray
    sim: dict
    distance: np.ndarray
    first: int
    #: tokens per prompt, position 0 included (``first`` of them are left out of the statistics)
    n_tokens: int = 0

    KINDS = ("raw", "no_massive", "centred", "content", "content_other")

    @property
    def n_prompts(self) -> int:
        return int(self.sim["raw"].shape[0])

    def interval(self, kind: str, conf: float = 0.95):
        """The ``conf`` Student-t interval over prompts of ``sim[kind]``: ``[R, D]`` arrays
        ``mean``, ``lo``, ``hi`` (a :class:`~.lecture.Interval`)."""
        from .lecture_stats import t_interval

        return t_interval(self.sim[kind], axis=0, conf=conf)

    def far(self, kind: str, min_distance: int = 5) -> np.ndarray:
        """Per prompt and row ``[N, R]``: mean similarity at distances ≥ ``min_distance``."""
        return self.sim[kind][:, :, self.distance >= min_distance].mean(-1)

    def excess(self, min_distance: int = 5) -> np.ndarray:
        """``[N, R]``: content similarity within a prompt minus the different-prompt baseline,
        at distances ≥ ``min_distance`` — what a per-prompt memory would add."""
        return self.far("content", min_distance) - self.far("content_other", min_distance)

    def figure(self, row: int, conf: float = 0.95, title: str = ""):
        """Three panels: the massive dimensions by row, the energy split by row, and similarity
        by distance at ``row`` for every kind, with ``conf`` t-intervals over prompts."""
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        from .lecture_stats import t_interval

        R = self.energy.shape[0]
        fig = make_subplots(
            rows=1,
            cols=3,
            subplot_titles=(
                "massive dims: mean |value| by row",
                "energy split by row",
                f"row {row}: cosine of positions d apart",
            ),
        )
        rows = list(range(R))
        for k, dim in enumerate(self.massive_dims):
            fig.add_trace(
                go.Scatter(x=rows, y=self.massive_abs[:, k], name=f"dim {dim}", legendgroup="m"),
                row=1,
                col=1,
            )
        fig.add_trace(
            go.Scatter(
                x=rows,
                y=self.median_abs,
                name="median dim",
                line=dict(dash="dot", color="black"),
                legendgroup="m",
            ),
            row=1,
            col=1,
        )
        for k, part in enumerate(("shared", "position", "content")):
            fig.add_trace(
                go.Bar(x=rows, y=self.energy[:, k], name=f"{part} part", legendgroup="e"),
                row=1,
                col=2,
            )
        palette = ["#1f77b4", "#ff7f0e", "#9467bd", "#2ca02c", "#d62728"]
        x = self.distance.tolist()
        for kind, col in zip(self.KINDS, palette, strict=True):
            iv = t_interval(self.sim[kind][:, row], conf=conf)
            rgba = "rgba({},{},{},0.2)".format(*(int(col[k : k + 2], 16) for k in (1, 3, 5)))
            fig.add_trace(
                go.Scatter(
                    x=x + x[::-1],
                    y=list(iv.hi) + list(iv.lo[::-1]),
                    fill="toself",
                    fillcolor=rgba,
                    line=dict(width=0),
                    hoverinfo="skip",
                    showlegend=False,
                ),
                row=1,
                col=3,
            )
            fig.add_trace(
                go.Scatter(x=x, y=iv.mean, name=kind, line=dict(color=col), legendgroup="s"),
                row=1,
                col=3,
            )
        fig.update_layout(
            barmode="stack",
            height=420,
            width=1250,
            title=title
            or f"position vs content ({self.sim['raw'].shape[0]} "
            f"prompts, bands: {conf:.0%} t-interval)",
        )
        fig.update_yaxes(type="log", row=1, col=1)
        fig.update_xaxes(title_text="row", row=1, col=1)
        fig.update_xaxes(title_text="row", row=1, col=2)
        fig.update_xaxes(title_text="distance d", row=1, col=3)
        return fig


def _cos_by_distance(a: torch.Tensor, b: torch.Tensor, D: int) -> np.ndarray:
    """``a``, ``b`` ``[N, R, P', d]`` → ``[N, R, D]``: mean over p of cos(a[p], b[p + d])."""
    a = torch.nn.functional.normalize(a, dim=-1)
    b = torch.nn.functional.normalize(b, dim=-1)
    return torch.stack(
        [(a[:, :, :-d] * b[:, :, d:]).sum(-1).mean(-1) for d in range(1, D + 1)], dim=-1
    ).numpy()


def position_content(
    resid, massive_dims=None, factor: float = 10.0, first: int = 1, max_distance: int | None = None
) -> PositionContent:
    """Decompose residuals of many prompts ``[N, R, P, d]`` (equal length, ``N ≥ 3``; e.g.
    :func:`residual_widgets.lecture.residuals`) into shared / position / content parts and
    measure similarity by distance. See :class:`PositionContent`.

    ``massive_dims``: the dimensions to treat as massive activations, or ``None`` to find them
    (mean |value| > ``factor`` × the median dimension's at some row ≥ 1). ``first``: positions
    before it are left out of every statistic (position 0 is the attention sink in most
    models, with a residual unlike any other). ``max_distance``: largest ``d`` (default: all).
    """
    x = torch.as_tensor(np.asarray(resid) if not isinstance(resid, torch.Tensor) else resid)
    n_tokens = int(x.shape[2])
    x = x.float()[:, :, first:]
    N, R, P, d = x.shape
    if N < 3:
        raise ValueError(f"need at least 3 prompts to separate position from content, got {N}")
    if P < 2:
        raise ValueError("need at least 2 positions after `first`")
    D = P - 1 if max_distance is None else min(int(max_distance), P - 1)
    mean_abs = x.abs().mean(dim=(0, 2))  # [R, d]
    median_abs = mean_abs.median(dim=-1).values  # [R]
    if massive_dims is None:
        ratio = (mean_abs / median_abs[:, None].clamp_min(1e-12))[1:] if R > 1 else mean_abs
        peak = ratio.max(dim=0).values
        cand = torch.nonzero(peak > factor).flatten()
        order = torch.argsort(
            mean_abs[1:, cand].mean(0) if R > 1 else mean_abs[:, cand].mean(0), descending=True
        )
        massive = cand[order]
    else:
        massive = torch.as_tensor(list(massive_dims), dtype=torch.long)
    keep = torch.ones(d, dtype=torch.bool)
    keep[massive] = False

    shared = x.mean(dim=(0, 2), keepdim=True)  # [1, R, 1, d]
    pos_mean = x.mean(dim=0, keepdim=True)  # [1, R, P, d]
    loo = (N * pos_mean - x) / (N - 1)  # leave-one-out
    content = x - loo

    def energy(v: torch.Tensor, sh: torch.Tensor, pm: torch.Tensor) -> np.ndarray:
        tot = (v**2).sum(-1).mean(dim=(0, 2))
        parts = [
            (sh**2).sum(-1).mean(dim=(0, 2)),
            ((pm - sh) ** 2).sum(-1).mean(dim=(0, 2)),
            ((v - pm) ** 2).sum(-1).mean(dim=(0, 2)),
        ]
        return (torch.stack(parts, -1) / tot.clamp_min(1e-30)[:, None]).numpy()

    xm = x[..., keep]
    other = torch.roll(content, shifts=1, dims=0)  # prompt n-1 (≠ n)
    sim = {
        "raw": _cos_by_distance(x, x, D),
        "no_massive": _cos_by_distance(xm, xm, D),
        "centred": _cos_by_distance(x - shared, x - shared, D),
        "content": _cos_by_distance(content, content, D),
        "content_other": _cos_by_distance(content, other, D),
    }
    return PositionContent(
        massive_dims=massive.numpy(),
        massive_abs=mean_abs[:, massive].numpy(),
        median_abs=median_abs.numpy(),
        energy=energy(x, shared, pos_mean),
        energy_no_massive=energy(xm, shared[..., keep], pos_mean[..., keep]),
        sim=sim,
        distance=np.arange(1, D + 1),
        first=first,
        n_tokens=n_tokens,
    )
