"""Attribution patching (Session.attribute): the first-order estimate of every cell's effect.

What is checked: the estimate equals an independent reference — (a' − a) · ∂M/∂a computed with
plain torch hooks and autograd on the HF model, no nnsight — for every family, site and kind; it
is exact where the metric is affine in the cell (final norm replaced by the identity: the logit
difference is affine in the top row and in the last block's MLP write at the last position); the
error of a small intervention shrinks quadratically with its size; patching from the prompt
itself is exactly 0; the block correction with every block exact is the exact sweep; the
remote path is bit-identical and takes one request; bad input gets a clear error.
"""

import numpy as np
import pytest
import torch

import residual_widgets as rw
from residual_widgets.attribution import agreement, pearson, spearman
from residual_widgets.models import _get, load_model
from residual_widgets.tiny import FAMILIES, tiny_model

from helpers import PROMPT, SOURCE, tiny_lm

PAIR = (" Mary", " John")
KINDS = ("zero", "mean", "noise", "patch")
SITES = ("resid", "attn_out", "mlp_out")


def _reference(sess, kind: str, site: str):
    """``(a' − a) · ∂M/∂a`` for both metrics, computed without this package's tracing: torch
    hooks catch the activations of one plain HF forward pass, ``torch.autograd.grad`` gives
    the gradients, and ``a'`` is what the session's interventions write."""
    lm, L = sess.model, sess.n_layers
    acts, hooks = [], []

    def keep(mod, args, out):
        acts.append(out[0] if isinstance(out, tuple) else out)

    if site == "resid":

        def pre(mod, args, kwargs):
            acts.append(args[0] if args else kwargs["hidden_states"])

        hooks.append(lm.blocks[0].register_forward_pre_hook(pre, with_kwargs=True))
        hooks += [b.register_forward_hook(keep) for b in lm.blocks]
    else:
        hooks += [_get(lm.hf, lm.write_path(site, k)).register_forward_hook(keep) for k in range(L)]
    try:
        with torch.enable_grad():
            logits = lm.hf(torch.tensor([sess.ids])).logits[0]
            good, bad = sess.default_pair
            ld = logits[-1, good] - logits[-1, bad]
            nxt = torch.tensor(sess.ids[1:])
            lp = torch.log_softmax(logits[:-1], -1)[torch.arange(len(nxt)), nxt].sum()
            g_ld = torch.autograd.grad(ld, acts, retain_graph=True)
            g_lp = torch.autograd.grad(lp, acts)
    finally:
        for h in hooks:
            h.remove()
    S, P = len(acts), sess.n_positions
    a = torch.stack([t[0].detach() for t in acts])  # [S, P, d]
    new = sess.values_for([(n, i) for n in range(S) for i in range(P)], kind, site)
    delta = new.reshape(S, P, -1) - a
    return (
        (delta * torch.stack([g[0] for g in g_ld])).sum(-1).numpy(),
        (delta * torch.stack([g[0] for g in g_lp])).sum(-1).numpy(),
    )


@pytest.mark.parametrize("site", SITES)
def test_estimate_equals_an_independent_autograd_reference(lm, site):
    sess = rw.Session(lm, PROMPT, source=SOURCE, logit_diff=PAIR, noise_scale=0.5)
    for kind in KINDS if lm.hf.config.model_type == "gpt2" else ("zero", "patch"):
        attr = sess.attribute(kind, site)
        ref_ld, ref_lp = _reference(sess, kind, site)
        scale = max(np.abs(ref_ld).max(), np.abs(ref_lp).max())
        np.testing.assert_allclose(
            attr.logit_diff_delta,
            ref_ld,
            rtol=1e-4,
            atol=1e-5 * scale,
            err_msg=f"{kind} {site} logit diff",
        )
        np.testing.assert_allclose(
            attr.logprob_delta, ref_lp, rtol=1e-4, atol=1e-5 * scale, err_msg=f"{kind} {site} log p"
        )
        assert np.abs(ref_ld).max() > 0 and np.abs(ref_lp).max() > 0


