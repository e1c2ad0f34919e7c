"""The cone stepper across families and library releases: it must step every tested family,
find block arguments by what they are, refuse loudly what it cannot slice, and a sweep that
falls back must say so (the next transformers rename fails here instead of slowing users down).
"""

import warnings

import numpy as np
import pytest
import torch

import residual_widgets as rw
from residual_widgets import stepper as st
from residual_widgets._payloads import atlas_payload
from residual_widgets.sweep import SlowPathWarning
from residual_widgets.tiny import FAMILIES, random_ids

from helpers import PROMPT, tiny_lm


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_sweeps_on_the_cone_path(family):
    lm = tiny_lm(family)
    sess = rw.Session(lm, PROMPT)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SlowPathWarning)  # a fallback fails this test
        atlas = sess.sweep(kind="zero")
    assert atlas.method == "cone" and atlas.slow_path == ""
    assert atlas.complete and atlas.done.all()
    # knockout steps blocks too: it must run (and change something) on every family
    eff = sess.intervene((0, 2), kind="knockout")
    assert eff.kl[3:].sum() > 0 and np.all(eff.kl[:3] == 0.0)


def test_a_refused_cone_is_loud_in_the_atlas_the_payload_and_a_warning(monkeypatch):
    lm = tiny_lm("gpt2")
    sess = rw.Session(lm, random_ids(5, lm.vocab_size, seed=3))

    def refuse(*a, **k):
        raise st.UnsupportedStepping("block argument 'frobnicate' holds tensors")

    monkeypatch.setattr("residual_widgets.session.Stepper", refuse)
    with pytest.warns(SlowPathWarning, match=r"slow path: one forward per cell .*frobnicate.*10×"):
        atlas = sess.sweep(kind="zero")
    assert atlas.method == "loop" and "frobnicate" in atlas.slow_path
    assert atlas.complete
    payload = atlas_payload(atlas)
    assert payload["method"] == "loop" and payload["slow_path"] == atlas.slow_path
    with pytest.raises(st.UnsupportedStepping, match="frobnicate"):
        sess.sweep(kind="zero", method="cone")  # asked for the cone: still raises


def test_arguments_are_found_by_what_they_are_not_their_names():
    """A future release that renames every argument: the cache is found as a cache object, the
    mask as a [B, 1, P, P] float tensor, rotary (cos, sin) and position ids by their position
    axis; anything else holding tensors is refused."""
    from transformers import DynamicCache

    P = 6
    s = st.Stepper.__new__(st.Stepper)
    s.P = P
    named = {
        "h": torch.zeros(1, P, 8),
        "kv_store": DynamicCache(),
        "causal_bias": torch.zeros(1, 1, P, P),
        "rope": (torch.zeros(1, P, 4),) * 2,
        "where": torch.arange(P)[None],
        "use_cache": True,
        "flag": "x",
    }
    spec = s._classify(named, {})
    assert spec["hidden"] == "h" and spec["cache"] == "kv_store"
    assert spec["mask"][0] == "causal_bias"
    assert set(spec["seq"]) == {"rope", "where"}
    assert spec["static"] == {"use_cache": True, "flag": "x"}
    # a cache argument the model left empty is found by its annotation or a known name
    spec = s._classify({**named, "kv_store": None}, {"kv_store": "Cache | None"})
    assert spec["cache"] == "kv_store"
    with pytest.raises(st.UnsupportedStepping, match="without a cache argument"):
        s._classify({**named, "kv_store": None}, {})
    with pytest.raises(st.UnsupportedStepping, match="'odd'"):
        s._classify({**named, "odd": torch.zeros(3, 3)}, {})


def test_the_self_check_refuses_an_argument_sliced_wrongly(monkeypatch):
    """Slicing rotary embeddings or position ids wrongly leaves position 0's values on the
    suffix: the suffix check must refuse the model rather than return wrong numbers."""
    lm = tiny_lm("llama")
    sess = rw.Session(lm, PROMPT)
    assert st.Stepper(lm, sess.ids, sess.clean.resid, sess.clean.logits).kv  # sane as built

    def unsliced(name, val, start, P):
        return (
            val[:, : P - start]
            if isinstance(val, torch.Tensor) and val.ndim >= 2
            else (
                type(val)(unsliced(name, v, start, P) for v in val)
                if isinstance(val, (tuple, list))
                else val
            )
        )

    monkeypatch.setattr(st, "_slice_seq", unsliced)
    with pytest.raises(st.UnsupportedStepping, match="suffix error"):
        st.Stepper(lm, sess.ids, sess.clean.resid, sess.clean.logits)


@pytest.mark.parametrize("site", ["resid", "attn_out", "mlp_out"])
def test_cells_reaching_only_their_own_position_are_exact_elsewhere(site):
    """A top-row residual cell, or the last block's write, reaches only its own final position:
    everywhere else the cone sweep's KL and Δlog p are exactly 0 and the logit difference is
    exactly the clean one (not the ~1e-6 noise of unembedding the clean residual again)."""
    lm = tiny_lm("llama")
    sess = rw.Session(lm, PROMPT, logit_diff=(" Mary", " John"))
    top = sess.n_layers if site == "resid" else sess.n_layers - 1
    atlas = sess.sweep(kind="zero", site=site, rows=[top], method="cone")
    P = sess.n_positions
    for i in range(P):
        assert np.all(atlas.kl[top, i, i + 1 :] == 0.0), (site, i)
        assert np.all(atlas.logprob_delta[top, i, i + 1 :] == 0.0), (site, i)
        if i < P - 1:
            assert atlas.logit_diff[top, i] == atlas.logit_diff_clean, (site, i)
    assert atlas.kl[top, :, :].diagonal().min() > 0  # its own position does change
