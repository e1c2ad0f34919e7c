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
        return profile_figure(self.distance, {f"{self.agg} {self.metric}": self.value},
                              title=title or "effect on the prediction d tokens ahead",
                              yaxis=self.metric)


def future_profile(per_position: np.ndarray, cells, agg: str = "mean",
                   metric: str = "KL (nats)") -> FutureProfile:
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
    value = np.array([(np.mean(v) if agg == "mean" else np.max(v)) if v else np.nan
                      for v in vals], np.float32)
    return FutureProfile(distance=np.arange(P), value=value,
                         count=np.array([len(v) for v in vals]), agg=agg, metric=metric)


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
      entry: zero up to float rounding (about 1e-7), because matrix products of a different shape round differently —
      not because information flowed backwards.
    """
    from .session import Session

    short = Session(model, prompt)
    tok = short.model.tokenizer

    def ids(x):
        return tok(x, add_special_tokens=False)["input_ids"] if isinstance(x, str) else list(x)

    a, b = ids(suffix), ids(other_suffix)
    if len(a) != len(b):
        raise ValueError(f"suffix and other_suffix must have the same token length, got "
                         f"{len(a)} and {len(b)}")
    P = short.n_positions
    run_a = Session(short.model, short.ids + a).clean.resid[:, :P]
    run_b = Session(short.model, short.ids + b).clean.resid[:, :P]
    scale = short.clean.resid.abs().amax(dim=(1, 2))
    return {"other_suffix": (run_a - run_b).abs().amax(dim=(1, 2)).numpy(),
            "appended": ((run_a - short.clean.resid).abs().amax(dim=(1, 2)) / scale).numpy()}
