"""The widget's transplant, head and undo routes and its heads view, against the real engine.

A tiny GPT-2 and a tiny GQA Llama (random weights, built from configs) answer every request;
the expected numbers come from the engine called directly (``Session.transplant``,
``Session.intervene(site="head")``, ``Session.sweep(site="head")``), so what the widget sends
must be exactly the engine's result, arrays decoded from the binary wire format.
"""

from __future__ import annotations

import functools
import threading
import time

import numpy as np
import pytest
import torch

import residual_widgets as rw
from residual_widgets import _codec
from residual_widgets.explore import explore
from residual_widgets.tiny import tiny_model

PROMPT = "When Mary and John went to the store"
OTHER = "Paris is the capital of France and"  # another length


@functools.lru_cache(maxsize=2)
def model(family="gpt2"):
    hf, tok = tiny_model(family, n_layers=2)
    return rw.load_model(hf, tok)


def make(family="gpt2", **kw):
    w = explore(PROMPT, model=model(family), cell=None, sweep=False, **kw)
    w.sent = []
    w.send = lambda content, buffers=None: w.sent.append(content)
    return w


@pytest.fixture
def widget():
    w = make()
    yield w
    w.close()


def msg(w, **content):
    w._on_custom_msg(w, content)
    w.wait(sweep=False)


def errors(w):
    return [m for m in w.sent if m.get("type") == "error"]


def arrays(payload):
    return {k: _codec.decode(payload[k]) for k in ("resid_delta", "kl", "logprob_delta")}


def assert_effect(payload, eff):
    got = arrays(payload)
    np.testing.assert_array_equal(got["resid_delta"], eff.resid_delta)
    np.testing.assert_array_equal(got["kl"], eff.kl)
    np.testing.assert_array_equal(got["logprob_delta"], eff.logprob_delta)
    np.testing.assert_array_equal(_codec.decode(payload["reachable"]), eff.reachable)


def test_a_transplant_request_pins_the_engines_effect(widget):
    w = widget
    msg(w, type="transplant", id="c:1", source="this", source_cell=[2, 1], target_cell=[1, 4])
    assert not errors(w)
    eff = w.session.transplant(None, (2, 1), (1, 4))
    assert w.effect["id"] == "c:1" and w.effect["kind"] == "transplant"
    assert w.effect["cells"] == [[1, 4]]
    assert w.effect["transplant"] == {
        "source": "this",
        "prompt": None,
        "source_cell": [2, 1],
        "target_cell": [1, 4],
    }
    assert_effect(w.effect, eff)
    assert w.current_effect.kind == "transplant"
    assert np.abs(eff.resid_delta).sum() > 0  # a real change, so equality means something


def test_a_transplant_from_a_prompt_of_another_length(widget):
    w = widget
    w.transplant_prompt = OTHER
    w.wait(sweep=False)
    other = rw.Session(w.session.model, OTHER)
    assert other.n_positions != w.session.n_positions
    src = w.transplant_source
    assert src["prompt"] == OTHER and src["tokens"] == other.token_strings
    np.testing.assert_allclose(
        _codec.decode(src["norm"]), other.clean.resid.norm(dim=-1).numpy(), rtol=1e-6
    )
    last = other.n_positions - 1
    msg(w, type="transplant", id="c:2", source="prompt", source_cell=[1, last], target_cell=[1, 2])
    assert not errors(w)
    assert_effect(w.effect, w.session.transplant(OTHER, (1, last), (1, 2)))
    assert w.effect["transplant"]["prompt"] == OTHER
    # through the public method too, on another site: rows are blocks there
    w.site = "mlp_out"
    w.wait(sweep=False)
    eff = w.transplant((0, 1), (1, 3), source=OTHER)
    assert_effect(w.effect, w.session.transplant(OTHER, (0, 1), (1, 3), site="mlp_out"))
    assert eff.site == "mlp_out" and w.effect["site"] == "mlp_out"


