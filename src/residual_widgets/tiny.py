"""Tiny random-weight causal LMs of every supported family, built offline.

Tests, benchmarks and examples need real architectures without a model hub. This module builds
them from transformers configs (random weights, seeded) together with a small word-level
tokenizer constructed locally, so nothing is downloaded::

    from residual_widgets.tiny import tiny_model, FAMILIES
    hf, tok = tiny_model("llama", n_layers=3)

The tokenizer splits text like GPT-2 does (a word keeps its leading space: " Mary" is one
token), knows a fixed list of common words, and maps anything else to ``<unk>``.
"""

from __future__ import annotations

import torch

FAMILIES = ("gpt2", "neox", "llama", "qwen2", "qwen3", "gemma2", "gemma3", "mistral", "phi3")

_WORDS = (
    "the a an and or of to in on at for with from by is was are were be been it its this that "
    "When Mary John went store gave drink book ball cat dog sat mat house tree red blue green "
    "one two three four five six seven eight nine ten big small old new good bad up down left "
    "right he she they we you I his her their our my your said says saw see go goes run ran "
    "Paris France capital city country king queen man woman boy girl day night time year water "
    "fire earth air sun moon star river hill road car bird fish apple bread milk tea coffee"
).split()
_PUNCT = list(".,!?;:'\"()-") + ["\n"]


def build_tokenizer():
    """A deterministic word-level tokenizer (vocab ≈ 330) built without any download.

    Returns a ``transformers.PreTrainedTokenizerFast`` with ``<unk>``, ``<bos>`` and ``<eos>``.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab: dict[str, int] = {}
    for tok in ["<unk>", "<bos>", "<eos>", "<pad>"]:
        vocab[tok] = len(vocab)
    for w in _WORDS:
        for form in (w, " " + w):
            vocab.setdefault(form, len(vocab))
    for p in _PUNCT:
        for form in (p, " " + p):
            vocab.setdefault(form, len(vocab))
    for d in "0123456789":
        for form in (d, " " + d):
            vocab.setdefault(form, len(vocab))
    for c in "abcdefghijklmnopqrstuvwxyz":
        for form in (c, " " + c):
            vocab.setdefault(form, len(vocab))
    model = models.WordLevel(vocab=vocab, unk_token="<unk>")
    tk = Tokenizer(model)
    # " word" keeps its leading space; runs of other whitespace become their own tokens.
    tk.pre_tokenizer = pre_tokenizers.Split(
        Regex(r" ?[A-Za-z]+| ?[0-9]| ?[^\sA-Za-z0-9]|\n|\s+"), behavior="isolated"
    )
    tk.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=tk,
        unk_token="<unk>",
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
    )


def _config(family: str, n_layers: int, d_model: int, n_heads: int, vocab: int, n_ctx: int, **kw):
    import transformers as tf

    common = dict(
        vocab_size=vocab,
        num_hidden_layers=n_layers,
        hidden_size=d_model,
        num_attention_heads=n_heads,
        max_position_embeddings=n_ctx,
        intermediate_size=4 * d_model,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
    )
    if family == "gpt2":
        return tf.GPT2Config(
            vocab_size=vocab,
            n_layer=n_layers,
            n_embd=d_model,
            n_head=n_heads,
            n_positions=n_ctx,
            bos_token_id=1,
            eos_token_id=2,
            **kw,
        )
    if family == "neox":
        return tf.GPTNeoXConfig(**common, rotary_pct=0.25, use_parallel_residual=True, **kw)
    if family == "llama":
        return tf.LlamaConfig(**common, num_key_value_heads=max(1, n_heads // 2), **kw)
    if family == "qwen2":
        return tf.Qwen2Config(**common, num_key_value_heads=max(1, n_heads // 2), **kw)
    if family == "qwen3":
        return tf.Qwen3Config(
            **common, num_key_value_heads=max(1, n_heads // 2), head_dim=d_model // n_heads, **kw
        )
    if family == "mistral":
        kw.setdefault("sliding_window", 6)
        return tf.MistralConfig(**common, num_key_value_heads=max(1, n_heads // 2), **kw)
    if family == "phi3":
        return tf.Phi3Config(**common, num_key_value_heads=n_heads, **kw)
    if family == "gemma2":
        kw.setdefault("sliding_window", 6)
        return tf.Gemma2Config(
            **common, num_key_value_heads=max(1, n_heads // 2), head_dim=d_model // n_heads, **kw
        )
    if family == "gemma3":
        kw.setdefault("sliding_window", 6)
        return tf.Gemma3TextConfig(
            **common, num_key_value_heads=max(1, n_heads // 2), head_dim=d_model // n_heads, **kw
        )
    raise ValueError(f"unknown family {family!r}; choose one of {FAMILIES}")


def tiny_model(
    family: str = "gpt2",
    n_layers: int = 3,
    d_model: int = 64,
    n_heads: int = 4,
    n_ctx: int = 64,
    seed: int = 0,
    vocab_size: int | None = None,
    **config_kw,
):
    """Build a random-weight causal LM of ``family`` and the local tokenizer.

    Weights are seeded, the model is in eval mode, float32, on CPU. ``vocab_size`` defaults to
    the tokenizer's size. Extra keyword arguments go to the transformers config.
    Returns ``(model, tokenizer)``.
    """
    from transformers import AutoModelForCausalLM

    tok = build_tokenizer()
    vocab = vocab_size or len(tok)
    cfg = _config(family, n_layers, d_model, n_heads, vocab, n_ctx, **config_kw)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    if family in ("gemma2", "gemma3", "llama", "mistral", "qwen2", "qwen3", "phi3", "neox"):
        # Random init leaves RMSNorm weights at 1 (or 0 for Gemma's 1+w): perturb them so that
        # tests notice a norm that is skipped or applied twice.
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "norm" in name and p.ndim == 1:
                    p.add_(0.1 * torch.randn_like(p))
    model.eval()
    return model, tok


def random_ids(n: int, vocab: int, seed: int = 0) -> list[int]:
    """``n`` seeded random token ids in ``[4, vocab)`` (skipping the special tokens)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(4, vocab, (n,), generator=g).tolist()
