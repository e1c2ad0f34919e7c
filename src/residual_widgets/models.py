"""Load any causal LM and find the parts the engine needs.

``load_model`` accepts a transformers causal-LM object, a name or local path for
``from_pretrained``, the name of a bundled model (``"smollm2-135m"``, ``"induction-2l"``), an
nnsight model, or an already loaded :class:`LoadedModel`. It wraps the model with nnsight (so
single interventions are plain nnsight traces) and locates, without being told the family:

* the list of blocks (the ``ModuleList`` with ``config.num_hidden_layers`` entries),
* the final norm (applied to row ``L`` before the unembedding),
* the unembedding (``get_output_embeddings()``), and any final logit soft-capping,
* inside each block, the module whose output is *what the attention writes* and *what the MLP
  writes* into the residual (the attention/MLP module itself, or the post-norm that follows it
  in Gemma-style blocks).

Families covered and tested: GPT-2, GPT-NeoX (Pythia), Llama, Qwen2/Qwen3, Gemma 2/3, Mistral,
Phi-3. Anything else is accepted when the parts can be found; when they cannot, or the model is
not causal, the error says what was looked for.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch

_ATTN_NAMES = ("self_attn", "attn", "attention", "self_attention")
_MLP_NAMES = ("mlp", "feed_forward", "ffn")
_FINAL_NORM_NAMES = ("ln_f", "norm", "final_layer_norm", "final_layernorm", "final_norm")


@dataclass
class LoadedModel:
    """A causal LM ready for residual-stream interventions.

    Attributes: ``hf`` (the torch module), ``nn`` (its nnsight wrapper), ``tokenizer``, and the
    module paths of the blocks, final norm and unembedding. ``n_layers`` is ``L``; the residual
    grid has ``L + 1`` rows.
    """

    hf: Any
    nn: Any
    tokenizer: Any
    blocks_path: str
    final_norm_path: str
    unembed_path: str
    attn_write: list[str]  # per block: path of the module writing the attention output
    mlp_write: list[str]  # per block: path of the module writing the MLP output
    logit_softcap: float | None
    n_layers: int
    d_model: int
    vocab_size: int
    n_ctx: int | None
    name: str = ""
    remote: Any = None  # default for sessions: None, "local", True or a host URL
    # One forward pass at a time per model: nnsight cannot interleave two traces of the same
    # model from different threads (a widget's worker and the notebook's main thread, say).
    lock: Any = field(default_factory=threading.RLock, repr=False, compare=False)

    def __getstate__(self):  # a lock cannot be pickled (nnsight's remote path pickles the trace)
        return {**self.__dict__, "lock": None}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.lock = threading.RLock()

    @property
    def blocks(self) -> torch.nn.ModuleList:
        return _get(self.hf, self.blocks_path)

    @property
    def final_norm(self) -> torch.nn.Module:
        return _get(self.hf, self.final_norm_path)

    @property
    def unembed_module(self) -> torch.nn.Module:
        return _get(self.hf, self.unembed_path)

    @property
    def device(self) -> torch.device:
        return next(self.hf.parameters()).device

    @property
    def input_device(self) -> torch.device:
        """Where token ids go: the model's device, or the CPU for a weightless remote skeleton
        (the server moves inputs to its own devices)."""
        dev = self.device
        return torch.device("cpu") if dev.type == "meta" else dev

    def envoy(self, path: str):
        """The nnsight envoy at a dotted module path (``"model.layers.3.mlp"``)."""
        return _get(self.nn, path)

    def write_path(self, site: str, block: int) -> str:
        return (self.attn_write if site == "attn_out" else self.mlp_write)[block]

    def unembed(self, resid_final: torch.Tensor) -> torch.Tensor:
        """Row-``L`` residuals ``[..., d_model]`` → logits ``[..., vocab]`` (norm, unembed,
        soft-cap)."""
        logits = self.unembed_module(self.final_norm(resid_final))
        if self.logit_softcap:
            logits = torch.tanh(logits / self.logit_softcap) * self.logit_softcap
        return logits

    def __repr__(self) -> str:
        return (
            f"LoadedModel({self.name or type(self.hf).__name__}: L={self.n_layers}, "
            f"d_model={self.d_model}, vocab={self.vocab_size})"
        )


def load_model(
    model, tokenizer=None, *, dtype=torch.float32, device=None, device_map=None, remote=None
) -> LoadedModel:
    """Load or wrap a causal LM for the engine. See the module docstring for what is accepted.

    ``device``: move the model there (``"cuda"``, ``"cuda:1"``…); ``device_map``: passed to
    ``from_pretrained`` (``"auto"`` spreads a big model over the GPUs present) — both leave
    everything on the CPU when not given. ``remote``: ``True`` (or an NDIF host URL) loads only
    a weightless skeleton here and runs every trace on the server (key: :func:`set_api_key` or
    ``NDIF_API_KEY``); ``"local"`` runs nnsight's remote path in-process. Sessions on the model
    inherit it.
    """
    if isinstance(model, LoadedModel):
        if remote is not None and remote != model.remote:
            import dataclasses

            model = dataclasses.replace(model, remote=remote)  # same weights, lock, tokenizer
        return model
    name, checked = "", False
    if isinstance(model, str):
        from . import bundled
        from .remote import is_remote

        if is_remote(remote):
            if model in bundled.BUNDLED:
                raise ValueError(
                    f"{model!r} is bundled with residual-widgets and runs locally; "
                    "drop remote=, or name a model the remote server hosts"
                )
            return _load_remote(model, tokenizer, remote)
        name = model
        if model in bundled.BUNDLED:
            hf, tok = bundled.load_bundled(model)
            checked = True  # known causal LMs (and the SmolLM2 cache was checked when written)
        else:
            hf, tok = _from_pretrained(model, dtype, device_map)
        tokenizer = tokenizer or tok
    elif _is_nnsight(model):
        hf = model._module
        tokenizer = tokenizer or getattr(model, "tokenizer", None)
    elif isinstance(model, torch.nn.Module):
        hf = model
    else:
        raise TypeError(
            f"load_model expects a transformers causal LM, a model name or path, an "
            f"nnsight model or a LoadedModel, got {type(model).__name__}"
        )
    if tokenizer is None:
        tokenizer = _tokenizer_for(hf)
    if device is not None:
        hf = hf.to(device)
    hf.eval()
    return _wrap(
        hf,
        tokenizer,
        name or getattr(hf, "name_or_path", "") or type(hf).__name__,
        remote=remote,
        check=not checked,
    )


def _from_pretrained(name: str, dtype, device_map=None):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = {"device_map": device_map} if device_map is not None else {}
    try:
        hf = AutoModelForCausalLM.from_pretrained(name, dtype=dtype, **kw)
    except ValueError as e:
        raise ValueError(f"{name!r} could not be loaded as a causal LM: {e}") from e
    return hf, AutoTokenizer.from_pretrained(name)


def _load_remote(name: str, tokenizer, remote) -> LoadedModel:
    """A weightless (meta-device) skeleton of ``name`` whose traces run on the server."""
    from nnsight import LanguageModel

    from . import remote as rm

    try:
        if tokenizer is None:  # as for a local load: the model's own tokenizer
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nn = LanguageModel(name, tokenizer=tokenizer)
    except Exception as e:  # noqa: BLE001 - the config and tokenizer come from the hub
        low = f"{type(e).__name__} {e}".lower()
        if "offline" in low or "connect" in low or "resolve" in low or "network" in low:
            raise rm.RemoteNetworkError(
                f"could not fetch the config and tokenizer of {name!r} from the Hugging Face hub "
                f"({rm.redact(str(e))[:300]}); remote models need the hub to build their "
                "skeleton"
            ) from None
        raise rm.RemoteModelError(
            f"{name!r} is not a model nnsight can load for remote use: {rm.redact(str(e))[:300]}"
        ) from None
    return _wrap(nn._module, nn.tokenizer, name, nn=nn, remote=remote)


def _tokenizer_for(hf):
    src = getattr(hf, "name_or_path", "") or getattr(
        getattr(hf, "config", None), "_name_or_path", ""
    )
    if src:
        try:
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(src)
        except Exception:  # noqa: BLE001 - reported below with the fix
            pass
    raise ValueError("this model has no tokenizer to find: pass tokenizer=... to load_model")


def _is_nnsight(obj) -> bool:
    from nnsight.intervention.envoy import Envoy

    return isinstance(obj, Envoy) and isinstance(getattr(obj, "_module", None), torch.nn.Module)


def _get(root, path: str):
    obj = root
    for part in path.split("."):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj


def _wrap(hf, tokenizer, name: str, nn=None, remote=None, check: bool = True) -> LoadedModel:
    """Find the parts (module docstring) and wrap ``hf`` with nnsight. ``check``: run
    :func:`_check_causal` (two short forwards; skipped for the bundled models, known causal)."""
    cfg = getattr(hf, "config", None)
    if cfg is None:
        raise TypeError("the model has no transformers config; expected a transformers causal LM")
    if getattr(cfg, "is_encoder_decoder", False):
        raise ValueError(
            f"{type(hf).__name__} is an encoder-decoder model; residual-widgets needs "
            "a decoder-only causal LM (a *ForCausalLM / *LMHeadModel class)"
        )
    cls = type(hf).__name__
    if not (cls.endswith("ForCausalLM") or cls.endswith("LMHeadModel")):
        raise ValueError(
            f"{cls} is not a causal LM: looked for a *ForCausalLM or *LMHeadModel "
            "class (masked-LM and classification heads see the future)"
        )
    n_layers = _n_layers(cfg)
    names = dict(hf.named_modules())
    blocks_path = next(
        (p for p, m in names.items() if isinstance(m, torch.nn.ModuleList) and len(m) == n_layers),
        None,
    )
    if blocks_path is None:
        raise ValueError(f"{cls}: looked for a ModuleList of {n_layers} blocks and found none")
    base = blocks_path.rsplit(".", 1)[0] if "." in blocks_path else ""
    final_norm_path = next(
        (
            f"{base}.{n}" if base else n
            for n in _FINAL_NORM_NAMES
            if (f"{base}.{n}" if base else n) in names
        ),
        None,
    )
    if final_norm_path is None:
        raise ValueError(
            f"{cls}: looked for a final norm named one of {_FINAL_NORM_NAMES} "
            f"next to {blocks_path!r} and found none"
        )
    out_emb = hf.get_output_embeddings()
    unembed_path = next((p for p, m in names.items() if m is out_emb and p), None)
    if unembed_path is None:
        raise ValueError(f"{cls}: get_output_embeddings() returned no module; cannot unembed")
    attn_write, mlp_write = [], []
    for k in range(n_layers):
        bp = f"{blocks_path}.{k}"
        kids = {n for n, _ in names[bp].named_children()}
        gemma_style = "pre_feedforward_layernorm" in kids and "post_feedforward_layernorm" in kids
        attn = (
            "post_attention_layernorm"
            if gemma_style
            else next((n for n in _ATTN_NAMES if n in kids), None)
        )
        mlp = (
            "post_feedforward_layernorm"
            if gemma_style
            else next((n for n in _MLP_NAMES if n in kids), None)
        )
        if attn is None or mlp is None:
            raise ValueError(
                f"{cls}: block {k} has children {sorted(kids)}; looked for an attention "
                f"module named one of {_ATTN_NAMES} and an MLP named one of {_MLP_NAMES}"
            )
        attn_write.append(f"{bp}.{attn}")
        mlp_write.append(f"{bp}.{mlp}")
    if nn is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from nnsight.modeling.transformers import TransformersModel

            nn = TransformersModel(hf, tokenizer=tokenizer, task="text-generation")
    emb = hf.get_input_embeddings()
    n_ctx = None
    for attr in ("max_position_embeddings", "n_positions", "n_ctx"):
        if getattr(cfg, attr, None):
            n_ctx = int(getattr(cfg, attr))
            break
    lm = LoadedModel(
        hf=hf,
        nn=nn,
        tokenizer=tokenizer,
        blocks_path=blocks_path,
        final_norm_path=final_norm_path,
        unembed_path=unembed_path,
        attn_write=attn_write,
        mlp_write=mlp_write,
        logit_softcap=getattr(cfg, "final_logit_softcapping", None),
        n_layers=n_layers,
        d_model=emb.weight.shape[1],
        vocab_size=out_emb.weight.shape[0],
        n_ctx=n_ctx,
        name=name,
        remote=remote,
    )
    if check and lm.device.type != "meta":  # a remote skeleton has no weights to run here
        _check_causal(lm)
    return lm


def _n_layers(cfg) -> int:
    for attr in ("num_hidden_layers", "n_layer", "num_layers"):
        if getattr(cfg, attr, None):
            return int(getattr(cfg, attr))
    raise ValueError("the config names no layer count (num_hidden_layers / n_layer / num_layers)")


@torch.no_grad()
def _check_causal(lm: LoadedModel) -> None:
    """Refuse a model whose first position sees the future: change the last token, compare."""
    v = min(lm.vocab_size, 1000)
    a = torch.tensor([[v // 3, v // 2, v // 5]], device=lm.device)
    b = a.clone()
    b[0, 2] = v // 7 if v // 7 != a[0, 2] else v // 11
    la, lb = lm.hf(a).logits, lm.hf(b).logits
    if not torch.allclose(la[0, :2], lb[0, :2], rtol=1e-5, atol=1e-5):
        raise ValueError(
            f"{type(lm.hf).__name__} is not causal: changing the last token changed "
            "earlier predictions; residual-widgets needs a causal (decoder-only) LM"
        )