def test_transplant_errors_come_back_in_words_and_the_widget_stays_usable(widget):
    w = widget
    msg(w, type="transplant", id="c:3", source="prompt", source_cell=[0, 0], target_cell=[0, 0])
    (e,) = errors(w)
    assert e["id"] == "c:3" and e["request"] == "intervene" and "transplant prompt" in e["message"]
    P = w.session.n_positions
    msg(w, type="transplant", id="c:4", source="this", source_cell=[0, 0], target_cell=[1, P])
    e = errors(w)[-1]
    assert e["id"] == "c:4" and "this prompt" in e["message"] and f"{P} tokens" in e["message"]
    w.sent.clear()
    w._on_custom_msg(w, {"type": "transplant", "id": "c:5", "source": "elsewhere"})
    assert "'this' or 'prompt'" in errors(w)[-1]["message"]
    msg(w, type="transplant", id="c:6", source="this", source_cell=[0, 1], target_cell=[0, 1])
    assert w.effect["id"] == "c:6"  # usable; and a cell onto itself is exactly nothing
    assert not _codec.decode(w.effect["resid_delta"]).any()


def test_undo_goes_back_one_pinned_effect_at_a_time(widget):
    w = widget
    msg(w, type="intervene", id="c:1", cells=[[1, 2]])
    first = dict(w.effect)
    assert first["undo"] == 0
    msg(w, type="transplant", id="c:2", source="this", source_cell=[2, 0], target_cell=[1, 3])
    assert w.effect["undo"] == 1 and w.selection == []
    msg(w, type="undo", id="c:3")
    assert w.effect["id"] == "c:3" and w.effect["undo"] == 0
    assert w.effect["kind"] == "zero" and w.effect["transplant"] is None
    assert_effect(w.effect, w.session.intervene([(1, 2)]))
    assert w.selection == [[1, 2]] and w.current_effect.kind == "zero"
    msg(w, type="undo", id="c:4")
    e = errors(w)[-1]
    assert e["id"] == "c:4" and "nothing to undo" in e["message"]
    assert w.effect["id"] == "c:3"  # unchanged


def test_a_head_click_pins_that_heads_effect(widget):
    w = widget
    w.kind = "mean"
    msg(w, type="head", id="c:7", cell=[1, 1, 2])
    assert not errors(w)
    eff = w.session.intervene([(1, 1, 2)], kind="mean", site="head")
    assert w.effect["site"] == "head" and w.effect["kind"] == "mean"
    assert w.effect["head_cells"] == [[1, 1, 2]] and w.effect["cells"] == [[1, 2]]
    assert_effect(w.effect, eff)
    assert not _codec.decode(w.effect["reachable"])[:2].any()  # enters at row layer + 1
    # a settings change recomputes the head as it was made
    w.kind = "zero"
    w.wait(sweep=False)
    assert w.effect["head_cells"] == [[1, 1, 2]] and w.effect["kind"] == "zero"
    assert_effect(w.effect, w.session.intervene([(1, 1, 2)], site="head"))


def test_a_pinned_transplant_is_recomputed_when_the_token_pair_changes(widget):
    w = widget
    msg(w, type="transplant", id="c:1", source="this", source_cell=[2, 6], target_cell=[2, 7])
    assert w.effect["logit_diff"] is None
    w.logit_pair = [" Mary", " John"]
    w.wait(sweep=False)
    eff = w.session.transplant(None, (2, 6), (2, 7), logit_diff=(" Mary", " John"))
    assert w.effect["kind"] == "transplant" and w.effect["logit_diff"] == eff.logit_diff
    assert_effect(w.effect, eff)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_the_heads_view_sends_the_engines_head_sweep(family):
    w = make(family, logit_diff=(" Mary", " John"))
    try:
        w.view = "heads"
        w._heads.thread.join(120)
        atlas = w.session.sweep(site="head", logit_diff=(" Mary", " John"))
        L, H, P = w.session.n_layers, w.session.n_heads, w.session.n_positions
        h = w.heads
        assert (h["n_layers"], h["n_heads"]) == (L, H) and h["complete"]
        assert h["progress"] == {
            "done": L * H * P,
            "total": L * H * P,
            "running": False,
            "cancelled": False,
        }
        np.testing.assert_array_equal(_codec.decode(h["done"]), atlas.done)
        np.testing.assert_allclose(_codec.decode(h["total_kl"]), atlas.kl.sum(-1), atol=1e-6)
        np.testing.assert_allclose(
            _codec.decode(h["logprob_total"]), atlas.logprob_delta.sum(-1), atol=1e-6
        )
        np.testing.assert_allclose(_codec.decode(h["kl"]), atlas.kl, atol=1e-6)
        np.testing.assert_allclose(_codec.decode(h["logit_diff"]), atlas.logit_diff, atol=1e-5)
        maps = _codec.decode(h["resid_delta"])
        assert maps.shape == (L, H, P, L + 1, P)
        np.testing.assert_allclose(maps, atlas.resid_delta, atol=1e-6)
        # one head's map in the sweep is that head's own intervention
        eff = w.session.intervene([(1, H - 1, 3)], site="head")
        np.testing.assert_allclose(maps[1, H - 1, 3], eff.resid_delta, atol=1e-5)
        # shown again: not swept again; a new kind sweeps again
        first = w._heads.atlas
        w.view = "map"
        w.view = "heads"
        assert w._heads.atlas is first
        w.kind = "noise"
        w._heads.thread.join(120)
        assert w.heads["kind"] == "noise" and w._heads.atlas is not first
        w.kind = "knockout"
        assert any("no head version" in e["message"] for e in errors(w)) and w.heads is None
    finally:
        w.close()