def test_shapes_values_and_figure(gpt2):
    sess = rw.Session(gpt2, PROMPT, source=SOURCE, logit_diff=PAIR)
    R, P, L = sess.n_rows, sess.n_positions, gpt2.n_layers
    for site, S in (("resid", R), ("attn_out", L), ("mlp_out", L)):
        attr = sess.attribute("zero", site)
        assert attr.method == "atp" and attr.kind == "zero" and attr.site == site
        for f in ("logit_diff", "logit_diff_delta", "logprob_delta"):
            v = getattr(attr, f)
            assert v.shape == (S, P) and v.dtype == np.float32 and np.isfinite(v).all(), f
        clean = sess.clean.logits[-1]
        assert attr.logit_diff_clean == pytest.approx(
            float(clean[sess.default_pair[0]] - clean[sess.default_pair[1]]), abs=1e-5
        )
        np.testing.assert_allclose(
            attr.logit_diff, attr.logit_diff_clean + attr.logit_diff_delta, atol=1e-6
        )
    # the top row reaches the last position's logits only from the last position
    attr = sess.attribute("zero", "resid")
    assert not attr.logit_diff_delta[L, :-1].any() and attr.logit_diff_delta[L, -1] != 0
    fig = attr.figure()
    np.testing.assert_allclose(np.asarray(fig.data[0].z, np.float64), attr.logit_diff, rtol=1e-6)
    assert "estimated" in fig.layout.title.text
    fig = attr.figure("logprob_delta")
    np.testing.assert_allclose(np.asarray(fig.data[0].z, np.float64), attr.logprob_delta)
    no_pair = rw.Session(gpt2, PROMPT).attribute("mean", "mlp_out")
    assert no_pair.logit_diff is None and no_pair.logit_diff_delta is None
    assert no_pair.figure().data[0].z is not None  # falls back to Δ log p
    with pytest.raises(ValueError, match="logit_diff"):
        no_pair.figure("logit_diff")
    one = rw.Session(gpt2, "Mary", logit_diff=PAIR).attribute()  # one token: no next token
    assert one.logprob_delta.shape == (R, 1) and not one.logprob_delta.any()
    assert one.logit_diff_delta[0, 0] != 0


def _affine_model(family: str):
    """A tiny model whose final norm is the identity (and without a logit soft-cap), so the
    logit difference at the last position is affine in the final residual there."""
    kw = {"final_logit_softcapping": None} if family.startswith("gemma") else {}
    hf, tok = tiny_model(family, n_layers=2, seed=1, initializer_range=0.1, **kw)
    parent, name = load_model(hf, tok).final_norm_path.rsplit(".", 1)
    setattr(_get(hf, parent), name, torch.nn.Identity())
    return load_model(hf, tok)


@pytest.mark.parametrize("family", FAMILIES)
def test_exact_where_the_metric_is_affine_in_the_cell(family):
    lm = _affine_model(family)
    sess = rw.Session(lm, PROMPT, source=SOURCE, logit_diff=PAIR)
    L, P = lm.n_layers, sess.n_positions
    # the top residual row and the last block's MLP write (added straight into it, in every
    # family: sequential, parallel-residual and Gemma's post-norm blocks) at the last position
    for site, row in (("resid", L), ("mlp_out", L - 1)):
        for kind in ("zero", "mean", "patch"):
            attr = sess.attribute(kind, site)
            eff = sess.intervene((row, P - 1), kind=kind, site=site)
            scale = abs(eff.logit_diff - eff.logit_diff_clean)
            assert scale > 1e-3, (kind, site)
            assert attr.logit_diff[row, P - 1] == pytest.approx(
                eff.logit_diff, abs=1e-6 + 1e-4 * scale
            )


