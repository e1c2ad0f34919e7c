"""The widget's state as standalone HTML pages (``widget.save_html()``); the figures they hold
are ``widget.figure()``'s (:mod:`._widget_figures`).

Two kinds of page:

* ``save_html(path)``: the plotly figures of the pinned effect and the overview (plotly.js
  embedded; hover and zoom work, nothing else does);
* ``save_html(path, interactive=True)`` (also the CLI's ``--out`` and the demo's): the widget
  itself, explorable with no kernel, no network and no CDN. The page inlines the built front end
  (``static/page.js``: the widget plus a small in-page model that implements anywidget's model
  interface over the saved state) and the data as JSON with base64 arrays: the synced traits,
  the sweep's maps as float16 (or the most important cells' maps only, to stay within a size
  budget; the page says which), the lecture views' arrays (the position/content decomposition
  only when the widget has computed it: otherwise the page says that view needs a kernel), and
  the logit lens of every cell (clean, and under the pinned intervention). Hovering any swept
  source cell shows its map; clicking one pins it from the saved sweep; the views, metric and
  scale switch; what needs a kernel (new interventions, sweeps, other kinds or prompts) is
  greyed out with the reason.
"""

from __future__ import annotations

import base64
import html
import json
import pathlib

import numpy as np

from . import _payloads


def save_html(w, path, interactive: bool = False, max_bytes: int | None = None) -> pathlib.Path:
    """Write the widget ``w`` as one self-contained HTML file that opens offline. Returns the
    path. ``interactive``: the explorable widget page (see the module docstring; ``max_bytes``
    caps its arrays), else the plotly figures of the pinned effect and the overview."""
    if interactive:
        with w._lock:
            eff, atlas = w.current_effect, w.current_atlas
        state = page_state(
            w.session,
            effect=eff,
            atlas=atlas,
            effect_id=(w.effect or {}).get("id"),
            model_name=w.model_name,
            prompt=w.prompt,
            source_prompt=w.source_prompt,
            settings={k: getattr(w, k) for k in SETTINGS},
            max_bytes=max_bytes,
            position_content=w.current_position_content,
        )
        return write_page(path, state)
    from . import _widget_figures as wf

    figs = []
    if w.current_effect is not None:
        figs.append(wf.effect_figure(w))
    if wf.current_overview(w) is not None:
        figs.append(wf.overview_figure(w))
    if not figs:
        raise ValueError("nothing to save yet: pin a cell or run a sweep first")
    path = pathlib.Path(path)
    path.write_text(html_page(figs), "utf-8")
    return path


def html_page(figs) -> str:
    """Plotly figures as one HTML page that loads plotly.js once (embedded in the first)."""
    parts = [f.to_html(full_html=False, include_plotlyjs=(k == 0)) for k, f in enumerate(figs)]
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>residual-widgets"
        "</title></head><body>" + "\n".join(parts) + "</body></html>"
    )


# ---- the explorable page ------------------------------------------------------------------------

_STATIC = pathlib.Path(__file__).parent / "static"
#: view settings the saved page starts with (the widget's traits of the same names)
SETTINGS = (
    "kind",
    "site",
    "metric",
    "scale",
    "overview_metric",
    "logit_pair",
    "view",
    "view_row",
    "presentation",
    "palette",
)
#: the tooltip's logit lens is recorded for every cell up to this many cells (R × P)
LENS_MAX_CELLS = 4096