def test_cancel_stops_the_head_sweep_and_keeps_what_was_done(widget):
    w = widget
    started, real = threading.Event(), w.session.sweep

    def slow(**kw):
        user = kw["progress"]

        def progress(p):
            started.set()
            user(p)
            time.sleep(0.05)

        return real(**{**kw, "progress": progress})

    w.session.sweep = slow
    w.atlas_push_interval = 0.0
    w.view = "heads"
    assert started.wait(60)
    w._on_custom_msg(w, {"type": "cancel", "id": "c:9"})
    w._heads.thread.join(60)
    p = w.heads["progress"]
    assert p["cancelled"] and not p["running"] and 0 < p["done"] < p["total"]
    assert _codec.decode(w.heads["done"]).sum() == p["done"]


def test_a_recomputed_transplant_keeps_the_prompt_it_was_dropped_from(widget):
    w = widget
    w.transplant_prompt = OTHER
    w.wait(sweep=False)
    msg(w, type="transplant", id="c:1", source="prompt", source_cell=[2, 3], target_cell=[2, 5])
    w.transplant_prompt = "Something else entirely, longer than the others are"
    w.logit_pair = [" Mary", " John"]
    w.wait(sweep=False)
    eff = w.session.transplant(OTHER, (2, 3), (2, 5), logit_diff=(" Mary", " John"))
    assert w.effect["transplant"]["prompt"] == OTHER and w.effect["logit_diff"] == eff.logit_diff
    assert_effect(w.effect, eff)


def test_the_heads_view_shown_before_the_session_exists_sweeps_once_it_does():
    from residual_widgets.widget import ResidualExplorer

    gate = threading.Event()
    w = ResidualExplorer(None, prompt=PROMPT, tokens=["x"] * 8, n_rows=3, view="heads")
    w.send = lambda content, buffers=None: None
    try:
        assert w.heads is None and w._heads.thread is None  # nothing to sweep yet

        def make():
            gate.wait(30)
            return rw.Session(model(), PROMPT)

        w.build_session(make)
        gate.set()
        w.wait(sweep=False)
        w._heads.thread.join(120)
        atlas = w.session.sweep(site="head")
        assert w.heads["complete"]
        np.testing.assert_allclose(_codec.decode(w.heads["total_kl"]), atlas.kl.sum(-1), atol=1e-6)
    finally:
        w.close()


