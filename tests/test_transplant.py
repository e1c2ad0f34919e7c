"""Session.transplant: one cell of any run written into any cell of this prompt (issue 15).

The reference here is written with plain torch hooks on the HF modules (no nnsight): a pre-hook on
block 0 and forward hooks on every block and on the modules that write ``attn_out``/``mlp_out``
record the source run, and the same hooks, one of them replacing a vector, give the target run.
"""

import numpy as np
import pytest
import torch

import residual_widgets as rw
from residual_widgets import grid
from residual_widgets.models import _get

from helpers import PROMPT, SOURCE

# 6 tokens; PROMPT has 14 (the tiny word-level tokenizer splits the comma off)
OTHER = "the cat sat on the mat"


def _first(o):
    return o[0] if isinstance(o, (tuple, list)) else o


def _swap(o, new):
    return (new, *o[1:]) if isinstance(o, tuple) else new


def hook_run(lm, ids, write=None):
    """Plain-torch run of ``ids``: ``(resid [L+1, P, d], writes {site: [L, P, d]}, logits [P, V])``;
    ``write = (site, row, pos, vector)`` replaces that one vector on the way."""
    L = lm.n_layers
    rows, writes = [None] * (L + 1), {"attn_out": [None] * L, "mlp_out": [None] * L}
    handles = []

    def put(h, site, row):
        if write is not None and write[:2] == (site, row):
            h = h.clone()
            h[0, write[2]] = write[3].to(h.dtype)
        return h

    def pre0(mod, args, kwargs):
        if args:
            h = put(args[0], "resid", 0)
            args = (h, *args[1:])
        else:
            h = put(kwargs["hidden_states"], "resid", 0)
            kwargs = {**kwargs, "hidden_states": h}
        rows[0] = h[0].detach().clone()
        return args, kwargs

    def block_post(k):
        def hook(mod, args, out):
            h = put(_first(out), "resid", k + 1)
            rows[k + 1] = h[0].detach().clone()
            return _swap(out, h)

        return hook

    def write_post(site, k):
        def hook(mod, args, out):
            h = put(_first(out), site, k)
            writes[site][k] = h[0].detach().clone()
            return _swap(out, h)

        return hook

    blocks = lm.blocks
    try:
        handles.append(blocks[0].register_forward_pre_hook(pre0, with_kwargs=True))
        for k in range(L):
            handles.append(blocks[k].register_forward_hook(block_post(k)))
            for site in ("attn_out", "mlp_out"):
                mod = _get(lm.hf, lm.write_path(site, k))
                handles.append(mod.register_forward_hook(write_post(site, k)))
        with torch.no_grad():
            logits = lm.hf(torch.tensor([ids])).logits[0].float()
    finally:
        for h in handles:
            h.remove()
    return torch.stack(rows), {s: torch.stack(w) for s, w in writes.items()}, logits


def _ids(lm, text):
    return lm.tokenizer(text, add_special_tokens=False)["input_ids"]


def reference(lm, prompt, source, site, s_cell, t_cell):
    """The transplant computed with hooks: ``(resid, logits)`` of the target run."""
    resid, writes, _ = hook_run(lm, source)
    acts = resid if site == "resid" else writes[site]
    resid, _, logits = hook_run(lm, prompt, (site, t_cell[0], t_cell[1], acts[s_cell]))
    return resid, logits


@pytest.mark.parametrize("site", grid.SITES[:3])
def test_same_length_same_cell_equals_patch(lm, site):
    sess = rw.Session(lm, PROMPT, source=SOURCE, logit_diff=(" Mary", " John"))
    for cell in [(0, 2), (1, 5), (2, 13)]:
        a = sess.transplant(SOURCE, cell, cell, site=site)
        b = sess.patch(cell, site=site)
        assert a.kind == "transplant" and a.cells == [cell] and a.site == site
        for f in ("resid_delta", "kl", "logprob_delta", "reachable"):
            assert np.array_equal(getattr(a, f), getattr(b, f)), (cell, f)
        assert a.logit_diff == b.logit_diff and a.logit_diff_clean == b.logit_diff_clean
        assert torch.equal(a.resid, b.resid)
    assert sess.patch((2, 13), site=site).total_kl > 0  # the comparison is not of two no-ops


