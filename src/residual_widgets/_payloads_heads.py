"""What the widget sends for the heads view and for transplanting by hand (the mirror of
``js/heads.ts`` and ``js/transplant.ts``); arrays go through :mod:`._codec`, never as JSON lists.

* ``heads`` trait: a :class:`~.head_sweep.HeadAtlas` — per head cell ``(layer, head, pos)``
  its ``done``, ``total_kl``, ``logprob_total`` (Σ Δlog p of the next tokens) and
  ``logit_diff`` ``[L, H, P]``, the per-position KL ``[L, H, P, P]`` and the downstream maps
  ``[L, H, P, R, P]`` (float16 when large, left in the kernel when too big for the comm, like
  the residual atlas), plus the sweep's progress; for the all-positions sweep
  (``all_positions: true``) the same per head ``(layer, head)``, without the ``P`` axis;
* the pinned ``effect`` of a head intervention or a transplant: :func:`._payloads.effect_payload`
  plus what the front end needs to mark it — ``head_cells`` (a head effect's ``(layer, head,
  pos)``; its ``cells`` are ``(layer, pos)``, drawn where the head writes, row ``layer + 1``),
  ``transplant`` (where the copied cell came from and went) and ``undo`` (how many earlier pinned
  effects the kernel can go back to);
* ``transplant_source`` trait: the transplant prompt's tokens and ``‖h‖`` of each clean residual
  ``[R, Ps]``, the grid that source cells are dragged from.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import grid
from ._codec import encode, encode_maybe
from ._payloads import SEND_LIMIT_BYTES, _float, effect_payload, wants_half


def heads_payload(atlas, progress: dict) -> dict:
    """The ``heads`` trait for a head atlas and the sweep's ``progress`` (``{done, total,
    running, cancelled}``). By position its arrays lead with ``[L, H, P]``; with
    ``all_positions`` (``positions="all"``, said by the payload's ``all_positions``) with
    ``[L, H]``: ``done``/``total_kl``/``logprob_total``/``logit_diff`` ``[L, H]``, ``kl``
    ``[L, H, P]``, ``resid_delta`` ``[L, H, R, P]``."""
    maps, kl = atlas.resid_delta, atlas.kl
    storage = getattr(atlas, "storage", "float32")
    if maps is not None and maps.size * 2 > SEND_LIMIT_BYTES:
        maps, storage = None, "summary"  # too big for the comm: summaries + clicks
    half = maps is not None and (maps.dtype == np.float16 or wants_half(maps.shape))
    L, H = atlas.done.shape[:2]
    return {
        "kind": atlas.kind,
        "site": grid.HEAD_SITE,
        "complete": bool(atlas.complete),
        "storage": storage,
        "method": atlas.method,
        "slow_path": atlas.slow_path,
        "n_layers": int(L),
        "n_heads": int(H),
        "all_positions": bool(getattr(atlas, "all_positions", False)),
        "done": encode(atlas.done),
        "total_kl": encode(atlas.kl.sum(-1)),
        "logprob_total": encode(atlas.logprob_delta.sum(-1)),
        "logit_diff": encode_maybe(atlas.logit_diff),
        "clean_logit_diff": _float(getattr(atlas, "logit_diff_clean", None)),
        "kl": encode(kl) if kl.nbytes <= SEND_LIMIT_BYTES else None,
        "resid_delta": encode_maybe(maps, half=half),
        "progress": {k: progress.get(k, v) for k, v in _IDLE.items()},
    }


_IDLE = {"done": 0, "total": 0, "running": False, "cancelled": False}


def pin_payload(eff, request_id, *, transplant: dict | None = None, undo: int = 0) -> dict:
    """The ``effect`` trait for any pinned :class:`Effect` (cells, a head, a transplant)."""
    if eff.site == grid.HEAD_SITE:
        heads = [[int(a), int(h), int(p)] for a, h, p in eff.cells]
        out = effect_payload(
            dataclasses.replace(eff, cells=[(a, p) for a, _, p in heads]), request_id
        )
        out["head_cells"] = heads
    else:
        out = effect_payload(eff, request_id)
    out["transplant"] = transplant
    out["undo"] = int(undo)
    return out


def source_payload(prompt: str, tokens: list[str], resid) -> dict:
    """The ``transplant_source`` trait: the prompt, its tokens and ``‖h‖`` ``[R, Ps]`` of its
    clean residuals (``resid`` ``[R, Ps, d]``)."""
    norm = resid.float().norm(dim=-1) if hasattr(resid, "float") else np.linalg.norm(resid, axis=-1)
    return {"prompt": prompt, "tokens": [str(t) for t in tokens], "norm": encode(norm)}
