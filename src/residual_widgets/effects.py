"""Result objects: the effect of one intervention, and the atlas of a whole sweep.

Both are plain containers of numpy arrays (float32) with the shapes below, plus a ``figure()``
that draws them with plotly. ``R = L + 1`` residual rows, ``P`` positions; ``S`` is the number of
*source* rows of the swept site (``L + 1`` for ``resid``, ``L`` for ``attn_out``/``mlp_out``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import figures


@dataclass
class Effect:
    """The measured downstream effect of one intervention (one cell or a set of cells).

    * ``resid_delta`` ``[R, P]``: ``||h' - h|| / ||h||`` at every residual cell;
    * ``kl`` ``[P]``: KL(clean || new) of the next-token distribution at each position;
    * ``logprob_delta`` ``[P - 1]``: change in log p(actual next token); entry j predicts token j+1;
    * ``logit_diff`` / ``logit_diff_clean``: logit(good) − logit(bad) at the last position under the
      intervention / in the clean run (``None`` without a token pair);
    * ``reachable`` ``[R, P]`` bool: the cone of the intervened cells (see :mod:`.grid`).
    """

    cells: list[tuple[int, int]]
    kind: str
    site: str
    resid_delta: np.ndarray
    kl: np.ndarray
    logprob_delta: np.ndarray
    reachable: np.ndarray
    tokens: list[str]
    logit_diff: float | None = None
    logit_diff_clean: float | None = None
    resid: Any = field(default=None, repr=False)  # torch [R, P, d] intervened residuals

    @property
    def total_kl(self) -> float:
        return float(self.kl.sum())

    def describe(self) -> str:
        """What was done, in words: "zero ablation at resid [(3, 4)]", "activation patch at …",
        "transplant into resid [(5, 2)]", "knockout at …"."""
        what = {
            "transplant": "transplant into",
            "patch": "activation patch at",
            "set": "set at",
            "knockout": "knockout at",
        }.get(self.kind, f"{self.kind} ablation at")
        return f"{what} {self.site} {self.cells}"

    def figure(self, metric: str = "kl", scale: str = "linear", title: str | None = None):
        """Plotly figure: the downstream map with the cone outlined, the output metric on top;
        titled by :meth:`describe` unless ``title`` is given."""
        strip = self.kl if metric == "kl" else np.append(self.logprob_delta, np.nan)
        cells, site = self.cells, self.site
        if site == "head":  # (layer, head, pos) enters where block `layer`'s attention writes
            cells, site = [(c[0], c[2]) for c in cells], "attn_out"
        return figures.effect_figure(
            self.resid_delta,
            self.tokens,
            cells=cells,
            site=site,
            reachable=self.reachable,
            strip=strip,
            strip_name="KL (nats)" if metric == "kl" else "Δ log p",
            title=title or self.describe(),
            scale=scale,
        )

    def summary(self, top: int = 5) -> str:
        """A few lines of text: the most affected cells and the output metric."""
        flat = np.argsort(self.resid_delta, axis=None)[::-1][:top]
        lines = [
            f"{self.kind} at {self.site} cells {self.cells}: total KL {self.total_kl:.4g} nats"
        ]
        for f in flat:
            r, p = np.unravel_index(f, self.resid_delta.shape)
            lines.append(
                f"  row {r:>3} pos {p:>4} {self.tokens[p]!r:>14}  "
                f"||Δh||/||h|| = {self.resid_delta[r, p]:.4g}"
            )
        if self.logit_diff is not None:
            lines.append(f"  logit diff {self.logit_diff_clean:.4g} → {self.logit_diff:.4g}")
        return "\n".join(lines)


@dataclass
class Atlas:
    """Every source cell's downstream effect, from :meth:`Session.sweep`.

    * ``resid_delta`` ``[S, P, R, P]``: ``resid_delta[n, i]`` is the map of source cell ``(n, i)``;
    * ``kl`` ``[S, P, P]`` and ``total_kl`` ``[S, P]`` (its sum over positions);
    * ``logprob_delta`` ``[S, P, P - 1]``;
    * ``logit_diff`` ``[S, P]``: logit(good) − logit(bad) at the last position under each
      intervention (``None`` without a token pair); ``logit_diff_clean`` the clean value;
    * ``done`` ``[S, P]`` bool: which cells are filled (all, unless the sweep was cancelled);
    * ``storage``: ``"float32"``, ``"float16"`` (maps halved to fit memory) or ``"summary"``
      (``resid_delta`` is ``None``: maps are recomputed per cell on demand);
    * ``method``: how it was computed (``"cone"``, ``"batch"`` or ``"loop"``); ``slow_path``: why
      an ``"auto"`` sweep could not use the cone ("" when it did, or was not asked to).
    """

    kind: str
    site: str
    tokens: list[str]
    resid_delta: np.ndarray | None
    kl: np.ndarray
    logprob_delta: np.ndarray
    done: np.ndarray
    logit_diff: np.ndarray | None = None
    logit_diff_clean: float | None = None
    complete: bool = False
    method: str = ""
    slow_path: str = ""  # the reason an "auto" sweep fell back to one forward per cell
    storage: str = "float32"  # how the maps are kept: "float32", "float16" or "summary" (none)

    @property
    def total_kl(self) -> np.ndarray:
        return self.kl.sum(-1)

    def store(
        self, cell, *, kl, logprob_delta, resid_delta=None, logit_diff=None, start: int = 0
    ) -> None:
        """File source cell ``(n, i)``'s results and mark it done. ``kl`` and ``logprob_delta``
        may cover positions ``start..`` only (the rest are exactly zero: outside the cone);
        ``resid_delta`` ``[R, P]`` is dropped when the atlas keeps no maps."""
        n, i = cell
        self.kl[n, i, start:] = kl
        self.logprob_delta[n, i, start:] = logprob_delta
        if self.resid_delta is not None and resid_delta is not None:
            self.resid_delta[n, i] = resid_delta
        if self.logit_diff is not None:
            self.logit_diff[n, i] = logit_diff
        self.done[n, i] = True

    def store_effect(self, cell, eff) -> None:
        """File an :class:`Effect` computed for source cell ``cell``."""
        self.store(
            cell,
            kl=eff.kl,
            logprob_delta=eff.logprob_delta,
            resid_delta=eff.resid_delta,
            logit_diff=eff.logit_diff,
        )

    def store_unchanged(self, cell) -> None:
        """A cell whose intervention writes the clean value: no effect anywhere (all zeros, the
        clean logit difference)."""
        self.done[cell] = True
        if self.logit_diff is not None:
            self.logit_diff[cell] = self.logit_diff_clean

    @property
    def n_layers(self) -> int:
        return self.done.shape[0] - (1 if self.site == "resid" else 0)

    def summary_values(self) -> tuple[np.ndarray, str]:
        """The per-source-cell overview: logit difference if a pair was given, else total KL."""
        if self.logit_diff is not None:
            return self.logit_diff, "logit diff"
        return self.total_kl, "total KL (nats)"

    def figure(self, scale: str = "linear"):
        """Plotly heatmap of the overview: which source cells matter."""
        vals, name = self.summary_values()
        vals = np.where(self.done, vals, np.nan)
        return figures.overview_figure(
            vals,
            self.tokens,
            site=self.site,
            name=name,
            title=f"{self.kind} sweep over {self.site}: {name}",
            scale=scale,
        )
