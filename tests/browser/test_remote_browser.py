"""A remote model in real JupyterLab: the widget says when it waits on the remote queue, streams
the sweep in when the server answers, and shows a refused key as words without the key.

The kernel talks HTTP to ``tests/fake_ndif.py`` (a local stand-in for NDIF) hosting a tiny GPT-2;
``srv.hang`` holds every new request in ``QUEUED`` until released.
"""

from __future__ import annotations

import pathlib

import pytest

from .harness import JupyterServer, chromium, open_notebook, run_cell, wait_widget

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

TESTS = str(pathlib.Path(__file__).resolve().parents[1])
KEY = "browser-test-key-5c1d"

CELLS = [
    f"""import sys; sys.path.insert(0, {TESTS!r})
import residual_widgets as rw
from residual_widgets import remote as rm
from residual_widgets.tiny import tiny_model
from fake_ndif import FakeNDIF
hf, tok = tiny_model("gpt2", n_layers=3)
lm = rw.load_model(hf, tok)
srv = FakeNDIF({{rm.model_key_for(lm): lm.nn}}, keys=[{KEY!r}]).__enter__()
rw.set_api_key({KEY!r})
w = rw.explore("When Mary and John went to the store", model=rw.load_model(lm, remote=srv.url),
               cell=(1, 2), sweep=False)
w.wait()
w""",
    "srv.hang = True\nw.start_sweep()",
    "srv.hang = False",
    "rw.set_api_key('refused-key-77aa')\nw.select((2, 3), wait=False)",
]


def status(page) -> str:
    return page.locator(".rw-root .rw-status").text_content()


def test_waiting_on_the_remote_queue_then_streaming(tmp_path):
    with JupyterServer("lab") as srv, chromium() as ctx:
        pg = ctx.new_page()
        srv.write_notebook("remote.ipynb", CELLS)
        open_notebook(pg, srv, "remote.ipynb")
        run_cell(pg, 0)
        wait_widget(pg)
        run_cell(pg, 1)
        pg.wait_for_function(
            "() => /waiting on the remote queue/.test("
            "document.querySelector('.rw-root .rw-status').textContent)",
            timeout=30_000,
        )
        done = pg.evaluate("() => document.querySelector('.rw-root').__rw.atlasDone()")
        assert not done or not any(done)  # nothing came back while queued
        run_cell(pg, 2)
        pg.wait_for_function(
            "() => { const d = document.querySelector('.rw-root').__rw.atlasDone();"
            " return d && d.every(Boolean); }",
            timeout=60_000,
        )
        pg.wait_for_function(
            "() => !/remote queue|running remotely/.test("
            "document.querySelector('.rw-root .rw-status').textContent)",
            timeout=30_000,
        )
        import re

        prog = pg.locator(".rw-root .rw-progress").text_content()
        assert re.search(r"sweep (\d+)/\1\b", prog), prog
        run_cell(pg, 3)
        pg.wait_for_function(
            "() => { const m = document.querySelector('.rw-root .rw-message');"
            " return m && /refused the API key/.test(m.textContent); }",
            timeout=30_000,
        )
        html = pg.evaluate("() => document.querySelector('.rw-root').outerHTML")  # the widget
        assert "refused the API key" in html
        assert "refused-key-77aa" not in html and KEY not in html
