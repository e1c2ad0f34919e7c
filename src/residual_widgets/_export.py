"""The widget's state as plotly figures and a standalone HTML page (``widget.figure()`` and
``widget.save_html()``). The figures are drawn by :mod:`.figures` from engine arrays."""

from __future__ import annotations

import pathlib

from . import views
from ._payloads import row_profile


def figure(w):
    """A plotly figure of the widget ``w``'s current view: the pinned effect's map (with the
    first-reached rows marked in the ``first_reached`` view), the future profile, the similarity
    heatmap, else the overview."""
    if w.view in ("first_reached", "profile", "similarity"):
        return lecture_view_figure(w)
    if w.current_effect is not None:
        return w.current_effect.figure(metric=w.metric, scale=w.scale)
    if w.current_atlas is not None:
        return w.current_atlas.figure(scale=w.scale)
    raise ValueError("nothing to draw yet: pin a cell (widget.select((row, pos))) or run a sweep")


def save_html(w, path) -> pathlib.Path:
    """Write the pinned effect's map and the overview (those that exist) of the widget ``w`` as
    one self-contained HTML file (plotly.js embedded; opens offline). Returns the path."""
    figs = []
    if w.current_effect is not None:
        figs.append(w.current_effect.figure(metric=w.metric, scale=w.scale))
    if w.current_atlas is not None:
        figs.append(w.current_atlas.figure(scale=w.scale))
    if not figs:
        raise ValueError("nothing to save yet: pin a cell or run a sweep first")
    path = pathlib.Path(path)
    path.write_text(html_page(figs), "utf-8")
    return path


def html_page(figs) -> str:
    """Plotly figures as one HTML page that loads plotly.js once (embedded in the first)."""
    parts = [f.to_html(full_html=False, include_plotlyjs=(k == 0)) for k, f in enumerate(figs)]
    return ("<!doctype html><html><head><meta charset='utf-8'><title>residual-widgets"
            "</title></head><body>" + "\n".join(parts) + "</body></html>")


def _row(w, default: int) -> int:
    return w.view_row if w.view_row >= 0 else default


def lecture_view_figure(w):
    """Plotly figure of the widget ``w``'s current lecture view (``first_reached``, ``profile``
    or ``similarity``)."""
    import plotly.graph_objects as go

    from .figures import axis_labels, profile_figure
    eff, atlas = w.current_effect, w.current_atlas
    if w.view == "first_reached":
        if eff is None:
            raise ValueError("the first-reached view needs a pinned cell: widget.select(...)")
        fig = eff.figure(metric=w.metric, scale=w.scale)
        first = views.first_reached(eff.resid_delta)
        pos = [p for p in range(len(first)) if first[p] >= 0]
        fig.add_trace(go.Scatter(x=pos, y=[int(first[p]) for p in pos], mode="markers",
                                 marker=dict(symbol="square-open", size=14, color="red"),
                                 name="first reached"), row=2, col=1)
        return fig
    if w.view == "profile":
        if atlas is None:
            raise ValueError("the profile view needs a sweep: widget.start_sweep()")
        row = _row(w, eff.cells[0][0] if eff is not None else 0)
        prof = {agg: row_profile(atlas, row, agg) for agg in ("mean", "max")}
        fig = profile_figure(prof["mean"].distance, {a: p.value for a, p in prof.items()},
                             title=f"effect of row {row} on the prediction d tokens ahead")
        fig.add_annotation(x=0, y=float(prof["mean"].value[0]), text="next token", showarrow=True)
        return fig
    row = _row(w, eff.cells[0][0] if eff is not None and eff.site == "resid" else w.n_rows - 1)
    sim, _ = views.similarity(w.session.clean.resid)
    lab = axis_labels(w.tokens)
    fig = go.Figure(go.Heatmap(z=sim[row], x=lab, y=lab, zmin=-1, zmax=1, colorscale="RdBu",
                               colorbar=dict(title="cosine")))
    fig.update_layout(title=f"cross-position cosine similarity of the residual at row {row}",
                      xaxis_title="position i", yaxis_title="position j")
    return fig
