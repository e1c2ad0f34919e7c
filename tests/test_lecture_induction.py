"""The induction-heads lecture's pieces (lecture_induction.py) on tiny random-weight models."""

import numpy as np
import pytest
import torch

from residual_widgets import lecture_induction as li
from residual_widgets.session import Session

from helpers import tiny_lm


def test_sequences_repeat_x_and_corrupt_with_disjoint_tokens():
    s = li.make_sequences(6, 5, lo=4, hi=60, bos=1, seed=3)
    n, P = 5, 11
    for arr in (s.repeated, s.corrupted, s.unrepeated, s.unrepeated_corrupted):
        assert arr.shape == (6, P) and (arr[:, 0] == 1).all()
        assert ((arr[:, 1:] >= 4) & (arr[:, 1:] < 60)).all()
    x = s.repeated[:, 1 : n + 1]
    assert (s.repeated[:, n + 1 :] == x).all() and (s.corrupted[:, n + 1 :] == x).all()
    assert (s.unrepeated[:, 1 : n + 1] == x).all()
    assert (s.unrepeated_corrupted[:, n + 1 :] == s.unrepeated[:, n + 1 :]).all()
    for r in range(6):
        y, w = set(s.corrupted[r, 1 : n + 1]), set(s.unrepeated[r, n + 1 :])
        assert len(set(x[r])) == n and not (y & set(x[r])) and not (w & set(x[r]))
    assert s.start == n + 1
    assert not (s.repeated[0] == s.repeated[1]).all()  # a fresh x per sequence
    with pytest.raises(ValueError, match="token ids"):
        li.make_sequences(2, 10, lo=4, hi=30, bos=1)


@pytest.mark.parametrize("family", ["gpt2", "llama"])  # MHA and grouped-query attention
def test_patching_equals_the_engines_head_interventions(family):
    lm = tiny_lm(family)
    s = li.make_sequences(2, 4, lo=4, hi=200, bos=1, seed=0)
    units = [(0, 1), (1, 0), (1, 3), (2, 2)]
    got = li.head_patching(lm, s.corrupted, s.repeated, s.start, units)
    P = s.repeated.shape[1]
    for r in range(2):
        sess = Session(lm, s.corrupted[r].tolist(), source=s.repeated[r].tolist())
        for k, h in units:
            eff = sess.intervene([(k, h, p) for p in range(s.start, P)], "patch", site="head")
            want = eff.logprob_delta[s.start : P - 1].mean()
            assert abs(got.delta[r, k, h] - want) < 1e-4, (family, r, k, h)
        assert np.isnan(got.delta[r, 0, 0])  # not patched
        lp = torch.log_softmax(sess.clean.logits, -1)
        tgt = s.corrupted[r, s.start + 1 :]
        assert np.isclose(got.received[r], lp[s.start : P - 1][np.arange(len(tgt)), tgt].mean())
    all_heads = li.head_patching(lm, s.corrupted[:1], s.repeated[:1], s.start)
    assert not np.isnan(all_heads.delta).any()
    idx = tuple(np.array(units).T)
    assert np.allclose(all_heads.delta[0][idx], got.delta[0][idx], atol=1e-5)


def test_attention_probs_are_causal_distributions_and_leave_the_implementation_alone():
    lm = tiny_lm("llama")
    impl = lm.hf.config._attn_implementation
    s = li.make_sequences(3, 4, lo=4, hi=200, bos=1)
    p = li.attention_probs(lm, s.repeated)
    assert p.shape == (3, lm.n_layers, 4, 9, 9)  # query heads, not the 2 key/value heads
    assert torch.allclose(p.sum(-1), torch.ones(()), atol=1e-5)
    assert (p.triu(1) == 0).all()
    assert lm.hf.config._attn_implementation == impl


def test_offset_scores_read_second_copy_queries_at_first_copy_keys():
    n, P = 4, 9
    probs = torch.zeros(2, 1, 2, P, P)
    for k in range(n - 1):  # head 0: the induction pattern, x[k] (second) -> x[k+1] (first)
        probs[:, 0, 0, n + 1 + k, 1 + k + 1] = 1.0
    for k in range(n):  # head 1: the same token's earlier occurrence (offset 0)
        probs[:, 0, 1, n + 1 + k, 1 + k] = 0.5
    assert np.allclose(li.offset_scores(probs, n, 1), [[[1.0, 0.0]]] * 2)
    assert np.allclose(li.offset_scores(probs, n, 0), [[[0.0, 0.5]]] * 2)
    assert np.allclose(li.offset_scores(probs, n, 2), 0.0)
    with pytest.raises(ValueError, match="offset"):
        li.offset_scores(probs, n, n)


def test_top_k_overlap_and_its_chance_level():
    v = np.array([[0.1, 0.9, 0.3], [0.8, 0.2, 0.7]])
    assert li.top_k(v, 3) == [(0, 1), (1, 0), (1, 2)]
    assert li.names(li.top_k(v, 2)) == ["0.1", "1.0"]
    assert li.overlap([(0, 1), (1, 0)], [(1, 0), (0, 2)]) == 1
    rng = np.random.default_rng(0)
    n, k = 40, 5
    sims = [
        len(set(rng.choice(n, k, replace=False)) & set(rng.choice(n, k, replace=False)))
        for _ in range(4000)
    ]
    assert abs(np.mean(sims) - li.chance_overlap(k, n)) < 0.03


def test_at_picks_heads_from_an_interval():
    iv = li.t_interval(np.arange(24, dtype=float).reshape(4, 2, 3))
    sub = li.at(iv, [(1, 2), (0, 0)])
    assert np.allclose(sub.mean, [iv.mean[1, 2], iv.mean[0, 0]]) and sub.n == 4
