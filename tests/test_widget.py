"""The widget's Python side: synced state, codec'd payloads, and the request/reply protocol.

These drive the comm handler directly (no browser) against a fake session that follows the
engine's contract, so they are fast and can block/unblock the "engine" at will. One test at the
end runs the real engine on a tiny model.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from residual_widgets import _codec, _payloads
from residual_widgets._jobs import LatestJobs
from residual_widgets.widget import ResidualExplorer


class FakeEffect:
    def __init__(self, cells, kind, site, R, P):
        self.cells, self.kind, self.site = list(cells), kind, site
        r, p = self.cells[-1]
        self.resid_delta = np.full((R, P), 1000.0 * r + p, np.float32)
        self.kl = np.full(P, r + p / 10, np.float32)
        self.logprob_delta = -np.ones(P - 1, np.float32)
        self.reachable = np.ones((R, P), bool)
        self.logit_diff, self.logit_diff_clean = 1.5, 2.0

    def figure(self, metric="kl", scale="linear"):
        import plotly.graph_objects as go

        return go.Figure(go.Heatmap(z=self.resid_delta))


class FakeAtlas:
    def __init__(self, kind, site, S, R, P, pair):
        self.kind, self.site = kind, site
        self.resid_delta = np.zeros((S, P, R, P), np.float32)
        self.kl = np.zeros((S, P, P), np.float32)
        self.logit_diff = np.zeros((S, P), np.float32) if pair else None
        self.logit_diff_clean = 2.0 if pair else None
        self.done = np.zeros((S, P), bool)
        self.complete = False
        self.method, self.slow_path = "cone", ""

    def figure(self, scale="linear"):
        import plotly.graph_objects as go

        return go.Figure(go.Heatmap(z=self.kl.sum(-1)))


class FakeSession:
    """Follows the engine contract; ``gate`` (an Event) blocks intervene until set."""

    def __init__(self, n_layers=2, P=4, step_s=0.0):
        self.n_layers, self.n_rows, self.n_positions = n_layers, n_layers + 1, P
        self.token_strings = ["When", " Mary", "\n", " <img src=x onerror=alert(1)>"][:P]
        self.calls: list = []
        self.gate = threading.Event()
        self.gate.set()
        self.step_s = step_s

    def token_pair(self, pair):
        if any(" " in s.strip() for s in pair):
            raise ValueError(f"{pair[0]!r} is 2 tokens, not one")
        return (1, 2)

    def intervene(self, cells, kind="zero", site="resid", logit_diff=None):
        self.gate.wait(10)
        rows = self.n_rows if site == "resid" else self.n_layers
        for r, p in cells:
            if not (0 <= r < rows and 0 <= p < self.n_positions):
                raise ValueError(f"row {r} out of range: valid rows are 0..{rows - 1}")
        if kind == "patch":
            raise ValueError("kind='patch' needs a source prompt")
        self.calls.append(("intervene", list(cells), kind, site))
        return FakeEffect(cells, kind, site, self.n_rows, self.n_positions)

    def logit_lens(self, cell, k=5, effect=None):
        tag = "clean" if effect is None else "int"
        return [(f"{tag}{j}", 1.0 / (j + 2)) for j in range(k)]

    def sweep(self, kind="zero", site="resid", logit_diff=None, progress=None, cancel=None):
        S = self.n_rows if site == "resid" else self.n_layers
        a = FakeAtlas(kind, site, S, self.n_rows, self.n_positions, logit_diff)
        done = 0
        for i in range(self.n_positions):
            if cancel is not None and cancel.is_set():
                break
            time.sleep(self.step_s)
            for n in range(S):
                a.resid_delta[n, i] = 1000 * n + i
                a.kl[n, i] = n + i
                a.done[n, i] = True
                done += 1
            if progress:
                progress(type("P", (), {"done": done, "total": S * self.n_positions, "atlas": a})())
        a.complete = bool(a.done.all())
        return a


@pytest.fixture
def widget():
    sess = FakeSession()
    w = ResidualExplorer(sess, prompt="When Mary", session_factory=lambda p, s: FakeSession(P=4))
    sent: list = []
    w.send = lambda content, buffers=None: sent.append(content)
    w.sent = sent
    yield w
    w.close()


def msgs(w, typ):
    return [m for m in w.sent if m.get("type") == typ]


def test_initial_state(widget):
    w = widget
    assert w.tokens[:2] == ["When", " Mary"] and w.n_rows == 3
    assert (w.kind, w.site, w.metric, w.scale) == ("zero", "resid", "kl", "linear")
    assert w.effect is None and w.atlas is None and w.selection == []
    assert w._esm is not None


def test_intervene_reply_carries_id_and_binary_arrays(widget):
    w = widget
    w._on_custom_msg(w, {"type": "intervene", "id": "c:1", "cells": [[2, 3]]})
    assert msgs(w, "ack") == [{"type": "ack", "id": "c:1"}]  # acknowledged before computing
    w.wait(sweep=False)
    e = w.effect
    assert e["id"] == "c:1" and e["cells"] == [[2, 3]] and w.selection == [[2, 3]]
    assert isinstance(e["resid_delta"]["buffer"], memoryview)
    np.testing.assert_array_equal(
        _codec.decode(e["resid_delta"]), np.full((3, 4), 2003, np.float32)
    )
    assert _codec.decode(e["reachable"]).dtype == bool
    assert e["logit_diff"] == 1.5 and e["clean_logit_diff"] == 2.0
    assert w.error == ""


def test_state_has_no_json_number_lists(widget):
    from ipywidgets.widgets.widget import _remove_buffers

    w = widget
    w.select((1, 1))
    state, paths, buffers = _remove_buffers(w.get_state())
    assert ["effect", "resid_delta", "buffer"] in paths
    assert all(isinstance(b, (memoryview, bytes)) for b in buffers)


def test_click_storm_ends_on_last_click_and_skips_stale_work(widget):
    w = widget
    w.session.gate.clear()  # the engine is busy with the first click
    for k in range(100):
        w._on_custom_msg(w, {"type": "intervene", "id": f"c:{k}", "cells": [[k % 3, k % 4]]})
    time.sleep(0.05)
    w.session.gate.set()
    w.wait(sweep=False)
    assert len(msgs(w, "ack")) == 100
    assert w.effect["id"] == "c:99" and w.selection == [[99 % 3, 99 % 4]]
    assert len(w.session.calls) <= 3  # the worker only ran the latest pending request
    assert w.error == ""


def test_errors_come_back_in_words_with_the_request_id(widget):
    w = widget
    w._on_custom_msg(w, {"type": "intervene", "id": "c:1", "cells": [[9, 0]]})
    w.wait(sweep=False)
    err = msgs(w, "error")
    assert err and err[-1]["id"] == "c:1" and "valid rows are 0..2" in err[-1]["message"]
    assert "valid rows" in w.error
    assert w.effect is None
    w._on_custom_msg(w, {"type": "intervene", "id": "c:2", "cells": [[1, 0]]})
    w.wait(sweep=False)
    assert w.error == "" and w.effect["id"] == "c:2"  # still usable; error cleared
    w._on_custom_msg(w, {"type": "bogus", "id": "c:3"})
    assert "unknown request type" in msgs(w, "error")[-1]["message"]
    w._on_custom_msg(w, {"type": "intervene", "id": "c:4", "cells": []})
    w.wait(sweep=False)
    assert msgs(w, "error")[-1]["id"] == "c:4"


def test_logit_lens_reply(widget):
    w = widget
    w._on_custom_msg(w, {"type": "lens", "id": "c:5", "cell": [1, 2], "key": "clean|1,2"})
    w.wait(sweep=False)
    (r,) = msgs(w, "lens")
    assert r["id"] == "c:5" and r["key"] == "clean|1,2" and r["intervened"] is None
    assert r["clean"][0][0] == "clean0" and len(r["clean"]) == 5
    w.select((0, 0))
    w._on_custom_msg(w, {"type": "lens", "id": "c:6", "cell": [1, 2], "key": "k"})
    w.wait(sweep=False)
    assert msgs(w, "lens")[-1]["intervened"][0][0] == "int0"


def test_sweep_fills_progressively_from_a_thread(widget):
    w = widget
    w.session.step_s = 0.05
    w.atlas_push_interval = 0.0
    seen = []
    w.observe(
        lambda ch: seen.append((threading.current_thread().name, ch["new"]["done"])),
        names=["progress"],
    )
    w._on_custom_msg(w, {"type": "sweep", "id": "c:7"})
    w.wait()
    assert w.progress == {"done": 12, "total": 12, "running": False, "cancelled": False}
    assert [d for _, d in seen][1:5] == [3, 6, 9, 12]
    assert all(name != threading.main_thread().name for name, _ in seen[1:])
    a = w.atlas
    assert a["complete"] is True and a["resid_delta"]["shape"] == [3, 4, 3, 4]
    assert _codec.decode(a["done"]).all()
    np.testing.assert_array_equal(_codec.decode(a["total_kl"]), w.current_atlas.kl.sum(-1))


def test_click_is_served_during_a_sweep_and_cancel_keeps_partial_atlas(widget):
    w = widget
    w.session.step_s = 0.3
    w.atlas_push_interval = 0.0
    w.start_sweep()
    time.sleep(0.4)
    t0 = time.monotonic()
    w._on_custom_msg(w, {"type": "intervene", "id": "c:8", "cells": [[1, 1]]})
    w._jobs.wait_idle(5)
    assert time.monotonic() - t0 < 0.5 and w.effect["id"] == "c:8"
    w._on_custom_msg(w, {"type": "cancel", "id": "c:9"})
    w.wait()
    assert w.progress["cancelled"] is True and w.progress["running"] is False
    assert w.atlas["complete"] is False and 0 < _codec.decode(w.atlas["done"]).sum() < 12


def test_settings_changes_recompute_and_resweep(widget):
    w = widget
    w.select((2, 1))
    w.start_sweep()
    w.wait()
    w.kind = "mean"
    w.wait()
    assert w.effect["kind"] == "mean" and w.effect["id"].startswith("py:")
    assert w.atlas["kind"] == "mean"
    w.site = "mlp_out"  # row 2 does not exist as a block of a 2-layer model: selection dropped
    w.wait()
    assert w.effect is None and w.atlas["site"] == "mlp_out" and w.atlas["done"]["shape"] == [2, 4]
    w.kind = "nonsense"
    assert "unknown kind" in w.error
    w.kind = "zero"
    assert w.error == ""
    w.logit_pair = [" Mary two", " John"]
    assert "2 tokens" in w.error
    w.logit_pair = [" Mary", " John"]
    w.wait()
    assert w.error == "" and w.atlas["logit_diff"]["shape"] == [2, 4]
    assert w.atlas["clean_logit_diff"] == 2.0


def test_the_widget_offers_every_kind_but_set(widget):
    from residual_widgets import grid
    from residual_widgets.widget import WIDGET_KINDS

    assert WIDGET_KINDS == ("zero", "mean", "noise", "patch", "resample", "knockout")
    assert set(grid.KINDS) - set(WIDGET_KINDS) == {"set"}
    widget.kind = "set"  # needs a vector per cell: not a widget choice
    assert "unknown kind 'set'" in widget.error


def test_patch_without_source_says_so(widget):
    w = widget
    w.select((0, 0))
    w.kind = "patch"
    w.wait()
    assert "source" in w.error


def test_source_prompt_rebuilds_the_session(widget):
    w = widget
    old = w.session
    w.source_prompt = "When John"
    w.wait()
    assert w.session is not old and w.error == ""
    w2 = ResidualExplorer(FakeSession(), prompt="x")
    w2.send = lambda *a, **k: None
    w2.source_prompt = "y"
    w2.wait()
    assert "source prompt is fixed" in w2.error
    w2.close()


def test_figure_and_save_html(widget, tmp_path):
    w = widget
    with pytest.raises(ValueError, match="nothing to"):
        w.figure()
    w.select((1, 2))
    assert w.figure().data
    w.start_sweep()
    w.wait()
    p = w.save_html(tmp_path / "view.html")
    html = p.read_text()
    assert "plotly" in html.lower() and html.count("Plotly.newPlot") == 2


def test_large_atlas_goes_as_float16(widget, monkeypatch):
    monkeypatch.setattr(_payloads, "HALF_ABOVE_BYTES", 100)
    w = widget
    w.start_sweep()
    w.wait()
    assert w.atlas["resid_delta"]["dtype"] == "float16"
    assert w.atlas["total_kl"]["dtype"] == "float32"


def test_latest_jobs_keeps_only_newest_per_type():
    ran, gate = [], threading.Event()

    def run(typ, payload):
        gate.wait(5)
        ran.append((typ, payload))

    j = LatestJobs(run, priority=("a", "b"))
    j.submit("b", 0)
    time.sleep(0.05)
    for k in range(10):
        j.submit("b", k)
        j.submit("a", k)
    gate.set()
    assert j.wait_idle(5)
    assert ran == [("b", 0), ("a", 9), ("b", 9)]
    j.stop()


def test_real_engine_tiny_model():
    """explore() on a tiny real model: the effect trait equals the engine's Effect."""
    import residual_widgets as rw
    from residual_widgets.explore import explore
    from residual_widgets.tiny import tiny_model

    hf, tok = tiny_model("gpt2", n_layers=2)
    m = rw.load_model(hf, tok)
    w = explore("When Mary and John went to the store", model=m, cell=(1, 2))
    w.send = lambda *a, **k: None
    w.wait()
    eff = w.session.intervene([(1, 2)])
    np.testing.assert_array_equal(_codec.decode(w.effect["resid_delta"]), eff.resid_delta)
    np.testing.assert_array_equal(_codec.decode(w.effect["reachable"]), eff.reachable)
    assert w.atlas["complete"] and w.atlas["resid_delta"]["shape"] == [3, 8, 3, 8]
    atlas = _codec.decode(w.atlas["resid_delta"])
    np.testing.assert_allclose(atlas[1, 2], eff.resid_delta, atol=1e-5)
    assert w.figure().data
    assert w.atlas["storage"] == "float32"
    # under a smaller memory budget the widget's sweep keeps float16 maps, then none, and the
    # atlas trait says so (the front end shows it next to the progress bar)
    from residual_widgets.sweep import estimate_bytes

    S, R, P = 3, 3, 8
    for budget, storage in (
        (estimate_bytes(S, R, P) - 1, "float16"),
        (estimate_bytes(S, R, P, map_bytes=2) - 1, "summary"),
    ):
        w.memory_budget = budget
        w.start_sweep()
        w.wait()
        assert w.atlas["storage"] == storage and w.current_atlas.storage == storage
        assert (w.atlas["resid_delta"] is None) == (storage == "summary")
        np.testing.assert_array_equal(
            _codec.decode(w.atlas["total_kl"]), w.current_atlas.kl.sum(-1)
        )
    w.close()


