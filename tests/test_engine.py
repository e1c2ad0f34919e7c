"""Engine correctness on tiny random models of every family.

What is checked: the row definition against transformers' own hidden states, exact zeros outside
the causal cone for every kind and site, identity patching, the metric definitions, sweep = a
loop of single interventions, reproducible noise, and the mean over reference prompts.
"""

import numpy as np
import pytest
import torch

import residual_widgets as rw
from residual_widgets.grid import reachable_mask
from residual_widgets.tiny import random_ids

from helpers import PROMPT, SOURCE

KIND_SITE = [
    ("zero", "resid"),
    ("mean", "resid"),
    ("noise", "resid"),
    ("patch", "resid"),
    ("zero", "attn_out"),
    ("noise", "mlp_out"),
    ("patch", "attn_out"),
    ("mean", "mlp_out"),
]


def test_rows_match_transformers_hidden_states(lm):
    sess = rw.Session(lm, PROMPT)
    with torch.no_grad():
        out = lm.hf(torch.tensor([sess.ids]), output_hidden_states=True)
    hs = out.hidden_states
    for k in range(lm.n_layers):  # transformers' hidden_states[k] is the input of block k
        assert torch.equal(sess.clean.resid[k], hs[k][0]), f"row {k}"
    # transformers applies the final norm to its last hidden state; we keep row L un-normed
    assert torch.allclose(lm.final_norm(sess.clean.resid[-1]), hs[-1][0], atol=1e-6)
    assert torch.equal(sess.clean.logits, out.logits[0])
    assert sess.n_rows == lm.n_layers + 1 and sess.clean.resid.shape[0] == sess.n_rows


def test_effect_shapes_and_dtypes(gpt2):
    sess = rw.Session(gpt2, PROMPT, logit_diff=(" Mary", " John"))
    eff = sess.ablate((1, 3))
    R, P = sess.n_rows, sess.n_positions
    assert eff.resid_delta.shape == (R, P) and eff.resid_delta.dtype == np.float32
    assert eff.kl.shape == (P,) and eff.kl.dtype == np.float32
    assert eff.logprob_delta.shape == (P - 1,) and eff.logprob_delta.dtype == np.float32
    assert isinstance(eff.logit_diff, float) and isinstance(eff.logit_diff_clean, float)
    assert eff.resid_delta[1, 3] == pytest.approx(1.0)  # zeroing: ||0 - h|| / ||h|| = 1
    assert eff.resid_delta[2:, 3:].min() > 0  # the cone is really affected


@pytest.mark.parametrize("kind,site", KIND_SITE)
def test_exact_zero_outside_cone_single_and_set(lm, kind, site):
    sess = rw.Session(lm, PROMPT, source=SOURCE)
    L, P = lm.n_layers, sess.n_positions
    for cells in ([(1, 4)], [(0, 0)], [(L - 1, P - 1)], [(1, 6), (2, 2), (0, 9)]):
        eff = sess.intervene(cells, kind=kind, site=site)
        reach = reachable_mask(cells, L, P, site)
        assert np.all(eff.resid_delta[~reach] == 0.0), (cells, kind, site)
        first = min(p for _, p in cells)
        assert np.all(eff.kl[:first] == 0.0)
        assert np.all(eff.logprob_delta[:first] == 0.0)
        if kind != "patch":  # patching may write a value equal to the clean one at some cells
            assert eff.resid_delta[reach].max() > 0


def test_top_row_reaches_only_its_own_output(gpt2):
    sess = rw.Session(gpt2, PROMPT)
    L = gpt2.n_layers
    eff = sess.ablate((L, 5))
    assert np.count_nonzero(eff.resid_delta) == 1 and eff.resid_delta[L, 5] > 0
    assert np.count_nonzero(eff.kl) == 1 and eff.kl[5] > 0