# ---- all positions (get_act_patch_attn_head_out_all_pos) and the heads' noise σ ---------------
@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_the_all_positions_toggle_sends_the_engines_all_positions_sweep(family):
    w = make(family, logit_diff=(" Mary", " John"))
    try:
        w.view = "heads"
        w._heads.thread.join(120)
        by_pos = w._heads.atlas
        assert not w.heads["all_positions"]
        w.heads_positions = "all"  # sweeps again, each head at every position at once
        w._heads.thread.join(120)
        atlas = w.session.sweep(site="head", positions="all", logit_diff=(" Mary", " John"))
        L, H, P = w.session.n_layers, w.session.n_heads, w.session.n_positions
        h = w.heads
        assert h["all_positions"] and h["complete"] and w._heads.atlas is not by_pos
        assert h["progress"] == {
            "done": L * H,
            "total": L * H,
            "running": False,
            "cancelled": False,
        }
        assert _codec.decode(h["done"]).shape == (L, H)
        np.testing.assert_allclose(_codec.decode(h["total_kl"]), atlas.kl.sum(-1), atol=1e-6)
        np.testing.assert_allclose(
            _codec.decode(h["logprob_total"]), atlas.logprob_delta.sum(-1), atol=1e-6
        )
        np.testing.assert_allclose(_codec.decode(h["kl"]), atlas.kl, atol=1e-6)
        assert _codec.decode(h["kl"]).shape == (L, H, P)
        np.testing.assert_allclose(_codec.decode(h["logit_diff"]), atlas.logit_diff, atol=1e-5)
        maps = _codec.decode(h["resid_delta"])
        assert maps.shape == (L, H, L + 1, P)
        np.testing.assert_allclose(maps, atlas.resid_delta, atol=1e-6)
        assert "every head at all positions" in w.figure().layout.title.text  # what it shows
        # a click on an all-positions head pins that head at every position: the engine's
        # intervene on those cells, and the very map the all-positions sweep filed for it
        msg(w, type="head", id="c:1", cell=[1, H - 1], positions="all")
        assert not errors(w)
        cells = [(1, H - 1, p) for p in range(P)]
        eff = w.session.intervene(cells, site="head", logit_diff=(" Mary", " John"))
        assert w.effect["head_cells"] == [list(c) for c in cells]
        assert w.effect["cells"] == [[1, p] for p in range(P)]
        assert_effect(w.effect, eff)
        assert np.abs(eff.resid_delta).sum() > 0
        np.testing.assert_allclose(maps[1, H - 1], eff.resid_delta, atol=1e-5)
        np.testing.assert_allclose(atlas.kl[1, H - 1], eff.kl, atol=1e-5)
        np.testing.assert_allclose(atlas.logit_diff[1, H - 1], eff.logit_diff, atol=1e-5)
        # Python's select_head does the same; by position again: the by-position sweep
        got = w.select_head((0, 0), positions="all")
        np.testing.assert_array_equal(
            got.resid_delta,
            w.session.intervene(
                [(0, 0, p) for p in range(P)], site="head", logit_diff=(" Mary", " John")
            ).resid_delta,
        )
        w.heads_positions = "by_pos"
        w._heads.thread.join(120)
        assert not w.heads["all_positions"] and _codec.decode(w.heads["done"]).shape == (L, H, P)
    finally:
        w.close()


def test_a_malformed_all_positions_head_is_refused_in_words(widget):
    w = widget
    msg(w, type="head", id="c:2", cell=[1, 1], positions="every")
    msg(w, type="head", id="c:3", cell=[1])
    e = {m["id"]: m["message"] for m in errors(w)}
    assert "positions must be 'all'" in e["c:2"] and "(layer, head, position)" in e["c:3"]
    msg(w, type="head", id="c:4", cell=[0, 1], positions="all")  # still usable
    assert w.effect["id"] == "c:4" and len(w.effect["head_cells"]) == w.session.n_positions


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_head_noise_uses_the_std_of_the_clean_z_of_each_layer(family):
    from residual_widgets import heads

    sess = rw.Session(model(family), PROMPT)
    z = heads.head_acts(sess)  # [L, P, H, d_head]
    sig = heads.noise_sigma(sess)
    np.testing.assert_allclose(
        sig.numpy(), [float(z[k].std()) for k in range(z.shape[0])], rtol=1e-5
    )
    L, _, H, dh = z.shape
    cells = [(k, h, p) for k in range(L) for h in range(H) for p in range(sess.n_positions)]
    noisy = sess.values_for(cells, "noise", "head")
    clean = torch.stack([z[k, p, h] for k, h, p in cells])
    per_layer = (noisy - clean).view(L, -1)
    for k in range(L):  # the noise of layer k's cells has σ ≈ noise_scale × std(z of layer k)
        ratio = float(per_layer[k].std() / (sess.noise_scale * sig[k]))
        assert 0.8 < ratio < 1.2, (k, ratio)
    # the same cell's noise is the same draw whatever else is asked with it
    assert torch.equal(sess.values_for([cells[5]], "noise", "head")[0], noisy[5])
    # and a sweep's noise cell is that cell's own intervention
    atlas = sess.sweep_heads(kind="noise", layers=[L - 1], heads=[0], positions=[2])
    eff = sess.intervene([(L - 1, 0, 2)], kind="noise", site="head")
    np.testing.assert_allclose(atlas.resid_delta[L - 1, 0, 2], eff.resid_delta, atol=1e-5)