# ---- lecture views --------------------------------------------------------------------------
def test_effect_carries_first_reached_rows(widget):
    from residual_widgets import views

    w = widget
    w.select((1, 2))
    got = _codec.decode(w.effect["first_reached"])
    assert w.effect["first_reached"]["dtype"] == "int32"
    np.testing.assert_array_equal(got, views.first_reached(w.current_effect.resid_delta))


def test_profile_view_sends_engine_profile_per_row(widget):
    from residual_widgets import views

    w = widget
    w.start_sweep()
    w.wait()
    assert w.profile is None  # only computed once the view is shown
    w.view = "profile"
    assert w.profile["mean"]["shape"] == [3, 4] and w.profile["max"]["dtype"] == "float32"
    mean, mx = _codec.decode(w.profile["mean"]), _codec.decode(w.profile["max"])
    for n in range(3):
        np.testing.assert_array_equal(mean[n], views.future_profile(w.current_atlas.kl, n).value)
        np.testing.assert_array_equal(
            mx[n], views.future_profile(w.current_atlas.kl, n, "max").value
        )
    w.kind = "mean"  # a new sweep replaces the profile
    w.wait()
    assert w.profile is not None and w.current_atlas.kind == "mean"


def test_unknown_view_is_an_error_in_words(widget):
    widget.view = "bogus"
    assert "unknown view" in widget.error


