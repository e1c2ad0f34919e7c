"""What each synced trait and reply message of the widget carries, built from engine results.

The front end reads these in ``js/`` (``traits.ts`` types them; ``mapstate.ts`` and
``lecture.ts`` decode them); arrays go through the wire format of :mod:`._codec`. Everything
here is computed by the engine (:mod:`.views` for the lecture views); this module only decides
what is sent and in which precision:

* ``effect``: one pinned :class:`~.effects.Effect`, with its first-reached rows;
* ``atlas``: the sweep, float16 maps when large, kept in the kernel when too big for the comm;
* ``estimate``: the instant overview (attribution patching) and, in the atlas, its agreement;
* ``profile`` / ``similarity`` / ``position_content``: the lecture views' arrays;
* the ``lens`` reply: the logit lens of one cell, clean and intervened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._codec import encode, encode_maybe

if TYPE_CHECKING:
    from . import views

#: atlases larger than this many float32 bytes are sent as float16
HALF_ABOVE_BYTES = 8 * 2**20
#: atlas maps (float16) or per-position KL above this many bytes stay in the kernel: the widget
#: gets the per-cell summary and computes a cell's map when it is clicked
SEND_LIMIT_BYTES = 64 * 2**20


def wants_half(shape, itemsize: int = 4) -> bool:
    """Whether an array of ``shape`` is big enough to go as float16."""
    return int(np.prod(shape)) * itemsize > HALF_ABOVE_BYTES


def effect_payload(eff, request_id: str | None) -> dict:
    """The ``effect`` trait for an :class:`Effect` (arrays as binary buffers), with
    ``first_reached`` (int32 ``[P]``, :func:`views.first_reached` of its map)."""
    from . import views  # torch: loaded when a view is first built

    return {
        "id": request_id,
        "cells": [[int(r), int(p)] for r, p in eff.cells],
        "kind": eff.kind,
        "site": eff.site,
        "resid_delta": encode(eff.resid_delta),
        "kl": encode(eff.kl),
        "logprob_delta": encode(eff.logprob_delta),
        "reachable": encode(eff.reachable),
        "logit_diff": None if eff.logit_diff is None else float(eff.logit_diff),
        "clean_logit_diff": _float(getattr(eff, "logit_diff_clean", None)),
        "first_reached": encode(views.first_reached(eff.resid_delta)),
    }


def atlas_payload(atlas, agreement: dict | None = None) -> dict:
    """The ``atlas`` trait: maps ``[S, P, R, P]`` (float16 when large), ``kl [S, P, P]``,
    ``total_kl [S, P]``, ``logprob_total [S, P]`` (Σ Δlog p), ``logit_diff [S, P]`` or None,
    ``done [S, P]``, and ``agreement`` with the estimate (:func:`agreement_payload`) or None."""
    maps, kl = atlas.resid_delta, atlas.kl
    storage = getattr(atlas, "storage", "float32")
    if maps is not None and maps.size * 2 > SEND_LIMIT_BYTES:
        maps, storage = None, "summary"  # too big for the comm: summaries + clicks
    half = maps is not None and (maps.dtype == np.float16 or wants_half(maps.shape))
    return {
        "kind": atlas.kind,
        "site": atlas.site,
        "complete": bool(atlas.complete),
        "storage": storage,
        "method": atlas.method,
        "slow_path": atlas.slow_path,
        "resid_delta": encode_maybe(maps, half=half),
        "kl": encode(kl) if kl.nbytes <= SEND_LIMIT_BYTES else None,
        "total_kl": encode(atlas.kl.sum(-1)),
        "logprob_total": _logprob_total(atlas),
        "logit_diff": encode_maybe(atlas.logit_diff),
        "done": encode(atlas.done),
        "clean_logit_diff": _float(getattr(atlas, "logit_diff_clean", None)),
        "agreement": agreement,
    }


def _logprob_total(atlas):
    """``[S, P]``: each source cell's change of the summed log p of the actual next tokens (the
    exact counterpart of :attr:`Attribution.logprob_delta`), or None when the atlas has none."""
    lp = getattr(atlas, "logprob_delta", None)
    return None if lp is None else encode(lp.sum(-1).astype(np.float32))


def estimate_payload(attr, *, kind: str, site: str, note: str = "", caveat: str = "") -> dict:
    """The ``estimate`` trait: the instant overview (:class:`~.attribution.Attribution`,
    first-order attribution patching) for ``kind``/``site`` — ``logit_diff`` ``[S, P]`` (None
    without a token pair), ``logprob_delta`` ``[S, P]``, float32, and ``caveat`` (where the
    estimate is known to be poor) — or, when ``attr`` is None, only ``note``: why there is no
    estimate (the overview says it)."""
    out = {"kind": kind, "site": site, "note": note, "caveat": caveat, "method": ""}
    out["logit_diff"] = None
    out.update(logprob_delta=None, clean_logit_diff=None)
    if attr is not None:
        out.update(
            method=attr.method,
            logit_diff=encode_maybe(attr.logit_diff),
            logprob_delta=encode(attr.logprob_delta),
            clean_logit_diff=_float(attr.logit_diff_clean),
        )
    return out


def agreement_payload(attr, atlas) -> dict | None:
    """The atlas's ``agreement``: :func:`.agreement.agreement` of the estimate and the exact
    cells done so far (Pearson, Spearman, n, the worst cells), NaN correlations as None; None
    when either is missing, they differ in kind/site, or no cell is done."""
    from .agreement import agreement

    if attr is None or atlas is None or (attr.kind, attr.site) != (atlas.kind, atlas.site):
        return None
    if getattr(atlas, "logprob_delta", None) is None or not atlas.done.any():
        return None
    res = agreement(attr, atlas)
    for v in res.values():
        for key in ("pearson", "spearman", "max_abs_error"):
            v[key] = float(v[key]) if np.isfinite(v[key]) else None  # JSON has no NaN
    return res


def row_profile(atlas, row: int, agg: str) -> views.FutureProfile:
    """Future profile of source ``row`` over the swept (done) cells of ``atlas``."""
    from . import views  # torch: loaded when a view is first built

    cells = [(row, i) for i in range(atlas.done.shape[1]) if atlas.done[row, i]]
    return views.future_profile(atlas.kl, cells, agg=agg)


def profile_payload(atlas) -> dict:
    """``profile`` trait: mean and max by distance for every source row, ``[S, P]`` each."""
    S, P = atlas.done.shape
    out = {"kind": atlas.kind, "site": atlas.site, "metric": "KL (nats)"}
    for agg in ("mean", "max"):
        vals = [row_profile(atlas, n, agg).value for n in range(S)]
        out[agg] = encode(np.stack(vals) if S else np.zeros((0, P), np.float32))
    return out


def similarity_payload(session) -> dict:
    """``similarity`` trait: cosine similarity ``[R, P, P]`` of the clean run, and by distance."""
    from . import views  # torch: loaded when a view is first built

    sim, by_d = views.similarity(session.clean.resid)
    return {"sim": encode(sim, half=wants_half(sim.shape)), "by_distance": encode(by_d)}


def position_content_payload(pc, conf: float = 0.95) -> dict:
    """``position_content`` trait from a :class:`views.PositionContent` (or a session / model,
    for which :func:`lecture.position_content_for` computes it): ``R`` rows, ``M`` massive
    dimensions, ``K`` kinds (``kinds``, in :attr:`PositionContent.KINDS` order), distances
    ``1..D``.

    ``massive_dims`` int32 ``[M]``, ``massive_abs`` ``[R, M]``, ``median_abs`` ``[R]``,
    ``energy`` / ``energy_no_massive`` ``[R, 3]`` (shared, position, content), ``distance``
    int32 ``[D]``; ``mean`` / ``lo`` / ``hi`` ``[K, R, D]``: the cosine by distance averaged over
    prompts with its ``conf`` Student-t interval; ``n_prompts``, ``n_tokens``, ``first``."""
    from . import views  # torch: loaded when a view is first built

    if not isinstance(pc, views.PositionContent):
        from .lecture import position_content_for

        pc = position_content_for(pc)
    ivs = [pc.interval(k, conf=conf) for k in pc.KINDS]

    def f32(a):
        return encode(np.asarray(a, np.float32))

    return {
        "kinds": list(pc.KINDS),
        "massive_dims": encode(np.asarray(pc.massive_dims, np.int32)),
        "massive_abs": f32(pc.massive_abs),
        "median_abs": f32(pc.median_abs),
        "energy": f32(pc.energy),
        "energy_no_massive": f32(pc.energy_no_massive),
        "distance": encode(np.asarray(pc.distance, np.int32)),
        "mean": f32(np.stack([iv.mean for iv in ivs])),
        "lo": f32(np.stack([iv.lo for iv in ivs])),
        "hi": f32(np.stack([iv.hi for iv in ivs])),
        "conf": float(conf),
        "n_prompts": pc.n_prompts,
        "n_tokens": int(pc.n_tokens),
        "first": int(pc.first),
    }


def lens_reply(request_id, key, cell, clean, intervened) -> dict:
    """The ``lens`` reply: top tokens ``[[token, prob], …]`` of one cell, clean and under the
    pinned effect (``None`` without one)."""
    return {
        "type": "lens",
        "id": request_id,
        "key": key,
        "cell": list(cell),
        "clean": _pairs(clean),
        "intervened": None if intervened is None else _pairs(intervened),
    }


def _pairs(top) -> list:
    return [[s, float(x)] for s, x in top]


def _float(x):
    return None if x is None else float(x)


# ---- the saved, explorable page (``save_html(interactive=True)``) ------------------------------

#: bytes the saved page may spend on arrays (before base64) unless told otherwise
PAGE_BUDGET_BYTES = 24 * 2**20


def page_atlas_payload(atlas, budget: int = PAGE_BUDGET_BYTES, keep=()) -> tuple[dict, str]:
    """The ``atlas`` for the saved page, within ``budget`` bytes, and what it holds in words.

    Maps go as float16 (≈ 3 significant digits). When every swept cell's map fits, they go as
    ``[S, P, R, P]``; otherwise only the most important cells' maps (largest total KL, or
    largest change of the logit difference; ``keep`` cells first) go, compacted to
    ``[K, R, P]`` with ``map_index`` (int32 ``[S, P]``, -1: no map) saying which is which. The
    per-position KL and Δlog p of every source cell (``[S, P, P]`` and ``[S, P, P-1]``) go as
    float32, float16 when large, or not at all."""
    S, P = atlas.done.shape
    maps = atlas.resid_delta
    spend = 0

    def small(a, share):
        nonlocal spend
        if a.nbytes <= 4 * 2**20 and spend + a.nbytes <= budget * share:
            spend += a.nbytes
            return encode(a)
        if a.nbytes // 2 + spend <= budget * share:
            spend += a.nbytes // 2
            return encode(a, half=True)
        return None

    kl = small(atlas.kl, 0.25)
    lp = small(atlas.logprob_delta, 0.35)
    out = {
        "kind": atlas.kind,
        "site": atlas.site,
        "complete": bool(atlas.complete),
        "method": atlas.method,
        "slow_path": atlas.slow_path,
        "kl": kl,
        "logprob_delta": lp,
        "total_kl": encode(atlas.kl.sum(-1)),
        "logprob_total": _logprob_total(atlas),
        "logit_diff": encode_maybe(atlas.logit_diff),
        "done": encode(atlas.done),
        "clean_logit_diff": _float(getattr(atlas, "logit_diff_clean", None)),
        "resid_delta": None,
        "map_index": None,
        "storage": "summary",
    }
    n_done = int(atlas.done.sum())
    cells = "cell" if n_done == 1 else "cells"
    if maps is None or n_done == 0:
        return out, (
            f"the sweep's summary of {n_done} source {cells}; no maps were kept "
            "(hover shows the summary only)"
        )
    R = maps.shape[2]
    per_map = R * P * 2
    room = max(0, budget - spend)
    if maps.size * 2 <= room:
        out["resid_delta"] = encode(maps, half=True)
        out["storage"] = "float16"
        return out, (
            f"the downstream maps of all {n_done} swept source {cells} as float16 "
            "(≈ 3 significant digits)"
        )
    k = int(max(0, room - S * P * 4) // per_map)  # the index takes int32 [S, P]
    order = _importance_order(atlas)
    first = [tuple(c) for c in keep if 0 <= c[0] < S and 0 <= c[1] < P and atlas.done[tuple(c)]]
    chosen = list(dict.fromkeys(first + order))[:k]
    index = np.full((S, P), -1, np.int32)
    for j, c in enumerate(chosen):
        index[c] = j
    sub = maps[tuple(np.array(chosen).T)] if chosen else np.zeros((0, R, P), np.float32)
    out["resid_delta"] = encode(sub, half=True)
    out["map_index"] = encode(index)
    out["storage"] = "subset"
    by = (
        "largest change of the logit difference"
        if atlas.logit_diff is not None
        else "largest total KL"
    )
    return out, (
        f"the downstream maps of {len(chosen)} of the {n_done} swept source cells (those "
        f"with the {by}) as float16, to keep the page under "
        f"{budget / 2**20:.0f} MB; the others show their summary only"
    )


def _importance_order(atlas) -> list[tuple[int, int]]:
    """Swept source cells, most important first (|Δ logit diff|, else total KL)."""
    if atlas.logit_diff is not None and atlas.logit_diff_clean is not None:
        score = np.abs(atlas.logit_diff - atlas.logit_diff_clean)
    else:
        score = atlas.kl.sum(-1)
    score = np.where(atlas.done, np.nan_to_num(score, nan=0.0), -np.inf)
    flat = np.argsort(-score, axis=None, kind="stable")
    S, P = atlas.done.shape
    return [(int(f // P), int(f % P)) for f in flat if atlas.done.flat[f]]
