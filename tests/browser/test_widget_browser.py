"""The widget in a real browser: JupyterLab 4 and Notebook 7 in Chromium, a real kernel.

One notebook per app builds a tiny random GPT-2 (seeded, so this test process can rebuild the
identical model and ask the engine for the expected numbers) and opens ``explore`` on a prompt
that also carries an XSS payload. Values are read back from the page through the widget's test
hook (``root.__rw.current()``: exactly what was painted), never eyeballed.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from .harness import (
    JupyterServer,
    cell_xy,
    chromium,
    current,
    error_text,
    open_widget_page,
    own_page_errors,
    wait_effect,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

XSS = "<img src=x onerror=alert(1)> <script>alert(2)</script>"
PROMPT = "When Mary and John went to the store " + XSS
N_LAYERS = 3

CELL = f"""
import residual_widgets as rw
from residual_widgets.explore import explore
from residual_widgets.tiny import tiny_model
hf, tok = tiny_model("gpt2", n_layers={N_LAYERS})
w = explore({PROMPT!r}, model=rw.load_model(hf, tok), cell=None)
w.wait()
w
"""


@functools.lru_cache(maxsize=1)
def engine():
    """The same session the kernel has (same seed → same weights), in this process."""
    import residual_widgets as rw
    from residual_widgets.tiny import tiny_model

    hf, tok = tiny_model("gpt2", n_layers=N_LAYERS)
    return rw.Session(rw.load_model(hf, tok), PROMPT)


@pytest.fixture(scope="module", params=["lab", "notebook"])
def page(request):
    with JupyterServer(request.param) as srv, chromium() as ctx:
        pg = open_widget_page(ctx, srv, "widget.ipynb", [CELL])
        pg.app = request.param
        pg.server_base, pg.server_token = srv.base, srv.token
        yield pg


def test_renders_rows_and_positions(page):
    sess = engine()
    root = page.locator(".rw-root")
    assert root.get_attribute("data-rows") == str(sess.n_rows) == str(N_LAYERS + 1)
    assert root.get_attribute("data-positions") == str(sess.n_positions)
    g = page.evaluate("() => document.querySelector('.rw-root').__rw.geom()")
    assert (g["map"]["rows"], g["map"]["cols"]) == (sess.n_rows, sess.n_positions)
    assert (g["overview"]["rows"], g["overview"]["cols"]) == (sess.n_rows, sess.n_positions)
    assert error_text(page) == ""


def test_xss_prompt_renders_as_text_and_runs_nothing(page):
    assert page.locator(".rw-root .rw-prompt").text_content() == PROMPT
    assert page.locator(".rw-root img").count() == 0
    assert page.locator(".rw-root script").count() == 0
    assert page.evaluate("() => window.__xss === undefined")
    assert page.dialogs == []


def test_hover_overview_repaints_map_from_atlas(page):
    sess = engine()
    for r, c in [(1, 2), (0, 5), (2, 3)]:
        page.mouse.move(*cell_xy(page, "overview", r, c))
        page.wait_for_function(
            "(rc) => { const c = document.querySelector('.rw-root').__rw.current();"
            " return c.mode === 'atlas' && JSON.stringify(c.cells) === JSON.stringify([rc]); }",
            arg=[r, c],
            timeout=5_000,
        )
        shown = current(page)
        want = sess.intervene([(r, c)]).resid_delta
        np.testing.assert_allclose(np.array(shown["values"]).reshape(want.shape), want, atol=1e-5)
    page.mouse.move(1, 1)


def test_click_computes_and_shows_the_engine_effect(page):
    sess = engine()
    for r, c in [(1, 4), (3, 0)]:
        page.mouse.click(*cell_xy(page, "map", r, c))
        shown = wait_effect(page, [[r, c]])
        eff = sess.intervene([(r, c)])
        np.testing.assert_allclose(
            np.array(shown["values"]).reshape(eff.resid_delta.shape), eff.resid_delta, atol=1e-6
        )
        assert np.array_equal(
            np.array(shown["reach"], bool).reshape(eff.reachable.shape), eff.reachable
        )
        np.testing.assert_allclose(shown["strip"], eff.kl, atol=1e-6)
    page.mouse.move(1, 1)
    assert error_text(page) == ""


def test_shift_click_adds_to_the_set(page):
    sess = engine()
    page.mouse.click(*cell_xy(page, "map", 1, 1))
    wait_effect(page, [[1, 1]])
    page.keyboard.down("Shift")
    page.mouse.click(*cell_xy(page, "map", 2, 6))
    page.keyboard.up("Shift")
    shown = wait_effect(page, [[1, 1], [2, 6]])
    eff = sess.intervene([(1, 1), (2, 6)])
    np.testing.assert_allclose(
        np.array(shown["values"]).reshape(eff.resid_delta.shape), eff.resid_delta, atol=1e-6
    )
    page.mouse.move(1, 1)


def test_hundred_rapid_clicks_end_on_the_last(page):
    sess = engine()
    P, R = sess.n_positions, sess.n_rows
    targets = [((k * 7) % R, (k * 5) % P) for k in range(100)]
    pts = [cell_xy(page, "map", r, c) for r, c in targets]
    box = page.locator(".rw-root .rw-map canvas").first.bounding_box()
    # dispatch all 100 clicks in one JS turn: as rapid as clicks can be
    page.evaluate(
        """(pts) => {
          const cv = document.querySelector('.rw-root .rw-map canvas');
          for (const [x, y] of pts)
            cv.dispatchEvent(new MouseEvent('click', {clientX: x, clientY: y, bubbles: true}));
        }""",
        pts,
    )
    last = [list(targets[-1])]
    shown = wait_effect(page, last)
    page.wait_for_timeout(1500)  # any late (stale) replies arrive now and must be dropped
    shown = current(page)
    assert shown["mode"] == "effect" and shown["cells"] == last
    eff = sess.intervene([targets[-1]])
    np.testing.assert_allclose(
        np.array(shown["values"]).reshape(eff.resid_delta.shape), eff.resid_delta, atol=1e-6
    )
    assert error_text(page) == ""
    assert box is not None
    assert own_page_errors(page) == []


def test_tooltip_shows_logit_lens(page):
    page.mouse.move(*cell_xy(page, "map", 2, 3))
    tip = page.locator(".rw-root .rw-tooltip")
    tip.wait_for(state="visible", timeout=5_000)
    page.wait_for_function(
        "() => document.querySelector('.rw-root .rw-tooltip table')", timeout=15_000
    )
    text = tip.text_content()
    assert "row 2" in text and "position 3" in text and "lens clean" in text
    page.mouse.move(1, 1)


def test_restarted_kernel_is_shown_as_such(page):
    """Last in this module: restarts the kernel through the REST API, like Kernel ▸ Restart.

    A restart made behind the page's back (REST, not the page's own Kernel menu) is not always
    announced to the page's kernel connection as "restarting" (seen here on 2026-11-27: the
    server logs the restart, the page's connection only sees busy/idle from the new kernel), so
    the next click is what finds out: the widget's old comm is gone and it says so in words."""
    import json as _json
    import urllib.request

    base, token = page.server_base, page.server_token
    sessions = _json.load(urllib.request.urlopen(f"{base}/api/sessions?token={token}"))
    (kid,) = {s["kernel"]["id"] for s in sessions}
    req = urllib.request.Request(
        f"{base}/api/kernels/{kid}/restart?token={token}",
        data=b"",
        method="POST",
        headers={"Authorization": f"token {token}"},
    )
    urllib.request.urlopen(req)
    page.wait_for_timeout(3_000)
    page.mouse.click(*cell_xy(page, "map", 2, 3))  # a request the old comm cannot answer
    page.wait_for_function(  # generous: a restart on a loaded machine took over 30 s
        "() => /kernel/i.test(document.querySelector('.rw-root .rw-message').textContent)",
        timeout=90_000,
    )
    msg = page.locator(".rw-root .rw-message").text_content()
    assert "dead or restarted" in msg or "No reply from the kernel" in msg
