"""load_model accepts HF objects, local paths and nnsight models, and finds the parts itself."""

import warnings

import numpy as np
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


# ---- first paint (issue 11 item 5) ------------------------------------------------------------


def test_import_is_light_and_names_load_on_use():
    """``import residual_widgets`` loads no torch/transformers/nnsight/plotly (nor does the widget
    module, so ``explore`` can paint the grid before torch is loaded); each public name
    imports its module on first use; ``rw.explore`` stays the function after its submodule is
    imported by name."""
    import subprocess
    import sys

    code = (
        "import sys, residual_widgets as rw\n"
        "heavy = [m for m in ('torch', 'transformers', 'nnsight', 'plotly', 'anywidget')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "import residual_widgets.widget\n"  # the widget class: anywidget, but still no torch
        "heavy = [m for m in ('torch', 'transformers', 'nnsight', 'plotly') if m in sys.modules]\n"
        "assert not heavy, ('widget', heavy)\n"
        "import residual_widgets.explore\n"
        "from residual_widgets.explore import explore\n"
        "assert rw.explore is explore and callable(rw.explore)\n"
        "assert rw.Session.__module__ == 'residual_widgets.session' and 'torch' in sys.modules\n"
        "assert set(rw.__all__) <= set(dir(rw))\n"
        "try:\n    rw.Nope\nexcept AttributeError as e:\n    print('ok', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ok module 'residual_widgets' has no attribute 'Nope'" in out.stdout


def test_bundled_models_skip_the_causal_check(monkeypatch):
    from residual_widgets import models

    calls = []
    monkeypatch.setattr(models, "_check_causal", lambda lm: calls.append(lm))
    rw.load_model("induction-2l")
    assert calls == []
    hf, tok = tiny_model("gpt2", n_layers=1)
    rw.load_model(hf, tok)
    assert len(calls) == 1  # any other model is still checked


def _blocked_load(monkeypatch):
    """Make explore's model load wait for the returned event (a slow first load)."""
    import importlib
    import threading

    ex = importlib.import_module("residual_widgets.explore")  # the module, not rw.explore

    gate, real = threading.Event(), ex._load
    monkeypatch.setattr(ex, "_loaded", {})

    def slow(model, remote=None):
        assert gate.wait(60)
        return real(model, remote)

    monkeypatch.setattr(ex, "_load", slow)
    return gate


def test_explore_shows_grid_and_tokens_before_the_session(monkeypatch):
    from residual_widgets import _codec

    gate = _blocked_load(monkeypatch)
    prompt = " t5 t17 t3 t9 t5 t17 t3"
    w = rw.explore(prompt, model="induction-2l", cell=(1, 4))
    w.send = lambda *a, **k: None
    # returned while the model is still "loading": grid, tokens and a status line, no session
    assert w.session is None and w.effect is None
    assert w.n_rows == 3 and w.tokens == [" t5", " t17", " t3", " t9", " t5", " t17", " t3"]
    assert "clean pass" in w.status and w.selection == [[1, 4]]
    w.kind = "mean"  # a setting changed meanwhile is used once the session exists
    gate.set()
    w.wait()
    assert w.error == ""
    sess = w.session
    assert w.tokens == sess.token_strings and w.n_rows == sess.n_rows
    eff = sess.intervene((1, 4), "mean")
    np.testing.assert_allclose(_codec.decode(w.effect["resid_delta"]), eff.resid_delta, atol=1e-6)
    assert w.current_atlas.complete and w.current_atlas.kind == "mean"
    w.close()


def test_explore_reports_a_failed_build_in_words(monkeypatch):
    gate = _blocked_load(monkeypatch)
    w = rw.explore(" t5 t17 t3", model="induction-2l", source=" t5 t17", kind="patch")
    w.send = lambda *a, **k: None
    gate.set()
    w.wait()
    assert w.session is None
    assert "the source tokenizes to 2 tokens but the prompt to 3" in w.error
    w.select((0, 1))  # a click after the failure says why nothing can run
    assert "there is no session" in w.error and "tokenizes to 2 tokens" in w.error
    w.close()


def test_quick_facts_match_the_session_tokens():
    from residual_widgets.explore import quick_facts

    prompt = " t5 t17 <bos> t3 hello t99"
    tokens, n_rows = quick_facts("induction-2l", prompt)
    sess = rw.Session(rw.load_model("induction-2l"), prompt)
    assert tokens == sess.token_strings and n_rows == sess.n_rows
    assert quick_facts("no/such/model", prompt) is None
    assert quick_facts("induction-2l", [1, 2, 3]) is None  # ids: the session decodes them


def test_a_select_while_the_session_builds_wins_over_the_initial_pin(monkeypatch):
    """The quickstart's ``w.select((10, 3))`` right after ``explore``: the initial pin (0, 0)
    queued behind the session must not replace it."""
    gate = _blocked_load(monkeypatch)
    w = rw.explore(" t5 t17 t3 t9 t5 t17", model="induction-2l", sweep=False)
    w.send = lambda *a, **k: None
    w.select((2, 4), wait=False)
    gate.set()
    w.wait()
    assert w.current_effect.cells == [(2, 4)] and w.selection == [[2, 4]]
    assert w.select((1, 1)).cells == [(1, 1)]
    w.close()


@pytest.mark.parametrize("name", ["induction-2l", "smollm2-135m"])
def test_bundled_tokenizers_equal_autotokenizer(name):
    """bundled._from_dir reads the tokenizer with PreTrainedTokenizerFast (faster): it must be
    what AutoTokenizer gives."""
    from transformers import AutoTokenizer

    from residual_widgets import bundled

    folder = (
        bundled.INDUCTION_DIR
        if name == "induction-2l"
        else bundled.cache_dir() / bundled._CACHE_NAME
    )
    if not bundled._is_complete(folder) and name != "induction-2l":
        pytest.skip("the SmolLM2 cache is not built on this machine")
    _, ours = bundled._from_dir(folder)
    ref = AutoTokenizer.from_pretrained(folder)
    assert type(ours) is type(ref) and ours.get_vocab() == ref.get_vocab()
    assert ours.special_tokens_map == ref.special_tokens_map
    assert (ours.bos_token_id, ours.eos_token_id, ours.unk_token_id, ours.pad_token_id) == (
        ref.bos_token_id,
        ref.eos_token_id,
        ref.unk_token_id,
        ref.pad_token_id,
    )
    for text in [" t5 t17 <bos> t3 hello", "  Hello\n\nworld — ünïcode 😀 <|endoftext|> it's  x"]:
        for special in (False, True):
            ids = ref(text, add_special_tokens=special)["input_ids"]
            assert ours(text, add_special_tokens=special)["input_ids"] == ids
            assert [ours.decode([i]) for i in ids] == [ref.decode([i]) for i in ids]
