"""Attention-edge knockout, checked against an independent construction.

Knocking out (0, i) — no later position may read position i in any block — must give later
positions exactly what they would compute if token i did not exist: the same prompt with token i
deleted, every other token keeping its original position id. Position i's own prediction must
not change at all.
"""

import numpy as np
import pytest
import torch

import residual_widgets as rw
from residual_widgets.grid import reachable_mask
from residual_widgets.tiny import random_ids

from helpers import tiny_lm


@pytest.mark.parametrize("family", ["gpt2", "neox", "llama", "qwen2", "gemma3", "phi3"])
def test_full_knockout_equals_deleting_the_token(family):
    if family == "gemma3":
        # A sliding window counts tokens, not position ids, so deleting a token would shift the
        # window: compare with a window wider than the prompt.
        from residual_widgets.tiny import tiny_model

        lm = rw.load_model(*tiny_model("gemma3", sliding_window=32))
    else:
        lm = tiny_lm(family)
    ids = random_ids(12, lm.vocab_size, seed=5)
    sess = rw.Session(lm, ids)
    i = 4
    eff = sess.intervene((0, i), kind="knockout")
    keep = [j for j in range(len(ids)) if j != i]
    with torch.no_grad():
        ref = lm.hf(
            torch.tensor([[ids[j] for j in keep]]), position_ids=torch.tensor([keep])
        ).logits[0]
    new_logits = lm.unembed(eff.resid[-1])
    later = [k for k, j in enumerate(keep) if j > i]
    torch.testing.assert_close(new_logits[i + 1 :], ref[later], atol=2e-5, rtol=1e-4)
    assert eff.kl[i] == 0.0 and torch.equal(eff.resid[:, i], sess.clean.resid[:, i])
    assert eff.kl[i + 1 :].min() > 0


def test_knockout_cone_and_partial_rows():
    lm = tiny_lm("llama")
    sess = rw.Session(lm, random_ids(10, lm.vocab_size, seed=2))
    eff = sess.intervene((1, 3), kind="knockout")
    # written out by hand: rows above the knocked-out block's input (2, 3), positions after 3
    reach = np.zeros((lm.n_layers + 1, 10), bool)
    reach[2:, 4:] = True
    assert np.array_equal(eff.reachable, reach)
    assert np.array_equal(reachable_mask([(1, 3)], lm.n_layers, 10, kind="knockout"), reach)
    assert np.all(eff.resid_delta[~reach] == 0.0)
    assert eff.resid_delta[2:, 4:].min() > 0
    assert np.all(eff.kl[:4] == 0.0)
    # knocking out from a higher row changes less than from row 0
    low = sess.intervene((0, 3), kind="knockout")
    assert low.kl.sum() > 0 and not np.array_equal(low.kl, eff.kl)
    with pytest.raises(ValueError, match=r"0\.\.2"):
        sess.intervene((3, 3), kind="knockout")  # no block above the last row
    with pytest.raises(ValueError, match="site='resid'"):
        sess.intervene((1, 3), kind="knockout", site="mlp_out")


def test_knockout_sweep_matches_singles():
    lm = tiny_lm("gpt2")
    sess = rw.Session(lm, random_ids(6, lm.vocab_size, seed=1))
    atlas = sess.sweep(kind="knockout")
    assert atlas.done.shape == (lm.n_layers, 6) and atlas.complete
    eff = sess.intervene((1, 2), kind="knockout")
    np.testing.assert_array_equal(atlas.kl[1, 2], eff.kl)
    assert np.all(atlas.kl[:, 5] == 0.0)  # nothing reads the last position


def _masked_logits(lm, ids, hide: dict[int, list[int]]) -> torch.Tensor:
    """Independent construction: the plain HF forward with a hand-written causal mask per block,
    from which ``hide[k]``'s keys are removed for every later query in block ``k`` only."""
    P = len(ids)
    neg = torch.finfo(torch.float32).min

    def pre(k):
        def f(mod, args, kwargs):
            m = torch.zeros(1, 1, P, P)
            m.masked_fill_(torch.ones(P, P, dtype=torch.bool).triu(1), neg)  # causal
            for key in hide.get(k, []):
                m[..., key + 1 :, key] = neg  # later queries may not read `key` in block k
            return args, {**kwargs, "attention_mask": m}

        return f

    hs = [b.register_forward_pre_hook(pre(k), with_kwargs=True) for k, b in enumerate(lm.blocks)]
    try:
        with torch.no_grad():
            return lm.hf(torch.tensor([ids])).logits[0]
    finally:
        for h in hs:
            h.remove()


def test_knockout_blocks_default_is_every_block_from_the_row_up():
    lm = tiny_lm("llama")
    L = lm.n_layers
    sess = rw.Session(lm, random_ids(10, lm.vocab_size, seed=2))
    for cells in ([(1, 3)], [(0, 2), (1, 5)]):
        today = sess.intervene(cells, kind="knockout")
        explicit = sess.intervene(cells, kind="knockout", blocks=range(L))  # blocks < n: ignored
        assert np.array_equal(today.kl, explicit.kl)
        assert torch.equal(today.resid, explicit.resid)
        assert np.array_equal(today.reachable, explicit.reachable)
    # and the default agrees with the hand-written mask in every block from row 0 up
    ids = sess.ids
    ref = _masked_logits(lm, ids, {k: [3] for k in range(L)})
    eff = sess.intervene((0, 3), kind="knockout")
    torch.testing.assert_close(lm.unembed(eff.resid[-1]), ref, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("blocks", [[1], [0, 2], [2]])
def test_knockout_block_subset_equals_a_hand_written_mask(blocks):
    lm = tiny_lm("llama")
    L = lm.n_layers
    ids = random_ids(10, lm.vocab_size, seed=2)
    sess = rw.Session(lm, ids)
    i = 3
    eff = sess.intervene((0, i), kind="knockout", blocks=blocks)
    ref = _masked_logits(lm, ids, {k: [i] for k in blocks})
    torch.testing.assert_close(lm.unembed(eff.resid[-1]), ref, atol=2e-5, rtol=1e-4)
    # rows up to the first knocked-out block's input and positions ≤ i: exactly clean
    first = min(blocks)
    reach = np.zeros((L + 1, 10), bool)
    reach[first + 1 :, i + 1 :] = True
    assert np.array_equal(eff.reachable, reach)
    assert np.all(eff.resid_delta[~reach] == 0.0)
    assert eff.resid_delta[first + 1, i + 1 :].min() > 0
    assert np.all(eff.kl[: i + 1] == 0.0) and eff.kl[i + 1 :].min() > 0
    # a subset is not the whole: it differs from the knockout in every block
    every = sess.intervene((0, i), kind="knockout")
    assert not np.allclose(eff.kl, every.kl)


def test_knockout_blocks_errors():
    lm = tiny_lm("llama")
    sess = rw.Session(lm, random_ids(8, lm.vocab_size, seed=2))
    with pytest.raises(ValueError, match="kind='knockout' only"):
        sess.intervene((1, 3), kind="zero", blocks=[1])
    with pytest.raises(ValueError, match=r"0\.\.2"):
        sess.intervene((0, 3), kind="knockout", blocks=[3])
    with pytest.raises(ValueError, match="no block ≥ 2"):
        sess.intervene((2, 3), kind="knockout", blocks=[0, 1])
