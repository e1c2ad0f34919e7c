"""Transplanting by hand and the heads view in real JupyterLab (Chromium), against the engine;
the heads view in Notebook 7 too (``heads_page``: "lab" reuses the JupyterLab page).

The kernel runs ``explore`` on the seeded tiny GPT-2 of ``test_widget_browser`` (this process
rebuilds the identical model for the expected numbers). The page is driven with real mouse and
keyboard input — a drag is a press, moves and a release — and what it painted is read back
through the widget's test hooks (``__rw.current()``, ``__rw.side()``, ``data-transplant``), then
compared with ``Session.transplant`` / ``Session.intervene(site="head")`` / the head sweep.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from .harness import (
    ROOT,
    JupyterServer,
    cell_xy,
    chromium,
    current,
    error_text,
    open_widget_page,
    own_page_errors,
    wait_effect,
)
from .test_widget_browser import CELL, engine

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

OTHER = "Paris is the capital of France"
VIEW_SELECT = '.rw-controls label[title^="Which picture"] select'
HEADS_POS_SELECT = ".rw-controls .rw-heads-positions select"


@functools.lru_cache(maxsize=2)
def head_atlas(positions=None):
    return engine().sweep(site="head", positions=positions)


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module (a second Playwright inside the first's loop fails)."""
    with chromium() as ctx:
        yield ctx


@pytest.fixture(scope="module")
def page(browser):
    with JupyterServer("lab") as srv:
        yield open_widget_page(browser, srv, "transplant.ipynb", [CELL])


@pytest.fixture(scope="module", params=["lab", "notebook"])
def heads_page(request):
    """The heads view's page: JupyterLab's (the ``page`` above), then Notebook 7's."""
    if request.param == "lab":
        yield request.getfixturevalue("page")
        return
    with JupyterServer("notebook") as srv:
        yield open_widget_page(request.getfixturevalue("browser"), srv, "heads.ipynb", [CELL])


def show_heads(page, positions: str = "by_pos") -> dict:
    """Switch to the heads view (``positions``: "by_pos" | "all"); wait for its finished sweep."""
    page.locator(VIEW_SELECT).select_option("heads")
    page.locator(HEADS_POS_SELECT).select_option(positions)
    page.wait_for_function(
        f"(all) => {{ const h = {ROOT}.__rw.side().heads;"
        " return h.shown && h.progress && !h.progress.running && h.values"
        " && h.allPositions === all; }",
        arg=positions == "all",
        timeout=120_000,
    )
    return page.evaluate(f"() => {ROOT}.__rw.side().heads")


def back_to_map(page) -> None:
    page.locator(HEADS_POS_SELECT).select_option("by_pos")
    page.locator(VIEW_SELECT).select_option("map")


def wait_preview(page, cells) -> dict:
    """Wait until the main map previews a head's map from the sweep with source ``cells``."""
    page.wait_for_function(
        "(c) => { const s = document.querySelector('.rw-root').__rw.current();"
        " return s.mode === 'atlas' && JSON.stringify(s.cells) === JSON.stringify(c); }",
        arg=cells,
        timeout=10_000,
    )
    return current(page)


def side_xy(page, panel: str, row: int, col: int) -> tuple[float, float]:
    """Viewport centre of cell (row, col) of the ``heads`` or ``source`` panel's grid."""
    cls = {"heads": "rw-heads", "source": "rw-tsource"}[panel]
    canvas = page.locator(f".rw-root .{cls} canvas").first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    g = page.evaluate(f"() => {ROOT}.__rw.geom().{panel}")
    return box["x"] + g["x0"] + (col + 0.5) * g["cw"], box["y"] + g["y0"] + (
        g["rows"] - 1 - row + 0.5
    ) * g["ch"]