def test_knockout_is_a_kind_choice(widget):
    w = widget
    w.select((1, 0))
    w.kind = "knockout"
    w.wait(sweep=False)
    assert w.session.calls[-1] == ("intervene", [(1, 0)], "knockout", "resid")


def test_real_engine_views_and_figures():
    """similarity / profile / first-reached payloads equal the engine's; figure() per view."""
    import residual_widgets as rw
    from residual_widgets import views
    from residual_widgets.explore import explore
    from residual_widgets.tiny import tiny_model

    hf, tok = tiny_model("gpt2", n_layers=2)
    w = explore("When Mary and John went", model=rw.load_model(hf, tok), cell=(0, 1))
    w.send = lambda *a, **k: None
    w.wait()
    sim, by_d = views.similarity(w.session.clean.resid)
    w.view = "similarity"
    np.testing.assert_array_equal(_codec.decode(w.similarity["sim"]), sim)
    np.testing.assert_array_equal(_codec.decode(w.similarity["by_distance"]), by_d)
    assert w.figure().data[0].type == "heatmap"
    w.view = "profile"
    assert w.figure().data and _codec.decode(w.profile["mean"]).shape == (3, w.session.n_positions)
    w.view = "first_reached"
    fig = w.figure()
    first = views.first_reached(w.current_effect.resid_delta)
    assert list(fig.data[-1].y) == [int(r) for r in first if r >= 0]
    w.view = "map"
    w.kind = "knockout"
    w.wait()
    assert w.current_effect.kind == "knockout" and w.current_atlas.kind == "knockout"
    assert w.atlas["done"]["shape"] == [2, w.session.n_positions]
    w.close()


