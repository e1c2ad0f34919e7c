"""The widget in marimo: a notebook served by ``marimo edit --headless --no-token`` on 127.0.0.1,
driven by Chromium.

Two notebooks: one wraps the widget in ``mo.ui.anywidget`` and shows the wrapper's reactive
``value`` in another cell (it re-runs when a control changes a trait); the other leaves the widget
itself as the cell's last expression (marimo wraps anywidgets by itself). Both build the seeded
tiny GPT-2, so this process rebuilds the same model for the expected numbers. marimo renders an
anywidget inside a shadow root: the harness finds the widget's root through it.
"""

from __future__ import annotations

import functools
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request

import numpy as np
import pytest

from .harness import (
    REPO,
    ROOT,
    _free_port,
    cell_xy,
    chromium,
    current,
    error_text,
    server_env,
    stop_server,
    wait_effect,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

PROMPT = "When Mary and John went to the store, John gave a drink to"
N_LAYERS = 3

NOTEBOOK = """
import marimo

__generated_with = "0.25.2"
app = marimo.App(width="full")


@app.cell
def _():
    import marimo as mo
    import residual_widgets as rw
    from residual_widgets.tiny import tiny_model
    return mo, rw, tiny_model


@app.cell
def _(mo, rw, tiny_model):
    hf, tok = tiny_model("gpt2", n_layers={n_layers})
    w = rw.explore({prompt!r}, model=rw.load_model(hf, tok), cell=None)
    view = {shown}
    view
    return view, w


@app.cell
def _(mo, view):
    mo.md(f"kind now: {{getattr(view, 'value', {{}}).get('kind')}}")
    return


if __name__ == "__main__":
    app.run()
"""


@functools.lru_cache(maxsize=1)
def engine():
    import residual_widgets as rw
    from residual_widgets.tiny import tiny_model

    hf, tok = tiny_model("gpt2", n_layers=N_LAYERS)
    return rw.Session(rw.load_model(hf, tok), PROMPT)


class Marimo:
    """``marimo edit`` on one notebook, in a temporary directory, auto-running its cells."""

    def __init__(self, notebook: str):
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="rw-marimo-"))
        self.nb = self.tmp / "nb.py"
        self.nb.write_text(notebook)
        cfg = self.tmp / "config/marimo"
        cfg.mkdir(parents=True)
        # run the cells when the notebook opens (marimo's default waits for a click)
        (cfg / "marimo.toml").write_text("[runtime]\nauto_instantiate = true\n")
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        marimo = shutil.which("marimo", path=os.path.dirname(sys.executable))
        if marimo is None:
            pytest.skip("marimo is not installed (dev extra)")
        env = server_env(
            self.tmp,
            XDG_CONFIG_HOME=str(self.tmp / "config"),
            HOME=str(self.tmp),
            HF_HUB_OFFLINE="1",
            TOKENIZERS_PARALLELISM="false",
        )
        self.log = open(self.tmp / "server.log", "wb")
        self.proc = subprocess.Popen(
            [
                marimo,
                "edit",
                str(self.nb),
                "--headless",
                "--no-token",
                "--host",
                "127.0.0.1",
                "-p",
                str(self.port),
                "--no-skew-protection",
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=self.tmp,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.tmp / "server.log").read_text()[-2000:])
            try:
                urllib.request.urlopen(self.base + "/health", timeout=2)
                return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("marimo did not start in 90 s")

    def log_text(self) -> str:
        return (self.tmp / "server.log").read_text(errors="replace")

    def __exit__(self, *exc):
        stop_server(self.proc, self.log, self.tmp)


