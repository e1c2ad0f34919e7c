"""Attribution patching's forward + backward for a *local* session, in plain torch: the same
numbers as :func:`.attribution_trace.traced_attribution` with no nnsight involved.

Why a second path. nnsight runs a traced ``.backward()`` by replacing ``torch.Tensor.grad``
*for the whole process* while the backward pass runs, so that ``tensor.grad`` inside the trace
means "the gradient arriving at this point". Any other thread that touches a ``.grad`` at that
moment — a notebook cell calling ``model.to(...)``, which walks every parameter's ``.grad``,
while the widget estimates on its worker thread — fails with "Cannot access ...grad outside of
interleaving". A local model needs no interleaving to get gradients, so this module asks
autograd directly and patches nothing global; remote sessions (and ``remote="local"``, which
exercises the remote serialization) keep the nnsight trace, one request.

How, for ``L`` blocks and ``P`` positions:

1. plain forward hooks on the HF modules keep the activations of one clean forward pass with
   grad enabled: the residual rows ``h_0 … h_L`` (block 0's input, then each block's output),
   or what each block's attention / MLP wrote (``attn_out`` / ``mlp_out``), each ``[1, P, d]``;
2. the metrics from the logits ``[P, vocab]``: the logit difference at the last position when a
   token pair is given, the summed log p of the actual next tokens when ``P > 1``;
3. ``torch.autograd.grad(metric, inputs=acts)`` — gradients for the activations only, so no
   parameter's ``.grad`` is written and no parameter's ``requires_grad`` is touched (with frozen
   weights, ``h_0`` is made to require grad, an activation, not a weight);
4. ``(a' − a) · ∂M/∂a`` summed over ``d``: ``[S, P]`` per metric.

The model lock is held for the forward and both backward passes, as for every engine pass.
"""

from __future__ import annotations

import torch

from . import grid
from .models import _get


def local_attribution(
    lm,
    ids,
    site: str,
    new,
    pair,
    *,
    additive: bool = False,
    keep_grads: bool = False,
) -> dict:
    """The contract of :func:`.attribution_trace.traced_attribution` (local only): float32
    ``ld``/``lp`` ``[S, P]`` (zeros when that metric is absent; exactly 0 where ``a'`` equals
    ``a`` bit for bit) and ``same`` ``[S, P]`` bool numpy, or with ``keep_grads`` the gradients
    ``g_ld``/``g_lp`` ``[L + 1, P, d]`` at every residual row (for the block correction).

    ``new``: ``None`` (zero: ``a' = 0``), ``a'`` as ``[S, 1, d]`` or ``[S, P, d]``, or — with
    ``additive`` — ``a' − a`` itself."""
    L, P = lm.n_layers, len(ids)
    use_pair = pair is not None
    with lm.lock, torch.enable_grad():
        acts, logits = _forward(lm, ids, "resid" if keep_grads else site)
        logits = logits.float()
        metrics = []
        if use_pair:
            good, bad = pair
            metrics.append(("ld", logits[-1, good] - logits[-1, bad]))
        if P > 1:
            nxt = torch.tensor(list(ids[1:]), dtype=torch.long, device=logits.device)
            at = torch.arange(P - 1, device=logits.device)
            lps = torch.log_softmax(logits[:-1], dim=-1)[at, nxt].sum()
            metrics.append(("lp", lps))
        grads = {}
        for j, (name, m) in enumerate(metrics):
            gs = torch.autograd.grad(m, acts, retain_graph=j < len(metrics) - 1, allow_unused=True)
            grads[name] = torch.stack(
                [
                    torch.zeros_like(a[0]) if g is None else g[0]
                    for a, g in zip(acts, gs, strict=True)
                ]
            ).float()  # [S, P, d]
    a = torch.stack([t[0] for t in acts]).detach().float()  # [S, P, d]
    if keep_grads:
        gz = torch.zeros(L + 1, P, lm.d_model)
        return {f"g_{n}": grads[n].cpu() if n in grads else gz for n in ("ld", "lp")}
    S = grid.n_source_rows(site, L)
    same = torch.zeros(S, P, dtype=torch.bool)
    if new is None:
        delta = -a
    elif additive:
        delta = new.to(a.device).float()
    else:
        v = new.to(a.device).float()
        delta = v - a
        same = (v == a).all(-1).cpu()
    zeros = torch.zeros(S, P)
    out = {}
    for name in ("ld", "lp"):
        est = (grads[name] * delta).sum(-1).cpu() if name in grads else zeros
        out[name] = torch.where(same, zeros, est)  # writes the clean value: exactly 0
    out["same"] = same.numpy()
    return out


def _forward(lm, ids, site: str) -> tuple[list[torch.Tensor], torch.Tensor]:
    """One clean forward pass with grad enabled; returns the kept activations (``L + 1``
    residual rows for ``resid``, else the ``L`` writes of ``site``; each ``[1, P, d]``, in
    row order) and the logits ``[P, vocab]``."""
    L = lm.n_layers
    acts: list[torch.Tensor] = []

    def keep(mod, args, out):
        acts.append(out[0] if isinstance(out, (tuple, list)) else out)

    def pre(mod, args, kwargs):
        h0 = args[0] if args else kwargs["hidden_states"]
        if not h0.requires_grad:  # frozen weights: track from the embeddings on
            h0.requires_grad_(True)
        if site == "resid":
            acts.append(h0)

    hooks = [lm.blocks[0].register_forward_pre_hook(pre, with_kwargs=True)]
    if site == "resid":
        hooks += [b.register_forward_hook(keep) for b in lm.blocks]
    else:
        hooks += [_get(lm.hf, lm.write_path(site, k)).register_forward_hook(keep) for k in range(L)]
    try:
        x = torch.tensor([list(ids)], device=lm.input_device)
        logits = lm.hf(input_ids=x, use_cache=False).logits[0]
    finally:
        for h in hooks:
            h.remove()
    return acts, logits