def test_save_html_interactive_embeds_the_engines_numbers(tmp_path):
    """save_html(interactive=True): the saved page holds the traits, the sweep's maps as float16,
    the lecture views and the logit lens of every cell, all equal to the engine's; it inlines
    the front end and fetches nothing."""
    import residual_widgets as rw
    from residual_widgets import views
    from residual_widgets._export import read_page
    from residual_widgets.explore import explore
    from residual_widgets.tiny import tiny_model

    hf, tok = tiny_model("gpt2", n_layers=2)
    w = explore(
        "When Mary and John went",
        model=rw.load_model(hf, tok),
        cell=(1, 2),
        logit_diff=(" Mary", " John"),
    )
    w.send = lambda *a, **k: None
    w.wait()
    w.view, w.scale = "profile", "log"
    html = w.save_html(tmp_path / "page.html", interactive=True).read_text()
    assert "<script type='module'>" in html and "https://" not in html
    state = read_page(html)
    t, lens = state["traits"], state["lens"]
    sess, atlas, eff = w.session, w.current_atlas, w.current_effect
    assert (t["view"], t["scale"], t["selection"]) == ("profile", "log", [[1, 2]])
    assert t["tokens"] == sess.token_strings and t["n_rows"] == sess.n_rows
    np.testing.assert_array_equal(t["atlas"]["resid_delta"], atlas.resid_delta.astype(np.float16))
    np.testing.assert_array_equal(t["atlas"]["kl"], atlas.kl)
    np.testing.assert_array_equal(t["effect"]["resid_delta"], eff.resid_delta)
    np.testing.assert_array_equal(t["similarity"]["sim"], views.similarity(sess.clean.resid)[0])
    np.testing.assert_allclose(t["profile"]["mean"][1], views.future_profile(atlas.kl, 1).value)
    assert lens["effect_id"] == t["effect"]["id"]
    assert len(lens["clean"]) == sess.n_rows * sess.n_positions
    for cell in [(0, 0), (2, 4)]:
        key = f"{cell[0]},{cell[1]}"
        assert lens["clean"][key] == [
            [s, pytest.approx(p, abs=1e-6)] for s, p in sess.logit_lens(cell)
        ]
        assert lens["intervened"][key] == [
            [s, pytest.approx(p, abs=1e-6)] for s, p in sess.logit_lens(cell, effect=eff)
        ]
    assert "all 15 swept source cells as float16" in t["page"]["note"]
    w.close()


