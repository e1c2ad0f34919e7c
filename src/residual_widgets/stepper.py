"""Recompute only the causal cone: step through the blocks for positions ≥ i with a clean prefix.

An intervention at residual cell ``(n, i)`` cannot change rows below ``n`` or positions before
``i``. So instead of a full forward pass per cell, the sweep starts from the clean residual at row
``n`` for positions ``i..P-1``, and runs blocks ``n..L-1`` on just those positions. The earlier
positions are still *read* by attention: their keys and values are the clean ones, handed to each
block through a small cache object holding the clean K/V of positions ``< i``. This is exactly
what a KV cache does during generation, which is why it is exact.

How it stays architecture-agnostic: one clean forward pass (with eager attention, so masks are
explicit) records the arguments each block was called with — attention mask (causal and any
sliding window), rotary position embeddings, position ids — and the stepper slices them to the
query positions ``i..P-1``. It then checks itself: stepping the clean run from row 0 must
reproduce the clean residuals and logits. An architecture whose blocks take arguments it does
not know how to slice is refused (:class:`UnsupportedStepping`), and the sweep falls back to one
nnsight trace per cell.

Shapes: hidden states ``[A, q, d_model]`` for ``A`` cells at once and ``q = P - i`` positions.
"""

from __future__ import annotations

import inspect

import torch

from .models import LoadedModel

#: names a block's cache argument has had (transformers ≤ 5.23: ``past_key_values``; 5.24:
#: ``cache``; older GPT-2-style blocks: ``layer_past``). Only a fallback: the argument is found
#: by what it *is* (a cache object) when the model passes one.
_CACHE_NAMES = ("cache", "past_key_values", "past_key_value", "layer_past")
#: per-position arguments that are sliced to the query positions when found by name; anything
#: else holding tensors is recognised by its shape (a position axis of length ``P``)
_SEQ_NAMES = ("position_ids", "cache_position", "position_embeddings")


class UnsupportedStepping(RuntimeError):
    """The model's blocks cannot be stepped on a suffix of positions; use the traced path."""


class _PrefixKV:
    """Duck-typed KV cache for one block call: clean prefix keys/values + the new ones."""

    def __init__(self, k: torch.Tensor | None, v: torch.Tensor | None):
        self.k, self.v, self.last = k, v, None

    def update(self, key_states, value_states, *args, **kwargs):
        # transformers calls update(k, v, layer_idx, cache_kwargs) up to 5.23 and
        # update(k, v, layer_idx, kwargs=...) from 5.24: only k and v matter here
        self.last = (key_states, value_states)
        if self.k is None or self.k.shape[-2] == 0:
            return key_states, value_states
        a = key_states.shape[0]
        k = self.k.expand(a, *self.k.shape[1:])
        v = self.v.expand(a, *self.v.shape[1:])
        return torch.cat([k, key_states], dim=-2), torch.cat([v, value_states], dim=-2)

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return 0 if self.k is None else self.k.shape[-2]


