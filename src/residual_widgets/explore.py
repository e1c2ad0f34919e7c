"""``explore()``: one call from a prompt to the interactive widget.

    import residual_widgets as rw
    rw.explore("When Mary and John went to the store, John gave a drink to")       # bundled model
    rw.explore(prompt, model=my_hf_model, source=clean_prompt, kind="patch",
               logit_diff=(" Mary", " John"))

It loads the model (once per name per process), builds a :class:`Session`, pins ``cell`` so the
map shows something at once, starts the sweep in the background, and returns the widget.
"""

from __future__ import annotations

from .widget import ResidualExplorer

DEFAULT_MODEL = "smollm2-135m"
_loaded: dict[tuple, object] = {}


def _load(model, remote=None):
    from .models import load_model

    if isinstance(model, str):
        key = (model, remote)
        if key not in _loaded:
            _loaded[key] = load_model(model, remote=remote)
        return _loaded[key]
    return load_model(model, remote=remote)


def explore(
    prompt,
    model=None,
    source=None,
    kind: str = "zero",
    site: str = "resid",
    logit_diff=None,
    *,
    cell=(0, 0),
    sweep: bool = True,
    presentation: bool = False,
    palette: str = "default",
    **session_kw,
) -> ResidualExplorer:
    """Open the residual-stream explorer for ``prompt``.

    ``model``: anything :func:`load_model` accepts (``None`` → the bundled SmolLM2-135M);
    ``source``: the clean prompt for ``kind="patch"`` (same token length); ``kind``/``site``: the
    initial intervention; ``logit_diff``: ``(good, bad)`` single tokens for the overview's logit
    difference; ``cell``: the ``(row, pos)`` pinned at start (``None`` for none); ``sweep``: start
    the all-cells sweep in the background; ``presentation``: larger fonts and cells for a
    projector, ``palette="contrast"``: high-contrast colors (both also in the control bar, and
    traits of the widget). ``remote=True`` (or a host URL) runs on NDIF: the
    model is named, not downloaded. Extra keywords go to :class:`Session`.
    Returns the :class:`ResidualExplorer` widget (display it, or leave it last in the cell).
    """
    from .session import Session

    lm = _load(DEFAULT_MODEL if model is None else model, session_kw.pop("remote", None))

    def factory(p, s):
        return Session(lm, p, source=s, **session_kw)

    sess = factory(prompt, source)
    w = ResidualExplorer(
        sess,
        prompt=prompt if isinstance(prompt, str) else None,
        kind=kind,
        site=site,
        logit_diff=logit_diff,
        source=source if isinstance(source, str) else None,
        model_name=getattr(lm, "name", "") or type(getattr(lm, "hf", lm)).__name__,
        session_factory=factory,
        presentation=presentation,
        palette=palette,
    )
    if cell is not None:
        w.select(cell)
    if sweep:
        w.start_sweep()
    return w
