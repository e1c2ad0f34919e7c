"""A notebook executed headless with its widget state saved, exported to HTML, shows the heatmap.

nbclient runs the notebook (``store_widget_state=True``) and nbconvert writes the HTML; Chromium
opens it from disk with no kernel. The exported page loads require.js, the ipywidgets HTML
manager and anywidget's front end from public CDNs (that is how nbconvert pages work); this
machine has no such network, so the test serves the same files from ``node_modules`` (dev
dependencies in ``package.json``) by intercepting those URLs, and blocks everything else.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from .harness import REPO, chromium

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

NODE = REPO / "node_modules"
CDN_FILES = {
    r"/require(\.min)?\.js$": NODE / "requirejs/require.js",
    r"@jupyter-widgets/html-manager@[^/]+/dist/embed-amd\.js$": NODE
    / "@jupyter-widgets/html-manager/dist/embed-amd.js",
    r"/anywidget@[^/]+/dist/index\.js$": NODE / "anywidget/dist/index.js",
}
PROMPT = "When Mary and John went to the store, John gave a drink to"
CELL = f"""
import residual_widgets as rw
from residual_widgets.explore import explore
from residual_widgets.tiny import tiny_model
hf, tok = tiny_model("gpt2", n_layers=3)
w = explore({PROMPT!r}, model=rw.load_model(hf, tok), cell=(2, 5))
w.wait()
w
"""


def test_exported_html_shows_the_heatmap(tmp_path, monkeypatch):
    missing = [str(p) for p in CDN_FILES.values() if not p.exists()]
    if missing:
        pytest.skip(f"run `npm install` first (missing {missing})")
    import nbclient
    import nbformat
    from nbconvert import HTMLExporter

    import residual_widgets as rw
    from residual_widgets.tiny import tiny_model

    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL)])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbclient.NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        store_widget_state=True,
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    models = [m for m in state.values() if m["model_name"] == "AnyModel"]
    assert len(models) == 1 and models[0]["state"]["selection"] == [[2, 5]]
    html, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    page_path = tmp_path / "exported.html"
    page_path.write_text(html, "utf-8")

    served, blocked, dialogs = [], [], []

    def route(r):
        url = r.request.url
        if url.startswith("file:"):
            return r.continue_()
        for pat, f in CDN_FILES.items():
            if re.search(pat, url):
                served.append(url)
                return r.fulfill(path=str(f), content_type="application/javascript")
        blocked.append(url)
        return r.abort()

    hf, tok = tiny_model("gpt2", n_layers=3)
    eff = rw.Session(rw.load_model(hf, tok), PROMPT).intervene([(2, 5)])
    with chromium() as ctx:
        page = ctx.new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.route("**/*", route)
        page.goto(page_path.as_uri())
        page.wait_for_selector(".rw-root[data-paints]", timeout=60_000)
        shown = page.evaluate("() => document.querySelector('.rw-root').__rw.current()")
        done = page.evaluate("() => document.querySelector('.rw-root').__rw.atlasDone()")
    assert shown["mode"] == "effect" and shown["cells"] == [[2, 5]]
    assert (shown["rows"], shown["cols"]) == eff.resid_delta.shape
    np.testing.assert_allclose(
        np.array(shown["values"]).reshape(eff.resid_delta.shape), eff.resid_delta, atol=1e-6
    )
    assert done is not None and all(done)  # the overview (sweep) was saved too
    assert any("anywidget" in u for u in served) and dialogs == []
