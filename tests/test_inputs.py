"""Bad input gets a clear error naming the valid range or the fix, and the session survives."""

import numpy as np
import pytest
import torch

import residual_widgets as rw

from helpers import PROMPT, tiny_lm


@pytest.fixture(scope="module")
def sess():
    return rw.Session(tiny_lm("gpt2"), PROMPT, source=PROMPT.replace("John gave", "Mary gave"))


def still_usable(sess):
    eff = sess.ablate((1, 2))
    assert eff.resid_delta[1, 2] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "cells,exc,match",
    [
        ((9, 0), ValueError, r"row 9 out of range.*0\.\.3"),
        ((0, 99), ValueError, r"position 99 out of range.*0\.\.13"),
        ((-1, 0), ValueError, r"negative index.*not wrapped"),
        ((0, -2), ValueError, r"negative index"),
        ([(1, 2), (1, 2)], ValueError, r"duplicate cells \[\(1, 2\)\]"),
        ([], ValueError, r"no cells"),
        ("1,2", TypeError, r"\(row, position\)"),
        ([(1.5, 2)], TypeError, r"pair of ints"),
        ([(1, 2, 3)], TypeError, r"pair of ints"),
    ],
)
def test_bad_cells(sess, cells, exc, match):
    with pytest.raises(exc, match=match):
        sess.ablate(cells)
    still_usable(sess)


def test_block_range_for_write_sites(sess):
    with pytest.raises(ValueError, match=r"block 3 out of range for site 'attn_out'.*0\.\.2"):
        sess.ablate((3, 0), site="attn_out")
    still_usable(sess)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(kind="blur"), r"unknown kind 'blur'.*zero, mean, noise, patch"),
        (dict(site="resid_mid"), r"unknown site 'resid_mid'.*resid, attn_out, mlp_out"),
    ],
)
def test_unknown_kind_or_site(sess, kw, match):
    with pytest.raises(ValueError, match=match):
        sess.intervene((1, 1), **kw)
    with pytest.raises(ValueError, match=match):
        sess.sweep(**kw)
    still_usable(sess)


def test_nan_in_patch_value(sess):
    v = np.zeros(sess.model.d_model, np.float32)
    v[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sess.intervene((1, 1), kind="set", value=v)
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        sess.intervene((1, 1), kind="set", value=np.zeros(5))
    still_usable(sess)


def test_prompts():
    lm = tiny_lm("gpt2")
    with pytest.raises(ValueError, match="empty"):
        rw.Session(lm, "")
    with pytest.raises(ValueError, match="empty"):
        rw.Session(lm, [])
    with pytest.raises(ValueError, match=r"65 tokens, more than the model's context of 64"):
        rw.Session(lm, list(range(4, 69)))
    with pytest.raises(ValueError, match=r"outside the vocabulary"):
        rw.Session(lm, [1, 2, 10**6])
    with pytest.raises(TypeError, match="1-D sequence"):
        rw.Session(lm, [[1, 2], [3, 4]])
    with pytest.raises(TypeError, match="string or a 1-D"):
        rw.Session(lm, 3.5)
    with pytest.raises(ValueError, match=r"source tokenizes to 3 tokens but the prompt to 14"):
        rw.Session(lm, PROMPT, source="the cat sat")
    s = rw.Session(lm, torch.tensor([5, 6, 7]))
    assert s.ids == [5, 6, 7]


def test_patch_without_source_and_bad_token_pair():
    s = rw.Session(tiny_lm("gpt2"), PROMPT)
    with pytest.raises(ValueError, match="needs a source prompt"):
        s.patch((1, 1))
    with pytest.raises(ValueError, match="needs a source prompt"):
        s.sweep(kind="patch")
    with pytest.raises(ValueError, match=r"is 2 tokens"):
        s.ablate((1, 1), logit_diff=(" Mary John", " John"))
    with pytest.raises(TypeError, match="pair"):
        s.ablate((1, 1), logit_diff=" Mary")
    still_usable(s)


def test_non_causal_and_unsupported_models():
    from transformers import BertConfig, BertForMaskedLM

    from residual_widgets.tiny import build_tokenizer

    tok = build_tokenizer()
    bert = BertForMaskedLM(
        BertConfig(
            vocab_size=len(tok),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
        )
    )
    with pytest.raises(ValueError, match="not a causal LM"):
        rw.load_model(bert, tok)
    with pytest.raises(TypeError, match="expects a transformers causal LM"):
        rw.load_model(42)
    with pytest.raises(ValueError, match="unknown.*smollm2-135m"):
        from residual_widgets.bundled import load_bundled

        load_bundled("nope")


def test_model_without_tokenizer_asks_for_one():
    from residual_widgets.tiny import tiny_model

    hf, _ = tiny_model("gpt2", n_layers=1)
    with pytest.raises(ValueError, match="tokenizer="):
        rw.load_model(hf)