class Stepper:
    """Runs single blocks on position suffixes of one prompt. Build once per prompt."""

    def __init__(
        self,
        lm: LoadedModel,
        ids: list[int],
        clean_resid: torch.Tensor,
        clean_logits: torch.Tensor,
        tol: float = 1e-4,
    ):
        self.lm, self.P = lm, len(ids)
        self.calls = self._capture(ids)
        self.kv: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._self_check(clean_resid, clean_logits, tol)

    # ---- capture -----------------------------------------------------------------------------
    @torch.no_grad()
    def _capture(self, ids: list[int]) -> list[dict]:
        lm, calls = self.lm, []
        blocks = lm.blocks

        def pre(mod, args, kwargs):
            # the class's function, not the (possibly wrapped) bound method
            sig = inspect.signature(type(mod).forward)
            bound = sig.bind(mod, *args, **kwargs)
            named, notes = {}, {}
            for name, val in list(bound.arguments.items())[1:]:
                if sig.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                    named.update(val)
                else:
                    named[name] = val
                    notes[name] = str(sig.parameters[name].annotation)
            calls.append((named, notes))

        hooks = [b.register_forward_pre_hook(pre, with_kwargs=True) for b in blocks]
        impl = getattr(lm.hf.config, "_attn_implementation", None)
        try:
            if impl not in (None, "eager"):
                lm.hf.set_attn_implementation("eager")
            lm.hf(torch.tensor([ids], device=lm.device), use_cache=True)
        finally:
            for h in hooks:
                h.remove()
            if impl not in (None, "eager"):
                lm.hf.set_attn_implementation(impl)
        if len(calls) != lm.n_layers:
            raise UnsupportedStepping(f"captured {len(calls)} block calls, expected {lm.n_layers}")
        return [self._classify(named, notes) for named, notes in calls]

    def _classify(self, named: dict, annotations: dict) -> dict:
        """Sort one block call's arguments by what they are, not by what they are called.

        * the cache: a cache object (anything with ``update`` and ``get_seq_length``, as every
          transformers ``Cache`` has), or — when the model passed none — the parameter
          annotated as a ``Cache`` or carrying one of the names it has had;
        * the attention mask: a 4-D float tensor ``[B, heads|1, P, P]``;
        * per-position arguments (position ids, cache positions, rotary ``(cos, sin)``): tensors
          with a position axis of length ``P``, sliced to the query positions;
        * everything else must hold no tensors and is passed through unchanged.

        The self-check (:meth:`_self_check`) then steps a suffix against the clean run, so an
        argument sorted wrongly is refused loudly instead of giving wrong numbers."""
        names = list(named)
        spec = {"hidden": names[0], "static": {}, "mask": None, "cache": None, "seq": {}}
        for name in names[1:]:
            val = named[name]
            if _is_cache(val) or (val is None and _names_cache(name, annotations.get(name))):
                spec["cache"] = name
            elif _is_mask(val, self.P):
                spec["mask"] = (name, val)
            elif name == "attention_mask" and val is not None:
                raise UnsupportedStepping(
                    f"attention mask is {type(val).__name__}"
                    f"{_shape(val)}, expected an explicit 4-D float mask"
                )
            elif name in _SEQ_NAMES or _has_position_axis(val, self.P):
                spec["seq"][name] = val
            elif name == "use_cache":
                spec["static"][name] = True
            elif _has_tensor(val):
                raise UnsupportedStepping(
                    f"block argument {name!r} holds tensors the stepper does not know how to slice"
                )
            else:
                spec["static"][name] = val
        if spec["mask"] is None or spec["cache"] is None:
            missing = " and ".join(
                w
                for w, v in (
                    ("an explicit attention mask", spec["mask"]),
                    ("a cache argument", spec["cache"]),
                )
                if v is None
            )
            raise UnsupportedStepping(
                f"blocks were called without {missing} (arguments: {', '.join(names[1:])})"
            )
        return spec

    # ---- stepping ----------------------------------------------------------------------------
    def layer(
        self, k: int, hidden: torch.Tensor, start: int, hide_keys=(), stop: int | None = None
    ) -> torch.Tensor:
        """Run block ``k`` on ``hidden`` ``[A, q, d]`` = positions ``start..P-1``.

        ``hide_keys``: absolute positions that queries *after* them may not attend to (an
        attention-edge knockout); the query at such a position itself still sees it.
        ``stop``: run positions ``start..stop-1`` only (``hidden`` ``[A, stop - start, d]``): a
        position's output never depends on later positions, so nothing else is needed."""
        stop = self.P if stop is None else stop
        spec = self.calls[k]
        kw = dict(spec["static"])
        kw[spec["hidden"]] = hidden
        name, mask = spec["mask"]
        mask = mask[:, :, start:stop, :stop]
        if hide_keys:
            mask = mask.clone()
            for key in hide_keys:
                mask[:, :, max(key + 1 - start, 0) :, key] = torch.finfo(mask.dtype).min
        kw[name] = mask
        for sname, val in spec["seq"].items():
            kw[sname] = _slice_seq(sname, val, start, self.P)
            if stop < self.P:
                kw[sname] = _trim(kw[sname], stop - start)
        pk, pv = (
            (self.kv[k][0][:, :, :start], self.kv[k][1][:, :, :start]) if self.kv else (None, None)
        )
        cache = _PrefixKV(pk, pv)
        kw[spec["cache"]] = cache
        out = self.lm.blocks[k](**kw)
        out = out[0] if isinstance(out, (tuple, list)) else out
        self._last_cache = cache
        return out

    @torch.no_grad()
    def _self_check(self, clean_resid: torch.Tensor, clean_logits: torch.Tensor, tol: float):
        """Refuse (:class:`UnsupportedStepping`) unless stepping reproduces the clean run: all
        positions from row 0 (records the clean K/V), then each block alone on the suffix
        ``P//2..P-1`` with the clean prefix K/V (checks the slicing of every argument)."""
        try:
            worst, lerr, kv = self._check_full(clean_resid, clean_logits)
            self.kv = kv
            suffix = self._check_suffix(clean_resid) if self.P > 1 else 0.0
        except UnsupportedStepping:
            raise
        except Exception as e:  # a block that rejects the sliced call: refuse, do not crash
            self.kv = []
            raise UnsupportedStepping(f"stepping a block failed ({type(e).__name__}: {e})") from e
        if max(worst, lerr, suffix) > tol:
            self.kv = []
            raise UnsupportedStepping(
                f"stepping the clean run does not reproduce it (residual "
                f"error {worst:.2e}, logit error {lerr:.2e}, suffix error "
                f"{suffix:.2e})"
            )

    def _check_full(self, clean_resid, clean_logits):
        h = clean_resid[0].unsqueeze(0)
        worst, kv = 0.0, []
        for k in range(self.lm.n_layers):
            h = self.layer(k, h, 0)
            kv.append(tuple(t.detach() for t in self._last_cache.last))
            worst = max(worst, _rel_err(h[0], clean_resid[k + 1]))
        return worst, _rel_err(self.lm.unembed(h[0]), clean_logits), kv

    def _check_suffix(self, clean_resid) -> float:
        start = self.P // 2
        return max(
            _rel_err(
                self.layer(k, clean_resid[k, start:].unsqueeze(0), start)[0],
                clean_resid[k + 1, start:],
            )
            for k in range(self.lm.n_layers)
        )


