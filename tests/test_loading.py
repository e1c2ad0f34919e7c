"""load_model accepts HF objects, local paths and nnsight models, and finds the parts itself."""

import warnings

import pytest
import torch

import residual_widgets as rw
from residual_widgets.tiny import FAMILIES, tiny_model

from helpers import PROMPT, tiny_lm

PARTS = {
    "gpt2": ("transformer.h", "transformer.ln_f", "attn", "mlp"),
    "neox": ("gpt_neox.layers", "gpt_neox.final_layer_norm", "attention", "mlp"),
    "llama": ("model.layers", "model.norm", "self_attn", "mlp"),
    "gemma2": (
        "model.layers",
        "model.norm",
        "post_attention_layernorm",
        "post_feedforward_layernorm",
    ),
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
    torch.testing.assert_close(
        lm.unembed(sess.clean.resid[-1]), sess.clean.logits, atol=1e-5, rtol=1e-5
    )


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


def test_device_and_device_map_pass_through(tmp_path, monkeypatch):
    """``device_map`` reaches ``from_pretrained`` (here "cpu"; "auto" spreads over GPUs when there
    are any) and ``device=`` moves the model; on this machine everything stays on the CPU and the
    results equal a plain load. ``remote=`` on a loaded model makes a copy sharing its weights."""
    hf, tok = tiny_model("qwen2", n_layers=2)
    hf.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    from transformers import AutoModelForCausalLM

    real, seen = AutoModelForCausalLM.from_pretrained, []

    def spy(*a, **kw):
        seen.append(kw)
        return real(*a, **kw)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", spy)
    mapped = rw.load_model(str(tmp_path), tok, device_map="cpu")
    assert seen[-1]["device_map"] == "cpu" and mapped.device.type == "cpu"
    rw.load_model(str(tmp_path))
    assert "device_map" not in seen[-1]
    moved = rw.load_model(hf, tok, device="cpu")
    assert moved.device.type == "cpu"
    a, b = rw.Session(mapped, PROMPT), rw.Session(moved, PROMPT)
    torch.testing.assert_close(a.clean.logits, b.clean.logits)
    assert a.sweep(rows=[0, 1], positions=[2]).complete
    sim = rw.load_model(moved, remote="local")
    assert sim.remote == "local" and moved.remote is None
    assert sim.hf is moved.hf and sim.lock is moved.lock
    assert (
        rw.Session(sim, PROMPT).remote == "local"
        and rw.Session(sim, PROMPT, remote=None).remote is None
    )