def test_bundle_needs_no_jupyterlab():
    """The bundle is plain ESM (``export default {render}``, no run-time imports, no AMD or
    CommonJS loader), every ``--jp-*`` CSS variable has a fallback, and the JupyterLab pieces it
    reads (the widget manager's kernel, the theme attribute) are optional; so the same file works
    in hosts without JupyterLab (VS Code, Colab, marimo, the saved page)."""
    import re

    from residual_widgets.widget import _ESM

    if not _ESM.exists():
        pytest.skip("the front end is not built")
    js = _ESM.read_text("utf-8")
    assert re.search(r"export\s*\{\s*\w+ as default\s*\}\s*;?\s*$", js)
    assert not re.search(r"(^|[;\s])import[\s{*(\"']", js)  # nothing imported at run time
    assert "require(" not in js and "define(" not in js
    jp_vars = re.findall(r"var\(\s*(--jp-[\w-]+)\s*([,)])", js)
    assert jp_vars and all(sep == "," for _, sep in jp_vars), jp_vars  # each with a fallback
    assert "widget_manager" in js and re.search(r"widget_manager\)?\??\.kernel|\?\.kernel", js)
    for name in ("jupyterapp", "jupyterlab", "@jupyterlab", "IPython", "Jupyter."):
        assert name not in js, name


