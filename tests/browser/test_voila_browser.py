"""The widget under Voilà (a notebook served as an app, code hidden), driven by Chromium.

* a notebook on the seeded tiny GPT-2 (rebuilt here for the expected numbers): the widget
  renders, a click round-trips to the kernel and repaints the engine's numbers; closing the page
  stops the sweep that was running in its kernel. Voilà keeps the kernel of a closed page alive
  (its shutdown beacon is refused: '_xsrf' argument missing) and drops the page's connection
  before the view can say "closed", so the widget notices that its view stopped saying "alive"
  (``orphan_timeout_s``, shortened here). The kernel logs every ``progress`` change to a file
  that this test reads;
* (slow) ``examples/quickstart.ipynb`` itself, on the bundled SmolLM2-135M.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np
import pytest

from .harness import (
    REPO,
    _free_port,
    cell_xy,
    chromium,
    current,
    error_text,
    server_env,
    stop_server,
    wait_effect,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

PROMPT = "When Mary and John went to the store, John gave a drink to"
N_LAYERS = 3

TINY = """
import json, pathlib, time
import residual_widgets as rw
from residual_widgets.explore import explore
from residual_widgets.tiny import tiny_model
from residual_widgets.widget import ResidualExplorer

ResidualExplorer.orphan_grace_s = 1.0
ResidualExplorer.orphan_timeout_s = 10.0   # views say "alive" every 5 s
hf, tok = tiny_model("gpt2", n_layers={n_layers})
w = explore({prompt!r}, model=rw.load_model(hf, tok), cell=None, sweep=False)
log = pathlib.Path({log!r})
w.observe(lambda ch: log.open("a").write(json.dumps(ch["new"]) + "\\n"), names=["progress"])
_sweep = w.session.sweep

def slow_sweep(*a, progress=None, **k):      # one second per position: time to close the page
    def step(p):
        time.sleep(1.0)
        progress(p)
    return _sweep(*a, progress=step, **k)

