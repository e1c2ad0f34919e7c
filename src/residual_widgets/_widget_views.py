"""The widget's lecture views (``first_reached``, ``profile``, ``similarity``) as trait payloads
and plotly figures. Everything is computed by the engine (:mod:`.views`, :mod:`.figures`)."""

from __future__ import annotations

import numpy as np

from . import _codec
from . import views as _views


def profile_of(atlas, row: int, agg: str) -> "_views.FutureProfile":
    """Future profile of source ``row`` over the swept (done) cells of ``atlas``."""
    cells = [(row, i) for i in range(atlas.done.shape[1]) if atlas.done[row, i]]
    return _views.future_profile(atlas.kl, cells, agg=agg)


def profile_payload(atlas) -> dict:
    """``profile`` trait: mean and max by distance for every source row, ``[S, P]`` each."""
    S, P = atlas.done.shape
    out = {"kind": atlas.kind, "site": atlas.site, "metric": "KL (nats)"}
    for agg in ("mean", "max"):
        vals = [profile_of(atlas, n, agg).value for n in range(S)]
        out[agg] = _codec.encode(np.stack(vals) if S else np.zeros((0, P), np.float32))
    return out


def similarity_payload(session) -> dict:
    """``similarity`` trait: cosine similarity ``[R, P, P]`` of the clean run, and by distance."""
    sim, by_d = _views.similarity(session.clean.resid)
    return {"sim": _codec.encode(sim, half=_codec.wants_half(sim.shape)),
            "by_distance": _codec.encode(by_d)}


def _row(w, default: int) -> int:
    return w.view_row if w.view_row >= 0 else default


def view_figure(w):
    """Plotly figure of the widget ``w``'s current lecture view."""
    import plotly.graph_objects as go

    from .figures import axis_labels, profile_figure
    eff, atlas = w.current_effect, w.current_atlas
    if w.view == "first_reached":
        if eff is None:
            raise ValueError("the first-reached view needs a pinned cell: widget.select(...)")
        fig = eff.figure(metric=w.metric, scale=w.scale)
        first = _views.first_reached(eff.resid_delta)
        pos = [p for p in range(len(first)) if first[p] >= 0]
        fig.add_trace(go.Scatter(x=pos, y=[int(first[p]) for p in pos], mode="markers",
                                 marker=dict(symbol="square-open", size=14, color="red"),
                                 name="first reached"), row=2, col=1)
        return fig
    if w.view == "profile":
        if atlas is None:
            raise ValueError("the profile view needs a sweep: widget.start_sweep()")
        row = _row(w, eff.cells[0][0] if eff is not None else 0)
        prof = {agg: profile_of(atlas, row, agg) for agg in ("mean", "max")}
        fig = profile_figure(prof["mean"].distance, {a: p.value for a, p in prof.items()},
                             title=f"effect of row {row} on the prediction d tokens ahead")
        fig.add_annotation(x=0, y=float(prof["mean"].value[0]), text="next token", showarrow=True)
        return fig
    row = _row(w, eff.cells[0][0] if eff is not None and eff.site == "resid" else w.n_rows - 1)
    sim, _ = _views.similarity(w.session.clean.resid)
    lab = axis_labels(w.tokens)
    fig = go.Figure(go.Heatmap(z=sim[row], x=lab, y=lab, zmin=-1, zmax=1, colorscale="RdBu",
                               colorbar=dict(title="cosine")))
    fig.update_layout(title=f"cross-position cosine similarity of the residual at row {row}",
                      xaxis_title="position i", yaxis_title="position j")
    return fig
