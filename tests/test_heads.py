"""Single attention heads as a site (``site="head"``, cells ``(layer, head, pos)``).

The reference is written here with plain torch hooks on the output projection, named per family
(the engine finds it by behaviour, heads.py): a forward pre-hook replaces the slice
``h·d_head:(h+1)·d_head`` of its input at one position, forward hooks record every residual
row. Every family and every kind are checked against it; the sweep against single
interventions; the all-positions variant against an intervention on every position at once.
"""

import dataclasses

import numpy as np
import pytest
import torch

import residual_widgets as rw
from residual_widgets import grid, heads
from residual_widgets.head_sweep import HeadAtlas
from residual_widgets.models import _get
from residual_widgets.sweep import SweepTooLarge, estimate_bytes
from residual_widgets.tiny import build_tokenizer, tiny_model

from helpers import PROMPT, SOURCE, tiny_lm

TOL = 1e-5
PAIR = (" Mary", " John")


def proj_of(lm, k):
    """The output projection of block ``k``, named by hand per family (not heads.layout)."""
    name = type(lm.hf).__name__
    path = (
        "attn.c_proj"
        if name.startswith("GPT2")
        else ("attention.dense" if name.startswith("GPTNeoX") else "self_attn.o_proj")
    )
    mod = lm.blocks[k]
    for part in path.split("."):
        mod = getattr(mod, part)
    return mod


@torch.no_grad()
def reference(lm, ids, edits=(), n_heads=None, record_z=False):
    """Plain HF forward with ``edits`` ``[(layer, head, pos, value [d_head])]`` written into the
    output projection's input. Returns (rows [L+1, P, d], logits [P, V], z [L, P, H*dh])."""
    rows, zs, hooks = {}, {}, []
    n_heads = n_heads or lm.hf.config.num_attention_heads
    for k in range(lm.n_layers):

        def pre(mod, args, k=k):
            z = args[0].clone()
            dh = z.shape[-1] // n_heads
            for layer, h, p, v in edits:
                if layer == k:
                    z[0, p, h * dh : (h + 1) * dh] = v
            zs[k] = z[0].clone()
            return (z, *args[1:])

        hooks.append(proj_of(lm, k).register_forward_pre_hook(pre))
        hooks.append(
            lm.blocks[k].register_forward_hook(
                lambda m, a, out, k=k: rows.__setitem__(
                    k + 1, (out[0] if isinstance(out, tuple) else out)[0]
                )
            )
        )
    hooks.append(
        lm.blocks[0].register_forward_pre_hook(
            lambda m, args, kwargs: rows.__setitem__(
                0, (args[0] if args else kwargs["hidden_states"])[0]
            ),
            with_kwargs=True,
        )
    )
    try:
        logits = lm.hf(torch.tensor([ids])).logits[0]
    finally:
        for h in hooks:
            h.remove()
    R = lm.n_layers + 1
    z = torch.stack([zs[k] for k in range(lm.n_layers)]) if record_z else None
    return torch.stack([rows[r] for r in range(R)]).float(), logits.float(), z


def expected_effect(sess, ref_rows, ref_logits):
    clean_lp = sess.clean_logprobs
    new_lp = torch.log_softmax(ref_logits, -1)
    num = (ref_rows - sess.clean.resid).norm(dim=-1)
    den = sess.clean.resid.norm(dim=-1)
    kl = (clean_lp.exp() * (clean_lp - new_lp)).sum(-1)
    good, bad = sess.default_pair
    return (num / den).numpy(), kl.numpy(), float(new_lp[-1, good] - new_lp[-1, bad])


def check_against_reference(sess, eff, cells, values):
    dh = sess.d_head
    pairs = zip(cells, values, strict=True)
    edits = [(k, h, p, torch.as_tensor(v).reshape(dh)) for (k, h, p), v in pairs]
    rows, logits, _ = reference(sess.model, sess.ids, edits, sess.n_heads)
    rd, kl, ld = expected_effect(sess, rows, logits)
    np.testing.assert_allclose(eff.resid_delta, rd, atol=TOL, rtol=0)
    np.testing.assert_allclose(eff.kl, kl, atol=TOL, rtol=0)
    assert abs(eff.logit_diff - ld) < TOL


