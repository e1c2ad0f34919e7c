"""Presentation mode at a projector's 1280×720: larger fonts and cells, the high-contrast palette,
and the "animate" control that reveals the pinned effect row by row from its row upward.

Checked through the saved page (the widget, no kernel), opened offline: the sizes from the
widget's geometry, the colours from the canvas's pixels, the animation from the ``data-reveal``
attribute of every paint. Screenshots go to ``tests/browser/screenshots/`` (ignored by git) for a
person to look at; the slow test takes them on the bundled SmolLM2-135M, the lecture's picture.
"""

from __future__ import annotations

import functools
import pathlib

import numpy as np
import pytest

from .harness import ROOT, cell_xy, chromium, current
from .test_page_browser import open_offline

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

SHOTS = pathlib.Path(__file__).parent / "screenshots"
PROMPT = "When Mary and John went to the store, John gave a drink to"
PIN = (1, 3)


def shots_dir() -> pathlib.Path:
    SHOTS.mkdir(exist_ok=True)
    (SHOTS / ".gitignore").write_text("*\n")
    return SHOTS


@functools.lru_cache(maxsize=1)
def tiny():
    import residual_widgets as rw
    from residual_widgets.explore import explore
    from residual_widgets.tiny import tiny_model

    hf, tok = tiny_model("gpt2", n_layers=3)
    w = explore(PROMPT, model=rw.load_model(hf, tok), cell=PIN, logit_diff=(" Mary", " John"))
    w.wait()
    return w


def save(w, path, **look):
    for k, v in look.items():
        setattr(w, k, v)
    try:
        return w.save_html(path, interactive=True)
    finally:
        w.presentation, w.palette = False, "default"


def at_projector(ctx, path):
    page = open_offline(ctx, path)
    page.set_viewport_size({"width": 1280, "height": 720})
    page.wait_for_function(f"() => +{ROOT}.dataset.paints > 1")  # repainted at the new width
    page.wait_for_timeout(200)
    return page


def pixel(page, panel: str, row: int, col: int) -> list[int]:
    """The RGB painted at the centre of cell (row, col) of the map or the overview."""
    return page.evaluate(
        f"""([panel, row, col]) => {{
          const r = {ROOT};
          const c = r.querySelector(`.rw-${{panel}} canvas`);
          const g = r.__rw.geom()[panel];
          const d = c.width / parseFloat(c.style.width);
          const x = (g.x0 + (col + 0.5) * g.cw) * d, y = (g.y0 + (g.rows - row - 0.5) * g.ch) * d;
          return Array.from(c.getContext('2d').getImageData(Math.round(x), Math.round(y), 1, 1)
            .data).slice(0, 3);
        }}""",
        [panel, row, col],
    )


def geom(page) -> dict:
    return page.evaluate(f"() => {ROOT}.__rw.geom().map")


@pytest.fixture(scope="module")
def ctx():
    with chromium() as c:
        yield c


def test_presentation_is_larger(ctx, tmp_path):
    w = tiny()
    plain = at_projector(ctx, save(w, tmp_path / "plain.html"))
    big = at_projector(ctx, save(w, tmp_path / "big.html", presentation=True))
    g0, g1 = geom(plain), geom(big)
    assert g1["cw"] > g0["cw"] and g1["ch"] > g0["ch"]
    font = f"() => parseFloat(getComputedStyle({ROOT}).fontSize)"
    assert big.evaluate(font) >= 17 > plain.evaluate(font)
    assert big.locator(".rw-root.rw-present").count() == 1
    # the whole grid fits the projector's height with the header and controls above it
    bottom = big.evaluate(
        f"() => {ROOT}.querySelector('.rw-map canvas').getBoundingClientRect().bottom"
    )
    assert bottom <= 720
    assert big.locator(".rw-controls .rw-present-toggle").is_checked()
    for p in (plain, big):
        assert p.page_errors == [] and p.asked == []
        p.close()