def test_sweep_stops_when_every_view_is_gone_and_restarts_when_one_opens():
    """Voilà and JupyterLab keep a closed page's kernel running: a widget whose views have all
    closed stops its sweep after ``orphan_grace_s``; one view closing of two does not; a view
    reopening (a reload) restarts the stopped sweep."""
    sess = FakeSession(P=4, step_s=0.3)
    w = ResidualExplorer(sess, prompt="When Mary")
    w.send = lambda content, buffers=None: None
    w.orphan_grace_s = 0.05

    def msg(client, state):
        w._on_custom_msg(w, {"type": "view", "client": client, "state": state})

    msg("a", "open")
    msg("b", "open")
    w.start_sweep()
    msg("a", "closed")
    time.sleep(0.3)
    assert w.progress["running"]  # view b still shows it
    msg("b", "closed")
    w.wait(timeout=10)
    assert w.progress["cancelled"] and not w.progress["running"]
    assert 0 < w.progress["done"] < w.progress["total"]
    msg("c", "open")  # the page came back: sweep again
    assert w.progress["running"]
    w.wait(timeout=10)
    assert w.current_atlas.complete and not w.progress["cancelled"]
    w.close()


def test_sweep_without_views_is_left_alone():
    """A widget driven from code (never displayed) sweeps to the end; closing an unknown view
    does not stop it."""
    sess = FakeSession(P=3, step_s=0.05)
    w = ResidualExplorer(sess, prompt="When Mary")
    w.send = lambda content, buffers=None: None
    w.orphan_grace_s = 0.01
    w.start_sweep()
    w._on_custom_msg(w, {"type": "view", "client": "x", "state": "closed"})
    w.wait(timeout=10)
    assert w.current_atlas.complete
    w.close()