CASES = [  # (source, site, source_cell, target_cell): lengths, positions and rows all differ
    (OTHER, "resid", (2, 1), (1, 7)),  # shorter source, cross-row down, cross-position
    (OTHER, "resid", (0, 5), (3, 13)),  # cross-row up into the last row and position
    (PROMPT + " the", "resid", (3, 14), (2, 4)),  # longer source, a position past this prompt
    (None, "resid", (3, 9), (1, 2)),  # this prompt, moved down and left
    (OTHER, "attn_out", (1, 2), (0, 9)),  # blocks as rows
    (OTHER, "mlp_out", (0, 5), (2, 3)),
    (None, "mlp_out", (2, 1), (2, 6)),
]


@pytest.mark.parametrize("source,site,s_cell,t_cell", CASES)
def test_transplant_matches_a_plain_hook_reference(lm, source, site, s_cell, t_cell):
    sess = rw.Session(lm, PROMPT)
    eff = sess.transplant(source, s_cell, t_cell, site=site)
    src_ids = sess.ids if source is None else _ids(lm, source)
    resid, logits = reference(lm, sess.ids, src_ids, site, s_cell, t_cell)
    clean_resid, _, clean_logits = hook_run(lm, sess.ids)
    torch.testing.assert_close(sess.clean.resid, clean_resid, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(eff.resid, resid, atol=1e-5, rtol=1e-5)
    want_kl = (
        (clean_logits.log_softmax(-1).exp())
        * (clean_logits.log_softmax(-1) - logits.log_softmax(-1))
    ).sum(-1)
    np.testing.assert_allclose(eff.kl, want_kl.numpy(), atol=2e-5)
    want_delta = (resid - clean_resid).norm(dim=-1) / clean_resid.norm(dim=-1)
    np.testing.assert_allclose(eff.resid_delta, want_delta.numpy(), atol=2e-5)
    assert eff.total_kl > 1e-6  # the vector moved: something changed downstream
    assert np.array_equal(
        eff.reachable, grid.reachable_mask([t_cell], lm.n_layers, sess.n_positions, site)
    )
    assert not eff.resid_delta[~eff.reachable].any()  # nothing outside the target's cone


@pytest.mark.parametrize("site", grid.SITES[:3])
def test_transplant_to_the_same_cell_of_this_prompt_is_an_exact_no_op(lm, site):
    sess = rw.Session(lm, PROMPT, logit_diff=(" Mary", " John"))
    for cell in [(0, 0), (1, 6), (2, 13)]:
        eff = sess.transplant(None, cell, cell, site=site)
        assert eff.kind == "transplant" and eff.cells == [cell]
        assert not eff.kl.any() and not eff.resid_delta.any() and not eff.logprob_delta.any()
        assert eff.logit_diff == eff.logit_diff_clean
        assert eff.reachable[grid.entry_row(cell[0], site), cell[1]]
    # the same prompt given as text or ids is this prompt too
    assert sess.transplant(PROMPT, (1, 3), (1, 3)).total_kl == 0.0
    assert sess.transplant(sess.ids, (1, 3), (1, 4)).total_kl > 0


def test_errors_name_the_prompt_and_its_length_and_leave_the_session_usable(gpt2):
    sess = rw.Session(gpt2, PROMPT, logit_diff=(" Mary", " John"))
    before = sess.transplant(OTHER, (1, 2), (2, 7))
    bad = [
        (
            (OTHER, (1, 6), (1, 1)),
            ValueError,
            r"source_cell \(1, 6\): position 6 is outside "
            r"the source prompt, which has 6 tokens \(positions 0\.\.5\)",
        ),
        (
            (None, (1, 14), (1, 1)),
            ValueError,
            r"position 14 is outside this prompt \(the source "
            r"is None\), which has 14 tokens",
        ),
        (
            (OTHER, (1, 1), (1, 14)),
            ValueError,
            r"target_cell \(1, 14\): position 14 is outside "
            r"this prompt, which has 14 tokens \(positions 0\.\.13\)",
        ),
        (
            (OTHER, (4, 1), (1, 1)),
            ValueError,
            r"source_cell \(4, 1\): row 4 is out of range for "
            r"site 'resid'; valid rows are 0\.\.3",
        ),
        ((OTHER, (1, 1), (9, 1)), ValueError, r"target_cell \(9, 1\): row 9 is out of range"),
        (
            (OTHER, (3, 1), (1, 1), "mlp_out"),
            ValueError,
            r"source_cell \(3, 1\): block 3 is out "
            r"of range for site 'mlp_out'; valid blocks are 0\.\.2",
        ),
        (
            (OTHER, (-1, 1), (1, 1)),
            ValueError,
            r"source_cell \(-1, 1\) has a negative index.*"
            r"positions 0\.\.5 of the source prompt \(6 tokens\)",
        ),
        ((OTHER, (1, 1), (1, -2)), ValueError, r"target_cell \(1, -2\) has a negative index"),
        ((OTHER, (1, 1, 1), (1, 1)), TypeError, r"source_cell must be a \(row, position\) pair"),
        ((OTHER, (1, 1), "a"), TypeError, r"target_cell must be a \(row, position\) pair"),
        ((OTHER, (1, 1), (1, 1), "head"), ValueError, r"unknown site 'head' for a transplant"),
        (("", (0, 0), (1, 1)), ValueError, r"the source prompt is empty"),
        (([5, 10**7], (0, 0), (1, 1)), ValueError, r"token ids \[10000000\] in the source prompt"),
        (([[1, 2]], (0, 0), (1, 1)), TypeError, r"the source prompt must be a string or a 1-D"),
        ((3.5, (0, 0), (1, 1)), TypeError, r"the source prompt must be a string"),
    ]
    for args, exc, msg in bad:
        site = args[3] if len(args) > 3 else "resid"
        with pytest.raises(exc, match=msg):
            sess.transplant(*args[:3], site=site)
    with pytest.raises(ValueError, match=r"not one"):
        sess.transplant(OTHER, (1, 1), (1, 1), logit_diff=(" Mary Mary", " John"))
    after = sess.transplant(OTHER, (1, 2), (2, 7))
    assert np.array_equal(after.kl, before.kl) and after.logit_diff == before.logit_diff
    assert sess.ablate((1, 2)).total_kl > 0  # everything else still works


def test_the_source_run_is_computed_once_per_source_prompt(gpt2):
    sess = rw.Session(gpt2, PROMPT, source=SOURCE)
    runs = []
    orig = sess._run

    def counting(ids, *a, **kw):
        runs.append(tuple(ids))
        return orig(ids, *a, **kw)

    sess._run = counting
    other = tuple(_ids(gpt2, OTHER))
    first = sess.transplant(OTHER, (1, 2), (2, 7))
    assert runs.count(other) == 1
    again = [sess.transplant(OTHER, (1, 2), (2, 7))]
    again += [sess.transplant(list(other), (3, 5), (1, 1), site="resid")]
    again += [sess.transplant(OTHER, (2, 0), (0, 3), site="mlp_out")]
    assert runs.count(other) == 1  # text or ids, any cell or site: the cached run
    assert np.array_equal(again[0].kl, first.kl)
    n = len(runs)
    sess.transplant(None, (1, 2), (2, 7))  # this prompt: the clean run, nothing new computed
    sess.transplant(SOURCE, (1, 2), (2, 7))  # the session's source: its run
    sess.transplant(None, (1, 2), (1, 2))  # a no-op: the clean run is the answer
    assert all(r == tuple(sess.ids) for r in runs[n:])  # the edited runs only, no source run


def test_remote_local_equals_local_with_one_request_per_source(gpt2, server_without_our_package):
    """nnsight's remote path in-process (this package unimportable on the 'server'): the source
    prompt's activations (residuals and writes) come from one request, each transplant is one
    more, and the numbers are the local ones."""
    calls = server_without_our_package
    local = rw.Session(gpt2, PROMPT, logit_diff=(" Mary", " John"))
    remote = rw.Session(gpt2, PROMPT, logit_diff=(" Mary", " John"), remote="local")
    for site, s_cell, t_cell in (("resid", (2, 1), (1, 7)), ("mlp_out", (0, 5), (2, 3))):
        before = len(calls)
        b = remote.transplant(OTHER, s_cell, t_cell, site=site)
        assert len(calls) - before == (2 if site == "resid" else 1)  # source run once, then edits
        a = local.transplant(OTHER, s_cell, t_cell, site=site)
        # locally a click takes the cone path (equal to a full trace within 1e-5), remotely a trace
        assert np.array_equal(a.reachable, b.reachable) and a.total_kl > 0
        for f in ("resid_delta", "kl", "logprob_delta", "logit_diff"):
            np.testing.assert_allclose(getattr(a, f), getattr(b, f), atol=1e-6, err_msg=f)


def test_the_cache_keeps_the_most_recent_source_prompts(gpt2, monkeypatch):
    from residual_widgets import transplant as tp

    monkeypatch.setattr(tp, "CACHE_SIZE", 2)
    sess = rw.Session(gpt2, PROMPT)
    runs = []
    orig = sess._run
    sess._run = lambda ids, *a, **kw: (runs.append(tuple(ids)), orig(ids, *a, **kw))[1]
    a, b, c = "the cat sat", "the dog ran", "a red car"
    for src in (a, b, a, c, a, b):  # a stays recent; b is dropped when c comes
        sess.transplant(src, (1, 1), (1, 5))
    assert [runs.count(tuple(_ids(gpt2, s))) for s in (a, b, c)] == [1, 2, 1]
    assert list(sess._transplant_runs) == [tuple(_ids(gpt2, s)) for s in (a, b)]


# ---- the Patchscope lecture's module (examples/patchscope.ipynb runs it on SmolLM2) ----------
def test_wilson_interval_matches_the_textbook_values():
    from residual_widgets.lecture_patchscope import wilson

    iv = wilson([5, 0, 24, 12], 24)
    lo20 = wilson(5, 20)
    assert abs(lo20.lo - 0.1119) < 5e-4 and abs(lo20.hi - 0.4687) < 5e-4  # 5/20
    assert iv.lo[1] == 0.0 and abs(iv.hi[1] - 3.8415 / (24 + 3.8415)) < 1e-4  # 0/24
    assert iv.hi[2] == 1.0 and abs(iv.lo[2] - 24 / (24 + 3.8415)) < 1e-4  # 24/24
    assert abs(iv.lo[3] + iv.hi[3] - 1.0) < 1e-12 and iv.mean[3] == 0.5  # symmetric at 1/2


def test_patchscope_hits_and_controls_on_a_tiny_model(gpt2):
    from residual_widgets import lecture_patchscope as ps

    target = "cat - cat ; red - red ; ? -"
    ents = ["dog", "Paris", "river", "milk"]
    res = ps.run_patchscope(gpt2, ents, rows=[0, 2, 3], random_rows=[2], target=target)
    assert res.hits["entity"].shape == res.hits["other"].shape == (4, 3)
    assert res.hits["random"].shape == (4, 1) and res.random_rows == [2]
    assert res.other_of == [2, 3, 0, 1]  # half the list on
    tok = gpt2.tokenizer
    sess = rw.Session(gpt2, target)
    t, read = sess.n_positions - 2, sess.n_positions - 1
    for i, e in enumerate(ents):
        src = f"I saw {e}"
        s = len(_ids(gpt2, src)) - 1
        name = ps.first_token(gpt2, e)
        for a, r in enumerate(res.rows):  # the hit, recomputed here from a transplant
            eff = sess.transplant(src, (r, s), (r, t))
            with torch.no_grad():
                top = torch.topk(gpt2.unembed(eff.resid[3, read]), 5).indices.tolist()
            assert res.hits["entity"][i, a] == (name in top)
            assert res.top[i][a] == [tok.decode([x]) for x in top]
            j = res.other_of[i]  # the other entity's run, read for this entity's name
            assert res.hits["other"][i, a] == (" " + e in res.top[j][a])
    assert res.rate("entity").n == 4 and res.peak_row() in res.rows
    assert "row  0: entity" in ps.describe(res) and "random" in ps.describe(res).splitlines()[1]
    with pytest.raises(ValueError, match="placeholder"):
        ps.run_patchscope(gpt2, ents, target="cat - cat")
    cross = ps.cross_row_hits(gpt2, ents, [0, 3], 1, target=target)
    assert cross.shape == (4, 2)
    for i, e in enumerate(ents):  # source rows 0 and 3, always written into target row 1
        src, name = f"I saw {e}", ps.first_token(gpt2, e)
        for a, r in enumerate([0, 3]):
            eff = sess.transplant(src, (r, len(_ids(gpt2, src)) - 1), (1, t))
            with torch.no_grad():
                top = torch.topk(gpt2.unembed(eff.resid[3, read]), 5).indices.tolist()
            assert cross[i, a] == (name in top)


# ---- many transplants at once (transplant_batch: one cone group per target position) ---------
def _pairs(sess, source, site):
    """Pairs crossing rows, positions and lengths, several sharing a target position (one
    batch) and several target positions (several batches), with a no-op among them."""
    n_src = len(sess._tokenize(source, "s")) if source is not None else sess.n_positions
    rows = grid.n_source_rows(site, sess.n_layers)
    pairs = [
        ((r, (3 * r + 1) % n_src), (r2, (r + 5 * r2) % sess.n_positions))
        for r in range(rows)
        for r2 in range(rows)
    ]
    pairs += [((rows - 1, n_src - 1), (0, 7)), ((0, 0), (rows - 1, 7))]
    if source is None:
        pairs.append(((1, 4), (1, 4)))  # writes the value already there: exactly clean
    return pairs


@pytest.mark.parametrize("site", grid.SITES[:3])
@pytest.mark.parametrize("family", ["gpt2", "llama", "qwen2", "gemma2"])
def test_transplant_many_equals_one_at_a_time(family, site):
    """llama/qwen2 have grouped-query attention (half the key/value heads), gemma2 soft-capping
    and sandwich norms; sources shorter, longer and this prompt itself."""
    from helpers import tiny_lm

    lm = tiny_lm(family)
    sess = rw.Session(lm, PROMPT, logit_diff=(" Mary", " John"))
    for source in (OTHER, PROMPT + " the", None):
        pairs = _pairs(sess, source, site)
        many = sess.transplant_many(source, pairs, site=site)
        assert len(many) == len(pairs)
        for (s_cell, t_cell), a in zip(pairs, many, strict=True):
            b = sess.transplant(source, s_cell, t_cell, site=site)
            assert a.kind == "transplant" and a.cells == [t_cell] and a.site == site
            assert np.array_equal(a.reachable, b.reachable)
            for f in ("resid_delta", "kl", "logprob_delta"):
                np.testing.assert_allclose(getattr(a, f), getattr(b, f), atol=1e-5, err_msg=f)
            torch.testing.assert_close(a.resid, b.resid, atol=1e-5, rtol=0)
            assert (
                abs(a.logit_diff - b.logit_diff) < 1e-5 and a.logit_diff_clean == b.logit_diff_clean
            )
        assert sum(e.total_kl > 0 for e in many) >= len(pairs) - 3  # real writes, not no-ops
    noop = sess.transplant_many(None, [((1, 4), (1, 4))], site=site)[0]
    assert noop.total_kl == 0 and torch.equal(noop.resid, sess.clean.resid)


def test_transplant_many_batches_by_target_position(gpt2, monkeypatch):
    """One stepped group per target position (and lock slice): 30 writes at 3 positions step as 3
    groups, not 30 cone runs; each write's Effect still matches."""
    from residual_widgets import transplant_batch as tb

    sess = rw.Session(gpt2, PROMPT)
    groups, orig = [], tb.step_cells
    monkeypatch.setattr(
        tb,
        "step_cells",
        lambda s, st, live, i, *a, **kw: (
            groups.append((i, len(live))),
            orig(s, st, live, i, *a, **kw),
        )[1],
    )
    pairs = [((r, 2), (r2, p)) for p in (3, 9, 13) for r in range(4) for r2 in range(3)][:30]
    many = sess.transplant_many(OTHER, pairs)
    assert sorted(groups) == [(3, 12), (9, 12), (13, 6)]
    for (s_cell, t_cell), a in zip(pairs, many, strict=True):
        b = sess.transplant(OTHER, s_cell, t_cell)
        np.testing.assert_allclose(a.kl, b.kl, atol=1e-5)


def test_set_many_reduce_keeps_only_what_it_returns_in_input_order(gpt2):
    from residual_widgets.transplant_batch import set_many

    sess = rw.Session(gpt2, PROMPT)
    g = torch.Generator().manual_seed(0)
    cells = [(3, 13), (0, 2), (2, 13), (1, 6), (0, 13)]  # unsorted, two positions
    values = torch.randn(len(cells), gpt2.d_model, generator=g)
    seen = []
    got = set_many(
        sess,
        cells,
        values,
        reduce=lambda j, run: (seen.append(j), run.logits[-1].argmax().item())[1],
    )
    assert sorted(seen) == list(range(len(cells)))
    for j, c in enumerate(cells):
        eff = sess.intervene([c], kind="set", value=values[j][None])
        with torch.no_grad():
            assert got[j] == gpt2.unembed(eff.resid[-1, -1]).argmax().item()
    runs = set_many(sess, cells, values)  # default: the RunRecords themselves
    assert all(r.resid.shape == sess.clean.resid.shape for r in runs)
    with pytest.raises(ValueError, match="3 values"):
        set_many(sess, cells[:2], values[:3])


def test_transplant_many_falls_back_one_at_a_time_and_validates_first(gpt2, monkeypatch):
    from residual_widgets import transplant_batch as tb
    from residual_widgets.stepper import UnsupportedStepping

    sess = rw.Session(gpt2, PROMPT)
    pairs = [((2, 1), (1, 7)), ((0, 5), (3, 13)), ((1, 1), (1, 7))]
    batched = sess.transplant_many(OTHER, pairs)
    loop = sess.transplant_many(OTHER, pairs, method="loop")
    refused = rw.Session(gpt2, PROMPT)

    def no(*a, **kw):
        raise UnsupportedStepping("these blocks do not step")

    monkeypatch.setattr(refused, "stepper", no)
    calls = []
    monkeypatch.setattr(tb, "step_cells", lambda *a, **kw: calls.append(a))
    fell = refused.transplant_many(OTHER, pairs)  # auto: refused, so one at a time
    assert calls == [] and refused._stepper_refused == "these blocks do not step"
    for a, b, c in zip(batched, loop, fell, strict=True):
        for f in ("resid_delta", "kl", "logprob_delta"):
            np.testing.assert_allclose(getattr(a, f), getattr(b, f), atol=1e-5)
            np.testing.assert_allclose(getattr(a, f), getattr(c, f), atol=1e-5)
    with pytest.raises(ValueError, match="do not step"):
        refused.transplant_many(OTHER, pairs, method="cone")
    with pytest.raises(ValueError, match="position 9 is outside the source prompt"):
        sess.transplant_many(OTHER, [((0, 1), (0, 1)), ((0, 9), (0, 1))])  # nothing ran
    with pytest.raises(TypeError, match="source_cell, target_cell"):
        sess.transplant_many(OTHER, [((0, 1),)])
    assert sess.transplant_many(OTHER, []) == []


def test_transplant_many_remote_takes_the_one_at_a_time_path(gpt2, server_without_our_package):
    local = rw.Session(gpt2, PROMPT)
    remote = rw.Session(gpt2, PROMPT, remote="local")
    pairs = [((2, 1), (1, 7)), ((0, 5), (3, 13))]
    for a, b in zip(
        local.transplant_many(OTHER, pairs), remote.transplant_many(OTHER, pairs), strict=True
    ):
        np.testing.assert_allclose(a.kl, b.kl, atol=1e-5)
        assert a.total_kl > 0
