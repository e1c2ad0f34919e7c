"""The widget's keys and the notebook's keys, in real JupyterLab 4 and Notebook 7 (Chromium).

After a click on the heatmap the widget has focus. It takes the keys it acts on — arrows move its
cursor, Enter pins, Space adds to the set, Escape drops the cursor — and lets every other key
through to Jupyter: Shift+Enter runs the cell and selects the next one, and command-mode keys
(here ``b``: insert a cell below) work as they do on any output.

Same kernel-side model as ``test_widget_browser`` (a seeded tiny GPT-2, rebuilt here for the
expected numbers); what the widget painted is read through its test hook, what the notebook did
through its execution counts, active cell and cell count.
"""

from __future__ import annotations

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
    wait_widget,
)
from .test_widget_browser import CELL, engine

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

NEXT = "print('the next cell')"


@pytest.fixture(scope="module", params=["lab", "notebook"])
def page(request):
    with JupyterServer(request.param) as srv, chromium() as ctx:
        yield open_widget_page(ctx, srv, "keys.ipynb", [CELL, NEXT])


def cells(page) -> int:
    return page.locator(".jp-Notebook .jp-Cell").count()


def active_cell(page) -> int:
    return page.evaluate(
        "() => [...document.querySelectorAll('.jp-Notebook .jp-Cell')]"
        ".findIndex((c) => c.classList.contains('jp-mod-active'))"
    )


def prompt(page, index: int) -> str:
    return (
        page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-InputPrompt").text_content()
    )


def widget_has_focus(page) -> bool:
    return page.evaluate("() => document.activeElement === document.querySelector('.rw-root')")


def paints(page) -> int:
    return page.evaluate("() => document.querySelector('.rw-root').__rw.paints()")


def test_widget_keys_then_shift_enter_runs_the_cell(page):
    sess = engine()
    ran = prompt(page, 0)
    assert "1" in ran, ran
    page.mouse.click(*cell_xy(page, "map", 0, 0))
    wait_effect(page, [[0, 0]])
    page.mouse.move(1, 1)
    assert widget_has_focus(page)

    # the widget's keys: arrows move its cursor (not the notebook's active cell), Enter pins
    for key in ["ArrowUp", "ArrowRight", "ArrowRight", "ArrowDown", "ArrowUp"]:
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    got = wait_effect(page, [[1, 2]])
    np.testing.assert_allclose(
        np.array(got["values"]), sess.intervene((1, 2)).resid_delta.ravel(), rtol=1e-5, atol=1e-6
    )
    # Space adds the cursor cell to the pinned set (what Shift+Enter did before)
    page.keyboard.press("ArrowUp")
    page.keyboard.press("Space")
    got = wait_effect(page, [[1, 2], [2, 2]])
    np.testing.assert_allclose(
        np.array(got["values"]),
        sess.intervene([(1, 2), (2, 2)]).resid_delta.ravel(),
        rtol=1e-5,
        atol=1e-6,
    )
    assert active_cell(page) == 0 and cells(page) == 2 and prompt(page, 0) == ran
    assert widget_has_focus(page)

    # the notebook's keys: Shift+Enter runs the widget's cell and selects the next one
    page.keyboard.press("Shift+Enter")
    page.wait_for_function(
        "(ran) => { const c = document.querySelectorAll('.jp-Notebook .jp-Cell')[0];"
        " const p = c.querySelector('.jp-InputPrompt').textContent;"
        " return /\\[\\d+\\]/.test(p) && p !== ran; }",
        arg=ran,
        timeout=60_000,
    )
    assert active_cell(page) == 1
    assert cells(page) == 2
    wait_widget(page)  # the re-run cell draws a new widget
    assert error_text(page) == "" and own_page_errors(page) == []


def test_escape_is_the_widgets_only_while_it_has_a_cursor(page):
    wait_widget(page)
    page.wait_for_function(
        "() => { const d = document.querySelector('.rw-root').__rw.atlasDone();"
        " return d && d.every(Boolean); }",
        timeout=60_000,
    )
    page.mouse.click(*cell_xy(page, "map", 2, 1))
    wait_effect(page, [[2, 1]])
    page.mouse.move(1, 1)
    assert widget_has_focus(page)
    n = cells(page)
    before = paints(page)
    page.keyboard.press("Escape")  # drops the widget's cursor (a repaint), nothing else
    page.wait_for_function(
        f"() => document.querySelector('.rw-root').__rw.paints() > {before}", timeout=5_000
    )
    assert cells(page) == n
    # with nothing left to drop the keys are the notebook's: `b` inserts a cell below
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    page.wait_for_function(
        f"() => document.querySelectorAll('.jp-Notebook .jp-Cell').length === {n + 1}",
        timeout=10_000,
    )
    assert error_text(page) == "" and own_page_errors(page) == []