def _rel_err(x: torch.Tensor, ref: torch.Tensor) -> float:
    return ((x - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item()


def _is_cache(val) -> bool:
    """A KV-cache object (transformers' ``Cache`` and its subclasses, or anything shaped like
    one): it takes new keys/values through ``update`` and knows its length."""
    return (
        val is not None
        and not isinstance(val, (torch.Tensor, tuple, list, dict))
        and callable(getattr(val, "update", None))
        and callable(getattr(val, "get_seq_length", None))
    )


def _names_cache(name: str, annotation: str | None) -> bool:
    return name in _CACHE_NAMES or (annotation is not None and "Cache" in annotation)


def _is_mask(val, P: int) -> bool:
    return (
        isinstance(val, torch.Tensor)
        and val.ndim == 4
        and val.is_floating_point()
        and tuple(val.shape[-2:]) == (P, P)
    )


def _has_position_axis(val, P: int) -> bool:
    """A tensor (or tuple of tensors) with a position axis of length ``P``: ``[P]`` or
    ``[B, P, ...]``, as position ids, cache positions and rotary ``(cos, sin)`` have."""
    if isinstance(val, (tuple, list)):
        return bool(val) and all(_has_position_axis(v, P) for v in val)
    return isinstance(val, torch.Tensor) and (
        (val.ndim == 1 and val.shape[0] == P and not val.is_floating_point())
        or (val.ndim >= 2 and val.shape[1] == P)
    )


def _shape(val) -> str:
    return f" of shape {tuple(val.shape)}" if isinstance(val, torch.Tensor) else ""


def _has_tensor(val) -> bool:
    if isinstance(val, torch.Tensor):
        return True
    if isinstance(val, (tuple, list)):
        return any(_has_tensor(v) for v in val)
    if isinstance(val, dict):
        return any(_has_tensor(v) for v in val.values())
    return False


def _trim(val, n: int):
    """Keep the first ``n`` positions of an argument already sliced by :func:`_slice_seq`."""
    if val is None:
        return None
    if isinstance(val, (tuple, list)):
        return type(val)(_trim(v, n) for v in val)
    return val[:n] if val.ndim == 1 else val[:, :n]


def _slice_seq(name: str, val, start: int, P: int):
    if val is None:
        return None
    if isinstance(val, (tuple, list)):
        return type(val)(_slice_seq(name, v, start, P) for v in val)
    if name == "cache_position" and val.ndim == 1 and val.shape[0] == P:
        return val[start:]
    if val.ndim >= 2 and val.shape[1] == P:
        return val[:, start:]
    raise UnsupportedStepping(f"cannot slice block argument {name!r} of shape {tuple(val.shape)}")