def test_patch_from_itself_changes_nothing(lm):
    sess = rw.Session(lm, PROMPT, source=PROMPT)
    eff = sess.patch([(0, 0), (1, 3), (lm.n_layers, 5)])
    assert not eff.resid_delta.any() and not eff.kl.any() and not eff.logprob_delta.any()
    for site in ("attn_out", "mlp_out"):
        assert not sess.patch((1, 2), site=site).resid_delta.any()
    atlas = sess.sweep(kind="patch")
    assert atlas.complete and not atlas.resid_delta.any() and not atlas.kl.any()


def test_metric_definitions_match_direct_computation(gpt2):
    sess = rw.Session(gpt2, PROMPT, logit_diff=(" Mary", " John"))
    eff = sess.ablate((1, 2), kind="zero")
    clean_lp = torch.log_softmax(sess.clean.logits, -1)
    h = sess.clean.resid.clone()

    # Recompute the intervened run with a plain torch hook, independent of nnsight.
    def out_hook(mod, args, out):
        t = out[0] if isinstance(out, tuple) else out
        t = t.clone()
        t[0, 2] = 0
        return (t, *out[1:]) if isinstance(out, tuple) else t

    hk = gpt2.blocks[0].register_forward_hook(out_hook)  # output of block 0 = row 1
    try:
        with torch.no_grad():
            new = gpt2.hf(torch.tensor([sess.ids]), output_hidden_states=True)
    finally:
        hk.remove()
    new_lp = torch.log_softmax(new.logits[0], -1)
    kl = (clean_lp.exp() * (clean_lp - new_lp)).sum(-1)
    np.testing.assert_allclose(eff.kl, kl.numpy(), atol=1e-6)
    nxt = torch.tensor(sess.ids[1:])
    lpd = new_lp[torch.arange(len(nxt)), nxt] - clean_lp[torch.arange(len(nxt)), nxt]
    np.testing.assert_allclose(eff.logprob_delta, lpd.numpy(), atol=1e-6)
    good, bad = sess.default_pair
    assert eff.logit_diff == pytest.approx(
        float(new.logits[0, -1, good] - new.logits[0, -1, bad]), abs=1e-5
    )
    rd = (new.hidden_states[2][0] - h[2]).norm(dim=-1) / h[2].norm(dim=-1)
    np.testing.assert_allclose(eff.resid_delta[2], rd.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kind,site", KIND_SITE)
def test_sweep_equals_loop_of_single_interventions(lm, kind, site):
    sess = rw.Session(lm, PROMPT, source=SOURCE, logit_diff=(" Mary", " John"))
    cone = sess.sweep(kind=kind, site=site, method="cone")
    assert cone.method == "cone" and cone.complete and cone.done.all()
    S = cone.done.shape[0]
    assert S == (lm.n_layers + 1 if site == "resid" else lm.n_layers)
    cells = [(n, i) for n in range(S) for i in range(sess.n_positions)]
    if lm.hf.config.model_type != "gpt2":  # every cell for GPT-2; corners + a sample elsewhere
        rng = np.random.default_rng(0)
        pick = rng.choice(len(cells), 8, replace=False)
        cells = sorted(
            {cells[0], cells[-1], (0, sess.n_positions - 1), (S - 1, 0), *[cells[j] for j in pick]}
        )
    for n, i in cells:
        if True:
            eff = sess.intervene((n, i), kind=kind, site=site)
            np.testing.assert_allclose(
                cone.resid_delta[n, i],
                eff.resid_delta,
                atol=2e-5,
                rtol=1e-4,
                err_msg=f"cell {(n, i)}",
            )
            np.testing.assert_allclose(cone.kl[n, i], eff.kl, atol=2e-5)
            np.testing.assert_allclose(cone.logprob_delta[n, i], eff.logprob_delta, atol=2e-5)
            assert cone.logit_diff[n, i] == pytest.approx(eff.logit_diff, abs=2e-5)
            reach = reachable_mask([(n, i)], lm.n_layers, sess.n_positions, site)
            assert np.all(cone.resid_delta[n, i][~reach] == 0.0)
            assert np.all(cone.kl[n, i, :i] == 0.0)


def test_noise_is_seeded_and_reproducible(gpt2):
    a = rw.Session(gpt2, PROMPT, seed=1).ablate((1, 3), kind="noise")
    b = rw.Session(gpt2, PROMPT, seed=1).ablate((1, 3), kind="noise")
    c = rw.Session(gpt2, PROMPT, seed=2).ablate((1, 3), kind="noise")
    assert np.array_equal(a.resid_delta, b.resid_delta)
    assert not np.array_equal(a.resid_delta, c.resid_delta)
    sess = rw.Session(gpt2, PROMPT, seed=1, noise_scale=3.0)
    # σ is the standard deviation of the embeddings (row 0) over the prompt, read here from
    # transformers itself, not from the code under test
    ids = gpt2.tokenizer(PROMPT, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        emb = gpt2.hf(torch.tensor([ids]), output_hidden_states=True).hidden_states[0][0]
    assert sess.sigma == pytest.approx(emb.std().item(), rel=1e-6)
    v = sess.values_for([(1, 3)], "noise", "resid")[0] - sess.clean.resid[1, 3]
    assert v.std().item() == pytest.approx(3.0 * emb.std().item(), rel=0.25)


def test_mean_uses_reference_prompts(gpt2):
    plain = rw.Session(gpt2, PROMPT)
    ref = rw.Session(gpt2, PROMPT, mean_reference=["the cat sat on the mat", "one two three"])
    v_plain = plain.values_for([(2, 1)], "mean", "resid")[0]
    assert torch.allclose(v_plain, plain.clean.resid[2].mean(0))
    other = rw.Session(gpt2, "the cat sat on the mat").clean.resid[2]
    third = rw.Session(gpt2, "one two three").clean.resid[2]
    want = torch.cat([plain.clean.resid[2], other, third]).mean(0)
    assert torch.allclose(ref.values_for([(2, 1)], "mean", "resid")[0], want, atol=1e-6)


def test_set_value_and_token_id_prompts(gpt2):
    ids = random_ids(12, gpt2.vocab_size, seed=3)
    sess = rw.Session(gpt2, ids)
    assert sess.ids == ids and sess.n_positions == 12
    v = np.ones(gpt2.d_model, np.float32)
    eff = sess.intervene((2, 4), kind="set", value=v)
    assert torch.allclose(eff.resid[2, 4], torch.ones(gpt2.d_model))
    assert np.array_equal(sess.intervene((2, 4), kind="set", value=v).resid_delta, eff.resid_delta)


def test_progress_cancel_and_memory_guard(gpt2):
    import threading

    sess = rw.Session(gpt2, PROMPT)
    seen = []
    atlas = sess.sweep(progress=lambda p: seen.append((p.done, p.total, p.position)))
    assert [s[2] for s in seen] == list(range(sess.n_positions))
    assert seen[-1][0] == seen[-1][1] == sess.n_rows * sess.n_positions
    cancel = threading.Event()

    def stop_after_three(p):
        if p.position == 2:
            cancel.set()

    part = sess.sweep(progress=stop_after_three, cancel=cancel)
    assert not part.complete and part.done[:, :3].all() and not part.done[:, 3:].any()
    np.testing.assert_array_equal(part.kl[:, :3], atlas.kl[:, :3])
    with pytest.raises(rw.SweepTooLarge, match="keep_maps=False"):
        sess.sweep(memory_budget=10_000, keep_maps=True)
    small = sess.sweep(memory_budget=40_000, keep_maps=False)
    assert small.resid_delta is None and small.complete and small.storage == "summary"
    np.testing.assert_allclose(small.kl, atlas.kl, atol=1e-6)


def test_memory_guard_chooses_float16_then_summary(gpt2):
    """Under a budget the float32 maps exceed, the sweep keeps float16 maps; under a smaller one,
    summaries only; under a tiny one it refuses. The choice is recorded in ``atlas.storage``."""
    from residual_widgets.sweep import estimate_bytes

    sess = rw.Session(gpt2, PROMPT)
    S, R, P = sess.n_rows, sess.n_rows, sess.n_positions
    full = sess.sweep()
    assert full.storage == "float32" and full.resid_delta.dtype == np.float32
    half = sess.sweep(memory_budget=estimate_bytes(S, R, P) - 1)
    assert half.storage == "float16" and half.resid_delta.dtype == np.float16
    np.testing.assert_allclose(half.resid_delta, full.resid_delta, rtol=1e-3, atol=1e-4)
    np.testing.assert_array_equal(half.kl, full.kl)
    summ = sess.sweep(memory_budget=estimate_bytes(S, R, P, map_bytes=2) - 1)
    assert summ.storage == "summary" and summ.resid_delta is None
    np.testing.assert_array_equal(summ.kl, full.kl)
    with pytest.raises(rw.SweepTooLarge, match="fewer rows"):
        sess.sweep(memory_budget=estimate_bytes(S, R, P, keep_maps=False) - 1)


@pytest.mark.parametrize(
    "kind,site", [("zero", "resid"), ("patch", "attn_out"), ("noise", "mlp_out"), ("mean", "resid")]
)
def test_batch_sweep_matches_cone_and_is_exact_outside_the_cone(gpt2, kind, site):
    """Many cells per trace (the remote sweep path) agrees with the cone sweep, and its cells
    outside each source's cone are exactly zero."""
    sess = rw.Session(gpt2, PROMPT, source=SOURCE, logit_diff=(" Mary", " John"))
    cone = sess.sweep(kind, site)
    batch = sess.sweep(kind, site, method="batch", cells_per_request=5)
    assert batch.method == "batch" and batch.complete
    np.testing.assert_allclose(batch.resid_delta, cone.resid_delta, atol=2e-5)
    np.testing.assert_allclose(batch.kl, cone.kl, atol=5e-5)
    np.testing.assert_allclose(batch.logprob_delta, cone.logprob_delta, atol=5e-5)
    np.testing.assert_allclose(batch.logit_diff, cone.logit_diff, atol=5e-5)
    S, P = batch.done.shape
    for n in range(S):
        for i in range(P):
            outside = ~reachable_mask([(n, i)], sess.n_layers, P, site)
            assert (batch.resid_delta[n, i][outside] == 0).all(), (n, i)
    assert (batch.kl[:, 1:, 0] == 0).all()  # position 0 is before every source i >= 1


def test_batch_sweep_streams_and_cancels(gpt2):
    import threading

    sess = rw.Session(gpt2, PROMPT)
    cancel, seen = threading.Event(), []

    def progress(p):
        seen.append(p.done)
        if p.done >= 8:
            cancel.set()

    part = sess.sweep(method="batch", cells_per_request=4, progress=progress, cancel=cancel)
    assert seen[:2] == [4, 8] and not part.complete and part.done.sum() == 8


def test_sweep_subset_and_loop_method(gpt2):
    sess = rw.Session(gpt2, PROMPT)
    sub = sess.sweep(rows=[1, 2], positions=[0, 5])
    assert sub.done.sum() == 4 and sub.done[1, 0] and sub.done[2, 5] and not sub.done[0, 0]
    loop = sess.sweep(rows=[1, 2], positions=[0, 5], method="loop")
    assert loop.method == "loop"
    np.testing.assert_allclose(sub.kl, loop.kl, atol=2e-5)


def test_logit_lens_top_tokens(gpt2):
    sess = rw.Session(gpt2, PROMPT)
    top = sess.logit_lens((gpt2.n_layers, 3), k=5)
    assert len(top) == 5 and all(isinstance(t, str) for t, _ in top)
    probs = torch.softmax(sess.clean.logits[3], -1)
    assert top[0][1] == pytest.approx(float(probs.max()), rel=1e-5)
    eff = sess.ablate((0, 3))
    assert sess.logit_lens((1, 3), effect=eff) != sess.logit_lens((1, 3))


def test_figures_carry_the_numbers(gpt2):
    sess = rw.Session(gpt2, PROMPT, logit_diff=(" Mary", " John"))
    eff = sess.ablate((1, 3))
    fig = eff.figure()
    heat = [t for t in fig.data if t.name == "resid_delta"][0]
    np.testing.assert_array_equal(np.asarray(heat.z, dtype=np.float32), eff.resid_delta)
    assert any(t.name == "unreachable" for t in fig.data)
    atlas = sess.sweep(rows=[0, 1], positions=[0, 1])
    ofig = atlas.figure()
    z = np.asarray(ofig.data[0].z, dtype=np.float64)
    np.testing.assert_allclose(z[0, 0], atlas.logit_diff[0, 0], rtol=1e-6)
    assert np.isnan(z[3, 3])  # not swept: not drawn
    assert "row" in eff.summary()


def test_remote_local_path_is_bit_identical(gpt2, server_without_our_package):
    """nnsight's remote serialization path, run in-process with this package unimportable while
    deserializing, gives the same bits as local: single interventions and both sweep methods."""
    local = rw.Session(gpt2, PROMPT, source=SOURCE, logit_diff=(" Mary", " John"))
    remote = rw.Session(gpt2, PROMPT, source=SOURCE, logit_diff=(" Mary", " John"), remote="local")
    assert torch.equal(local.clean.resid, remote.clean.resid)
    for kind, site in (("zero", "resid"), ("patch", "attn_out"), ("noise", "mlp_out")):
        a = local.intervene([(1, 2), (2, 5)], kind=kind, site=site)
        b = remote.intervene([(1, 2), (2, 5)], kind=kind, site=site)
        assert np.array_equal(a.resid_delta, b.resid_delta) and np.array_equal(a.kl, b.kl)
        assert a.logit_diff == b.logit_diff
    for kind, site in (("zero", "resid"), ("patch", "mlp_out")):
        ra = remote.sweep(kind, site, cells_per_request=7)
        la = local.sweep(kind, site, method="batch", cells_per_request=7)
        assert ra.method == "batch" and ra.complete
        for f in ("resid_delta", "kl", "logprob_delta", "logit_diff"):
            assert np.array_equal(getattr(ra, f), getattr(la, f)), f
    ra = remote.sweep(rows=[0, 2], positions=[1, 4], method="loop")
    la = local.sweep(rows=[0, 2], positions=[1, 4], method="loop")
    assert ra.method == "loop" and np.array_equal(ra.kl, la.kl)
    assert len(server_without_our_package) > 10  # every trace went the remote way
    with pytest.raises(ValueError, match="runs locally"):
        remote.sweep(method="cone")


def test_sessions_sharing_a_model_across_threads(gpt2):
    """A widget's background thread and the notebook's main thread may use one model at once
    (two explore() calls): traces must not interleave, results must not change."""
    import threading

    a = rw.Session(gpt2, PROMPT)
    want = a.sweep(method="loop")
    got, errors = {}, []

    def background():
        try:
            got["atlas"] = a.sweep(method="loop")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    th = threading.Thread(target=background)
    th.start()
    effs = []
    for _ in range(5):
        b = rw.Session(gpt2, SOURCE, source=PROMPT)
        effs.append(b.patch((1, 9)))
    th.join()
    assert not errors
    np.testing.assert_array_equal(got["atlas"].kl, want.kl)
    assert all(np.array_equal(e.kl, effs[0].kl) for e in effs)


def test_cone_sweep_in_lock_slices_gives_the_same_atlas(gpt2, monkeypatch):
    """Long prompts hold the model lock for a bounded slice of cone work at a time (so a click
    waits little); slicing a position's rows changes no number and reports progress per slice."""
    from residual_widgets import cone

    sess = rw.Session(gpt2, PROMPT, logit_diff=(" Mary", " John"))
    whole = sess.sweep()
    assert cone.row_chunks([0, 1, 2, 3], 3, 5, limit=15) == [[0], [1], [2, 3]]
    monkeypatch.setattr(cone, "LOCK_SLICE", 1)  # one row per slice
    seen = []
    sliced = sess.sweep(progress=lambda p: seen.append(p.done))
    assert len(seen) == sess.n_rows * sess.n_positions and sliced.complete
    for f in ("resid_delta", "kl", "logprob_delta", "logit_diff"):
        np.testing.assert_allclose(getattr(sliced, f), getattr(whole, f), atol=2e-5, err_msg=f)