def test_high_contrast_palette_paints_inferno_black_on_white(ctx, tmp_path):
    w = tiny()
    page = at_projector(ctx, save(w, tmp_path / "contrast.html", palette="contrast"))
    eff = w.current_effect.resid_delta
    top = tuple(int(x) for x in np.unravel_index(np.argmax(eff), eff.shape))
    assert pixel(page, "map", *top) == [252, 255, 164]  # the largest value: inferno's end
    atlas = w.current_atlas  # the overview: logit difference, diverging around the clean one
    dev = atlas.logit_diff - atlas.logit_diff_clean
    far = tuple(int(x) for x in np.unravel_index(np.argmax(np.abs(dev)), dev.shape))
    assert pixel(page, "overview", *far) == ([5, 48, 97] if dev[far] < 0 else [103, 0, 31])
    bg, fg = page.evaluate(
        f"() => {{ const s = getComputedStyle({ROOT}); return [s.backgroundColor, s.color]; }}"
    )
    assert (bg, fg) == ("rgb(255, 255, 255)", "rgb(0, 0, 0)")
    assert page.locator('.rw-controls label[title^="Colors"] select').input_value() == "contrast"
    page.close()


def test_animate_reveals_the_pinned_effect_row_by_row(ctx, tmp_path):
    w = tiny()
    page = at_projector(ctx, save(w, tmp_path / "anim.html", presentation=True))
    page.evaluate(
        f"""() => {{ const r = {ROOT}; window.__reveals = [];
          r.addEventListener('rw-paint', () => window.__reveals.push(
            [r.dataset.reveal, r.__rw.current().reveal])); }}"""
    )
    page.locator(".rw-root button.rw-animate").click()
    R = w.session.n_rows
    page.wait_for_function(
        "() => window.__reveals.length && window.__reveals.at(-1)[0] === ''", timeout=20_000
    )
    seq = [x[1] for x in page.evaluate("() => window.__reveals")]
    assert seq == [*range(PIN[0], R), None]
    assert page.locator(".rw-root button.rw-animate").text_content() == "▶ animate"
    # a frame: rows above the revealed one are blank, the revealed rows are the engine's colours
    page.locator(".rw-root button.rw-animate").click()
    page.wait_for_function(f"() => {ROOT}.dataset.reveal === '{PIN[0]}'")
    bg = pixel(page, "map", R - 1, PIN[1] + 1)
    assert bg == [255, 255, 255]
    shown = current(page)
    assert shown["reveal"] == PIN[0] and shown["mode"] == "effect"
    page.wait_for_function(f"() => {ROOT}.dataset.reveal === ''", timeout=20_000)
    assert pixel(page, "map", R - 1, PIN[1] + 1) != [255, 255, 255]
    page.close()


@pytest.mark.slow
def test_screenshots_on_the_bundled_model(ctx, tmp_path):
    """1280×720 screenshots of presentation mode on SmolLM2-135M: the default palette, high
    contrast, and the animation halfway up. Written to tests/browser/screenshots/."""
    import residual_widgets as rw
    from residual_widgets._export import save_page

    model = rw.load_model("smollm2-135m")
    sess = rw.Session(model, PROMPT)
    atlas = sess.sweep(logit_diff=(" Mary", " John"))
    eff = sess.ablate((6, 3))
    out = shots_dir()
    paths = []
    for name, look in [
        ("present-default", {"presentation": True}),
        ("present-contrast", {"presentation": True, "palette": "contrast"}),
    ]:
        html = save_page(
            tmp_path / f"{name}.html",
            sess,
            effect=eff,
            atlas=atlas,
            prompt=PROMPT,
            model_name="smollm2-135m",
            settings={"logit_pair": [" Mary", " John"], **look},
        )
        page = at_projector(ctx, html)
        if name == "present-contrast":  # with the logit-lens tooltip of a cell
            page.mouse.move(*cell_xy(page, "map", 20, 9))
            page.wait_for_selector(".rw-root .rw-tooltip table")
        page.screenshot(path=str(out / f"{name}.png"))
        paths.append(out / f"{name}.png")
        if name == "present-contrast":  # the climb, halfway up, from the top of the page
            page.mouse.move(1, 1)
            page.evaluate("() => window.scrollTo(0, 0)")
            page.locator(".rw-root button.rw-animate").click()
            page.wait_for_function(f"() => {ROOT}.dataset.reveal === '18'", timeout=20_000)
            page.screenshot(path=str(out / "present-animate.png"))
            paths.append(out / "present-animate.png")
        assert page.page_errors == [] and page.asked == []
        page.close()
    for p in paths:
        assert p.stat().st_size > 20_000
