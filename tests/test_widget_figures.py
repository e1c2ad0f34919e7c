"""``widget.figure()`` draws what the widget shows, from the engine's own arrays.

A tiny GPT-2 (random weights) answers every request; each test compares the figure's data with
the engine object behind the view: the atlas and the attribution estimate (overview, in each
``overview_metric``), the position/content decomposition, the head sweep, a transplant. The
saved explorable page carries the position/content decomposition once the widget has it.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest

import residual_widgets as rw
from residual_widgets import _codec, overview
from residual_widgets.explore import explore
from residual_widgets.tiny import tiny_model

PROMPT = "When Mary and John went to the store"
PAIR = (" Mary", " John")


@functools.lru_cache(maxsize=1)
def model():
    hf, tok = tiny_model("gpt2", n_layers=2)
    return rw.load_model(hf, tok)


def make(**kw):
    w = explore(PROMPT, model=model(), cell=None, sweep=False, **kw)
    w.send = lambda *a, **k: None
    return w


def z(fig, k=0):
    return np.asarray(fig.data[k].z, dtype=np.float64)


def test_overview_before_the_sweep_is_the_estimate_marked_as_one():
    w = make()
    try:
        with pytest.raises(ValueError, match="nothing to draw"):
            w.figure()
        w.request_estimate()
        w.wait(sweep=False)
        est = w.current_estimate
        assert w.overview_metric == "logprob_delta" and est is not None
        fig = w.figure()
        np.testing.assert_allclose(z(fig), est.logprob_delta, rtol=1e-6)
        S, P = est.logprob_delta.shape
        assert (
            "ESTIMATE" in fig.layout.title.text and f"{S * P} of {S * P}" in fig.layout.title.text
        )
        marks = fig.data[1]  # every cell is marked as estimated
        assert sorted(zip(marks.y, marks.x, strict=True)) == [
            (r, p) for r in range(S) for p in range(P)
        ]
        assert w.current_overview.estimated.all()
        w.overview_metric = "total_kl"  # no estimate of KL exists: nothing to draw yet
        with pytest.raises(ValueError, match="nothing to draw"):
            w.figure()
    finally:
        w.close()


@pytest.mark.parametrize(
    "metric, exact",
    [
        ("logprob_delta", lambda a: a.logprob_delta.sum(-1)),
        ("logit_diff", lambda a: a.logit_diff),
        ("total_kl", lambda a: a.total_kl),
    ],
)
def test_overview_after_the_sweep_is_the_atlas_in_the_chosen_metric(metric, exact):
    w = make(logit_diff=PAIR)
    try:
        w.overview_metric = metric
        w.start_sweep()
        w.wait()
        atlas = w.current_atlas
        assert atlas.complete
        fig = w.figure()  # nothing pinned: the overview
        np.testing.assert_allclose(z(fig), exact(atlas), rtol=1e-6, atol=1e-7)
        assert len(fig.data) == 1 and "ESTIMATE" not in fig.layout.title.text
        if metric == "logit_diff":  # diverging around the clean value
            assert fig.data[0].zmid == pytest.approx(atlas.logit_diff_clean)
        w.select((1, 2))
        assert w.figure().layout.title.text.startswith("zero ablation at resid [(1, 2)]")
        np.testing.assert_allclose(z(w.figure(overview=True)), exact(atlas), rtol=1e-6, atol=1e-7)
    finally:
        w.close()


def test_a_partial_sweep_shows_exact_cells_and_the_estimate_elsewhere():
    sess = rw.Session(model(), PROMPT)
    atlas = sess.sweep(kind="zero")
    est = sess.attribute("zero", "resid")
    done = np.zeros_like(atlas.done)
    done[::2] = True
    part = dataclasses.replace(atlas, done=done, complete=False)
    ov = overview.overview(part, est, "logprob_delta")
    np.testing.assert_array_equal(ov.estimated, ~done)
    np.testing.assert_array_equal(ov.values[done], atlas.logprob_delta.sum(-1)[done])
    np.testing.assert_array_equal(ov.values[~done], est.logprob_delta[~done])
    fig = ov.figure()
    r, p = np.nonzero(~done)
    assert list(fig.data[1].y) == r.tolist() and list(fig.data[1].x) == p.tolist()
    assert f"at {int((~done).sum())} of {done.size} cells, exact at {int(done.sum())}" in (
        fig.layout.title.text
    )
    # an estimate of another kind is not mixed in; KL has none at all
    other = sess.attribute("mean", "resid")
    assert not overview.overview(part, other, "logprob_delta").estimated.any()
    kl = overview.overview(part, est, "total_kl")
    assert not kl.estimated.any() and np.isnan(kl.values[~done]).all()
    # logit diff without a token pair falls back to Σ Δlog p, as the widget does
    assert overview.overview(part, est, "logit_diff").which == "logprob_delta"


def test_position_content_view_figure_is_the_engines_decomposition(tmp_path, monkeypatch):
    from residual_widgets import lecture
    from residual_widgets._export import read_page

    real = lecture.position_content_for
    monkeypatch.setattr(lecture, "position_content_for", lambda s: real(s, n_prompts=12))
    w = make()
    try:
        w.select((1, 3))
        page = read_page(w.save_html(tmp_path / "before.html", interactive=True).read_text())
        assert page["traits"]["position_content"] is None  # the page says: needs a kernel
        w.view = "position_content"
        w.wait(sweep=False)
        pc = w.current_position_content
        assert pc is not None
        fig = w.figure()
        want = pc.figure(1)  # the pinned row
        assert [t.name for t in fig.data] == [t.name for t in want.data]
        for a, b in zip(fig.data, want.data, strict=True):
            np.testing.assert_allclose(np.asarray(a.y, float), np.asarray(b.y, float))
        w.view_row = 2
        assert "row 2" in w.figure().layout.annotations[2].text
        page = read_page(w.save_html(tmp_path / "after.html", interactive=True).read_text())
        saved = page["traits"]["position_content"]
        np.testing.assert_array_equal(saved["energy"], pc.energy.astype(np.float32))
        np.testing.assert_array_equal(saved["massive_dims"], pc.massive_dims)
    finally:
        w.close()


def test_heads_view_figure_is_the_head_sweep_by_head_and_position():
    w = make()
    try:
        w.view = "heads"
        w._heads.thread.join(120)
        atlas = w._heads.atlas
        L, H, P = w.session.n_layers, w.session.n_heads, w.session.n_positions
        fig = w.figure()
        assert len(fig.data[0].y) == L * H and fig.data[0].y[H] == "L1.H0"
        np.testing.assert_allclose(
            z(fig), atlas.logprob_delta.sum(-1).reshape(L * H, P), rtol=1e-6, atol=1e-7
        )
        w.overview_metric, w.heads_layer = "total_kl", 1
        np.testing.assert_allclose(z(w.figure()), atlas.total_kl[1], rtol=1e-6)
    finally:
        w.close()


def test_a_transplant_is_titled_as_one():
    w = make()
    try:
        eff = w.transplant((1, 2), (1, 5))
        fig = w.figure()
        assert fig.layout.title.text == "transplant of resid (1, 2) from this prompt into (1, 5)"
        np.testing.assert_allclose(z(fig), eff.resid_delta, rtol=1e-6)
        assert eff.describe() == "transplant into resid [(1, 5)]"
        assert "ablation" not in eff.figure().layout.title.text
        eff = w.transplant((2, 1), (1, 5), source="Paris is the capital of")
        assert w.figure().layout.title.text.startswith(
            "transplant of resid (2, 1) from 'Paris is the capital of' into (1, 5)"
        )
        assert _codec.decode(w.effect["resid_delta"]).shape == eff.resid_delta.shape
    finally:
        w.close()