# ---- layout ------------------------------------------------------------------------------------
def test_layout_every_family(family):
    lm = tiny_lm(family)
    lay = heads.layout(lm)
    cfg = lm.hf.config
    assert lay.n_heads == (getattr(cfg, "num_attention_heads", None) or cfg.n_head)
    for k in range(lm.n_layers):  # the module found by behaviour is the hand-named one
        assert _get(lm.hf, lay.paths[k]) is proj_of(lm, k)
    # the clean z the engine records is the reference's
    sess = rw.Session(lm, PROMPT)
    _, _, z = reference(lm, sess.ids, record_z=True)
    got = heads.head_acts(sess)
    assert got.shape == (lm.n_layers, sess.n_positions, lay.n_heads, lay.d_head)
    torch.testing.assert_close(got.reshape(z.shape), z, atol=1e-6, rtol=0)


def test_layout_without_weights_and_refusal(family):
    """A weightless (meta) skeleton, as a remote model has, finds the same projections by
    structure; a block whose attention changes its projection's output is refused."""
    from transformers import AutoModelForCausalLM

    lm = tiny_lm(family)
    with torch.device("meta"):
        meta = AutoModelForCausalLM.from_config(lm.hf.config)
    skeleton = dataclasses.replace(lm, hf=meta, nn=None)  # the engine's view, no weights
    assert skeleton.device.type == "meta"
    assert heads.layout(skeleton) == heads.layout(lm)
    other = rw.load_model(*tiny_model(family, n_layers=2))
    _, attn = heads._attention_of(other.blocks[1])

    def doubled(mod, args, out):
        return (out[0] * 2, *out[1:]) if isinstance(out, tuple) else out * 2

    attn.register_forward_hook(doubled)
    with pytest.raises(ValueError, match="block 1: 0 of the candidate output projections"):
        heads.layout(other)


@pytest.mark.parametrize(
    "config,kw",
    [
        ("LlamaConfig", {"num_key_value_heads": 1}),  # multi-query
        ("Qwen3Config", {"num_key_value_heads": 2, "head_dim": 8}),  # H·d_head 32 != d_model 64
        ("Gemma2Config", {"num_key_value_heads": 2, "head_dim": 24}),  # wider than d_model / H
        ("MistralConfig", {"num_key_value_heads": 4}),  # plain multi-head through GQA code
    ],
)
def test_attention_layouts(config, kw):
    import transformers

    cfg = getattr(transformers, config)(
        vocab_size=len(build_tokenizer()),
        num_hidden_layers=2,
        hidden_size=64,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=64,
        **kw,
    )
    torch.manual_seed(0)
    hf = transformers.AutoModelForCausalLM.from_config(cfg).eval()
    lm = rw.load_model(hf, build_tokenizer())
    sess = rw.Session(lm, PROMPT, logit_diff=PAIR)
    assert sess.n_heads == 4
    assert sess.d_head == kw.get("head_dim", 16)
    cells = [(0, 3, 2), (1, 1, 5)]
    val = torch.linspace(-2, 2, sess.d_head)
    eff = sess.intervene(cells, kind="set", site="head", value=val)
    assert eff.kl.max() > 1e-6
    check_against_reference(sess, eff, cells, [val, val])