@pytest.fixture(scope="module", params=["wrapped", "direct"])
def page(request):
    shown = "mo.ui.anywidget(w)" if request.param == "wrapped" else "w"
    nb = textwrap.dedent(NOTEBOOK).format(n_layers=N_LAYERS, prompt=PROMPT, shown=shown)
    with Marimo(nb) as srv, chromium() as ctx:
        pg = ctx.new_page()
        pg.page_errors = []
        pg.on("pageerror", lambda e: pg.page_errors.append(str(e)))
        pg.goto(srv.base + "/")
        try:
            pg.locator(".rw-root[data-paints]").wait_for(timeout=120_000)
        except Exception as e:
            pg.screenshot(path=str(REPO / "bench/out/marimo-fail.png"))
            raise AssertionError(f"no widget; server log: {srv.log_text()[-3000:]}") from e
        pg.wait_for_function(
            f"() => {{ const d = {ROOT}.__rw.atlasDone(); return d && d.every(Boolean); }}",
            timeout=60_000,
        )
        pg.how = request.param
        yield pg
        assert [e for e in pg.page_errors if "rw-" in e or "residual" in e] == []


def test_renders_the_engine_grid(page):
    sess = engine()
    root = page.locator(".rw-root")
    assert root.get_attribute("data-rows") == str(sess.n_rows)
    assert root.get_attribute("data-positions") == str(sess.n_positions)
    host = page.evaluate(f"() => {ROOT}.getRootNode().host?.tagName")
    assert host == "MARIMO-ANYWIDGET"  # marimo's own anywidget element, in both ways of showing
    assert error_text(page) == ""


def test_click_round_trips_and_repaints_the_engines_numbers(page):
    sess = engine()
    for r, c in [(2, 5), (1, 0)]:
        page.mouse.click(*cell_xy(page, "map", r, c))
        shown = wait_effect(page, [[r, c]])
        eff = sess.intervene([(r, c)])
        np.testing.assert_allclose(
            np.array(shown["values"]).reshape(eff.resid_delta.shape), eff.resid_delta, atol=1e-6
        )
        np.testing.assert_allclose(shown["strip"], eff.kl, atol=1e-6)
    page.mouse.move(1, 1)


def test_hover_previews_the_sweep_and_the_tooltip_asks_the_lens(page):
    sess = engine()
    page.mouse.move(*cell_xy(page, "overview", 1, 3))
    page.wait_for_function(
        f"() => {{ const c = {ROOT}.__rw.current();"
        " return c.mode === 'atlas' && JSON.stringify(c.cells) === '[[1,3]]'; }",
        timeout=5_000,
    )
    want = sess.intervene([(1, 3)]).resid_delta
    got = np.array(current(page)["values"]).reshape(want.shape)
    np.testing.assert_allclose(got, want, atol=1e-5)
    page.mouse.move(*cell_xy(page, "map", 3, 7))
    page.locator(".rw-root .rw-tooltip table").wait_for(timeout=15_000)
    assert "lens clean" in page.locator(".rw-root .rw-tooltip").text_content()
    page.mouse.move(1, 1)


def test_settings_and_errors_round_trip(page):
    sess = engine()
    page.mouse.click(*cell_xy(page, "map", 1, 0))
    wait_effect(page, [[1, 0]])
    page.locator('.rw-root label[title^="What is written"] select').select_option("mean")
    page.wait_for_function(
        f"() => {ROOT}.querySelector('.rw-map .rw-sub').textContent.includes('mean @')",
        timeout=30_000,
    )
    if page.how == "wrapped":  # the wrapper's value is reactive: the cell reading it re-ran
        page.get_by_text("kind now: mean").wait_for(timeout=15_000)
    eff = sess.intervene([(1, 0)], kind="mean")
    np.testing.assert_allclose(
        np.array(current(page)["values"]).reshape(eff.resid_delta.shape),
        eff.resid_delta,
        atol=1e-6,
    )
    good = page.locator(".rw-root input.rw-tok").first
    good.fill(" Mary John")
    page.locator(".rw-root input.rw-tok").nth(1).fill(" John")
    page.locator(".rw-root input.rw-tok").nth(1).press("Enter")
    try:
        page.wait_for_function(
            f"() => /token/.test({ROOT}.querySelector('.rw-message').textContent)", timeout=30_000
        )
    except Exception:
        page.screenshot(path=str(REPO / f"bench/out/marimo-error-{page.how}.png"))
        raise
    assert "token" in error_text(page)
