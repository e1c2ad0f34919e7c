"""``explore()``: one call from a prompt to the interactive widget.

    import residual_widgets as rw
    rw.explore("When Mary and John went to the store, John gave a drink to")       # bundled model
    rw.explore(prompt, model=my_hf_model, source=clean_prompt, kind="patch",
               logit_diff=(" Mary", " John"))

It loads the model (once per name per process), builds a :class:`Session`, pins ``cell`` so the
map shows something at once, starts the sweep in the background, and returns the widget.

**First paint.** A model named by a string that is not loaded yet (the bundled SmolLM2 in a fresh
kernel) would keep the cell busy for the imports (torch, transformers, nnsight), the model load
and the clean pass. Instead, when the model's files are on disk (the bundled models, a local
checkpoint directory), ``explore`` reads only its ``tokenizer.json`` (with the ``tokenizers``
library, no torch) and ``config.json``, returns the widget at once with the grid and the prompt's
tokens, and builds the session on the widget's job worker
(:meth:`ResidualExplorer.build_session`): the status line says "loading the model and running
the clean pass…", the pinned map and the sweep follow, and a failure (a missing package, a bad
prompt) shows in the widget's error line in words. A model passed as an object, a hub name or a
remote model is loaded and its session built before returning, as before.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

DEFAULT_MODEL = "smollm2-135m"
_loaded: dict[tuple, object] = {}
_load_lock = threading.Lock()


def _load(model, remote=None):
    from .models import load_model

    if isinstance(model, str):
        key = (model, remote)
        with _load_lock:  # an explore() still loading in the background: wait for it
            if key not in _loaded:
                _loaded[key] = load_model(model, remote=remote)
            return _loaded[key]
    return load_model(model, remote=remote)


def quick_facts(model: str, prompt) -> tuple[list[str], int] | None:
    """``(tokens, n_rows)`` of ``prompt`` on the named model, read from its files without loading
    it (``tokenizer.json`` through the ``tokenizers`` library, the layer count from
    ``config.json``), or ``None`` when the files are not on disk or the prompt is not text. The
    tokens are what :attr:`Session.token_strings` will say; the session's own replace them."""
    if not isinstance(prompt, str):
        return None
    folder = _model_dir(model)
    if folder is None:
        return None
    try:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        cfg = json.loads((folder / "config.json").read_text())
        n_layers = next(int(cfg[k]) for k in ("num_hidden_layers", "n_layer") if cfg.get(k))
        ids = tok.encode(prompt, add_special_tokens=False).ids
        return [tok.decode([i], skip_special_tokens=False) for i in ids], n_layers + 1
    except Exception:  # noqa: BLE001 - only a head start: the session says the real thing
        return None


def _model_dir(model: str) -> Path | None:
    from . import bundled

    if model == "induction-2l":
        folder = bundled.INDUCTION_DIR
    elif model == "smollm2-135m":
        folder = bundled.cache_dir() / bundled._CACHE_NAME
        if not bundled._is_complete(folder):
            return None  # first use: the model is converted first (minutes, with progress)
    else:
        folder = Path(model).expanduser()
    ok = (folder / "tokenizer.json").is_file() and (folder / "config.json").is_file()
    return folder if ok else None


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
):
    """Open the residual-stream explorer for ``prompt``.

    ``model``: anything :func:`load_model` accepts (``None`` → the bundled SmolLM2-135M);
    ``source``: the clean prompt for ``kind="patch"`` (same token length); ``kind``/``site``: the
    initial intervention; ``logit_diff``: ``(good, bad)`` single tokens for the overview's logit
    difference; ``cell``: the ``(row, pos)`` pinned at start (``None`` for none); ``sweep``: start
    the all-cells sweep in the background; ``presentation``: larger fonts and cells for a
    projector, ``palette="contrast"``: high-contrast colors (both also in the control bar, and
    traits of the widget). ``remote=True`` (or a host URL) runs on NDIF: the
    model is named, not downloaded. Extra keywords go to :class:`Session`.
    Returns the :class:`ResidualExplorer` widget (display it, or leave it last in the cell). A
    named model that is not loaded yet loads in the background (see the module docstring):
    ``w.wait()`` blocks until the session, the pinned map and the sweep are done.
    """
    from .widget import ResidualExplorer

    name = DEFAULT_MODEL if model is None else model
    remote = session_kw.pop("remote", None)

    loaded = []  # the model, loaded once (here, or on the widget's worker)

    def factory(p, s):
        from .session import Session

        if not loaded:
            loaded.append(_load(name, remote))
        return Session(loaded[0], p, source=s, **session_kw)

    facts = None
    if isinstance(name, str) and remote is None and not session_kw.get("prepend_bos"):
        if (name, remote) not in _loaded:
            facts = quick_facts(name, prompt)
    common = dict(
        prompt=prompt if isinstance(prompt, str) else None,
        kind=kind,
        site=site,
        logit_diff=logit_diff,
        source=source if isinstance(source, str) else None,
        session_factory=factory,
        presentation=presentation,
        palette=palette,
    )
    if facts is not None:  # the grid and tokens now, the session on the widget's worker
        tokens, n_rows = facts
        w = ResidualExplorer(
            None,
            model_name=name,
            tokens=tokens,
            n_rows=n_rows,
            status="loading the model and running the clean pass…",
            **common,
        )
        w.build_session(lambda: factory(prompt, source), cell=cell, sweep=sweep)
        return w
    sess = factory(prompt, source)
    lm = loaded[0]
    w = ResidualExplorer(
        sess, model_name=getattr(lm, "name", "") or type(getattr(lm, "hf", lm)).__name__, **common
    )
    if cell is not None:
        w.select(cell)
    if sweep:
        w.start_sweep()
    return w