w.session.sweep = slow_sweep
w
"""


@functools.lru_cache(maxsize=1)
def engine():
    import residual_widgets as rw
    from residual_widgets.tiny import tiny_model

    hf, tok = tiny_model("gpt2", n_layers=N_LAYERS)
    return rw.Session(rw.load_model(hf, tok), PROMPT)


class Voila:
    """``voila NOTEBOOK`` on 127.0.0.1 with every Jupyter directory in a temporary one."""

    def __init__(self, cells: list[str] | None = None, copy: pathlib.Path | None = None):
        import nbformat

        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix="rw-voila-"))
        self.root = self.tmp / "root"
        self.root.mkdir()
        if copy is not None:
            self.nb = self.root / copy.name
            shutil.copy(copy, self.nb)
        else:
            nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
            nb.metadata["kernelspec"] = {
                "name": "python3",
                "display_name": "Python 3",
                "language": "python",
            }
            self.nb = self.root / "app.ipynb"
            nbformat.write(nb, self.nb)
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        env = server_env(
            self.tmp,
            [
                ("JUPYTER_CONFIG_DIR", "config"),
                ("JUPYTER_RUNTIME_DIR", "runtime"),
                ("IPYTHONDIR", "ipython"),
            ],
            HF_HUB_OFFLINE="1",
            TOKENIZERS_PARALLELISM="false",
        )
        self.log = open(self.tmp / "voila.log", "wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "voila",
                str(self.nb),
                "--no-browser",
                f"--port={self.port}",
                "--Voila.ip=127.0.0.1",
                f"--Voila.root_dir={self.root}",
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.log_text()[-2000:])
            try:
                urllib.request.urlopen(self.base + "/voila/static/voila.js", timeout=2)
                return self
            except urllib.error.HTTPError:
                return self  # the server answers
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("voila did not start in 90 s")

    def log_text(self) -> str:
        return (self.tmp / "voila.log").read_text(errors="replace")

    def __exit__(self, *exc):
        stop_server(self.proc, self.log, self.tmp)


def open_app(ctx, srv: Voila, timeout_ms: int = 120_000):
    page = ctx.new_page()
    page.page_errors = []
    page.on("pageerror", lambda e: page.page_errors.append(f"{e.message} @ {e.stack}"))
    page.goto(srv.base + "/", timeout=timeout_ms)
    try:
        page.wait_for_selector(".rw-root[data-paints]", timeout=timeout_ms)
    except Exception as e:
        raise AssertionError(f"no widget; voila log: {srv.log_text()[-3000:]}") from e
    return page


def own_errors(page) -> list[str]:
    # plotly's lab extension throws under Voilà ("r.setData is not a function"): not ours
    return [e for e in page.page_errors if "setData" not in e]


@pytest.fixture(scope="module")
def ctx():
    if importlib.util.find_spec("voila") is None:
        pytest.skip("voila is not installed (dev extra)")
    with chromium() as c:
        yield c


@pytest.fixture(scope="module")
def app(ctx):
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="rw-voila-log-"))
    log = tmp / "progress.jsonl"
    cell = TINY.format(n_layers=N_LAYERS, prompt=PROMPT, log=str(log))
    with Voila([cell]) as srv:
        page = open_app(ctx, srv)
        page.progress_log = log
        yield page
    shutil.rmtree(tmp, ignore_errors=True)


def test_renders_and_a_click_round_trips(app):
    sess = engine()
    root = app.locator(".rw-root")
    assert root.get_attribute("data-rows") == str(sess.n_rows)
    assert root.get_attribute("data-positions") == str(sess.n_positions)
    for r, c in [(2, 5), (1, 9)]:
        app.mouse.click(*cell_xy(app, "map", r, c))
        shown = wait_effect(app, [[r, c]])
        eff = sess.intervene([(r, c)])
        np.testing.assert_allclose(
            np.array(shown["values"]).reshape(eff.resid_delta.shape), eff.resid_delta, atol=1e-6
        )
        np.testing.assert_allclose(shown["strip"], eff.kl, atol=1e-6)
    assert error_text(app) == "" and own_errors(app) == []


def test_closing_the_page_stops_the_kernels_sweep(app):
    """Sweep (slowly), close the page mid-sweep: the kernel, still alive, stops the sweep."""
    app.locator(".rw-root button.rw-sweep").click()
    app.wait_for_function(
        "() => /sweep [1-9]\\d*\\/\\d+/.test(document.querySelector('.rw-root .rw-progress')"
        ".textContent)",
        timeout=30_000,
    )
    app.close(run_before_unload=True)
    log = app.progress_log
    deadline = time.monotonic() + 45
    last = None
    while time.monotonic() < deadline:
        lines = log.read_text().splitlines() if log.exists() else []
        last = json.loads(lines[-1]) if lines else None
        if last and not last["running"]:
            break
        time.sleep(0.5)
    assert last is not None and not last["running"], f"the sweep went on: {last}"
    assert last["cancelled"] and 0 < last["done"] < last["total"], log.read_text()
    time.sleep(2.5)  # nothing more happens: the sweep is over
    assert json.loads(log.read_text().splitlines()[-1]) == last


@pytest.mark.slow
def test_the_quickstart_notebook_as_an_app(ctx):
    """examples/quickstart.ipynb under Voilà: both widgets render; a click on the first repaints
    SmolLM2-135M's numbers (computed here by the engine)."""
    import residual_widgets as rw

    with Voila(copy=REPO / "examples/quickstart.ipynb") as srv:
        page = open_app(ctx, srv, timeout_ms=300_000)
        page.wait_for_function(
            "() => document.querySelectorAll('.rw-root').length === 2", timeout=300_000
        )
        sess = rw.Session(
            rw.load_model("smollm2-135m"),
            "When Mary and John went to the store, John gave a drink to",
        )
        shown = current(page)
        assert (shown["rows"], shown["cols"]) == (sess.n_rows, sess.n_positions) == (31, 14)
        page.mouse.click(*cell_xy(page, "map", 5, 7))
        shown = wait_effect(page, [[5, 7]], timeout_ms=120_000)
        eff = sess.intervene([(5, 7)])
        np.testing.assert_allclose(
            np.array(shown["values"]).reshape(eff.resid_delta.shape),
            eff.resid_delta,
            rtol=1e-4,
            atol=1e-5,
        )
        assert error_text(page) == "" and own_errors(page) == []