def page_state(
    session,
    *,
    effect=None,
    atlas=None,
    effect_id=None,
    model_name: str = "",
    prompt: str | None = None,
    source_prompt: str = "",
    settings: dict | None = None,
    max_bytes: int | None = None,
    position_content=None,
) -> dict:
    """Everything the saved page shows, as JSON-able data (arrays still as ``memoryview``s):
    ``{"traits": {...the widget's synced traits...}, "lens": {...}}``. ``traits["page"]`` tells
    the front end that there is no kernel, and what the page holds (in words)."""
    budget = _payloads.PAGE_BUDGET_BYTES if max_bytes is None else int(max_bytes)
    st = dict(settings or {})
    kind = st.get("kind", atlas.kind if atlas is not None else getattr(effect, "kind", "zero"))
    site = st.get("site", atlas.site if atlas is not None else getattr(effect, "site", "resid"))
    pair = list(st.get("logit_pair") or [])
    if effect is not None and effect_id is None:
        effect_id = "saved:1"
    notes = []
    traits = {
        "prompt": prompt if isinstance(prompt, str) else "".join(session.token_strings),
        "source_prompt": source_prompt or "",
        "model_name": model_name or str(getattr(session.model, "name", "") or ""),
        "tokens": [str(x) for x in session.token_strings],
        "n_rows": int(session.n_rows),
        "kind": kind,
        "site": site,
        "metric": st.get("metric", "kl"),
        "scale": st.get("scale", "linear"),
        "overview_metric": st.get(
            "overview_metric",
            "logit_diff" if atlas is not None and atlas.logit_diff is not None else "total_kl",
        ),
        "logit_pair": [str(x) for x in pair],
        "selection": [[int(r), int(p)] for r, p in effect.cells] if effect is not None else [],
        "effect": None if effect is None else _payloads.effect_payload(effect, effect_id),
        "atlas": None,
        "progress": {"done": 0, "total": 0, "running": False, "cancelled": False},
        "status": "saved page",
        "remote_status": "",
        "error": "",
        "view": st.get("view", "map"),
        "view_row": int(st.get("view_row", -1)),
        "profile": None,
        "similarity": None,
        "position_content": None
        if position_content is None
        else _payloads.position_content_payload(position_content),
        "presentation": bool(st.get("presentation", False)),
        "palette": st.get("palette", "default"),
    }
    if atlas is not None:
        keep = [tuple(c) for c in effect.cells] if effect is not None else []
        traits["atlas"], words = _payloads.page_atlas_payload(atlas, budget=budget, keep=keep)
        done = int(atlas.done.sum())
        traits["progress"] = {
            "done": done,
            "total": int(atlas.done.size),
            "running": False,
            "cancelled": not atlas.complete,
        }
        traits["profile"] = _payloads.profile_payload(atlas)
        notes.append(f"It holds {words}.")
    else:
        notes.append("It holds no sweep: only the pinned cell's map.")
    sim_bytes = session.n_rows * session.n_positions**2 * 4
    if (
        getattr(session.model, "device", None) is not None
        and session.model.device.type != "meta"
        and sim_bytes <= budget // 4
    ):
        traits["similarity"] = _payloads.similarity_payload(session)
    lens = lens_table(session, effect, effect_id)
    notes.append(
        "The tooltips show the logit lens recorded for every cell"
        + (
            " (clean, and under the pinned intervention)."
            if effect is not None
            else " (clean run)."
        )
        if lens["clean"]
        else "No logit lens was recorded (remote model, or too many cells)."
    )
    traits["page"] = {
        "note": " ".join(notes),
        "kernel": "Needs a kernel: new interventions, sets of cells, sweeps, other kinds, sites, "
        "prompts and token pairs (open the notebook to run them).",
    }
    return {"format": "residual-widgets page", "version": 1, "traits": traits, "lens": lens}