def test_silent_views_count_as_gone_unless_a_cell_runs(monkeypatch):
    """Voilà drops a closing page's connection before it can say "closed": views that stop
    saying "alive" for ``orphan_timeout_s`` count as gone (the sweep stops) — but not while a
    cell runs, when their messages wait in the kernel's queue."""
    from residual_widgets import widget as wmod

    sess = FakeSession(P=6, step_s=0.2)
    w = ResidualExplorer(sess, prompt="When Mary")
    w.send = lambda content, buffers=None: None
    w.orphan_timeout_s = 0.3
    monkeypatch.setattr(wmod._cells, "running", True)  # a long cell is running
    monkeypatch.setattr(wmod._cells, "ended", float("-inf"))
    w._on_custom_msg(w, {"type": "view", "client": "a", "state": "open"})
    w.start_sweep()
    w.wait(timeout=10)
    assert w.current_atlas.complete  # silence, but the kernel was busy
    monkeypatch.setattr(wmod._cells, "running", False)
    w._on_custom_msg(w, {"type": "view", "client": "a", "state": "alive"})
    w.start_sweep()
    w.wait(timeout=10)
    assert w.progress["cancelled"] and w.progress["done"] < w.progress["total"]
    w._on_custom_msg(w, {"type": "view", "client": "a", "state": "alive"})  # it was only asleep
    assert w.progress["running"]
    w.close()


def test_presentation_and_palette_traits(widget):
    """Projector settings are plain traits (the control bar writes them); an unknown palette is
    refused in words and put back."""
    w = widget
    w.presentation, w.palette = True, "contrast"
    assert (w.presentation, w.palette, w.error) == (True, "contrast", "")
    w.palette = "rainbow"
    assert w.palette == "contrast" and "unknown palette 'rainbow'" in w.error
    assert w.sent[-1]["type"] == "error" and w.sent[-1]["request"] == "palette"


# ---- the instant overview: the attribution estimate before the sweep (issue 11 item 3) ------
def _tiny_session(prompt="When Mary and John went to the store", **kw):
    import residual_widgets as rw
    from residual_widgets.tiny import tiny_model

    hf, tok = tiny_model("gpt2", n_layers=2)
    return rw.Session(rw.load_model(hf, tok), prompt, **kw)


def test_estimate_is_set_before_the_sweeps_first_cell_and_equals_the_engine():
    """The sweep waits for the estimate: when the sweep starts and when its first cell is filed
    the estimate trait is already set, even though the estimate is made slow here. Its arrays
    are the engine's Attribution; the atlas carries the exact Σ Δlog p and the agreement."""
    sess = _tiny_session(logit_diff=(" Mary", " John"))
    slow_attribute, real_sweep = sess.attribute, sess.sweep
    seen: dict = {}

    def attribute(*a, **k):
        time.sleep(0.3)  # a slow estimate: the sweep must still come second
        return slow_attribute(*a, **k)

    def sweep(*a, progress=None, **k):
        seen["at_start"] = w.estimate

        def first(p):
            seen.setdefault("at_first_cell", (int(p.done), w.estimate))
            progress(p)

        return real_sweep(*a, progress=first, **k)

    sess.attribute, sess.sweep = attribute, sweep
    w = ResidualExplorer(sess, logit_diff=(" Mary", " John"))
    w.send = lambda *a, **k: None
    w.start_sweep()
    w.wait()
    assert seen["at_start"] is not None and seen["at_start"]["note"] == ""
    done, est_then = seen["at_first_cell"]
    assert done >= 1 and est_then is not None
    attr = slow_attribute("zero", "resid", logit_diff=(" Mary", " John"))
    e = w.estimate
    assert (e["kind"], e["site"], e["method"]) == ("zero", "resid", "atp")
    assert e["logprob_delta"]["dtype"] == "float32" and e["logprob_delta"]["shape"] == [3, 8]
    np.testing.assert_allclose(_codec.decode(e["logprob_delta"]), attr.logprob_delta, atol=1e-6)
    np.testing.assert_allclose(_codec.decode(e["logit_diff"]), attr.logit_diff, atol=1e-6)
    assert e["clean_logit_diff"] == pytest.approx(attr.logit_diff_clean)
    assert "far from linear" in e["caveat"]  # zero on whole residual vectors
    atlas = w.current_atlas
    np.testing.assert_allclose(
        _codec.decode(w.atlas["logprob_total"]), atlas.logprob_delta.sum(-1), atol=1e-6
    )
    ag, ref = w.atlas["agreement"], attr.agreement(atlas)
    for m in ("logit_diff", "logprob_delta"):
        assert ag[m]["n"] == 24 and ag[m]["worst"] == ref[m]["worst"]
        assert ag[m]["pearson"] == pytest.approx(ref[m]["pearson"], abs=1e-5)
        assert ag[m]["spearman"] == pytest.approx(ref[m]["spearman"], abs=1e-5)
    assert w.overview_metric == "logit_diff"
    w.close()


