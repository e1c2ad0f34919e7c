"""The instant overview in a real browser (JupyterLab, Chromium): the attribution estimate is
painted first, marked, and exact cells replace it as the sweep streams in (issue 11 item 3).

Its own module: it starts its own JupyterServer and Chromium, which must not run inside
another module's still-open sync playwright (test_widget_browser's module-scoped page).
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from .harness import (
    JupyterServer,
    cell_xy,
    chromium,
    open_notebook,
    own_page_errors,
    run_cell,
    wait_widget,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

N_LAYERS = 3


# ---- the instant overview: the estimate first, exact cells replacing it (issue 11 item 3) ----
EST_PROMPT = "When Mary and John went to the store, John gave a drink to"
EST_CELLS = [
    f"""
import threading, time
import residual_widgets as rw
from residual_widgets.explore import explore
from residual_widgets.tiny import tiny_model
hf, tok = tiny_model("gpt2", n_layers={N_LAYERS})
gate = threading.Event()  # the sweep is held until the test runs cell 1
w = explore({EST_PROMPT!r}, model=rw.load_model(hf, tok), cell=None, sweep=False)
real_sweep = w.session.sweep
def held(*a, progress=None, **k):
    gate.wait(600)
    def slow(p):  # one position at a time, slowly: the overview fills in visibly
        time.sleep(0.4)
        progress(p)
    return real_sweep(*a, progress=slow, **k)
w.session.sweep = held
w.start_sweep()
w
""",
    "gate.set()",
]


def _overview(page) -> dict:
    return page.evaluate("() => document.querySelector('.rw-root').__rw.overview()")


def test_overview_is_painted_from_the_estimate_then_exact_cells_replace_it():
    """JupyterLab, a tiny GPT-2 whose sweep is held back: the overview is painted from the
    estimate (every cell, marked, equal to the engine's Attribution) before any exact cell
    exists, hovering says the exact value is not computed yet; once the sweep is released,
    paints with some cells exact and the rest estimated follow, and at the end every cell is
    the engine's exact value, with the agreement's worst cells outlined and its numbers shown."""
    import residual_widgets as rw
    from residual_widgets.tiny import tiny_model

    hf, tok = tiny_model("gpt2", n_layers=N_LAYERS)
    sess = rw.Session(rw.load_model(hf, tok), EST_PROMPT)
    attr = sess.attribute("zero", "resid")
    S, P = sess.n_rows, sess.n_positions
    with JupyterServer("lab") as srv, chromium() as ctx:
        page = ctx.new_page()
        page.page_errors = []
        page.on("pageerror", lambda e: page.page_errors.append(f"{e.message} @ {e.stack}"))
        srv.write_notebook("estimate.ipynb", EST_CELLS)
        open_notebook(page, srv, "estimate.ipynb")
        run_cell(page, 0)
        wait_widget(page)
        page.wait_for_function(
            "(n) => document.querySelector('.rw-root').dataset.ovEstimated === String(n)",
            arg=S * P,
            timeout=60_000,
        )
        ov = _overview(page)
        assert ov["which"] == "logprob_delta" and ov["nExact"] == 0 and ov["nEstimated"] == S * P
        assert all(ov["estimated"])
        np.testing.assert_allclose(
            np.array(ov["values"]).reshape(S, P), attr.logprob_delta, rtol=1e-5, atol=1e-6
        )
        assert (
            "ESTIMATE" in ov["sub"]
            and page.evaluate("() => document.querySelector('.rw-root').__rw.atlasDone()") is None
        )  # no exact cell has arrived
        shots = pathlib.Path(__file__).parent / "screenshots"  # ignored by git: to look at
        shots.mkdir(exist_ok=True)
        panel = page.locator(".rw-root .rw-overview")
        panel.screenshot(path=str(shots / "overview_estimate.png"))
        page.mouse.move(*cell_xy(page, "overview", 1, 2))
        tip = page.locator(".rw-root .rw-tooltip")
        tip.wait_for(state="visible", timeout=5_000)
        assert "exact not computed yet" in tip.text_content()
        assert "estimate ≈" in tip.text_content()
        page.mouse.move(1, 1)
        # record every overview paint from here on, then release the sweep
        page.evaluate(
            """() => { const r = document.querySelector('.rw-root'); window.__ov = [];
              r.addEventListener('rw-paint', () => { const o = r.__rw.overview();
                window.__ov.push([o.nExact, o.nEstimated]); }); }"""
        )
        run_cell(page, 1)
        page.wait_for_function(
            "(n) => document.querySelector('.rw-root').dataset.ovExact === String(n)",
            arg=S * P,
            timeout=120_000,
        )
        seq = page.evaluate("() => window.__ov")
        assert all(e + g == S * P for e, g in seq)  # every cell painted, exact or estimated
        exact = [e for e, _ in seq]
        assert exact == sorted(exact)  # exact cells only ever replace estimated ones
        assert any(0 < e < S * P for e in exact)  # seen part exact, part estimated
        atlas = sess.sweep(kind="zero", site="resid")
        ov = _overview(page)
        assert ov["nEstimated"] == 0 and not any(ov["estimated"])
        np.testing.assert_allclose(
            np.array(ov["values"]).reshape(S, P),
            atlas.logprob_delta.sum(-1),
            rtol=1e-5,
            atol=1e-5,
        )
        ag = attr.agreement(atlas)["logprob_delta"]
        assert ov["outlined"] == ag["worst"]
        assert ov["label"].startswith(f"estimate vs exact: Pearson r {ag['pearson']:.2f}")
        assert page.locator(".rw-root canvas.rw-scatter").is_visible()
        panel.screenshot(path=str(shots / "overview_exact.png"))
        assert own_page_errors(page) == []