# ---- every family, every kind ------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["zero", "mean", "noise", "patch", "resample", "set"])
def test_every_kind_matches_reference(family, kind):
    lm = tiny_lm(family)
    sess = rw.Session(lm, PROMPT, source=SOURCE, logit_diff=PAIR, mean_reference=[SOURCE])
    cells = [(0, 1, 9), (1, 3, 10), (2, 0, 11)]
    _, _, zc = reference(lm, sess.ids, record_z=True)
    _, _, zs = reference(lm, sess.source_ids, record_z=True)
    zr = zs  # the mean reference prompt is the source
    dh = sess.d_head
    value = None
    if kind == "zero":
        vals = [torch.zeros(dh)] * 3
    elif kind == "mean":  # over the prompt's and the reference prompt's positions
        both = torch.cat([zc, zr], dim=1)
        vals = [both[k, :, h * dh : (h + 1) * dh].mean(0) for k, h, _ in cells]
    elif kind in ("patch", "resample"):
        vals = [zs[k, p, h * dh : (h + 1) * dh] for k, h, p in cells]
    elif kind == "set":
        value = torch.randn(3, dh, generator=torch.Generator().manual_seed(3))
        vals = list(value)
    else:  # noise: the clean vector plus sigma-scaled noise, the same for a cell alone
        vals = list(sess.values_for(cells, "noise", "head"))
        clean = [zc[k, p, h * dh : (h + 1) * dh] for k, h, p in cells]
        diff = torch.stack([v - c for v, c in zip(vals, clean, strict=True)])
        sig = heads.noise_sigma(sess)[[k for k, _, _ in cells]].unsqueeze(1)  # z's σ per layer
        assert 0.3 < float((diff / (sess.noise_scale * sig)).std()) < 3.0
        alone = sess.values_for([cells[1]], "noise", "head")[0]
        assert torch.equal(alone, vals[1])
    eff = sess.intervene(cells, kind=kind, site="head", value=value)
    assert eff.site == "head" and eff.cells == cells and eff.kind == kind
    assert eff.resid_delta.shape == (sess.n_rows, sess.n_positions)
    if kind not in ("patch", "resample"):  # patch may write equal values at equal tokens
        assert eff.kl.max() > 1e-7
    check_against_reference(sess, eff, cells, vals)


def test_cone_and_reachable(family):
    lm = tiny_lm(family)
    sess = rw.Session(lm, PROMPT, logit_diff=PAIR)
    k, h, p = 1, 2, 4
    eff = sess.ablate((k, h, p), kind="zero", site="head")
    mask = np.zeros((sess.n_rows, sess.n_positions), bool)
    mask[k + 1, p] = True
    mask[k + 2 :, p:] = True
    np.testing.assert_array_equal(eff.reachable, mask)
    np.testing.assert_array_equal(grid.reachable_mask([(k, h, p)], lm.n_layers, 14, "head"), mask)
    assert (eff.resid_delta[~mask] == 0).all()  # exactly, not approximately
    assert eff.resid_delta[k + 1, p] > 0 and (eff.kl[:p] == 0).all()
    eff.figure()  # draws with the cone of the attn_out cell (k, p)


@pytest.mark.parametrize("kind", ["zero", "patch", "noise", "set"])
def test_cone_click_equals_trace(family, kind):
    """A head intervention through the cone (head_click.py) equals the trace, and is exactly
    clean outside its cone; several cells at several layers and positions included."""
    lm = tiny_lm(family)
    sess = rw.Session(lm, PROMPT, source=SOURCE, logit_diff=PAIR)
    value = np.linspace(-1, 1, sess.d_head) if kind == "set" else None
    for cells in ([(1, 2, 9)], [(0, 1, 3), (2, 3, 11), (0, 0, 12)], [(2, 1, 13)]):
        cone = sess.intervene(cells, kind, "head", value=value, method="cone")
        trace = sess.intervene(cells, kind, "head", value=value, method="trace")
        np.testing.assert_allclose(cone.resid_delta, trace.resid_delta, atol=TOL, rtol=0)
        np.testing.assert_allclose(cone.kl, trace.kl, atol=TOL, rtol=0)
        np.testing.assert_allclose(cone.logprob_delta, trace.logprob_delta, atol=TOL, rtol=0)
        assert abs(cone.logit_diff - trace.logit_diff) < TOL
        assert (cone.resid_delta[~cone.reachable] == 0).all()
        assert (cone.kl[: min(p for _, _, p in cells)] == 0).all()


