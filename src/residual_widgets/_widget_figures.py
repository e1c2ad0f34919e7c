"""``widget.figure()``: what the widget shows now, as a plotly figure drawn from engine arrays.

==================== =========================================================================
``view``             the figure
==================== =========================================================================
``map``              the pinned effect's map (titled as a transplant for a transplant, with
                     its source); with nothing pinned, the overview (below)
``first_reached``    the pinned map with the first-reached row of each position marked
``profile``          the future profile of the row (``view_row``, else the pinned row)
``similarity``       cosine similarity of the clean residual between positions at the row
``position_content`` :meth:`views.PositionContent.figure` at the row
``heads``            the head sweep, one row per ``(layer, head)``, in ``overview_metric``
==================== =========================================================================

The overview (``figure(overview=True)``, or ``map`` with nothing pinned) is
:func:`.overview.overview` in the widget's ``overview_metric``: exact where the sweep has been,
the attribution estimate elsewhere, marked as one (a second trace and the title).
"""

from __future__ import annotations

from . import views
from ._payloads import row_profile
from .overview import head_figure, overview


def current_overview(w):
    """The widget ``w``'s overview as an :class:`~.overview.Overview` (None before any sweep or
    estimate)."""
    with w._lock:
        atlas, est = w.current_atlas, w.current_estimate
    return overview(atlas, est, w.overview_metric, tokens=w.tokens)


def figure(w, overview: bool = False):
    """A plotly figure of the widget ``w``'s current view (the table in the module docstring),
    or its overview with ``overview=True``."""
    if overview:
        return overview_figure(w)
    if w.view in ("first_reached", "profile", "similarity", "position_content"):
        return lecture_view_figure(w)
    if w.view == "heads":
        return heads_figure(w)
    if w.current_effect is not None:
        return effect_figure(w)
    return overview_figure(w)


def overview_figure(w):
    ov = current_overview(w)
    if ov is None:
        raise ValueError(
            "nothing to draw yet: pin a cell (widget.select((row, pos))) or run a sweep"
        )
    return ov.figure(scale=w.scale)


def effect_figure(w):
    """The pinned effect's map; a transplant's title names its source cell and prompt."""
    eff = w.current_effect
    info = (w.effect or {}).get("transplant")
    if not (info and eff.kind == "transplant"):
        return eff.figure(metric=w.metric, scale=w.scale)
    src = "this prompt" if info.get("source") == "this" else repr(info.get("prompt") or "")
    title = (
        f"transplant of {eff.site} {tuple(info['source_cell'])} from {src} into "
        f"{tuple(info['target_cell'])}"
    )
    return eff.figure(metric=w.metric, scale=w.scale, title=title)


def heads_figure(w):
    atlas = w._heads.atlas
    if atlas is None:
        raise ValueError(
            "the heads view has no head sweep yet: it starts when the view is shown "
            "(widget.view = 'heads'); widget.wait() waits for it"
        )
    return head_figure(atlas, w.overview_metric, scale=w.scale, layer=w.heads_layer)


def _row(w, default: int) -> int:
    return w.view_row if w.view_row >= 0 else default


def _resid_row(w) -> int:
    """The row the row views follow: ``view_row``, else the pinned residual cell's, else the
    last."""
    eff = w.current_effect
    pinned = eff is not None and eff.site == "resid" and eff.cells
    return _row(w, eff.cells[0][0] if pinned else w.n_rows - 1)


def lecture_view_figure(w):
    """Plotly figure of the widget ``w``'s current lecture view (``first_reached``, ``profile``,
    ``similarity`` or ``position_content``)."""
    import plotly.graph_objects as go

    from .figures import axis_labels, profile_figure

    eff, atlas = w.current_effect, w.current_atlas
    if w.view == "first_reached":
        if eff is None:
            raise ValueError("the first-reached view needs a pinned cell: widget.select(...)")
        fig = effect_figure(w)
        first = views.first_reached(eff.resid_delta)
        pos = [p for p in range(len(first)) if first[p] >= 0]
        fig.add_trace(
            go.Scatter(
                x=pos,
                y=[int(first[p]) for p in pos],
                mode="markers",
                marker=dict(symbol="square-open", size=14, color="red"),
                name="first reached",
            ),
            row=2,
            col=1,
        )
        return fig
    if w.view == "profile":
        if atlas is None:
            raise ValueError("the profile view needs a sweep: widget.start_sweep()")
        row = _row(w, eff.cells[0][0] if eff is not None else 0)
        prof = {agg: row_profile(atlas, row, agg) for agg in ("mean", "max")}
        fig = profile_figure(
            prof["mean"].distance,
            {a: p.value for a, p in prof.items()},
            title=f"effect of row {row} on the prediction d tokens ahead",
        )
        fig.add_annotation(x=0, y=float(prof["mean"].value[0]), text="next token", showarrow=True)
        return fig
    if w.view == "position_content":
        pc = w.current_position_content
        if pc is None:
            raise ValueError(
                "the position/content decomposition is not computed yet: it starts when the "
                "view is shown (widget.view = 'position_content'); widget.wait() waits for it"
            )
        return pc.figure(_resid_row(w))
    row = _resid_row(w)
    sim, _ = views.similarity(w.session.clean.resid)
    lab = axis_labels(w.tokens)
    fig = go.Figure(
        go.Heatmap(
            z=sim[row],
            x=lab,
            y=lab,
            zmin=-1,
            zmax=1,
            colorscale="RdBu",
            colorbar=dict(title="cosine"),
        )
    )
    fig.update_layout(
        title=f"cross-position cosine similarity of the residual at row {row}",
        xaxis_title="position i",
        yaxis_title="position j",
    )
    return fig