@pytest.mark.parametrize("family", ["gpt2", "llama", "neox"])
def test_small_interventions_agree_to_second_order(family):
    """Noise of size ε: the effect is O(ε) and the first-order estimate's error O(ε²), so a 4×
    smaller ε leaves about 1/16 of the error (a linear error would leave 1/4)."""
    lm = tiny_lm(family)
    for site in SITES:
        errs = []
        for eps in (0.04, 0.01):
            sess = rw.Session(lm, PROMPT, logit_diff=PAIR, noise_scale=eps)
            attr = sess.attribute("noise", site)
            atlas = sess.sweep(kind="noise", site=site, keep_maps=False)
            exact = {
                "ld": atlas.logit_diff - atlas.logit_diff_clean,
                "lp": atlas.logprob_delta.sum(-1),
            }
            est = {"ld": attr.logit_diff_delta, "lp": attr.logprob_delta}
            err = {m: np.abs(est[m] - exact[m]).max() for m in exact}
            for m in exact:
                assert err[m] <= 0.1 * np.abs(exact[m]).max(), (site, eps, m)
            errs.append(err)
        for m in ("ld", "lp"):
            assert errs[1][m] <= errs[0][m] / 8, (site, m, errs)


def test_patch_from_itself_is_exactly_zero(lm):
    sess = rw.Session(lm, PROMPT, source=PROMPT, logit_diff=PAIR)
    for site in SITES:
        attr = sess.attribute("patch", site)
        assert not attr.logit_diff_delta.any() and not attr.logprob_delta.any(), site
        assert attr.exact.all()
        assert np.array_equal(
            attr.logit_diff, np.full_like(attr.logit_diff, np.float32(attr.logit_diff_clean))
        )


def test_patch_is_exactly_zero_before_the_first_differing_token(gpt2):
    sess = rw.Session(gpt2, PROMPT, source=SOURCE, logit_diff=PAIR)
    first = next(
        i for i, (a, b) in enumerate(zip(sess.ids, sess.source_ids, strict=True)) if a != b
    )
    for site in SITES:
        attr = sess.attribute("patch", site)
        assert not attr.logit_diff_delta[:, :first].any() and attr.exact[:, :first].all()
        assert attr.logit_diff_delta[:, first:].any()


def test_all_families_run_every_site_and_kind(lm):
    sess = rw.Session(lm, PROMPT, source=SOURCE, logit_diff=PAIR)
    for site in SITES:
        for kind in ("zero", "mean", "noise", "patch", "resample"):
            attr = sess.attribute(kind, site)
            assert np.isfinite(attr.logit_diff).all() and np.isfinite(attr.logprob_delta).all()
            assert np.abs(attr.logprob_delta).max() > 0, (kind, site)


@pytest.mark.parametrize("site", SITES)
def test_block_correction_with_every_block_exact_is_the_sweep(lm, site):
    """``correction="block"`` computes ``depth`` blocks exactly, then linearises; with as many
    blocks as the model has, every cell reaches the top row exactly: the exact sweep."""
    sess = rw.Session(lm, PROMPT, source=SOURCE, logit_diff=PAIR)
    kind = {"resid": "zero", "attn_out": "patch", "mlp_out": "mean"}[site]
    atlas = sess.sweep(kind=kind, site=site, keep_maps=False)
    full = sess.attribute(kind, site, correction="block", depth=lm.n_layers)
    assert full.method == "atp+block" and full.depth == lm.n_layers and full.exact.all()
    np.testing.assert_allclose(full.logit_diff, atlas.logit_diff, atol=5e-5)
    np.testing.assert_allclose(full.logprob_delta, atlas.logprob_delta.sum(-1), atol=5e-5)
    one = sess.attribute(kind, site, correction="block")  # depth 1: partly estimated
    L = lm.n_layers
    top = L if site == "resid" else L - 1  # these reach the top exactly
    assert one.exact[top].all() and not one.exact[: top - 1].all()
    np.testing.assert_allclose(one.logit_diff[top], atlas.logit_diff[top], atol=5e-5)


def test_block_correction_improves_whole_residual_zeroing(gpt2):
    sess = rw.Session(gpt2, PROMPT, logit_diff=PAIR)
    atlas = sess.sweep(kind="zero", keep_maps=False)
    plain = agreement(sess.attribute("zero"), atlas)
    block = agreement(sess.attribute("zero", correction="block"), atlas)
    for m in ("logit_diff", "logprob_delta"):
        assert block[m]["max_abs_error"] < plain[m]["max_abs_error"], m
        assert block[m]["spearman"] > plain[m]["spearman"], m