def test_cone_click_paths(monkeypatch):
    """ "cone" builds the stepper and never traces; "auto" traces (bit-identical to "trace"); a
    remote session refuses "cone"."""
    lm = tiny_lm("qwen2")
    sess = rw.Session(lm, PROMPT, logit_diff=PAIR)
    auto = sess.intervene((1, 1, 5), "zero", "head")
    np.testing.assert_array_equal(auto.kl, sess.intervene((1, 1, 5), "zero", "head").kl)
    np.testing.assert_array_equal(
        auto.kl, sess.intervene((1, 1, 5), "zero", "head", method="trace").kl
    )

    def no_trace(*a, **k):
        raise AssertionError("traced")

    monkeypatch.setattr(heads, "head_run", no_trace)  # the clean z is cached already
    cone = sess.intervene((1, 1, 5), "zero", "head", method="cone")
    assert sess._stepper is not None
    np.testing.assert_allclose(auto.kl, cone.kl, atol=TOL, rtol=0)
    monkeypatch.undo()
    there = rw.Session(lm, PROMPT, logit_diff=PAIR, remote="local")
    with pytest.raises(ValueError, match="steps blocks locally"):
        there.intervene((1, 1, 5), "zero", "head", method="cone")


# ---- sweeps ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["zero", "patch", "noise", "mean"])
def test_sweep_equals_single_interventions(family, kind):
    lm = tiny_lm(family)
    sess = rw.Session(lm, PROMPT, source=SOURCE, logit_diff=PAIR)
    atlas = sess.sweep(kind=kind, site="head")
    L, H, P = lm.n_layers, sess.n_heads, sess.n_positions
    assert isinstance(atlas, HeadAtlas) and atlas.method == "cone"
    assert atlas.done.shape == (L, H, P) and atlas.complete and atlas.done.all()
    assert atlas.kl.shape == (L, H, P, P) and atlas.resid_delta.shape == (L, H, P, L + 1, P)
    assert atlas.logprob_delta.shape == (L, H, P, P - 1) and atlas.logit_diff.shape == (L, H, P)
    rng = np.random.default_rng(0)
    picks = [(2, 3, 13), (0, 0, 0), (L - 1, H - 1, P - 1)]
    picks += [tuple(int(x) for x in rng.integers((L, H, P))) for _ in range(4)]
    for c in picks:
        eff = sess.intervene(c, kind=kind, site="head")
        np.testing.assert_allclose(atlas.resid_delta[c], eff.resid_delta, atol=TOL, rtol=0)
        np.testing.assert_allclose(atlas.kl[c], eff.kl, atol=TOL, rtol=0)
        np.testing.assert_allclose(atlas.logprob_delta[c], eff.logprob_delta, atol=TOL, rtol=0)
        assert abs(atlas.logit_diff[c] - eff.logit_diff) < TOL
        outside = ~grid.reachable_mask([c], L, P, "head")
        assert (atlas.resid_delta[c][outside] == 0).all()


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_cone_equals_loop_everywhere(family):
    sess = rw.Session(tiny_lm(family), PROMPT, source=SOURCE, logit_diff=PAIR)
    for positions in (None, "all"):
        cone = sess.sweep_heads(kind="patch", positions=positions, method="cone")
        loop = sess.sweep_heads(kind="patch", positions=positions, method="loop")
        assert (cone.method, loop.method) == ("cone", "loop")
        for name in ("resid_delta", "kl", "logprob_delta", "logit_diff"):
            np.testing.assert_allclose(
                getattr(cone, name), getattr(loop, name), atol=TOL, rtol=0, err_msg=name
            )


def test_all_positions_variant(family):
    lm = tiny_lm(family)
    sess = rw.Session(lm, PROMPT, source=SOURCE, logit_diff=PAIR)
    atlas = sess.sweep_heads(kind="zero", positions="all")
    L, H, P = lm.n_layers, sess.n_heads, sess.n_positions
    assert atlas.all_positions and atlas.done.shape == (L, H) and atlas.complete
    assert atlas.kl.shape == (L, H, P) and atlas.total_kl.shape == (L, H)
    assert atlas.resid_delta.shape == (L, H, L + 1, P)
    for k, h in [(0, 2), (L - 1, 0), (1, H - 1)]:
        eff = sess.intervene([(k, h, p) for p in range(P)], kind="zero", site="head")
        np.testing.assert_allclose(atlas.resid_delta[k, h], eff.resid_delta, atol=TOL, rtol=0)
        np.testing.assert_allclose(atlas.kl[k, h], eff.kl, atol=TOL, rtol=0)
        assert abs(atlas.logit_diff[k, h] - eff.logit_diff) < TOL
        assert (atlas.resid_delta[k, h, : k + 1] == 0).all()
    atlas.figure()


