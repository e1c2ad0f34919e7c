"""The lecture helpers that hook a model's modules hold the hooks only while holding the model's
lock: a widget's sweep steps the same blocks on another thread (a lecture cell runs while the
widget above it sweeps), and must neither run through those hooks nor have its block calls
land in the helper's results. Like ``test_batched_residuals_ignore_a_sweep_running_beside_them``
(test_views.py) for :func:`lecture.residuals`."""

from __future__ import annotations

import threading

import numpy as np

import residual_widgets as rw
from residual_widgets import lecture as lec
from residual_widgets.tiny import random_ids

from helpers import tiny_lm


def beside_a_sweep(lm, fn, n: int = 3):
    """Run ``fn()`` ``n`` times while another thread sweeps a session of ``lm`` over and over.
    Returns ``fn``'s results and what went wrong in the sweeps (each compared with one run
    alone)."""
    sess = rw.Session(lm, random_ids(14, lm.vocab_size, seed=99))
    want = sess.sweep(kind="zero", keep_maps=False)
    stop, bad = threading.Event(), []

    def sweep():
        while not stop.is_set():
            try:
                a = sess.sweep(kind="zero", keep_maps=False)
                if not np.allclose(a.kl, want.kl, atol=1e-4):
                    bad.append(f"a sweep differs by {np.abs(a.kl - want.kl).max():.3g}")
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                bad.append(repr(exc))

    th = threading.Thread(target=sweep, daemon=True)
    th.start()
    try:
        out = [fn() for _ in range(n)]
    finally:
        stop.set()
        th.join(timeout=120)
    return out, bad


def test_zero_ablation_kl_beside_a_sweep():
    lm = tiny_lm("llama")
    ids = [random_ids(9, lm.vocab_size, seed=s) for s in range(8)]
    specs = [("resid", 1, 2), ("attn_out", 0, 3), ("mlp_out", 1, 4)]
    want = lec.zero_ablation_kl(lm, ids, specs, chunk=4)  # alone; 2 prompts per forward
    got, bad = beside_a_sweep(lm, lambda: lec.zero_ablation_kl(lm, ids, specs, chunk=4))
    assert bad == []
    for out in got:
        np.testing.assert_allclose(out["kl"], want["kl"], atol=1e-5)
        np.testing.assert_allclose(out["logprob_delta"], want["logprob_delta"], atol=1e-5)


def test_ffn_hidden_ablation_beside_a_sweep():
    lm = tiny_lm("llama")
    ids = [random_ids(9, lm.vocab_size, seed=s) for s in range(4)]
    cells = [(0, 2), (1, 3), (0, 5), (1, 1)]
    want = lec.ffn_hidden_ablation(lm, ids, cells, mix=0.5)
    got, bad = beside_a_sweep(lm, lambda: lec.ffn_hidden_ablation(lm, ids, cells, mix=0.5), n=6)
    assert bad == []
    for out in got:
        np.testing.assert_allclose(out, want, atol=1e-5)
