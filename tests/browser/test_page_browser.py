"""The explorable saved page (``save_html(interactive=True)``), opened from disk in Chromium with
the network cut off: no kernel, no server, no CDN.

The widget is built in this process on a seeded tiny GPT-2, swept, and saved; the page is opened
as a ``file://`` URL while every other URL is aborted (and recorded: none may be asked for).
Values are read back through the widget's test hook (``root.__rw.current()``: exactly what was
painted) and compared with the engine's own arrays.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from .harness import cell_xy, chromium, current, error_text

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

PROMPT = "When Mary and John went to the store, John gave a drink to"
PAIR = (" Mary", " John")
PIN = (2, 5)
#: float16 keeps ~3 significant digits (relative step 2**-11); tiny values are subnormal
F16 = {"rtol": 1.5e-3, "atol": 1e-7}


@functools.lru_cache(maxsize=1)
def saved():
    """(widget, engine session, engine atlas) of the saved page, built once."""
    import residual_widgets as rw
    from residual_widgets.explore import explore
    from residual_widgets.tiny import tiny_model

    hf, tok = tiny_model("gpt2", n_layers=3)
    lm = rw.load_model(hf, tok)
    w = explore(PROMPT, model=lm, cell=PIN, logit_diff=PAIR)
    w.wait()
    sess = rw.Session(lm, PROMPT)  # the engine, independently of the widget
    return w, sess, sess.sweep(logit_diff=PAIR)


def open_offline(ctx, path):
    """Open ``path`` from disk; every non-file request is aborted and recorded."""
    page = ctx.new_page()
    page.asked = []
    page.page_errors = []
    page.dialogs = []
    page.on("pageerror", lambda e: page.page_errors.append(str(e)))
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.on(
        "request",
        lambda r: (
            None if r.url.startswith(("file:", "data:", "blob:")) else page.asked.append(r.url)
        ),
    )

    def route(r):
        if r.request.url.startswith("file:"):
            return r.continue_()
        page.asked.append(r.request.url)
        return r.abort()

    page.route("**/*", route)
    page.goto(path.as_uri())
    page.wait_for_selector(".rw-root[data-paints]", timeout=30_000)
    return page


@pytest.fixture(scope="module")
def page_file(tmp_path_factory):
    w, _, _ = saved()
    return w.save_html(tmp_path_factory.mktemp("page") / "explore.html", interactive=True)


@pytest.fixture(scope="module")
def ctx():
    with chromium() as c:
        yield c


@pytest.fixture(scope="module")
def page(ctx, page_file):
    pg = open_offline(ctx, page_file)
    yield pg
    assert pg.asked == [], f"the saved page asked the network for {pg.asked}"
    assert pg.page_errors == [] and pg.dialogs == []


def wait_shown(page, mode, cells, timeout=5_000):
    page.wait_for_function(
        "([mode, cells]) => { const c = document.querySelector('.rw-root').__rw.current();"
        " return c.mode === mode && JSON.stringify(c.cells) === JSON.stringify(cells); }",
        arg=[mode, cells],
        timeout=timeout,
    )
    return current(page)


def test_page_is_one_file_that_needs_nothing_else(page_file):
    html = page_file.read_text("utf-8")
    assert "<script type='module'>" in html and "rw-state" in html
    for ref in ("src=", "href=", "http://", "https://", "import(", "cdn"):
        assert ref not in html.split("<script type='application/json'")[0], ref
    state = json.loads(html.split("id='rw-state'>")[1].split("</script>")[0])
    atlas = state["traits"]["atlas"]
    assert atlas["storage"] == "float16" and atlas["resid_delta"]["dtype"] == "float16"
    assert "float16" in state["traits"]["page"]["note"]


def test_opens_with_the_saved_pin(page):
    w, sess, _ = saved()
    shown = current(page)
    assert shown["mode"] == "effect" and shown["cells"] == [list(PIN)]
    want = sess.intervene([PIN]).resid_delta
    np.testing.assert_allclose(np.array(shown["values"]).reshape(want.shape), want, atol=1e-6)
    note = page.locator(".rw-root .rw-page-note")
    assert note.is_visible() and "no kernel" in note.text_content()
    assert error_text(page) == ""


def test_hover_any_source_cell_repaints_from_the_embedded_atlas(page):
    _, sess, atlas = saved()
    S, P = atlas.done.shape
    for r, c in [(0, 0), (1, 3), (3, 13), (2, 7), (S - 1, P - 1)]:
        page.mouse.move(*cell_xy(page, "overview", r, c))
        shown = wait_shown(page, "atlas", [[r, c]])
        got = np.array(shown["values"]).reshape(atlas.resid_delta[r, c].shape)
        np.testing.assert_allclose(got, atlas.resid_delta[r, c], **F16)
        np.testing.assert_allclose(shown["strip"], atlas.kl[r, c], rtol=1e-6, atol=1e-7)
        want = np.array(shown["reach"], bool).reshape(got.shape)
        assert np.array_equal(want, sess.intervene([(r, c)]).reachable)
    page.mouse.move(1, 1)


def test_click_pins_a_swept_cell_and_the_views_switch(page):
    from residual_widgets import views

    _, sess, atlas = saved()
    page.mouse.click(*cell_xy(page, "overview", 1, 4))
    shown = wait_shown(page, "effect", [[1, 4]])
    np.testing.assert_allclose(
        np.array(shown["values"]).reshape(atlas.resid_delta[1, 4].shape),
        atlas.resid_delta[1, 4],
        **F16,
    )
    page.mouse.move(1, 1)
    assert "from the saved sweep" in page.locator(".rw-root .rw-map .rw-sub").text_content()
    select = page.locator('.rw-controls label[title^="Which picture"] select')
    select.select_option("first_reached")
    page.wait_for_function("() => document.querySelector('.rw-root').dataset.firstReached")
    got = json.loads(page.locator(".rw-root").get_attribute("data-first-reached"))
    assert got == views.first_reached(sess.intervene((1, 4)).resid_delta).tolist()
    select.select_option("profile")
    v = page.evaluate("() => document.querySelector('.rw-root').__rw.view()")
    assert v["view"] == "profile" and v["row"] == 1
    np.testing.assert_allclose(
        v["mean"], views.future_profile(atlas.kl, 1).value, rtol=1e-4, atol=1e-6
    )
    select.select_option("similarity")
    v = page.evaluate("() => document.querySelector('.rw-root').__rw.view()")
    sim, _ = views.similarity(sess.clean.resid)
    np.testing.assert_allclose(v["sim"], sim[1].ravel(), atol=1e-5)
    select.select_option("map")
    assert error_text(page) == ""


def test_tooltip_shows_the_recorded_logit_lens(page):
    _, sess, _ = saved()
    page.mouse.click(*cell_xy(page, "overview", *PIN))  # back to the saved pin
    wait_shown(page, "effect", [list(PIN)])
    page.mouse.move(*cell_xy(page, "map", 3, 9))
    page.wait_for_function(
        "() => document.querySelector('.rw-root .rw-tooltip table')", timeout=5_000
    )
    rows = page.evaluate(
        "() => [...document.querySelectorAll('.rw-root .rw-tooltip tr')].slice(1)"
        ".map(tr => [...tr.children].map(td => td.textContent))"
    )
    clean = sess.logit_lens((3, 9), k=5)
    assert [float(r[1]) for r in rows] == pytest.approx([p for _, p in clean], abs=6e-4)
    inter = sess.logit_lens((3, 9), k=5, effect=sess.intervene([PIN]))
    assert [float(r[3]) for r in rows] == pytest.approx([p for _, p in inter], abs=6e-4)
    page.mouse.move(1, 1)


def test_what_needs_a_kernel_is_disabled_and_says_so(page):
    kernel_only = [
        'label[title^="What is written"] select',
        'label[title^="Where"] select',
        "input.rw-source",
        "input.rw-tok",
        "button.rw-sweep",
        "button.rw-cancel",
    ]
    for sel in kernel_only:
        loc = page.locator(f".rw-controls {sel}").first
        assert loc.is_disabled(), sel
        assert "kernel" in loc.get_attribute("title")
    for sel in [
        'label[title^="Which picture"] select',
        'label[title^="Color scale"] select',
        "button.rw-clear",
    ]:
        assert page.locator(f".rw-controls {sel}").first.is_enabled(), sel
    page.mouse.click(*cell_xy(page, "map", 1, 1))
    page.keyboard.down("Shift")
    page.mouse.click(*cell_xy(page, "map", 2, 6))
    page.keyboard.up("Shift")
    page.wait_for_function(
        "() => /no kernel/.test(document.querySelector('.rw-root .rw-message').textContent)",
        timeout=5_000,
    )
    assert "set of cells" in error_text(page)


def test_size_guard_keeps_the_most_important_maps(ctx, tmp_path):
    """A budget smaller than all maps: the page keeps the most important cells' maps, says so,
    and shows the others' summaries only."""
    w, _, atlas = saved()
    R, P = atlas.resid_delta.shape[2:]
    per_map = R * P * 2
    path = w.save_html(
        tmp_path / "small.html",
        interactive=True,
        max_bytes=10 * per_map + atlas.kl.nbytes + atlas.logprob_delta.nbytes,
    )
    state = json.loads(path.read_text().split("id='rw-state'>")[1].split("</script>")[0])
    a = state["traits"]["atlas"]
    K = a["resid_delta"]["shape"][0]
    assert a["storage"] == "subset" and 10 <= K < 56
    note = state["traits"]["page"]["note"]
    assert f"{K} of the 56 swept source cells" in note and "largest change of the logit" in note
    drop = np.abs(atlas.logit_diff - atlas.logit_diff_clean)
    order = [
        tuple(int(x) for x in np.unravel_index(f, drop.shape))
        for f in np.argsort(-drop, axis=None, kind="stable")
    ]
    kept = [PIN] + [c for c in order if c != PIN][: K - 1]
    gone = next(c for c in reversed(order) if c not in kept)
    pg = open_offline(ctx, path)
    assert "of the 56 swept" in pg.locator(".rw-root .rw-page-note").text_content()
    r, c = kept[3]
    pg.mouse.move(*cell_xy(pg, "overview", r, c))
    shown = wait_shown(pg, "atlas", [[r, c]])
    np.testing.assert_allclose(
        np.array(shown["values"]).reshape(R, P), atlas.resid_delta[r, c], **F16
    )
    pg.mouse.move(*cell_xy(pg, "overview", *gone))
    pg.wait_for_timeout(300)
    assert current(pg)["mode"] == "effect"  # no map saved for it: the pin stays shown
    pg.mouse.click(*cell_xy(pg, "overview", *gone))
    pg.wait_for_function(
        "() => /map was not saved/.test(document.querySelector('.rw-root"
        " .rw-message').textContent)",
        timeout=5_000,
    )
    assert pg.asked == [] and pg.page_errors == []
    pg.close()