def test_sweep_subsets_and_unchanged_cells():
    lm = tiny_lm("llama")
    sess = rw.Session(lm, PROMPT, source=SOURCE, logit_diff=PAIR)
    part = sess.sweep(kind="zero", site="head", rows=[1], positions=[3, 7])
    assert part.complete and part.done.sum() == sess.n_heads * 2
    assert part.done[1][:, [3, 7]].all() and not part.done[0].any()
    sub = sess.sweep_heads(kind="zero", layers=[2], heads=[1, 3], positions=[5])
    assert sub.done.sum() == 2 and sub.done[2, [1, 3], 5].all()
    full = sess.sweep(kind="zero", site="head")
    np.testing.assert_allclose(sub.kl[2, 1, 5], full.kl[2, 1, 5], atol=TOL, rtol=0)
    via_sweep = sess.sweep(kind="zero", site="head", positions="all")  # = sweep_heads(...)
    np.testing.assert_allclose(
        via_sweep.kl, sess.sweep_heads(kind="zero", positions="all").kl, atol=0, rtol=0
    )
    cells = [(1, 2, 9), (2, 0, 12)]  # patch() and ablate() take head triples too
    np.testing.assert_array_equal(
        sess.patch(cells, site="head").kl, sess.intervene(cells, "patch", "head").kl
    )
    own = rw.Session(lm, PROMPT, source=PROMPT, logit_diff=PAIR)  # patching from itself
    same = own.sweep(kind="patch", site="head")
    assert same.complete and (same.kl == 0).all() and (same.resid_delta == 0).all()
    assert (same.logit_diff == same.logit_diff_clean).all()
    same.figure()


def test_progress_cancel_and_memory_guard():
    sess = rw.Session(tiny_lm("gpt2"), PROMPT, logit_diff=PAIR)
    seen = []
    sess.sweep(kind="zero", site="head", progress=lambda p: seen.append(p.done))
    assert seen[-1] == sess.n_layers * sess.n_heads * sess.n_positions
    assert seen == sorted(seen)
    import threading

    stop = threading.Event()
    stop.set()
    cut = sess.sweep(kind="zero", site="head", cancel=stop)
    assert not cut.complete and not cut.done.any()
    L, H, R, P = sess.n_layers, sess.n_heads, sess.n_rows, sess.n_positions
    need16 = estimate_bytes(L * H, R, P, map_bytes=2)  # the [L, H, P, R, P] maps in float16
    half = sess.sweep(kind="zero", site="head", memory_budget=need16)
    assert half.storage == "float16" and half.resid_delta.dtype == np.float16
    none = sess.sweep(kind="zero", site="head", memory_budget=need16 - 1)
    assert none.storage == "summary" and none.resid_delta is None and none.complete
    np.testing.assert_allclose(none.kl, half.kl, atol=TOL, rtol=0)
    with pytest.raises(SweepTooLarge):
        sess.sweep(kind="zero", site="head", keep_maps=True, memory_budget=need16)