def test_remote_local_is_identical_and_one_request(lm, server_without_our_package):
    """nnsight's remote path, in-process and with this package unimportable on the 'server':
    bit-identical to local, one request per call (after the session's one-time lazy fetch of
    what the blocks wrote, which patch, mean and noise need and zero does not)."""
    calls = server_without_our_package
    local = rw.Session(lm, PROMPT, source=SOURCE, logit_diff=PAIR)
    remote = rw.Session(lm, PROMPT, source=SOURCE, logit_diff=PAIR, remote="local")
    for kind, site in (
        ("zero", "resid"),
        ("zero", "attn_out"),
        ("patch", "mlp_out"),
        ("noise", "resid"),
        ("mean", "attn_out"),
    ):
        remote.site_acts(site, "source")  # the one-time lazy fetches of the writes
        remote._mean(site)
        before = len(calls)
        b = remote.attribute(kind, site)
        assert len(calls) - before == 1, (kind, site)  # one traced request
        a = local.attribute(kind, site)
        for f in ("logit_diff", "logit_diff_delta", "logprob_delta", "exact"):
            assert np.array_equal(getattr(a, f), getattr(b, f)), (kind, site, f)
    fresh = rw.Session(lm, PROMPT, logit_diff=PAIR, remote="local")
    before = len(calls)
    fresh.attribute("zero", "mlp_out")  # zero needs nothing fetched first
    assert len(calls) - before == 1
    with pytest.raises(ValueError, match="locally"):
        remote.attribute(correction="block")


def test_frozen_weights_give_the_same_estimate():
    hf, tok = tiny_model("llama", n_layers=2, seed=3)
    lm = load_model(hf, tok)
    sess = rw.Session(lm, PROMPT, logit_diff=PAIR)
    want = sess.attribute("zero", "attn_out")
    for p in hf.parameters():
        p.requires_grad_(False)
    for site in SITES:
        got = sess.attribute("zero", site)
        if site == "attn_out":
            np.testing.assert_array_equal(got.logit_diff, want.logit_diff)
        assert np.abs(got.logprob_delta).max() > 0
    assert all(p.grad is None for p in hf.parameters())


def test_no_weight_gradients_are_left_behind(gpt2):
    rw.Session(gpt2, PROMPT, logit_diff=PAIR).attribute("zero", "mlp_out")
    assert all(p.grad is None for p in gpt2.hf.parameters())


def test_bad_input_gets_a_clear_error(gpt2):
    sess = rw.Session(gpt2, PROMPT, logit_diff=PAIR)
    with pytest.raises(ValueError, match="sess.intervene"):
        sess.attribute("set")
    with pytest.raises(ValueError, match="knockout"):
        sess.attribute("knockout")
    with pytest.raises(ValueError, match="unknown kind"):
        sess.attribute("ablate")
    with pytest.raises(ValueError, match="unknown site"):
        sess.attribute("zero", "mlp")
    with pytest.raises(ValueError, match="source"):
        sess.attribute("patch")
    with pytest.raises(ValueError, match="correction"):
        sess.attribute(correction="second-order")
    with pytest.raises(ValueError, match="depth"):
        sess.attribute(correction="block", depth=0)
    with pytest.raises(ValueError, match="one token|not one"):
        sess.attribute(logit_diff=(" Mary went", " John"))
    attr = sess.attribute()
    with pytest.raises(ValueError, match="identically 0"):
        attr.figure("kl")
    with pytest.raises(ValueError, match="unknown metric"):
        attr.figure("loss")
    other = sess.sweep(kind="mean", rows=[0], positions=[0, 1])
    with pytest.raises(ValueError, match="zero/resid but the atlas mean/resid"):
        agreement(attr, other)