def drag(page, a: tuple[float, float], b: tuple[float, float]) -> None:
    page.mouse.move(*a)
    page.mouse.down()
    page.mouse.move((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, steps=4)
    page.mouse.move(*b, steps=4)
    page.mouse.up()


def transplant_shown(page) -> dict:
    return json.loads(page.locator(".rw-root").get_attribute("data-transplant") or "null")


def assert_shows(shown: dict, eff) -> None:
    np.testing.assert_allclose(
        np.array(shown["values"]).reshape(eff.resid_delta.shape), eff.resid_delta, atol=1e-6
    )
    assert np.array_equal(
        np.array(shown["reach"], bool).reshape(eff.reachable.shape), eff.reachable
    )
    np.testing.assert_allclose(shown["strip"], eff.kl, atol=1e-6)


def test_drag_a_cell_onto_another_and_undo(page):
    sess = engine()
    page.mouse.click(*cell_xy(page, "map", 0, 3))
    wait_effect(page, [[0, 3]])
    drag(page, cell_xy(page, "map", 2, 1), cell_xy(page, "map", 1, 5))
    shown = wait_effect(page, [[1, 5]])
    eff = sess.transplant(None, (2, 1), (1, 5))
    assert np.abs(eff.resid_delta).sum() > 0
    assert_shows(shown, eff)
    assert transplant_shown(page) == {
        "source": "this",
        "prompt": None,
        "sourceCell": [2, 1],
        "targetCell": [1, 5],
    }
    sub = page.locator(".rw-root .rw-map .rw-sub").text_content()
    assert "transplant (2, 1) of this prompt → (1, 5)" in sub
    # Ctrl+Z (the map has focus after the drop) restores the click's effect
    page.mouse.move(1, 1)
    page.keyboard.press("Control+z")
    shown = wait_effect(page, [[0, 3]])
    assert_shows(shown, sess.intervene([(0, 3)]))
    assert transplant_shown(page) is None
    assert error_text(page) == ""


def test_keys_t_then_enter_transplant(page):
    sess = engine()
    page.mouse.click(*cell_xy(page, "map", 3, 2))
    wait_effect(page, [[3, 2]])
    page.mouse.move(1, 1)
    page.keyboard.press("t")
    armed = json.loads(page.locator(".rw-root").get_attribute("data-armed"))
    assert armed == {"where": "map", "cell": [3, 2]}
    for key in ["ArrowDown", "ArrowRight", "ArrowRight"]:
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    shown = wait_effect(page, [[2, 4]])
    assert_shows(shown, sess.transplant(None, (3, 2), (2, 4)))
    assert page.locator(".rw-root").get_attribute("data-armed") == ""


def test_drag_from_a_second_prompt_of_another_length(page):
    sess = engine()
    field = page.locator(".rw-root .rw-tprompt")
    field.fill(OTHER)
    field.press("Enter")
    page.wait_for_function(f"() => {ROOT}.__rw.side().source.shown === true", timeout=30_000)
    info = page.evaluate(f"() => {ROOT}.__rw.side().source")
    other = type(sess)(sess.model, OTHER)
    assert info["cols"] == other.n_positions != sess.n_positions
    last = other.n_positions - 1
    drag(page, side_xy(page, "source", 2, last), cell_xy(page, "map", 2, 6))
    shown = wait_effect(page, [[2, 6]])
    assert_shows(shown, sess.transplant(OTHER, (2, last), (2, 6)))
    assert transplant_shown(page)["source"] == "prompt"
    # two clicks: a source-grid cell (armed), then a target on the map
    page.mouse.click(*side_xy(page, "source", 1, 0))
    page.mouse.click(*cell_xy(page, "map", 1, 7))
    shown = wait_effect(page, [[1, 7]])
    assert_shows(shown, sess.transplant(OTHER, (1, 0), (1, 7)))
    assert error_text(page) == "" and own_page_errors(page) == []


def test_heads_view_hover_previews_and_click_pins_a_head(heads_page):
    page = heads_page
    sess = engine()
    atlas = head_atlas()
    L, H, P = atlas.done.shape
    info = show_heads(page)
    assert (info["rows"], info["cols"]) == (L * H, P) and not info["allPositions"]
    want = {  # the overview's summary, per head cell
        "total KL over positions": atlas.kl.sum(-1),
        "Σ Δlog p of the next tokens": atlas.logprob_delta.sum(-1),
    }[info["summary"]]
    np.testing.assert_allclose(np.array(info["values"], float), want.ravel(), atol=1e-5)
    layer, head, pos = 1, H - 1, 2
    row = layer * H + head
    page.mouse.move(*side_xy(page, "heads", row, pos))
    shown = wait_preview(page, [[layer, pos]])
    np.testing.assert_allclose(
        np.array(shown["values"]).reshape(L + 1, P), atlas.resid_delta[layer, head, pos], atol=1e-5
    )
    page.mouse.click(*side_xy(page, "heads", row, pos))
    page.mouse.move(1, 1)
    shown = wait_effect(page, [[layer, pos]])
    assert_shows(shown, sess.intervene([(layer, head, pos)], site="head"))
    sub = page.locator(".rw-root .rw-map .rw-sub").text_content()
    assert f"layer {layer} head {head} at position {pos}" in sub
    assert error_text(page) == "" and own_page_errors(page) == []
    back_to_map(page)


def test_heads_grid_keys_move_the_previewed_head_and_pin_it(heads_page):
    page = heads_page
    sess = engine()
    atlas = head_atlas()
    L, H, P = atlas.done.shape
    rows = [(k, h) for k in range(L) for h in range(H)]  # every layer, bottom row first
    show_heads(page)
    page.mouse.click(*side_xy(page, "heads", 0, 3))  # head (0, 0) at position 3: pinned
    page.mouse.move(1, 1)
    wait_effect(page, [[0, 3]])
    page.keyboard.press("ArrowUp")  # the next head up, same position: previewed
    k, h = rows[1]
    shown = wait_preview(page, [[k, 3]])
    assert page.evaluate(f"() => {ROOT}.__rw.side().heads.cursor") == [k, h, 3]
    np.testing.assert_allclose(
        np.array(shown["values"]).reshape(L + 1, P), atlas.resid_delta[k, h, 3], atol=1e-5
    )
    page.keyboard.press("ArrowLeft")
    shown = wait_preview(page, [[k, 2]])
    np.testing.assert_allclose(
        np.array(shown["values"]).reshape(L + 1, P), atlas.resid_delta[k, h, 2], atol=1e-5
    )
    page.keyboard.press("Enter")
    shown = wait_effect(page, [[k, 2]])
    assert_shows(shown, sess.intervene([(k, h, 2)], site="head"))
    sub = page.locator(".rw-root .rw-map .rw-sub").text_content()
    assert f"layer {k} head {h} at position 2" in sub
    page.keyboard.press("Escape")
    assert page.evaluate(f"() => {ROOT}.__rw.side().heads.cursor") is None
    assert error_text(page) == "" and own_page_errors(page) == []
    back_to_map(page)


def test_heads_view_all_positions_previews_and_pins_a_head_everywhere(heads_page):
    page = heads_page
    sess = engine()
    atlas = head_atlas("all")
    L, H = atlas.done.shape
    P = sess.n_positions
    info = show_heads(page, "all")
    assert (info["rows"], info["cols"]) == (L * H, 1) and info["allPositions"]
    want = {
        "total KL over positions": atlas.kl.sum(-1),
        "Σ Δlog p of the next tokens": atlas.logprob_delta.sum(-1),
    }[info["summary"]]
    np.testing.assert_allclose(np.array(info["values"], float), want.ravel(), atol=1e-5)
    layer, head = 1, H - 1
    every = [[layer, p] for p in range(P)]
    page.mouse.move(*side_xy(page, "heads", layer * H + head, 0))
    shown = wait_preview(page, every)
    np.testing.assert_allclose(
        np.array(shown["values"]).reshape(L + 1, P), atlas.resid_delta[layer, head], atol=1e-5
    )
    page.mouse.click(*side_xy(page, "heads", layer * H + head, 0))
    page.mouse.move(1, 1)
    shown = wait_effect(page, every)
    eff = sess.intervene([(layer, head, p) for p in range(P)], site="head")
    assert_shows(shown, eff)
    np.testing.assert_allclose(eff.resid_delta, atlas.resid_delta[layer, head], atol=1e-5)
    sub = page.locator(".rw-root .rw-map .rw-sub").text_content()
    assert f"layer {layer} head {head} at every position" in sub
    assert error_text(page) == "" and own_page_errors(page) == []
    back_to_map(page)