# ---- errors ------------------------------------------------------------------------------------
def test_bad_input_errors_and_session_stays_usable():
    sess = rw.Session(tiny_lm("llama"), PROMPT, logit_diff=PAIR)
    cases = [
        ((3, 0, 0), ValueError, "layer 3 out of range"),
        ((0, 4, 0), ValueError, "head 4 out of range: the model has 4 query heads"),
        ((0, 0, 14), ValueError, "position 14 out of range"),
        ((0, -1, 0), ValueError, "negative index"),
        ((0, 1), TypeError, "triple"),
        ([(0, 1, 2), (0, 1, 2)], ValueError, "duplicate head cells"),
        ([], ValueError, "no head cells"),
        ("L0H1", TypeError, "triple"),
    ]
    for cells, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            sess.intervene(cells, kind="zero", site="head")
    with pytest.raises(ValueError, match="knockout"):
        sess.intervene((0, 0, 1), kind="knockout", site="head")
    with pytest.raises(ValueError, match=r"value= \(a \[16\]"):
        sess.intervene((0, 0, 1), kind="set", site="head")
    with pytest.raises(ValueError, match=r"expected \(16,\)"):
        sess.intervene((0, 0, 1), kind="set", site="head", value=np.ones(64))
    with pytest.raises(ValueError, match="needs a source prompt"):
        sess.intervene((0, 0, 1), kind="patch", site="head")
    with pytest.raises(ValueError, match="blocks="):
        sess.intervene((0, 0, 1), kind="zero", site="head", blocks=[1])
    with pytest.raises(ValueError, match="unknown method"):
        sess.intervene((0, 0, 1), kind="zero", site="head", method="fast")
    with pytest.raises(ValueError, match="head sweeps take"):
        sess.sweep(kind="set", site="head")
    with pytest.raises(ValueError, match="needs a source prompt"):
        sess.sweep(kind="patch", site="head")
    with pytest.raises(ValueError, match="unknown method"):
        sess.sweep(kind="zero", site="head", method="batch")
    with pytest.raises(ValueError, match="positions must be 'all'"):
        sess.sweep_heads(kind="zero", positions="every")
    with pytest.raises(ValueError, match="heads must be a non-empty subset of 0..3"):
        sess.sweep_heads(kind="zero", heads=[4])
    with pytest.raises(ValueError, match="layers must be"):
        sess.sweep(kind="zero", site="head", rows=[3])
    with pytest.raises(ValueError, match="unknown kind"):
        sess.intervene((0, 0, 1), kind="melt", site="head")
    eff = sess.intervene((0, 0, 1), kind="zero", site="head")  # still usable
    assert eff.kl.max() > 0
    assert "head" not in grid.SITES  # the widget's site menu stays the three block sites


def test_remote_local_path_matches_local(server_without_our_package):
    """The head trace ships through nnsight's remote serialization unchanged."""
    lm = tiny_lm("gpt2")
    here = rw.Session(lm, PROMPT, source=SOURCE, logit_diff=PAIR)
    there = rw.Session(lm, PROMPT, source=SOURCE, logit_diff=PAIR, remote="local")
    cells = [(0, 1, 3), (2, 2, 9)]
    a = here.intervene(cells, kind="patch", site="head")
    b = there.intervene(cells, kind="patch", site="head")
    np.testing.assert_allclose(a.resid_delta, b.resid_delta, atol=1e-6, rtol=0)
    assert abs(a.logit_diff - b.logit_diff) < 1e-6
    atlas = there.sweep(kind="zero", site="head", rows=[2], positions=[12])
    assert atlas.method == "loop" and atlas.complete
    eff = here.intervene((2, 0, 12), kind="zero", site="head")
    np.testing.assert_allclose(atlas.kl[2, 0, 12], eff.kl, atol=1e-6, rtol=0)
    assert server_without_our_package  # the simulated server ran


@pytest.mark.slow
def test_smollm2_grouped_query_heads():
    """The bundled SmolLM2-135M (Llama, 9 query heads sharing 3 key/value heads, d_head 64):
    the sweep's head cells equal single interventions. The KL bound is looser than the tiny
    models' because the residual sweep's own KL differs from a trace's by up to ~2e-4 on this
    49k vocabulary too (float32 rounding of KL = Σp log p − Σp·z + logsumexp z)."""
    lm = rw.load_model("smollm2-135m")
    assert lm.hf.config.num_key_value_heads == 3
    sess = rw.Session(lm, PROMPT, source=SOURCE, logit_diff=PAIR)
    assert (sess.n_heads, sess.d_head) == (9, 64)
    atlas = sess.sweep(kind="patch", site="head", rows=[20, 29], positions=[9, 13])
    assert atlas.method == "cone" and atlas.complete
    for c in [(20, 3, 9), (29, 8, 13), (20, 0, 13)]:
        eff = sess.intervene(c, kind="patch", site="head")
        np.testing.assert_allclose(atlas.resid_delta[c], eff.resid_delta, atol=1e-5, rtol=0)
        np.testing.assert_allclose(atlas.kl[c], eff.kl, atol=1e-3, rtol=0)
        assert abs(atlas.logit_diff[c] - eff.logit_diff) < 1e-4
    assert np.ptp(atlas.logit_diff[[20, 29]][:, :, [9, 13]]) > 0.1  # the heads matter


