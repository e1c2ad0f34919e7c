"""A click through the cone (:mod:`residual_widgets.click`) equals the full traced run.

For every family, kind (zero, mean, noise, patch, resample, set) and site, a single cell, a
multi-cell selection (lowest row and leftmost position in different cells) and a top-row cell
give the same Effect on the cone path as on the nnsight trace, within 1e-5, and exactly 0.0
outside the selection's cone on both. The path choice is tested too: the cone never traces,
remote sessions and refused architectures trace, ``method="cone"`` refuses loudly.
"""

import numpy as np
import pytest
import torch

import residual_widgets as rw
from residual_widgets import stepper as st
from residual_widgets.tiny import FAMILIES

from helpers import PROMPT, SOURCE, tiny_lm

KINDS = ("zero", "mean", "noise", "patch", "resample", "set")
SITES = ("resid", "attn_out", "mlp_out")


def selections(sess, site):
    top = sess.n_rows - 1 if site == "resid" else sess.n_layers - 1
    P = sess.n_positions
    return [
        (1, 3),  # one cell in the middle
        [(2, 4), (1, P - 3), (0, 6)],  # lowest row and leftmost position in different cells
        (top, P - 2),  # top row: its cone is one or two cells
        [(top, 0), (0, P - 1)],  # the block spans the whole grid, the cone does not
    ]


def assert_same(a: rw.Effect, b: rw.Effect, tol=1e-5):
    for name in ("resid_delta", "kl", "logprob_delta"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.shape == y.shape
        np.testing.assert_allclose(x, y, atol=tol, rtol=0, err_msg=name)
    np.testing.assert_allclose(a.resid.numpy(), b.resid.numpy(), atol=tol, rtol=tol)
    assert (a.logit_diff is None) == (b.logit_diff is None)
    if a.logit_diff is not None:
        assert abs(a.logit_diff - b.logit_diff) <= tol
    assert np.array_equal(a.reachable, b.reachable)
    # outside the cone: exactly clean, on both paths
    out = ~a.reachable
    assert np.all(b.resid_delta[out] == 0.0) and np.all(a.resid_delta[out] == 0.0)
    first = min(p for _, p in b.cells)
    assert np.all(b.kl[:first] == 0.0) and np.all(b.logprob_delta[:first] == 0.0)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_cone_click_equals_the_traced_click(family):
    lm = tiny_lm(family)
    sess = rw.Session(
        lm, PROMPT, source=SOURCE, logit_diff=(" Mary", " John"), mean_reference=[SOURCE]
    )
    rng = np.random.default_rng(0)
    checked = 0
    for site in SITES:
        for kind in KINDS:
            for cells in selections(sess, site):
                n = 1 if isinstance(cells, tuple) else len(cells)
                value = (
                    rng.normal(size=(n, lm.d_model)).astype(np.float32) if kind == "set" else None
                )
                a = sess.intervene(cells, kind, site, value=value, method="trace")
                b = sess.intervene(cells, kind, site, value=value, method="cone")
                assert_same(a, b)
                checked += 1
            # the cone really changed something (the comparison is not of two clean runs)
            assert b.kl.sum() > 0 or kind in ("patch", "resample")
    assert checked == len(SITES) * len(KINDS) * 4


def test_the_cone_path_does_not_trace_and_changes_what_it_should(monkeypatch):
    lm = tiny_lm("llama")
    sess = rw.Session(lm, PROMPT)
    ref = sess.intervene((1, 4), "zero", method="trace")

    def no_trace(*a, **k):
        raise AssertionError("the cone path ran a trace")

    sess.stepper()  # built (a sweep or an earlier click builds it)
    monkeypatch.setattr("residual_widgets.session.traced_run", no_trace)
    eff = sess.intervene((1, 4), "zero")  # auto: the cone
    assert_same(ref, eff)
    assert eff.kl[4:].sum() > 0 and np.all(eff.kl[:4] == 0.0)
    assert np.all(eff.resid_delta[:1] == 0.0) and np.all(eff.resid_delta[:, :4] == 0.0)


def test_writing_the_clean_value_changes_nothing_exactly():
    lm = tiny_lm("gpt2")
    sess = rw.Session(lm, PROMPT, source=PROMPT)  # patching a prompt from itself
    for site in SITES:
        eff = sess.intervene([(0, 2), (1, 5)], "patch", site, method="cone")
        assert np.all(eff.resid_delta == 0.0) and np.all(eff.kl == 0.0)
        assert np.all(eff.logprob_delta == 0.0)


def test_remote_sessions_trace_and_cone_refuses_them():
    lm = tiny_lm("gpt2")
    sess = rw.Session(lm, PROMPT, remote="local")
    local = rw.Session(lm, PROMPT)
    eff = sess.intervene((1, 3), "zero")  # auto → the trace, through nnsight's remote path
    assert_same(local.intervene((1, 3), "zero", method="cone"), eff)
    assert sess._stepper is None
    with pytest.raises(ValueError, match="remote session traces"):
        sess.intervene((1, 3), "zero", method="cone")


def test_a_refused_stepper_falls_back_once_and_cone_raises(monkeypatch):
    lm = tiny_lm("qwen2")
    sess = rw.Session(lm, PROMPT)
    ref = sess.intervene((2, 3), "noise", method="trace")
    built = []

    def refuse(*a, **k):
        built.append(1)
        raise st.UnsupportedStepping("block argument 'frobnicate' holds tensors")

    monkeypatch.setattr("residual_widgets.session.Stepper", refuse)
    for _ in range(3):
        assert_same(ref, sess.intervene((2, 3), "noise"))
    assert len(built) == 1  # the refusal is remembered: later clicks do not retry
    with pytest.raises(st.UnsupportedStepping, match="frobnicate"):
        sess.intervene((2, 3), "noise", method="cone")
    with pytest.raises(ValueError, match="unknown method 'fast'"):
        sess.intervene((2, 3), "noise", method="fast")


def test_cone_run_keeps_the_clean_logits_outside_the_cone():
    lm = tiny_lm("neox")
    sess = rw.Session(lm, PROMPT)
    P = sess.n_positions
    eff = sess.intervene((sess.n_rows - 1, P - 2), "zero", method="cone")
    logits = torch.log_softmax(sess.model.unembed(eff.resid[-1]), -1)
    assert eff.kl[P - 2] > 0 and np.all(eff.kl[: P - 2] == 0.0) and eff.kl[P - 1] == 0.0
    assert torch.allclose(logits[:-2], sess.clean_logprobs[:-2], atol=1e-5)


def test_the_first_auto_click_traces_and_the_second_builds_the_stepper(monkeypatch):
    """A fresh widget's first paint must not wait for the stepper's capture and self-check."""
    lm = tiny_lm("gemma3")
    sess = rw.Session(lm, PROMPT)
    traced = []
    real = rw.session.traced_run

    def spy(*a, **k):
        traced.append(1)
        return real(*a, **k)

    monkeypatch.setattr("residual_widgets.session.traced_run", spy)
    first = sess.intervene((1, 2), "zero")
    assert traced == [1] and sess._stepper is None
    second = sess.intervene((1, 2), "zero")
    assert traced == [1] and sess._stepper is not None  # the cone, with the stepper built
    assert_same(first, second)
