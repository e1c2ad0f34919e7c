"""First paint in real JupyterLab: the grid and tokens before the model is loaded.

``rw.explore`` on a named model that is not loaded yet returns at once with the prompt's tokens
(read from the model's ``tokenizer.json``) and builds the session on the widget's worker. The
kernel holds the load on an event here, so the page is checked while nothing else could have
painted the grid: rows, positions, the token labels and the status line are there, no map is;
then the load is released and the pinned map arrives, equal to the engine's.
"""

from __future__ import annotations

import numpy as np
import pytest

from .harness import JupyterServer, chromium, current, error_text, open_notebook, run_cell

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

PROMPT = " t5 t17 t3 t9 t5 t17 t3"

HOLD = f"""
import importlib, threading
import residual_widgets as rw
ex = importlib.import_module("residual_widgets.explore")
gate, real = threading.Event(), ex._load
ex._load = lambda model, remote=None: (gate.wait(120), real(model, remote))[1]
w = rw.explore({PROMPT!r}, model="induction-2l", cell=(1, 4))
w
"""

RELEASE = "gate.set()"


def test_grid_and_tokens_are_painted_before_the_session_then_the_map():
    import residual_widgets as rw

    with JupyterServer("lab") as srv, chromium() as ctx:
        page = ctx.new_page()
        srv.write_notebook("first.ipynb", [HOLD, RELEASE])
        open_notebook(page, srv, "first.ipynb")
        run_cell(page, 0)
        page.wait_for_selector(".rw-root[data-paints]:not([data-positions='0'])", timeout=120_000)
        root = page.locator(".rw-root").first
        assert root.get_attribute("data-rows") == "3"
        assert root.get_attribute("data-positions") == "7"
        assert root.get_attribute("data-mode") != "effect"  # the session is held: no map yet
        header = page.locator(".rw-root .rw-status").first.inner_text()
        assert "3 rows × 7 positions" in header and "clean pass" in header, header
        text = page.locator(".rw-root").first.inner_text()
        assert "t17" in text and "t9" in text, text[:500]
        assert current(page)["mode"] != "effect"
        run_cell(page, 1)
        page.wait_for_selector(".rw-root[data-mode='effect']", timeout=120_000)
        shown = current(page)
        assert shown["cells"] == [[1, 4]] and error_text(page) == ""
        eff = rw.Session(rw.load_model("induction-2l"), PROMPT).intervene((1, 4))
        np.testing.assert_allclose(
            np.array(shown["values"]).reshape(eff.resid_delta.shape), eff.resid_delta, atol=1e-6
        )
