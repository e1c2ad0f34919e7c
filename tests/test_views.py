"""The derived views (first-reached rows, future-effect profiles, similarity, prefix stability,
position vs content) and the lecture helpers (prompt corpus, batched residuals, intervals,
untrained twin, lookahead terms, block-restricted knockout)."""

import numpy as np
import pytest
import torch

import residual_widgets as rw
from residual_widgets import lecture as lec
from residual_widgets import views
from residual_widgets.tiny import random_ids, tiny_model

from helpers import tiny_lm


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
    kl[0, 1, 1], kl[0, 1, 3] = 2.0, 1.0  # cell (0, 1): next token 2.0, 2 ahead 1.0
    kl[0, 2, 2], kl[0, 2, 3] = 4.0, 3.0  # cell (0, 2): next token 4.0, 1 ahead 3.0
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
    resid[1] = torch.ones(5, 8)  # one row where all positions are the same direction
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


# ---- position vs content ------------------------------------------------------------------------
def _planted(N=24, R=3, P=12, d=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(N, R, P, d, generator=g)
    u = torch.zeros(d)
    u[5] = 1.0  # a constant direction in one "massive" dimension
    v = torch.randn(N, 1, 1, d, generator=g)  # a per-prompt direction shared by its positions
    x = noise.clone()
    x[:, 1] += 40.0 * u  # row 1: planted constant direction
    x[:, 2] += 2.0 * v[:, 0]  # row 2: planted per-prompt content
    return x


def test_position_content_attributes_a_planted_constant_to_the_shared_part():
    pc = views.position_content(_planted())
    assert pc.massive_dims.tolist() == [5]  # found, and only it
    assert pc.massive_abs[1, 0] > 30 and pc.median_abs[1] < 1.5
    np.testing.assert_allclose(pc.energy.sum(-1), 1.0, atol=1e-5)  # parts are orthogonal
    assert pc.energy[1, 0] > 0.9 and pc.energy[0, 0] < 0.05  # the constant is shared
    assert pc.energy_no_massive[1, 0] < 0.05  # and lives in the massive dim
    far = {k: pc.far(k).mean(0) for k in pc.KINDS}
    assert far["raw"][1] > 0.9  # the naive similarity...
    for k in ("no_massive", "centred", "content", "content_other"):
        assert abs(far[k][1]) < 0.05, k  # ...is gone once removed
    assert abs(pc.excess()[:, 1].mean()) < 0.03
    assert abs(far["raw"][0]) < 0.05  # pure noise row: nothing


def test_position_content_keeps_a_planted_per_prompt_direction_as_content():
    pc = views.position_content(_planted())
    far = {k: pc.far(k).mean(0) for k in pc.KINDS}
    assert far["content"][2] > 0.6  # persists within a prompt
    assert abs(far["content_other"][2]) < 0.1  # but not across prompts
    assert pc.excess()[:, 2].mean() > 0.6
    assert pc.energy[2, 2] > 0.9  # it is content, not shared


def test_position_content_position_part_and_inputs():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 2, 6, 16, generator=g)
    # one vector per position, in every prompt, well above the per-prompt noise; centred over
    # positions, so none of it is the shared (all-position) part: the known answer is that the
    # position part holds ≈ 100 / (100 + 1) of the energy
    planted = 10.0 * torch.randn(1, 6, 16, generator=g)
    x[:, 1] += planted - planted.mean(dim=1, keepdim=True)
    pc = views.position_content(x, first=0, massive_dims=[])
    assert pc.energy[1, 1] > 0.9 and pc.energy[0, 1] < 0.2
    assert pc.massive_dims.tolist() == [] and pc.distance.tolist() == [1, 2, 3, 4, 5]
    assert abs(pc.far("content", 1).mean(0)[1]) < 0.1  # position part removed
    assert views.position_content(x, max_distance=2).sim["raw"].shape == (40, 2, 2)
    fig = pc.figure(row=1)
    assert len(fig.data) > 5
    with pytest.raises(ValueError, match="3 prompts"):
        views.position_content(x[:2])


