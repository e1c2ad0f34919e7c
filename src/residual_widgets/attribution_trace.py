"""Attribution patching's one nnsight trace: the clean forward, one backward pass per metric,
and the ``(a' − a) · ∂M/∂a`` dot products reduced to ``[S, P]`` inside the trace — on the server
for a remote session, so only those come back (:func:`traced_attribution`). What it computes
and how good it is: :mod:`.attribution`.

Used for remote sessions (``remote="local"`` included, which exercises the serialization).
A local session computes the same numbers with plain autograd (:mod:`.attribution_local`):
while this trace's backward runs, nnsight replaces ``torch.Tensor.grad`` for the whole process,
so another thread touching a ``.grad`` (``model.to(...)`` in a notebook) would fail.
"""

from __future__ import annotations

import nnsight
import torch

from . import grid
from . import remote as rm


def traced_attribution(
    lm,
    ids,
    site: str,
    new,
    pair,
    remote=None,
    *,
    additive: bool = False,
    keep_grads: bool = False,
    timeout: float | None = None,
    on_status=None,
) -> dict:
    """One nnsight trace: the clean forward, then one backward pass per metric (the logit
    difference when ``pair`` is given; the summed log p of the next tokens when ``P > 1``),
    reducing ``(a' − a) · ∂M/∂a`` to ``[S, P]`` inside the trace (on the server, when remote).

    ``new``: ``None`` (zero: ``a' = 0``), ``a'`` as ``[S, 1, d]`` or ``[S, P, d]``, or — with
    ``additive`` — ``a' − a`` itself. Returns float32 ``ld``/``lp`` ``[S, P]`` (zeros when that
    metric is absent) and ``same`` ``[S, P]`` bool (cells where ``a'`` equals ``a`` bit for bit:
    their estimate is exactly 0). With ``keep_grads`` (local use, for the block correction) it
    returns instead ``g_ld``/``g_lp`` ``[L + 1, P, d]``, the gradients at every residual row.

    The body references only envoys, tensors and plain values, so it deserializes on a server
    without this package; it reads modules in execution order and saves only the reductions.
    """
    L, P = lm.n_layers, len(ids)
    input_ids = torch.tensor([list(ids)], device=lm.input_device)
    nxt = torch.tensor(list(ids[1:]), dtype=torch.long, device=lm.input_device)
    at = torch.arange(P - 1, device=lm.input_device)
    blocks = [lm.envoy(f"{lm.blocks_path}.{k}") for k in range(L)]
    writers = (
        [lm.envoy(lm.write_path(site, k)) for k in range(L)]
        if site != "resid" and not keep_grads
        else []
    )
    use_pair = pair is not None
    good, bad = pair if use_pair else (0, 0)
    want_rows = site == "resid" or keep_grads
    compare = new is not None and not additive
    root = lm.nn
    pending = rm.trace_kwargs(lm, remote)
    with pending.guard():
        with lm.lock, torch.enable_grad(), root.trace(input_ids, **pending.kwargs):
            h0 = blocks[0].input
            h0 = h0[0] if isinstance(h0, (tuple, list)) else h0
            if not h0.requires_grad:  # frozen weights: track from the embeddings on
                h0.requires_grad_(True)
            rows, acts = [h0], []
            for k in range(L):
                for env in writers[k : k + 1]:
                    w = env.output
                    acts.append(w[0] if isinstance(w, (tuple, list)) else w)
                if want_rows:
                    h = blocks[k].output
                    rows.append(h[0] if isinstance(h, (tuple, list)) else h)
            if site == "resid":
                acts = rows
            logits = root.output.logits[0].float()
            targets = rows if keep_grads else acts
            deltas = []
            same = nnsight.save([])
            if not keep_grads:
                for k in range(len(acts)):
                    a = acts[k][0].detach().float()
                    if new is None:
                        deltas.append(-a)
                    elif additive:
                        deltas.append(new[k].to(a.device))
                    else:
                        v = new[k].to(a.device)
                        deltas.append(v - a)
                        same.append((v == a).all(-1))
            ld_est = nnsight.save([])
            lp_est = nnsight.save([])
            g_ld = nnsight.save([])
            g_lp = nnsight.save([])
            if use_pair:
                ld = logits[-1, good] - logits[-1, bad]
                with ld.backward(retain_graph=P > 1, inputs=targets):
                    for k in range(len(targets) - 1, -1, -1):  # gradients arrive top row first
                        g = targets[k].grad[0].float()
                        if keep_grads:
                            g_ld.append(g.detach())
                        else:
                            ld_est.append((g * deltas[k]).sum(-1).detach())
            if P > 1:
                lps = torch.log_softmax(logits[:-1], dim=-1)[at, nxt].sum()
                with lps.backward(inputs=targets):
                    for k in range(len(targets) - 1, -1, -1):
                        g = targets[k].grad[0].float()
                        if keep_grads:
                            g_lp.append(g.detach())
                        else:
                            lp_est.append((g * deltas[k]).sum(-1).detach())
        res = pending.result(timeout=timeout, on_status=on_status)
    if res is not None:
        ld_est, lp_est, g_ld, g_lp, same = (
            res["ld_est"],
            res["lp_est"],
            res["g_ld"],
            res["g_lp"],
            res["same"],
        )
    out = {}
    if keep_grads:
        gz = torch.zeros(L + 1, P, lm.d_model)
        out["g_ld"] = torch.stack(list(g_ld)[::-1]).float().cpu() if use_pair else gz
        out["g_lp"] = torch.stack(list(g_lp)[::-1]).float().cpu() if P > 1 else gz
        return out
    S = grid.n_source_rows(site, L)
    same = torch.stack(list(same)).cpu() if compare else torch.zeros(S, P, dtype=torch.bool)
    zeros = torch.zeros(S, P)
    for name, est, present in (("ld", ld_est, use_pair), ("lp", lp_est, P > 1)):
        est = torch.stack(list(est)[::-1]).float().cpu() if present else zeros
        out[name] = torch.where(same, zeros, est)  # writes the clean value: exactly 0
    out["same"] = same.numpy()
    return out
