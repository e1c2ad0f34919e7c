"""load_model accepts HF objects, local paths and nnsight models, and finds the parts itself."""

import warnings

import pytest
import torch

import residual_widgets as rw
from residual_widgets.tiny import FAMILIES, tiny_model

from conftest import PROMPT, tiny_lm

PARTS = {
    "gpt2": ("transformer.h", "transformer.ln_f", "attn", "mlp"),
    "neox": ("gpt_neox.layers", "gpt_neox.final_layer_norm", "attention", "mlp"),
    "llama": ("model.layers", "model.norm", "self_attn", "mlp"),
    "gemma2": ("model.layers", "model.norm", "post_attention_layernorm",
               "post_feedforward_layernorm"),
}


@pytest.mark.parametrize("family", sorted(PARTS))
def test_parts_found(family):
    lm = tiny_lm(family)
    blocks, norm, attn, mlp = PARTS[family]
    assert lm.blocks_path == blocks and lm.final_norm_path == norm
    assert lm.attn_write[1] == f"{blocks}.1.{attn}" and lm.mlp_write[1] == f"{blocks}.1.{mlp}"
    assert lm.n_layers == 3 and lm.d_model == 64


@pytest.mark.parametrize("family", FAMILIES)
def test_unembed_reproduces_model_logits(family):
    lm = tiny_lm(family)
    sess = rw.Session(lm, PROMPT)
    torch.testing.assert_close(lm.unembed(sess.clean.resid[-1]), sess.clean.logits,
                               atol=1e-5, rtol=1e-5)


def test_gemma_softcap_is_applied():
    hf, tok = tiny_model("gemma2", final_logit_softcapping=0.5)
    lm = rw.load_model(hf, tok)
    assert lm.logit_softcap == 0.5
    sess = rw.Session(lm, PROMPT)
    assert sess.clean.logits.abs().max() <= 0.5
    torch.testing.assert_close(lm.unembed(sess.clean.resid[-1]), sess.clean.logits)


def test_load_from_path_and_from_nnsight(tmp_path):
    hf, tok = tiny_model("llama", n_layers=2)
    hf.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    by_path = rw.load_model(str(tmp_path))
    assert by_path.n_layers == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from nnsight.modeling.transformers import TransformersModel
        nn = TransformersModel(hf, tokenizer=tok, task="text-generation")
    by_nn = rw.load_model(nn)
    assert by_nn.hf is hf and by_nn.tokenizer is tok
    a = rw.Session(by_path, PROMPT).clean.logits
    b = rw.Session(by_nn, PROMPT).clean.logits
    torch.testing.assert_close(a, b)
    assert rw.load_model(by_nn) is by_nn
