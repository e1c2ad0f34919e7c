"""What to write into each intervened cell.

An intervention replaces the vector at each chosen cell with a new one. The *kind* says which:

* ``zero`` — the zero vector (the cell carries nothing).
* ``mean`` — the mean of that row over the prompt's positions (or, when the session was given
  ``mean_reference`` prompts, over every position of the prompt and those prompts).
* ``noise`` — the clean vector plus Gaussian noise with ``sigma = noise_scale × std(row 0)``, the
  standard deviation of the embeddings over the prompt (ROME's causal tracing uses 3). The noise
  of a cell is drawn from a generator seeded by ``(seed, site, row, position)``, so a cell gets the
  same noise alone, in a set, or in a sweep, run after run.
* ``patch`` / ``resample`` — the same cell from the run of the *source* prompt (activation
  patching). The source must tokenize to the same length as the prompt.
* ``set`` — a vector the caller supplies (``value=`` ``[d_model]`` or ``[n_cells, d_model]``).

The values are computed from the clean (and source) runs only, never from the intervened run,
so they are fixed before the forward pass starts.
"""

from __future__ import annotations

import numpy as np
import torch

from .grid import HEAD_SITE, SITES, Cell


def noise_for(seed: int, site: str, row: int, pos: int, d: int) -> torch.Tensor:
    """Standard-normal ``[d]`` noise, reproducible for ``(seed, site, row, pos)``."""
    code = len(SITES) if site == HEAD_SITE else SITES.index(site)  # head rows: layer·H + head
    state = np.random.SeedSequence([int(seed), code, int(row), int(pos)])
    g = torch.Generator().manual_seed(int(state.generate_state(1, dtype=np.uint64)[0] >> 1))
    return torch.randn(d, generator=g)


def replacement_values(
    kind: str,
    site: str,
    cells: list[Cell],
    clean: torch.Tensor,
    *,
    source: torch.Tensor | None = None,
    mean: torch.Tensor | None = None,
    sigma: float = 0.0,
    seed: int = 0,
    value=None,
) -> torch.Tensor:
    """The vectors to write, ``[n_cells, d_model]`` float32.

    ``clean`` and ``source`` are the site's activations ``[rows, P, d]`` in the clean and source
    runs; ``mean`` is ``[rows, d]`` (the per-row means to use for ``kind="mean"``).
    """
    d = clean.shape[-1]
    rows = [r for r, _ in cells]
    pos = [p for _, p in cells]
    if kind == "zero":
        return torch.zeros(len(cells), d, dtype=clean.dtype)
    if kind == "mean":
        return mean[rows].clone()
    if kind == "noise":
        noise = torch.stack([noise_for(seed, site, r, p, d) for r, p in cells])
        return clean[rows, pos] + sigma * noise.to(clean.dtype)
    if kind in ("patch", "resample"):
        if source is None:
            raise ValueError(
                f"kind={kind!r} needs a source prompt: Session(model, prompt, source=other_prompt)"
            )
        return source[rows, pos].clone()
    if kind == "set":
        if value is None:
            raise ValueError("kind='set' needs value= (a [d_model] or [n_cells, d_model] array)")
        v = torch.as_tensor(np.asarray(value, dtype=np.float32))
        if v.shape == (d,):
            v = v.expand(len(cells), d)
        if v.shape != (len(cells), d):
            raise ValueError(
                f"value has shape {tuple(v.shape)}; expected ({d},) or ({len(cells)}, {d})"
            )
        if not torch.isfinite(v).all():
            raise ValueError("the patch value contains NaN or infinity; pass finite numbers")
        return v.clone()
    raise ValueError(f"unknown kind {kind!r}")
