"""Plotly views of effect arrays, drawn like the residual-stream diagram.

Positions run left to right (labelled with their tokens, leading spaces shown as ``·`` and
newlines as ``↵``), rows run from the embeddings at the bottom to the last layer at the top.
These functions take plain arrays, so any effect array (from an :class:`~.effects.Effect`, an
:class:`~.effects.Atlas`, or your own computation) can be drawn.
"""

from __future__ import annotations

import numpy as np


def show_token(tok: str) -> str:
    """Make whitespace visible: leading/trailing spaces as ``·``, newlines ``↵``, tabs ``⇥``."""
    return (tok.replace(" ", "·").replace("\n", "↵").replace("\t", "⇥")) or "∅"


def axis_labels(tokens: list[str]) -> list[str]:
    """Unique x labels ``"i:token"`` (plotly merges equal category labels)."""
    return [f"{i}:{show_token(t)}" for i, t in enumerate(tokens)]


def row_labels(n_rows: int, site: str = "resid") -> list[str]:
    if site == "resid":
        return ["embed (0)"] + [f"after block {k - 1} ({k})" for k in range(1, n_rows)]
    return [f"block {k} {site}" for k in range(n_rows)]


def _scaled(values: np.ndarray, scale: str) -> np.ndarray:
    if scale == "log":
        v = np.abs(values).astype(np.float64)
        return np.log10(np.where(v > 0, v, np.nan))
    if scale != "linear":
        raise ValueError(f"unknown scale {scale!r}; use 'linear' or 'log'")
    return values


def _cone_shapes(cells, site: str, n_rows: int, n_pos: int) -> list[dict]:
    shapes = []
    for r, p in cells:
        e = r if site == "resid" else r + 1
        # the cell itself, then the region above it and to its right
        shapes.append(
            dict(
                type="rect",
                x0=p - 0.5,
                x1=p + 0.5,
                y0=e - 0.5,
                y1=e + 0.5,
                line=dict(color="black", width=3),
                xref="x",
                yref="y",
            )
        )
        if e + 1 < n_rows:
            shapes.append(
                dict(
                    type="rect",
                    x0=p - 0.5,
                    x1=n_pos - 0.5,
                    y0=e + 0.5,
                    y1=n_rows - 0.5,
                    line=dict(color="black", width=2, dash="dot"),
                    xref="x",
                    yref="y",
                )
            )
    return shapes


def effect_figure(
    resid_delta: np.ndarray,
    tokens: list[str],
    *,
    cells=(),
    site="resid",
    reachable: np.ndarray | None = None,
    strip: np.ndarray | None = None,
    strip_name: str = "KL (nats)",
    title: str = "",
    scale: str = "linear",
):
    """Heatmap ``[R, P]`` of ``||Δh||/||h||`` with the cone outlined, the unreachable region
    greyed, and an output strip ``[P]`` on top."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    R, P = resid_delta.shape
    x = list(range(P))
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.12, 0.88], vertical_spacing=0.03
    )
    z = _scaled(resid_delta, scale)
    unit = "log10 ||Δh||/||h||" if scale == "log" else "||Δh||/||h||"
    hover = [
        [f"row {r}, pos {p} {show_token(tokens[p])!s}<br>{resid_delta[r, p]:.4g}" for p in range(P)]
        for r in range(R)
    ]
    fig.add_trace(
        go.Heatmap(
            z=z,
            x=x,
            y=list(range(R)),
            colorscale="Viridis",
            colorbar=dict(title=unit, y=0.44, len=0.85),
            text=hover,
            hoverinfo="text",
            name="resid_delta",
        ),
        row=2,
        col=1,
    )
    if reachable is not None:
        grey = np.where(reachable, np.nan, 1.0)
        fig.add_trace(
            go.Heatmap(
                z=grey,
                x=x,
                y=list(range(R)),
                showscale=False,
                hoverinfo="skip",
                colorscale=[[0, "rgba(128,128,128,0.35)"], [1, "rgba(128,128,128,0.35)"]],
                name="unreachable",
            ),
            row=2,
            col=1,
        )
    if strip is not None:
        fig.add_trace(
            go.Heatmap(
                z=[list(strip)],
                x=x,
                y=[strip_name],
                colorscale="Reds",
                showscale=False,
                name=strip_name,
                hovertemplate="pos %{x}: %{z:.4g}<extra>" + strip_name + "</extra>",
            ),
            row=1,
            col=1,
        )
    for s in _cone_shapes(cells, site, R, P):
        s.update(xref="x2", yref="y2")
        fig.add_shape(s)
    fig.update_xaxes(tickmode="array", tickvals=x, ticktext=axis_labels(tokens), row=2, col=1)
    fig.update_yaxes(
        tickmode="array", tickvals=list(range(R)), ticktext=row_labels(R), row=2, col=1
    )
    fig.update_layout(title=title, height=max(320, 22 * R + 160), width=max(520, 40 * P + 200))
    return fig


def overview_figure(
    values: np.ndarray,
    tokens: list[str],
    *,
    site="resid",
    name="total KL",
    title: str = "",
    scale: str = "linear",
):
    """Heatmap ``[S, P]`` of a per-source-cell summary (total KL, logit difference)."""
    import plotly.graph_objects as go

    S, P = values.shape
    diverging = name.startswith("logit")
    z = values if diverging else _scaled(values, scale)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(range(P)),
            y=list(range(S)),
            colorscale="RdBu" if diverging else "Viridis",
            zmid=0 if diverging else None,
            colorbar=dict(title=name),
            hovertemplate="row %{y}, pos %{x}: %{z:.4g}<extra></extra>",
        )
    )
    fig.update_xaxes(tickmode="array", tickvals=list(range(P)), ticktext=axis_labels(tokens))
    fig.update_yaxes(tickmode="array", tickvals=list(range(S)), ticktext=row_labels(S, site))
    fig.update_layout(title=title, height=max(320, 22 * S + 160), width=max(520, 40 * P + 200))
    return fig


def profile_figure(
    distance: np.ndarray,
    values: dict[str, np.ndarray],
    *,
    title: str = "",
    yaxis: str = "KL (nats)",
):
    """Line plot of one or more curves over ``distance`` (e.g. a future-effect profile)."""
    import plotly.graph_objects as go

    fig = go.Figure(
        [go.Scatter(x=distance, y=v, mode="lines+markers", name=k) for k, v in values.items()]
    )
    fig.update_layout(title=title, xaxis_title="distance j − i", yaxis_title=yaxis)
    return fig
