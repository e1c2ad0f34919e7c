"""Many single-cell interventions in one nnsight trace: the sweep path for remote models.

A remote server cannot keep our local K/V cache between requests, so the causal-cone stepper
(:mod:`.stepper`) does not apply there. Instead each request carries a *batch*: the prompt
repeated ``B + 1`` times, batch element 0 left clean and element ``b + 1`` intervened at cell
``b``. Everything the atlas needs is reduced inside the trace, on the server, against element 0:

* ``deltas`` ``[R, B, P]``: ``||h_b - h_clean|| / ||h_clean||`` at every residual cell,
* ``kl`` ``[B, P]``: KL(clean ‖ new) of the next-token distribution,
* ``lpd`` ``[B, P - 1]``: change in log p(actual next token),
* ``ld`` ``[B]``: logit(good) − logit(bad) at the last position,

so what comes back is ``O(B · R · P)`` floats, not ``B`` full logit tensors. The trace body
references only envoys, tensors and plain values (no function of this package), so it
deserializes on a server that does not have residual-widgets installed. The same function runs
locally (``remote=None``) — that is ``Session.sweep(method="batch")`` — and through nnsight's
in-process simulation (``remote="local"``), which gives bit-identical results.
"""

from __future__ import annotations

from collections import defaultdict

import nnsight
import torch

from . import remote as rm


def cells_per_request(R: int, P: int, d: int, V: int, budget: int, cap: int = 64) -> int:
    """How many cells one batched trace may carry within ``budget`` bytes of activations
    (logits and their log-softmax dominate: about ``4 · P · V`` floats per batch element)."""
    per_cell = 4 * (4 * P * V + 3 * R * P * d)
    return int(max(1, min(cap, budget // per_cell - 1)))


def batched_effects(
    sess,
    cells,
    kind: str,
    site: str,
    pair,
    *,
    timeout: float | None = None,
    on_status=None,
    cancel=None,
) -> dict:
    """Intervene on each of ``cells`` separately, all in one trace (run as ``sess.remote``
    says). Returns torch tensors: ``deltas`` ``[B, R, P]``, ``kl`` ``[B, P]``, ``lpd``
    ``[B, P - 1]``, ``ld`` ``[B]`` (zeros without a token pair)."""
    lm = sess.model
    L, P, B = lm.n_layers, sess.n_positions, len(cells)
    values = sess.values_for(cells, kind, site)  # [B, d]
    by_loc: dict = defaultdict(list)
    for b, ((r, p), v) in enumerate(zip(cells, values, strict=True)):
        by_loc[(site, r)].append((b + 1, p, v))
    by_loc = dict(by_loc)
    input_ids = torch.tensor([list(sess.ids)] * (B + 1), device=lm.input_device)
    nxt = torch.tensor(list(sess.ids[1:]), dtype=torch.long, device=lm.input_device)
    at = torch.arange(P - 1, device=lm.input_device)
    good, bad = pair if pair is not None else (0, 0)
    blocks = [lm.envoy(f"{lm.blocks_path}.{k}") for k in range(L)]
    writers = [
        (s, k, lm.envoy(lm.write_path(s, k)))  # in execution order
        for (s, k) in sorted(by_loc, key=lambda sk: (sk[1], sk[0] != "attn_out"))
        if s != "resid"
    ]
    root = lm.nn
    pending = rm.trace_kwargs(lm, sess.remote)
    with pending.guard():
        with lm.lock, torch.no_grad(), root.trace(input_ids, **pending.kwargs):
            deltas = nnsight.save([])
            w_at = 0
            for k in range(L + 1):
                if k == 0:
                    h = blocks[0].input
                else:
                    while w_at < len(writers) and writers[w_at][1] == k - 1:
                        s, _, env = writers[w_at]
                        w = env.output
                        w = w[0] if isinstance(w, (tuple, list)) else w
                        for b1, pos, value in by_loc[(s, k - 1)]:
                            w[b1, pos] = value.to(device=w.device, dtype=w.dtype)
                        w_at += 1
                    h = blocks[k - 1].output
                h = h[0] if isinstance(h, (tuple, list)) else h
                for b1, pos, value in by_loc.get(("resid", k), ()):
                    h[b1, pos] = value.to(device=h.device, dtype=h.dtype)
                hf = h.float()
                num = (hf[1:] - hf[0:1]).norm(dim=-1)
                den = hf[0:1].norm(dim=-1).expand_as(num)
                deltas.append(
                    torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), num)
                )
            logits = root.output.logits.float()
            lp = torch.log_softmax(logits, dim=-1)
            kl = (lp[0:1].exp() * (lp[0:1] - lp[1:])).sum(-1).clamp_min(0.0).save()
            lpd = (lp[1:, at, nxt] - lp[0:1, at, nxt]).save()
            ld = (logits[1:, -1, good] - logits[1:, -1, bad]).save()
        res = pending.result(timeout=timeout, on_status=on_status, cancel=cancel)
    if res is not None:
        deltas, kl, lpd, ld = res["deltas"], res["kl"], res["lpd"], res["ld"]
    return {
        "deltas": torch.stack(list(deltas), dim=1).cpu(),
        "kl": kl.cpu(),
        "lpd": lpd.cpu(),
        "ld": ld.cpu(),
    }
