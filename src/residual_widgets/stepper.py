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

_CACHE_ARGS = ("past_key_values", "past_key_value", "layer_past")


class UnsupportedStepping(RuntimeError):
    """The model's blocks cannot be stepped on a suffix of positions; use the traced path."""


class _PrefixKV:
    """Duck-typed KV cache for one block call: clean prefix keys/values + the new ones."""

    def __init__(self, k: torch.Tensor | None, v: torch.Tensor | None):
        self.k, self.v, self.last = k, v, None

    def update(self, key_states, value_states, layer_idx=None, cache_kwargs=None):
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

    def __init__(self, lm: LoadedModel, ids: list[int], clean_resid: torch.Tensor,
                 clean_logits: torch.Tensor, tol: float = 1e-4):
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
            named = {}
            for name, val in list(bound.arguments.items())[1:]:
                if sig.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                    named.update(val)
                else:
                    named[name] = val
            calls.append(named)

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
        return [self._classify(c) for c in calls]

    def _classify(self, named: dict) -> dict:
        names = list(named)
        spec = {"hidden": names[0], "static": {}, "mask": None, "cache": None, "seq": {}}
        for name in names[1:]:
            val = named[name]
            if name in _CACHE_ARGS:
                spec["cache"] = name
            elif name == "attention_mask":
                if not (isinstance(val, torch.Tensor) and val.ndim == 4 and val.is_floating_point()):
                    raise UnsupportedStepping(f"attention mask is {type(val).__name__}, "
                                              "expected an explicit 4-D float mask")
                spec["mask"] = (name, val)
            elif name in ("position_ids", "cache_position", "position_embeddings"):
                spec["seq"][name] = val
            elif name == "use_cache":
                spec["static"][name] = True
            elif _has_tensor(val):
                raise UnsupportedStepping(f"block argument {name!r} holds tensors the stepper "
                                          "does not know how to slice")
            else:
                spec["static"][name] = val
        if spec["mask"] is None or spec["cache"] is None:
            raise UnsupportedStepping("blocks were called without an explicit mask or cache")
        return spec

    # ---- stepping ----------------------------------------------------------------------------
    def layer(self, k: int, hidden: torch.Tensor, start: int,
              hide_keys=()) -> torch.Tensor:
        """Run block ``k`` on ``hidden`` ``[A, q, d]`` = positions ``start..P-1``.

        ``hide_keys``: absolute positions that queries *after* them may not attend to (an
        attention-edge knockout); the query at such a position itself still sees it."""
        spec = self.calls[k]
        kw = dict(spec["static"])
        kw[spec["hidden"]] = hidden
        name, mask = spec["mask"]
        mask = mask[:, :, start:, :]
        if hide_keys:
            mask = mask.clone()
            for key in hide_keys:
                mask[:, :, max(key + 1 - start, 0):, key] = torch.finfo(mask.dtype).min
        kw[name] = mask
        for sname, val in spec["seq"].items():
            kw[sname] = _slice_seq(sname, val, start, self.P)
        pk, pv = (self.kv[k][0][:, :, :start], self.kv[k][1][:, :, :start]) if self.kv else (None, None)
        cache = _PrefixKV(pk, pv)
        kw[spec["cache"]] = cache
        out = self.lm.blocks[k](**kw)
        out = out[0] if isinstance(out, (tuple, list)) else out
        self._last_cache = cache
        return out

    @torch.no_grad()
    def _self_check(self, clean_resid: torch.Tensor, clean_logits: torch.Tensor, tol: float):
        h = clean_resid[0].unsqueeze(0)
        worst = 0.0
        kv = []
        for k in range(self.lm.n_layers):
            h = self.layer(k, h, 0)
            kv.append(tuple(t.detach() for t in self._last_cache.last))
            ref = clean_resid[k + 1]
            worst = max(worst, ((h[0] - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item())
        logits = self.lm.unembed(h[0])
        lerr = ((logits - clean_logits).abs().max() / clean_logits.abs().max().clamp_min(1e-12)).item()
        if worst > tol or lerr > tol:
            raise UnsupportedStepping(f"stepping the clean run does not reproduce it (residual "
                                      f"error {worst:.2e}, logit error {lerr:.2e})")
        self.kv = kv


def _has_tensor(val) -> bool:
    if isinstance(val, torch.Tensor):
        return True
    if isinstance(val, (tuple, list)):
        return any(_has_tensor(v) for v in val)
    if isinstance(val, dict):
        return any(_has_tensor(v) for v in val.values())
    return False


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