# ---- each head over a span of positions at once (from_position) --------------------------------
@pytest.mark.parametrize("family", ["gpt2", "llama"])  # multi-head and grouped-query attention
def test_all_positions_from_a_position_equals_interventions_over_the_span(family):
    lm = tiny_lm(family)
    sess = rw.Session(lm, PROMPT, source=SOURCE, logit_diff=PAIR)
    L, H, P = lm.n_layers, sess.n_heads, sess.n_positions
    s = 10  # the source differs at position 9 (" Mary" for " John"): the span starts after it
    atlas = sess.sweep_heads(kind="patch", positions="all", from_position=s)
    assert atlas.method == "cone" and atlas.all_positions and atlas.from_position == s
    assert atlas.done.shape == (L, H) and atlas.complete
    assert atlas.resid_delta.shape == (L, H, L + 1, P) and atlas.kl.shape == (L, H, P)
    moved = 0
    for k in range(L):
        for h in range(H):
            eff = sess.intervene([(k, h, p) for p in range(s, P)], "patch", site="head")
            c = (k, h)
            np.testing.assert_allclose(atlas.resid_delta[c], eff.resid_delta, atol=TOL, rtol=0)
            np.testing.assert_allclose(atlas.kl[c], eff.kl, atol=TOL, rtol=0)
            np.testing.assert_allclose(atlas.logprob_delta[c], eff.logprob_delta, atol=TOL, rtol=0)
            assert abs(atlas.logit_diff[c] - eff.logit_diff) < TOL
            # positions before the span are exactly clean (never computed)
            assert (atlas.resid_delta[c][:, :s] == 0).all() and (atlas.kl[c][:s] == 0).all()
            assert (atlas.logprob_delta[c][:s] == 0).all()
            moved += bool(atlas.resid_delta[c].max() > 1e-3)
    assert moved > 0  # the source's z differs inside the span: some head changes something
    # patching every position also writes position 9's z: a different, larger effect
    every = sess.sweep_heads(kind="patch", positions="all")
    assert np.abs(every.resid_delta - atlas.resid_delta).max() > 1e-3
    loop = sess.sweep_heads(kind="patch", positions="all", from_position=s, method="loop")
    assert loop.method == "loop"
    for name in ("resid_delta", "kl", "logprob_delta", "logit_diff"):
        np.testing.assert_allclose(
            getattr(atlas, name), getattr(loop, name), atol=TOL, rtol=0, err_msg=name
        )


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_from_position_zero_is_the_all_positions_sweep(family):
    sess = rw.Session(tiny_lm(family), PROMPT, source=SOURCE, logit_diff=PAIR)
    zero = sess.sweep_heads(kind="patch", positions="all", from_position=0)
    every = sess.sweep_heads(kind="patch", positions="all")
    assert zero.from_position == every.from_position == 0
    for name in ("resid_delta", "kl", "logprob_delta", "logit_diff", "done"):
        np.testing.assert_array_equal(getattr(zero, name), getattr(every, name), err_msg=name)
    sub = sess.sweep_heads(kind="zero", positions="all", from_position=4, layers=[1], heads=[0])
    assert sub.done.sum() == 1 and sub.done[1, 0] and sub.complete
    with pytest.raises(ValueError, match="from_position needs positions='all'"):
        sess.sweep_heads(kind="zero", from_position=3)
    P = sess.n_positions
    for bad in (-1, P, True):
        with pytest.raises(ValueError, match="from_position must be in"):
            sess.sweep_heads(kind="zero", positions="all", from_position=bad)