def lens_table(
    session, effect=None, effect_id=None, k: int = 5, max_cells: int = LENS_MAX_CELLS
) -> dict:
    """The logit lens (top ``k`` tokens and probabilities) of every residual cell, clean and
    under ``effect``: ``{"k", "clean": {"r,p": [[token, prob], …]}, "effect_id",
    "intervened": {...}}``; empty for a remote model or more than ``max_cells`` cells."""
    import torch

    out = {"k": k, "clean": {}, "effect_id": effect_id, "intervened": {}}
    model = session.model
    R, P = int(session.n_rows), int(session.n_positions)
    if getattr(model, "device", None) is None or model.device.type == "meta" or R * P > max_cells:
        return out
    names: dict[int, str] = {}

    def top(resid) -> dict:
        table = {}
        with session.lock, torch.no_grad():
            for r in range(R):
                probs = torch.softmax(model.unembed(resid[r].to(model.device)).float(), dim=-1)
                val, idx = torch.topk(probs.cpu(), k, dim=-1)
                for p in range(P):
                    row = []
                    for v, i in zip(val[p].tolist(), idx[p].tolist(), strict=True):
                        if i not in names:
                            names[i] = model.tokenizer.decode([int(i)])
                        row.append([names[i], float(v)])
                    table[f"{r},{p}"] = row
        return table

    out["clean"] = top(session.clean.resid)
    if effect is not None and getattr(effect, "resid", None) is not None:
        out["intervened"] = top(effect.resid)
    return out


def page_html(state: dict) -> str:
    """The saved page: the front end (``static/page.js``) and ``state`` inlined, nothing
    fetched."""
    js_path = _STATIC / "page.js"
    if not js_path.exists():
        raise FileNotFoundError(
            "the front end is not built (static/page.js missing): run `npm install && npm run "
            "build` in the repository, or reinstall the package"
        )
    js = js_path.read_text("utf-8")
    # nothing in the inlined script or data may end the <script> element early
    js = js.replace("</script", "<\\/script").replace("<!--", "<\\x21--")
    data = json.dumps(_jsonable(state), separators=(",", ":"), allow_nan=False)
    data = data.replace("</", "<\\/").replace("<!--", "<\\u0021--")
    t = state["traits"]
    title = html.escape(f"residual-widgets · {t['model_name']} · {t['prompt']}"[:200])
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{title}</title>"
        "<style>body{margin:12px;background:#fff;color:#1f1f1f;"
        "font-family:system-ui,sans-serif}</style></head><body>"
        "<div id='rw-page'><noscript>This page needs JavaScript.</noscript></div>"
        f"<script type='application/json' id='rw-state'>{data}</script>"
        f"<script type='module'>{js}</script></body></html>\n"
    )


def write_page(path, state: dict) -> pathlib.Path:
    """Write :func:`page_html` of ``state`` to ``path``; returns the path."""
    path = pathlib.Path(path)
    path.write_text(page_html(state), "utf-8")
    return path


def save_page(path, session, effect=None, atlas=None, **kw) -> pathlib.Path:
    """The explorable page of an engine ``effect`` and/or ``atlas`` of ``session`` (what the CLI
    and the demo write); keywords as :func:`page_state`."""
    return write_page(path, page_state(session, effect=effect, atlas=atlas, **kw))


def _jsonable(x):
    """Arrays (``memoryview`` buffers of the wire format) → ``{"b64": ...}``; NaN/inf floats →
    None (JSON has none)."""
    if isinstance(x, dict):
        if "buffer" in x and "dtype" in x and "shape" in x:
            return {
                "dtype": x["dtype"],
                "shape": list(x["shape"]),
                "b64": base64.b64encode(bytes(x["buffer"])).decode("ascii"),
            }
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if np.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def read_page(html_text: str) -> dict:
    """The state saved in a page written by :func:`page_html`, arrays back as numpy (the inverse,
    for tests and for reading a saved page's numbers)."""
    from ._codec import decode

    start = html_text.index("id='rw-state'>") + len("id='rw-state'>")
    data = json.loads(html_text[start : html_text.index("</script>", start)])

    def back(x):
        if isinstance(x, dict):
            if "b64" in x and "dtype" in x:
                return decode(
                    {"dtype": x["dtype"], "shape": x["shape"], "buffer": base64.b64decode(x["b64"])}
                )
            return {k: back(v) for k, v in x.items()}
        if isinstance(x, list):
            return [back(v) for v in x]
        return x

    return back(data)
