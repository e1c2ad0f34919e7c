"""The widget in a bare anywidget host: no JupyterLab, no widget manager, no ``--jp-*`` theme.

VS Code and Colab show an anywidget through their own small host: the widget's ESM text (its
``_esm`` trait) is imported from a ``blob:`` URL and its default export's ``render({model, el})``
is called with a model that implements anywidget's interface. ``bare_host.html`` is such a host,
written here from that interface alone (not from this project's front end), and its "kernel" is
the real Python widget in this process, reached over HTTP on 127.0.0.1: the view's messages go
to the widget's comm handler (``_handle_custom_msg``), saved traits to ``set_state``, and the
widget's trait changes and replies come back by polling. Values are read through the widget's
test hook and compared with an independent engine session.
"""

from __future__ import annotations

import functools
import json
import pathlib
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from .harness import cell_xy, chromium, current, error_text, wait_effect

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

HERE = pathlib.Path(__file__).parent
PROMPT = "When Mary and John went to the store, John gave a drink to"
N_LAYERS = 3


@functools.lru_cache(maxsize=1)
def engine():
    import residual_widgets as rw
    from residual_widgets.tiny import tiny_model

    hf, tok = tiny_model("gpt2", n_layers=N_LAYERS)
    lm = rw.load_model(hf, tok)
    return lm, rw.Session(lm, PROMPT)


class Kernel:
    """The Python widget behind an HTTP endpoint: what a host's comm would carry."""

    def __init__(self, w):
        from residual_widgets._export import _jsonable

        self.w, self.q, self.enc = w, queue.Queue(), _jsonable
        dom = {"layout", "tooltip", "tabbable"}  # ipywidgets' DOMWidget traits: not ours
        self.names = [
            n for n in w.trait_names(sync=True) if not n.startswith("_") and n not in dom
        ] + ["_esm"]
        w.send = lambda content, buffers=None: self.q.put({"msg": self.enc(content)})
        w.observe(self._changed, names=[n for n in self.names if n != "_esm"])

    def _changed(self, ch):
        self.q.put({"name": ch["name"], "value": self.enc(ch["new"])})

    def state(self) -> dict:
        return {n: self.enc(getattr(self.w, n)) for n in self.names}

    def poll(self, wait: float = 1.0) -> list:
        try:
            out = [self.q.get(timeout=wait)]
        except queue.Empty:
            return []
        while not self.q.empty():
            out.append(self.q.get_nowait())
        return out


def serve(kernel: Kernel):
    html = (HERE / "bare_host.html").read_bytes()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def reply(self, body: bytes, ctype="application/json"):
            self.send_response(200)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the page went away mid-poll
                pass

        def do_GET(self):
            if self.path == "/":
                return self.reply(html, "text/html; charset=utf-8")
            if self.path == "/api/state":
                return self.reply(json.dumps(kernel.state()).encode())
            if self.path == "/api/poll":
                return self.reply(json.dumps(kernel.poll()).encode())
            self.send_error(404)

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            if self.path == "/api/send":
                kernel.w._handle_custom_msg(body, [])
            elif self.path == "/api/set":
                kernel.w.set_state(body)
            self.reply(b"{}")

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture(scope="module")
def page():
    from residual_widgets.explore import explore

    lm, _ = engine()
    w = explore(PROMPT, model=lm, cell=None)
    w.wait()
    kernel = Kernel(w)
    srv = serve(kernel)
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    with chromium() as ctx:
        pg = ctx.new_page()
        pg.elsewhere, pg.page_errors = [], []
        pg.on("pageerror", lambda e: pg.page_errors.append(str(e)))

        def route(r):
            if r.request.url.startswith(base):
                return r.continue_()
            pg.elsewhere.append(r.request.url)
            return r.abort()

        pg.route("**/*", route)
        pg.goto(base + "/")
        pg.wait_for_function("() => window.__host && window.__host.ready", timeout=30_000)
        pg.wait_for_selector(".rw-root[data-paints]", timeout=30_000)
        pg.widget = w
        yield pg
        assert pg.elsewhere == [] and pg.page_errors == []
    srv.shutdown()
    w.close()


def test_renders_without_jupyter_and_in_fallback_colours(page):
    _, sess = engine()
    root = page.locator(".rw-root")
    assert root.get_attribute("data-rows") == str(sess.n_rows)
    assert root.get_attribute("data-positions") == str(sess.n_positions)
    globs = page.evaluate(
        "() => ({jp: getComputedStyle(document.documentElement)"
        ".getPropertyValue('--jp-layout-color1'), req: typeof window.require,"
        " define: typeof window.define, lab: typeof window.jupyterapp,"
        " themed: document.body.dataset.jpThemeLight})"
    )
    assert globs == {
        "jp": "",
        "req": "undefined",
        "define": "undefined",
        "lab": "undefined",
        "themed": None,
    }
    bg, fg = page.evaluate(
        "() => { const s = getComputedStyle(document.querySelector('.rw-root'));"
        " return [s.backgroundColor, s.color]; }"
    )
    assert (bg, fg) == ("rgb(255, 255, 255)", "rgb(31, 31, 31)")  # widget.css's fallbacks
    assert page.evaluate("() => window.__host.log") == ["model"]
    assert error_text(page) == ""


def test_click_round_trips_through_the_bare_model(page):
    _, sess = engine()
    for r, c in [(2, 5), (0, 1)]:
        page.mouse.click(*cell_xy(page, "map", r, c))
        shown = wait_effect(page, [[r, c]])
        eff = sess.intervene([(r, c)])
        np.testing.assert_allclose(
            np.array(shown["values"]).reshape(eff.resid_delta.shape), eff.resid_delta, atol=1e-6
        )
        np.testing.assert_allclose(shown["strip"], eff.kl, atol=1e-6)
    sent = page.evaluate("() => window.__host.sent.filter(m => m.type === 'intervene')")
    acks = page.evaluate("() => window.__host.received.filter(m => m.type === 'ack')")
    assert [m["cells"] for m in sent] == [[[2, 5]], [[0, 1]]]
    assert {m["id"] for m in sent} <= {m["id"] for m in acks}  # every request acknowledged
    assert page.widget.selection == [[0, 1]]


def test_hover_previews_the_sweep(page):
    _, sess = engine()
    page.mouse.move(*cell_xy(page, "overview", 1, 3))
    page.wait_for_function(
        "() => { const c = document.querySelector('.rw-root').__rw.current();"
        " return c.mode === 'atlas' && JSON.stringify(c.cells) === '[[1,3]]'; }",
        timeout=5_000,
    )
    want = sess.intervene([(1, 3)]).resid_delta
    np.testing.assert_allclose(
        np.array(current(page)["values"]).reshape(want.shape), want, atol=1e-5
    )
    page.mouse.move(1, 1)


def test_a_setting_round_trips_and_the_kernel_recomputes(page):
    _, sess = engine()
    page.locator('.rw-controls label[title^="What is written"] select').select_option("mean")
    page.wait_for_function(
        "() => document.querySelector('.rw-root .rw-map .rw-sub').textContent.includes('mean')",
        timeout=30_000,
    )
    assert page.widget.kind == "mean"
    shown = current(page)
    eff = sess.intervene([(0, 1)], kind="mean")
    np.testing.assert_allclose(
        np.array(shown["values"]).reshape(eff.resid_delta.shape), eff.resid_delta, atol=1e-6
    )
    assert error_text(page) == ""