def test_correlations_and_agreement():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert pearson(x, 2 * x + 1) == pytest.approx(1.0)
    assert spearman(x, np.exp(x)) == pytest.approx(1.0)  # monotone, not linear
    assert pearson(x, np.exp(x)) < 0.95
    assert spearman(x, -x) == pytest.approx(-1.0)
    assert spearman([1, 1, 2], [1, 1, 2]) == pytest.approx(1.0)  # ties share ranks
    assert np.isnan(pearson([1, 1, 1], [1, 2, 3]))


# ---- agreement with the exact sweep (agreement.py: the widget's scatter and outlines) --------
def _loop_ranks(x):
    """Average ranks by a plain loop over sorted runs (the reference for the vectorised one)."""
    x = np.asarray(x, float)
    order = np.argsort(x, kind="mergesort")
    out = np.empty(len(x))
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and x[order[j + 1]] == x[order[i]]:
            j += 1
        out[order[i : j + 1]] = (i + j) / 2
        i = j + 1
    return out


def test_vectorised_ranks_equal_the_loop_with_ties():
    from residual_widgets.agreement import ranks

    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 200):
        x = rng.integers(0, 5, n).astype(float)  # many ties
        np.testing.assert_array_equal(ranks(x), _loop_ranks(x))
        y = rng.normal(size=n)
        np.testing.assert_array_equal(ranks(y), _loop_ranks(y))


def test_compare_lists_the_worst_cells_over_done_cells_only():
    from residual_widgets.agreement import compare

    exact = np.arange(12, dtype=np.float32).reshape(3, 4)
    est = exact.copy()
    est[2, 1] += 9  # worst, but not done: must not be listed
    est[0, 3] -= 5
    est[1, 0] += 3
    est[2, 2] += 1
    done = np.ones((3, 4), bool)
    done[2, 1] = False
    res = compare(est, exact, done, k=3)
    assert res["worst"] == [[0, 3], [1, 0], [2, 2]]
    assert res["max_abs_error"] == pytest.approx(5.0) and res["n"] == 11
    e, x = est[done], exact[done]
    assert res["pearson"] == pytest.approx(np.corrcoef(e, x)[0, 1])
    assert res["spearman"] == pytest.approx(np.corrcoef(_loop_ranks(e), _loop_ranks(x))[0, 1])
    none = compare(est, exact, np.zeros((3, 4), bool))
    assert none["n"] == 0 and none["worst"] == [] and np.isnan(none["pearson"])


def test_agreement_of_a_partial_atlas_and_its_figure():
    """The agreement covers the cells swept so far; the figure's title carries its numbers and
    labels the worst cells."""
    sess = rw.Session(tiny_lm("gpt2"), PROMPT, logit_diff=PAIR)
    attr = sess.attribute("zero", "attn_out")
    atlas = sess.sweep(kind="zero", site="attn_out", positions=[0, 3, 5, 8])
    ag = attr.agreement(atlas, k=4)
    done = atlas.done
    assert set(ag) == {"logit_diff", "logprob_delta"} and ag["logprob_delta"]["n"] == done.sum()
    ex = atlas.logprob_delta.sum(-1)
    err = np.abs(attr.logprob_delta - ex)
    err[~done] = -1
    top = sorted(map(tuple, np.argwhere(done)), key=lambda c: -err[c])[:4]
    assert [tuple(c) for c in ag["logprob_delta"]["worst"]] == top
    assert ag["logprob_delta"]["pearson"] == pytest.approx(
        pearson(attr.logprob_delta[done], ex[done])
    )
    fig = attr.agreement_figure(atlas, k=4)
    r = ag["logit_diff"]
    assert f"Pearson r {r['pearson']:.2f}" in fig.layout.title.text
    assert f"Spearman ρ {r['spearman']:.2f}" in fig.layout.title.text
    np.testing.assert_allclose(fig.data[0].x, attr.logit_diff[done])
    np.testing.assert_allclose(fig.data[0].y, atlas.logit_diff[done])
    assert len(fig.data[-1].x) == len(r["worst"])
    with pytest.raises(ValueError, match="token pair"):
        rw.Session(tiny_lm("gpt2"), PROMPT).attribute().agreement_figure(
            rw.Session(tiny_lm("gpt2"), PROMPT).sweep(rows=[0], positions=[0]), "logit_diff"
        )
