"""Lecture views, keyboard navigation and the dark theme, in real JupyterLab 4 and Notebook 7
(Chromium).

Same kernel-side model as ``test_widget_browser`` (a seeded tiny GPT-2, rebuilt here for the
expected numbers). Values are read back through the widget's test hooks (``__rw.view()``,
``data-first-reached``, ``__rw.current()``), never eyeballed.
"""

from __future__ import annotations

import functools
import json
import re

import numpy as np
import pytest

from .harness import (
    JupyterServer,
    cell_xy,
    chromium,
    error_text,
    open_widget_page,
    own_page_errors,
    wait_effect,
)
from .test_widget_browser import CELL, engine

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

VIEW_SELECT = '.rw-controls label[title^="Which picture"] select'


@functools.lru_cache(maxsize=1)
def engine_atlas():
    return engine().sweep()


@pytest.fixture(scope="module", params=["lab", "notebook"])
def page(request):
    with JupyterServer(request.param) as srv, chromium() as ctx:
        yield open_widget_page(ctx, srv, "views.ipynb", [CELL])


def view_info(page) -> dict:
    return page.evaluate("() => document.querySelector('.rw-root').__rw.view()")


def switch_view(page, name: str, ready: str = "true") -> dict:
    page.locator(VIEW_SELECT).select_option(name)
    page.wait_for_function(
        f"() => {{ const v = document.querySelector('.rw-root').__rw.view();"
        f" return v.view === {name!r} && ({ready}); }}",
        timeout=30_000,
    )
    return view_info(page)


def test_each_view_shows_the_engines_numbers(page):
    from residual_widgets import views

    sess = engine()
    page.mouse.click(*cell_xy(page, "map", 1, 2))
    wait_effect(page, [[1, 2]])
    page.mouse.move(1, 1)

    switch_view(page, "first_reached")
    want = views.first_reached(sess.intervene((1, 2)).resid_delta).tolist()
    assert json.loads(page.locator(".rw-root").get_attribute("data-first-reached")) == want
    assert view_info(page)["firstReached"] == want

    v = switch_view(page, "profile", "v.mean !== null")
    assert v["row"] == 1
    prof = views.future_profile(engine_atlas().kl, 1)
    np.testing.assert_allclose(np.array(v["mean"], float), prof.value, rtol=1e-4, atol=1e-6)
    assert v["nextToken"] == pytest.approx(prof.next_token, rel=1e-4, abs=1e-6)
    assert page.locator(".rw-root .rw-view").is_visible()

    v = switch_view(page, "similarity", "v.sim !== null")
    sim, _ = views.similarity(sess.clean.resid)
    assert v["row"] == 1
    np.testing.assert_allclose(np.array(v["sim"]), sim[1].ravel(), atol=1e-5)

    # position vs content: computed in the kernel over the corpus, the row follows the pin
    from residual_widgets import lecture

    v = switch_view(page, "position_content", "v.mean !== null")
    pc = lecture.position_content_for(sess)
    assert v["row"] == 1 and (v["nPrompts"], v["nTokens"]) == (pc.n_prompts, pc.n_tokens)
    assert v["massiveDims"] == pc.massive_dims.tolist()
    np.testing.assert_allclose(v["energy"], pc.energy[1], rtol=1e-5, atol=1e-6)
    for kind in pc.KINDS:
        iv = pc.interval(kind)
        np.testing.assert_allclose(v["mean"][kind], iv.mean[1], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(v["lo"][kind], iv.lo[1], rtol=1e-4, atol=1e-6)
    sub = page.locator(".rw-root .rw-view").inner_text()
    assert f"{pc.n_prompts} corpus prompts × {pc.n_tokens} tokens" in sub
    page.locator(".rw-controls input.rw-row").fill("0")
    page.locator(".rw-controls input.rw-row").dispatch_event("change")
    page.wait_for_function(
        "() => document.querySelector('.rw-root').__rw.view().row === 0", timeout=30_000
    )
    np.testing.assert_allclose(
        view_info(page)["mean"]["content"], pc.interval("content").mean[0], rtol=1e-4, atol=1e-6
    )
    page.locator(".rw-controls input.rw-row").fill("-1")
    page.locator(".rw-controls input.rw-row").dispatch_event("change")

    switch_view(page, "map")
    assert not page.locator(".rw-root .rw-view").is_visible()
    assert error_text(page) == "" and own_page_errors(page) == []


def test_arrow_keys_move_the_cursor_and_enter_pins(page):
    sess = engine()
    page.mouse.click(*cell_xy(page, "map", 0, 0))
    wait_effect(page, [[0, 0]])
    page.mouse.move(1, 1)
    page.evaluate("() => document.querySelector('.rw-root').focus()")
    page.keyboard.press("Escape")  # drop the cursor: arrows start at the pin
    for key in ["ArrowUp", "ArrowUp", "ArrowRight", "ArrowRight", "ArrowRight", "ArrowDown"]:
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    got = wait_effect(page, [[1, 3]])
    np.testing.assert_allclose(
        np.array(got["values"]), sess.intervene((1, 3)).resid_delta.ravel(), rtol=1e-5, atol=1e-6
    )
    assert error_text(page) == ""


def test_follows_the_jupyterlab_dark_theme(page):
    style = (
        "() => { const r = document.querySelector('.rw-root'); const s = getComputedStyle(r);"
        " return [s.backgroundColor, s.color, +r.dataset.paints]; }"
    )
    bg0, fg0, paints0 = page.evaluate(style)
    assert page.evaluate("() => document.body.dataset.jpThemeLight") == "true"
    # the real theme switch: Settings → Theme → JupyterLab Dark
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Settings$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Theme$")).hover()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^JupyterLab Dark$")).click()
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
    page.wait_for_function(
        "(s) => getComputedStyle(document.querySelector('.rw-root')).backgroundColor !== s",
        arg=bg0,
        timeout=30_000,
    )
    bg1, fg1, paints1 = page.evaluate(style)

    def lum(css):
        r, g, b = [int(x) for x in css[css.index("(") + 1 : css.index(")")].split(",")[:3]]
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    assert lum(bg1) < lum(bg0) and lum(fg1) > lum(fg0), (bg0, fg0, bg1, fg1)
    assert lum(bg1) < lum(fg1)
    assert paints1 > paints0  # the canvases repainted with the new colors
