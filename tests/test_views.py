"""The derived views: first-reached rows, future-effect profiles, similarity, prefix stability."""

import numpy as np
import pytest
import torch

import residual_widgets as rw
from residual_widgets import views
from residual_widgets.tiny import random_ids, tiny_model

from conftest import tiny_lm


def test_first_reached_is_one_row_per_hop_under_a_sliding_window():
    lm = rw.load_model(*tiny_model("mistral", n_layers=3, sliding_window=4))
    sess = rw.Session(lm, random_ids(16, lm.vocab_size, seed=1))
    eff = sess.ablate((0, 2))
    first = views.first_reached(eff.resid_delta)
    assert list(first[:2]) == [-1, -1] and first[2] == 0
    # a window of 4 tokens: 3 positions further per hop, one row per hop; L = 3 hops at most
    for j in range(3, 16):
        hops = -(-(j - 2) // 3)
        assert first[j] == (hops if hops <= 3 else -1), (j, first)


def test_first_reached_with_full_attention():
    sess = rw.Session(tiny_lm("llama"), random_ids(10, 300, seed=1))
    first = views.first_reached(sess.ablate((1, 4)).resid_delta)
    assert list(first) == [-1] * 4 + [1] + [2] * 5
    assert list(views.first_reached(np.zeros((3, 2)))) == [-1, -1]


def test_future_profile_by_distance():
    kl = np.zeros((2, 4, 4), np.float32)
    kl[0, 1, 1], kl[0, 1, 3] = 2.0, 1.0      # cell (0, 1): next token 2.0, 2 ahead 1.0
    kl[0, 2, 2], kl[0, 2, 3] = 4.0, 3.0      # cell (0, 2): next token 4.0, 1 ahead 3.0
    prof = views.future_profile(kl, 0, agg="mean")
    assert prof.value[0] == pytest.approx((0 + 2 + 4 + 0) / 4)
    assert prof.value[1] == pytest.approx((0 + 0 + 3) / 3)
    assert prof.value[2] == pytest.approx((0 + 1) / 2)
    assert list(prof.count) == [4, 3, 2, 1]
    mx = views.future_profile(kl, [(0, 1), (0, 2)], agg="max")
    assert list(mx.value[:3]) == [4.0, 3.0, 1.0] and np.isnan(mx.value[3])
    assert mx.next_token == 4.0 and mx.far_future == 4.0 and mx.far_share == 0.5
    assert prof.figure().data[0].y is not None
    with pytest.raises(ValueError, match="agg"):
        views.future_profile(kl, 0, agg="median")


def test_similarity_matrix_and_by_distance():
    resid = torch.randn(3, 5, 8)
    resid[1] = torch.ones(5, 8)            # one row where all positions are the same direction
    sim, by_d = views.similarity(resid)
    assert sim.shape == (3, 5, 5) and by_d.shape == (3, 5)
    np.testing.assert_allclose(np.diagonal(sim, axis1=1, axis2=2), 1.0, atol=1e-6)
    np.testing.assert_allclose(sim[1], 1.0, atol=1e-6)
    a, b = resid[0, 0], resid[0, 3]
    assert sim[0, 0, 3] == pytest.approx(float(torch.cosine_similarity(a, b, dim=0)), abs=1e-6)
    assert by_d[0, 4] == pytest.approx(sim[0, 0, 4])


def test_prefix_is_bit_identical_whatever_follows():
    lm = tiny_lm("gpt2")
    ids = random_ids(20, lm.vocab_size, seed=4)
    res = views.prefix_stability(lm, ids[:8], ids[8:], random_ids(12, lm.vocab_size, seed=9))
    assert np.all(res["other_suffix"] == 0.0)
    assert np.all(res["appended"] < 1e-5)
    with pytest.raises(ValueError, match="same token length"):
        views.prefix_stability(lm, ids[:8], ids[8:], ids[8:10])