def test_estimate_follows_the_settings_and_says_why_when_there_is_none():
    sess = _tiny_session()
    w = ResidualExplorer(sess)
    w.send = lambda *a, **k: None
    assert w.overview_metric == "logprob_delta"  # no token pair: Σ Δlog p (it has an estimate)
    assert w.estimate is None
    w._on_view_state("v1", "open")  # a view opening asks for it, without a sweep
    w.wait(sweep=False)
    assert w.estimate["kind"] == "zero" and w.estimate["logit_diff"] is None
    assert w._sweep_thread is None
    w.kind = "mean"
    w.wait(sweep=False)
    e = w.estimate
    assert (e["kind"], e["caveat"] != "") == ("mean", True)
    np.testing.assert_allclose(
        _codec.decode(e["logprob_delta"]), sess.attribute("mean").logprob_delta, atol=1e-6
    )
    w.site = "attn_out"
    w.wait(sweep=False)
    assert (w.estimate["site"], w.estimate["caveat"]) == ("attn_out", "")
    assert w.estimate["logprob_delta"]["shape"] == [2, 8]
    w.site = "resid"
    w.kind = "knockout"
    w.start_sweep()
    w.wait()
    e = w.estimate
    assert e["kind"] == "knockout" and e["logprob_delta"] is None
    assert e["note"].startswith("no estimate for knockout")
    assert w.atlas["complete"] and w.atlas["agreement"] is None  # the sweep still ran
    assert w.error == ""
    with pytest.raises(ValueError, match="overview_metric"):
        ResidualExplorer(sess, overview_metric="kl")
    w.close()


def test_estimate_of_a_session_without_attribution_is_a_note(widget):
    w = widget  # the fake session has no attribute(): the sweep must not wait forever
    w.session.step_s = 0.0
    w.start_sweep()
    w.wait()
    assert w.estimate["note"] == "no estimate: this session offers no attribution"
    assert w.atlas["complete"] and w.atlas["agreement"] is None and w.error == ""


def test_agreement_payload_is_json_and_none_when_not_comparable():
    """NaN correlations (a constant estimate) travel as None (JSON has no NaN); an estimate of
    another kind, or an atlas with no cell done, gives no agreement at all."""
    import json

    from residual_widgets.attribution import Attribution
    from residual_widgets.effects import Atlas

    S, P = 2, 3
    atlas = Atlas(
        kind="zero",
        site="resid",
        tokens=["a", "b", "c"],
        resid_delta=None,
        kl=np.zeros((S, P, P), np.float32),
        logprob_delta=np.arange(S * P * (P - 1), dtype=np.float32).reshape(S, P, P - 1),
        done=np.zeros((S, P), bool),
    )
    flat = Attribution("zero", "resid", ["a", "b", "c"], np.ones((S, P), np.float32))
    assert _payloads.agreement_payload(flat, atlas) is None  # nothing done yet
    atlas.done[:, :2] = True
    ag = _payloads.agreement_payload(flat, atlas)
    assert set(ag) == {"logprob_delta"} and ag["logprob_delta"]["n"] == 4
    assert ag["logprob_delta"]["pearson"] is None and ag["logprob_delta"]["spearman"] is None
    json.dumps(ag, allow_nan=False)
    other = Attribution("mean", "resid", ["a", "b", "c"], np.ones((S, P), np.float32))
    assert _payloads.agreement_payload(other, atlas) is None
    est = _payloads.estimate_payload(None, kind="set", site="resid", note="why")
    assert est["note"] == "why" and est["logprob_delta"] is None and est["logit_diff"] is None