def test_position_content_for_a_session_uses_the_corpus_at_the_prompts_length():
    lm = tiny_lm("gpt2")
    sess = rw.Session(lm, "When Mary and John went to the store, John gave a drink to")
    pc = lec.position_content_for(sess, n_prompts=20)
    P = min(max(sess.n_positions, 8), 24)
    assert (pc.n_prompts, pc.n_tokens, pc.first) == (20, P, 1)
    # the same numbers as the decomposition of those prompts' residuals
    ref = views.position_content(lec.residuals(lm, lec.prompt_ids(lm, n=20, length=P)))
    for k in pc.KINDS:
        np.testing.assert_array_equal(pc.sim[k], ref.sim[k])
    np.testing.assert_array_equal(pc.energy, ref.energy)
    assert lec.position_content_for(lm, n_prompts=5, length=6).n_tokens == 6
    short = rw.Session(lm, "When Mary went")  # 3 tokens: clamped up to 8
    assert lec.position_content_for(short, n_prompts=4).n_tokens == 8
    with pytest.raises(ValueError, match="fewer prompts"):
        lec.position_content_for(lm, n_prompts=500)


def test_position_content_payload_shapes_dtypes_and_values():
    from residual_widgets import _codec, _payloads

    pc = views.position_content(_planted(N=20, R=3, P=12))
    pay = _payloads.position_content_payload(pc)
    dec = {k: _codec.decode(v) for k, v in pay.items() if isinstance(v, dict)}
    R, D, K, M = 3, 10, len(pc.KINDS), len(pc.massive_dims)
    assert pay["kinds"] == list(pc.KINDS) and M == 1
    shapes = {
        "massive_dims": ((M,), "int32"),
        "massive_abs": ((R, M), "float32"),
        "median_abs": ((R,), "float32"),
        "energy": ((R, 3), "float32"),
        "energy_no_massive": ((R, 3), "float32"),
        "distance": ((D,), "int32"),
        "mean": ((K, R, D), "float32"),
        "lo": ((K, R, D), "float32"),
        "hi": ((K, R, D), "float32"),
    }
    assert set(dec) == set(shapes)
    for k, (shape, dtype) in shapes.items():
        assert dec[k].shape == shape and str(dec[k].dtype) == dtype, k
        assert pay[k]["dtype"] == dtype
    assert (pay["n_prompts"], pay["n_tokens"], pay["first"], pay["conf"]) == (20, 13 - 1, 1, 0.95)
    np.testing.assert_array_equal(dec["massive_dims"], pc.massive_dims)
    np.testing.assert_allclose(dec["energy"], pc.energy, rtol=1e-6)
    np.testing.assert_allclose(dec["massive_abs"], pc.massive_abs, rtol=1e-6)
    for j, kind in enumerate(pc.KINDS):
        x = pc.sim[kind].astype(np.float64)  # [N, R, D]
        mean = x.mean(0)
        half = lec.t_quantile(0.975, 19) * x.std(0, ddof=1) / np.sqrt(20)
        np.testing.assert_allclose(dec["mean"][j], mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(dec["lo"][j], mean - half, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(dec["hi"][j], mean + half, rtol=1e-5, atol=1e-6)
    assert np.all(dec["lo"] < dec["mean"]) and np.all(dec["mean"] < dec["hi"])
    # the planted constant in row 1: raw similarity high, content similarity near 0
    assert dec["mean"][0, 1].min() > 0.9 and np.abs(dec["mean"][3, 1]).max() < 0.1


def test_widget_position_content_view_on_the_worker():
    import threading

    from residual_widgets import _codec
    from residual_widgets.explore import explore

    hf, tok = tiny_model("gpt2", n_layers=2)
    w = explore("When Mary and John went to the store", model=rw.load_model(hf, tok), cell=None)
    w.send = lambda *a, **k: None
    w.wait()
    threads = []
    real = lec.position_content_for

    def spy(sess, **kw):
        threads.append(threading.current_thread().name)
        return real(sess, **kw)

    try:
        lec.position_content_for = spy
        w.view = "position_content"
        w.view = "map"
        w.view = "position_content"  # asked again before the first is done
        w.wait(sweep=False)
    finally:
        lec.position_content_for = real
    assert threads == ["residual-widgets-jobs"]  # computed on the worker, once
    pc = w.current_position_content
    ref = real(w.session)
    np.testing.assert_array_equal(pc.sim["content"], ref.sim["content"])
    np.testing.assert_allclose(
        _codec.decode(w.position_content["mean"])[3], ref.sim["content"].mean(0), rtol=1e-5
    )
    assert w.session.n_positions == 8
    assert w.position_content["n_prompts"] == 24 and w.position_content["n_tokens"] == 8
    w.view = "map"
    w.view = "position_content"  # shown again: not recomputed
    w.wait(sweep=False)
    assert w.current_position_content is pc and w.error == ""
    w.close()


# ---- lecture helpers -----------------------------------------------------------------------------


def test_prompt_corpus_is_shipped_and_fixed():
    both = lec.load_prompts()
    assert len(both) == 128 and len(set(both)) == 128
    md, su = lec.load_prompts("moby_dick"), lec.load_prompts("sotu")
    assert both[0] == md[0] and both[1] == su[0] and len(lec.load_prompts(n=20)) == 20
    assert all(24 <= len(p.split()) <= 40 for p in both)
    assert lec.PROMPTS_FILE.stat().st_size < 100_000
    with pytest.raises(ValueError):
        lec.load_prompts("bible")


def test_prompt_ids_and_shuffle():
    lm = tiny_lm("gpt2")
    ids = lec.prompt_ids(lm, n=5, length=10)
    assert len(ids) == 5 and {len(x) for x in ids} == {10}
    sh = lec.shuffled(ids, seed=1, keep_first=1)
    assert all(sorted(a) == sorted(b) and a[0] == b[0] for a, b in zip(ids, sh, strict=True))
    assert sh != ids and sh == lec.shuffled(ids, seed=1, keep_first=1)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_batched_residuals_equal_the_session_clean_run(family):
    lm = tiny_lm(family)
    ids = [random_ids(9, lm.vocab_size, seed=s) for s in range(3)]
    X = lec.residuals(lm, ids, batch=2)
    assert X.shape == (3, lm.n_layers + 1, 9, lm.d_model)
    for n in range(3):
        torch.testing.assert_close(X[n], rw.Session(lm, ids[n]).clean.resid, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="equal token lengths"):
        lec.residuals(lm, [ids[0], ids[1][:5]])


def test_batched_residuals_ignore_a_sweep_running_beside_them():
    """A widget's sweep steps the same blocks on another thread (the position/content view is
    computed while it runs): its block calls must not land among the recorded rows."""
    import threading

    lm = tiny_lm("llama")
    ids = [random_ids(9, lm.vocab_size, seed=s) for s in range(12)]
    want = lec.residuals(lm, ids, batch=1)
    sess = rw.Session(lm, random_ids(14, lm.vocab_size, seed=99))
    stop = threading.Event()

    def sweep():
        while not stop.is_set():
            sess.sweep(kind="knockout", keep_maps=False)  # steps blocks on 14-token inputs

    th = threading.Thread(target=sweep, daemon=True)
    th.start()
    try:
        for _ in range(3):
            torch.testing.assert_close(lec.residuals(lm, ids, batch=1), want)
    finally:
        stop.set()
        th.join(timeout=60)


def test_t_interval_matches_known_quantiles_and_covers():
    assert lec.t_quantile(0.975, 9) == pytest.approx(2.262, abs=2e-3)
    assert lec.t_quantile(0.975, 19) == pytest.approx(2.093, abs=1e-3)
    assert lec.t_quantile(0.975, 1000) == pytest.approx(1.962, abs=1e-3)
    g = np.random.default_rng(0)
    hits = sum(lec.t_interval(g.normal(1.0, 2.0, 20)).excludes(1.0) for _ in range(400))
    assert 5 <= hits <= 40  # ≈ 5% of 400 miss the true mean
    iv = lec.t_interval(np.ones((5, 3)) + np.arange(5)[:, None])
    assert np.allclose(iv.mean, 3.0) and np.all(iv.lo < 3) and np.all(iv.hi > 3)
    b = lec.bootstrap_interval(g.normal(0, 1, 50))
    assert b.lo < b.mean < b.hi and "n=50" in str(b)


def test_untrained_twin_has_the_same_shapes_and_fresh_weights():
    trained = rw.load_model("induction-2l")
    twin = lec.untrained_twin("induction-2l", seed=0)
    assert twin.n_layers == trained.n_layers and twin.d_model == trained.d_model
    assert twin.tokenizer(" t5 t6")["input_ids"] == trained.tokenizer(" t5 t6")["input_ids"]
    w0 = trained.hf.transformer.h[0].attn.c_attn.weight
    w1 = twin.hf.transformer.h[0].attn.c_attn.weight
    assert w0.shape == w1.shape and not torch.equal(w0, w1)
    again = lec.untrained_twin("induction-2l", seed=0).hf.transformer.h[0].attn.c_attn.weight
    assert torch.equal(w1, again)


def test_lookahead_terms_mean_not_sum():
    kl = np.zeros((2, 8))
    kl[0, 3], kl[0, 4:8] = 2.0, 1.0
    kl[1, 3] = 4.0
    t = lec.lookahead_terms(kl, 3)
    assert t["next"].tolist() == [2.0, 4.0] and t["far_mean"].tolist() == [1.0, 0.0]
    assert t["far_sum"].tolist() == [4.0, 0.0] and t["share"].tolist() == [4 / 6, 0.0]
    assert lec.lookahead_terms(kl, 3, window=2)["far_sum"].tolist() == [2.0, 0.0]
    assert lec.lookahead_terms(kl, 3, window=4, skip=1)["far_mean"].tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="runs past"):
        lec.lookahead_terms(kl, 3, window=5)


def test_write_effects_reads_later_only_through_attention():
    lm = tiny_lm("llama")
    sess = rw.Session(lm, random_ids(10, lm.vocab_size, seed=2))
    w = lec.write_effects(sess, 4)
    L = lm.n_layers
    assert w["attn_out"].shape == (L, 10) and w["resid0"].shape == (1, 10)
    for site in ("attn_out", "mlp_out"):
        assert np.all(w[site][:, :4] == 0.0) and np.all(w[site][:, 4] > 0)
        assert np.all(w[site][:-1, 5:] > 0)  # read later through attention...
        assert np.all(w[site][-1, 5:] < 1e-5)  # ...except the last block's (rounding)
        one = sess.ablate((1, 4), site=site).kl
        np.testing.assert_allclose(w[site][1], one, rtol=1e-3, atol=5e-6)


def test_knockout_in_chosen_blocks_only():
    lm = tiny_lm("llama")
    sess = rw.Session(lm, random_ids(10, lm.vocab_size, seed=2))
    L = lm.n_layers
    every = lec.knockout_blocks(sess, 3, range(L))
    ref = sess.intervene((0, 3), kind="knockout")
    np.testing.assert_allclose(every["kl"], ref.kl, rtol=1e-3, atol=1e-6)
    assert np.all(every["kl"][:4] == 0.0)  # position 3 itself intact
    last = lec.knockout_blocks(sess, 3, [L - 1])
    torch.testing.assert_close(last["resid"][:L], sess.clean.resid[:L], atol=1e-5, rtol=1e-5)
    assert np.all(last["kl"][:4] == 0.0) and last["kl"][4:].max() > 0


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_batched_zero_ablations_equal_single_interventions(family):
    lm = tiny_lm(family)
    ids = [random_ids(8, lm.vocab_size, seed=s) for s in range(3)]
    specs = [("resid", 0, 2), ("attn_out", 1, 3), ("mlp_out", 2, 5), ("resid", 2, 0)]
    out = lec.zero_ablation_kl(lm, ids, specs, chunk=6)
    assert out["kl"].shape == (3, 4, 8) and out["logprob_delta"].shape == (3, 4, 7)
    for n in range(3):
        sess = rw.Session(lm, ids[n])
        for k, (site, r, p) in enumerate(specs):
            eff = sess.ablate((r, p), site=site)
            np.testing.assert_allclose(out["kl"][n, k], eff.kl, rtol=1e-3, atol=1e-5)
            np.testing.assert_allclose(
                out["logprob_delta"][n, k], eff.logprob_delta, rtol=1e-3, atol=1e-5
            )
            assert np.all(out["kl"][n, k, :p] < 1e-6)
    with pytest.raises(ValueError, match="bad spec"):
        lec.zero_ablation_kl(lm, ids, [("resid", 3, 0)])


def test_bidirectional_control_leaks_and_is_removed_afterwards():
    lm = tiny_lm("llama")
    ids = random_ids(8, lm.vocab_size, seed=1)
    with lec.bidirectional(lm):
        eff = rw.Session(lm, ids).ablate((1, 4))
    assert np.count_nonzero(eff.resid_delta[2:, :4]) == 8  # outside the cone: changed
    eff = rw.Session(lm, ids).ablate((1, 4))
    assert np.all(eff.resid_delta[~eff.reachable] == 0.0)  # hook gone


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_ffn_hidden_is_private_and_the_mixing_control_is_caught(family):
    lm = tiny_lm(family)
    ids = [random_ids(8, lm.vocab_size, seed=s) for s in range(3)]
    cells = [(0, 2), (1, 5), (2, 3)]
    hid = lec.ffn_hidden_ablation(lm, ids, cells)
    mix = lec.ffn_hidden_ablation(lm, ids, cells, mix=0.5)
    for n, (k, i) in enumerate(cells):
        assert np.all(hid[n, : k + 1] == 0.0)
        assert np.nonzero(hid[n, k + 1])[0].tolist() == [i]
        assert i + 1 in np.nonzero(mix[n, k + 1])[0].tolist()
    with pytest.raises(ValueError, match="one"):
        lec.ffn_hidden_ablation(lm, ids, cells[:2])
