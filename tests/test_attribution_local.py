"""Attribution on a local session runs in plain torch (``attribution_local``), not nnsight's trace.

What is checked: the plain-torch path equals the nnsight path (forced with
``attribution._NNSIGHT_LOCALLY``) within 1e-5 on every tiny family, kind and site, with and
without a token pair, for a one-token prompt and for ``correction="block"``; while an attribution
is paused mid-backward on a worker thread, another thread can read parameters' ``.grad`` and
call ``model.hf.to("cpu")`` — which fails under nnsight's traced backward (it patches
``Tensor.grad`` for the whole process), shown here so the test is known to be able to fail;
no parameter's ``.grad`` or ``requires_grad`` is changed.
"""

import threading

import numpy as np
import pytest
import torch

import residual_widgets as rw
from residual_widgets import attribution
from residual_widgets.attribution import ATTRIBUTABLE_KINDS

from helpers import PROMPT, SOURCE, tiny_lm

PAIR = (" Mary", " John")
SITES = ("resid", "attn_out", "mlp_out")
FIELDS = ("logit_diff", "logit_diff_delta", "logprob_delta")


def _both(sess, monkeypatch, *args, **kw):
    """``sess.attribute(*args, **kw)`` on the nnsight path, then on the local path."""
    monkeypatch.setattr(attribution, "_NNSIGHT_LOCALLY", True)
    old = sess.attribute(*args, **kw)
    monkeypatch.setattr(attribution, "_NNSIGHT_LOCALLY", False)
    return old, sess.attribute(*args, **kw)


def _assert_close(old, new, what):
    assert old.method == new.method and np.array_equal(old.exact, new.exact), what
    for f in FIELDS:
        a, b = getattr(old, f), getattr(new, f)
        if a is None:
            assert b is None, (what, f)
            continue
        assert a.shape == b.shape and np.isfinite(b).all(), (what, f)
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-5, err_msg=str((what, f)))


@pytest.mark.parametrize("pair", [PAIR, None], ids=["pair", "no-pair"])
def test_local_path_equals_the_nnsight_path(lm, pair, monkeypatch):
    sess = rw.Session(lm, PROMPT, source=SOURCE, logit_diff=pair)
    nonzero = 0
    for kind in ATTRIBUTABLE_KINDS:
        for site in SITES:
            old, new = _both(sess, monkeypatch, kind, site)
            _assert_close(old, new, (kind, site))
            nonzero += np.abs(new.logprob_delta).max() > 0
    assert nonzero == len(ATTRIBUTABLE_KINDS) * len(SITES)  # the comparison compares something
    assert all(p.grad is None for p in lm.hf.parameters())


@pytest.mark.parametrize("pair", [PAIR, None], ids=["pair", "no-pair"])
def test_block_correction_local_equals_nnsight(lm, pair, monkeypatch):
    sess = rw.Session(lm, PROMPT, source=SOURCE, logit_diff=pair)
    for kind, site in (("zero", "resid"), ("patch", "attn_out"), ("mean", "mlp_out")):
        old, new = _both(sess, monkeypatch, kind, site, correction="block")
        _assert_close(old, new, (kind, site))


def test_one_token_prompt(gpt2, monkeypatch):
    """No next token, so no Δ log p; the logit difference alone."""
    sess = rw.Session(gpt2, "When", logit_diff=PAIR)
    for site in SITES:
        old, new = _both(sess, monkeypatch, "zero", site)
        _assert_close(old, new, site)
        assert np.array_equal(new.logprob_delta, np.zeros_like(new.logprob_delta))
        assert np.abs(new.logit_diff_delta).max() > 0


def _touch_grads_during_backward(lm, sess, nnsight_path: bool, monkeypatch):
    """Run ``sess.attribute`` on a worker thread, paused inside its backward pass (a tensor hook
    on the final norm's output waits on an event); meanwhile read every parameter's ``.grad``
    and move the model to the CPU (it is there: ``to`` still visits every ``.grad``). Returns
    what that raised (or ``None``) and the worker's result or error."""
    monkeypatch.setattr(attribution, "_NNSIGHT_LOCALLY", nnsight_path)
    inside, release = threading.Event(), threading.Event()

    def wait(grad):
        inside.set()
        release.wait(30)

    def on_norm(mod, args, out):
        if out.requires_grad:
            out.register_hook(wait)

    handle = lm.final_norm.register_forward_hook(on_norm)
    got = {}

    def work():
        try:
            got["result"] = sess.attribute("zero", "attn_out")
        except Exception as e:  # noqa: BLE001 - reported to the test thread
            got["error"] = e

    worker = threading.Thread(target=work)
    worker.start()
    try:
        assert inside.wait(30), "the attribution never reached its backward pass"
        try:
            _ = [p.grad for p in lm.hf.parameters()]
            lm.hf.to("cpu")
            raised = None
        except Exception as e:  # noqa: BLE001 - what the test inspects
            raised = e
    finally:
        release.set()
        worker.join(30)
        handle.remove()
    assert not worker.is_alive()
    return raised, got


def test_other_threads_may_touch_grad_while_attributing(monkeypatch):
    lm = tiny_lm("gpt2", n_layers=2)
    sess = rw.Session(lm, PROMPT, logit_diff=PAIR)
    # the hazard: nnsight's traced backward patches Tensor.grad process-wide
    raised, got = _touch_grads_during_backward(lm, sess, True, monkeypatch)
    assert raised is not None and "grad" in str(raised), raised
    # the local path patches nothing: the other thread is undisturbed, the estimate unchanged
    raised, got = _touch_grads_during_backward(lm, sess, False, monkeypatch)
    assert raised is None, raised
    assert "error" not in got, got.get("error")
    monkeypatch.setattr(attribution, "_NNSIGHT_LOCALLY", True)
    want = sess.attribute("zero", "attn_out")
    np.testing.assert_allclose(got["result"].logit_diff, want.logit_diff, rtol=0, atol=1e-5)
    assert all(p.grad is None for p in lm.hf.parameters())


def test_grad_and_requires_grad_of_parameters_are_left_alone(monkeypatch):
    """Half the weights frozen: after local attributions (first order and block) every
    parameter keeps its ``requires_grad`` and no ``.grad`` appears."""
    from residual_widgets.models import load_model
    from residual_widgets.tiny import tiny_model

    hf, tok = tiny_model("llama", n_layers=2, seed=5)
    lm = load_model(hf, tok)
    for k, p in enumerate(hf.parameters()):
        p.requires_grad_(k % 2 == 0)
    before = [p.requires_grad for p in hf.parameters()]
    sess = rw.Session(lm, PROMPT, source=SOURCE, logit_diff=PAIR)
    monkeypatch.setattr(attribution, "_NNSIGHT_LOCALLY", False)
    for site in SITES:
        est = sess.attribute("patch", site)
        assert np.abs(est.logit_diff_delta).max() > 0
    sess.attribute("zero", "resid", correction="block")
    assert [p.requires_grad for p in hf.parameters()] == before
    assert all(p.grad is None for p in hf.parameters())
    assert torch.is_grad_enabled()
