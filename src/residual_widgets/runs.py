"""One forward pass as a plain nnsight trace: record every residual row, optionally edit cells.

This is the reference path of the engine. Every single intervention is one call of
:func:`traced_run`: a single nnsight trace that walks the blocks in execution order, writes the
replacement vectors into the addressed cells, and saves

* every residual row: ``resid`` ``[L + 1, P, d_model]`` (row 0 = input of block 0, row k = output
  of block k - 1),
* optionally what each block's attention and MLP wrote: ``writes[site]`` ``[L, P, d_model]``,
* the model's own output logits ``[P, vocab]``.

Because it is a plain trace with no local state captured by the model, the same code can later
run through nnsight's remote execution unchanged.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import nnsight
import torch

from . import remote as rm
from .models import LoadedModel


@dataclass(frozen=True)
class Edit:
    """Write ``value`` ``[d_model]`` into cell ``(row, pos)`` of ``site`` (row = block for
    writes)."""

    site: str
    row: int
    pos: int
    value: torch.Tensor


@dataclass
class RunRecord:
    """What one forward pass produced. Shapes: resid ``[L+1, P, d]``, writes ``[L, P, d]``,
    logits ``[P, vocab]``."""

    resid: torch.Tensor
    logits: torch.Tensor
    writes: dict[str, torch.Tensor] | None = None


def traced_run(
    lm: LoadedModel,
    ids: list[int],
    edits: list[Edit] = (),
    save_writes: bool = False,
    remote=None,
    *,
    timeout: float | None = None,
    on_status=None,
    cancel=None,
) -> RunRecord:
    """Run ``ids`` (a list of token ids) through the model with ``edits`` applied.

    ``remote``: ``None`` runs here; ``"local"`` runs nnsight's full remote serialization path
    in-process; ``True`` or a host URL ships the trace to that server and waits for it
    (:func:`.remote.wait`: ``timeout``, ``on_status``, ``cancel``).

    The trace body references only envoys, tensors and plain Python values resolved before it
    starts, so it deserializes on a server that has never heard of this package.
    """
    by_loc: dict[tuple[str, int], list] = defaultdict(list)
    for e in edits:
        by_loc[(e.site, e.row)].append((e.pos, e.value))
    by_loc = dict(by_loc)
    L = lm.n_layers
    input_ids = torch.tensor([list(ids)], device=lm.input_device)
    blocks = [lm.envoy(f"{lm.blocks_path}.{k}") for k in range(L)]
    writers = [
        (site, k, lm.envoy(lm.write_path(site, k)))
        for k in range(L)
        for site in ("attn_out", "mlp_out")
        if save_writes or (site, k) in by_loc
    ]
    root = lm.nn
    pending = rm.trace_kwargs(lm, remote)
    with pending.guard():
        with lm.lock, torch.no_grad(), root.trace(input_ids, **pending.kwargs):
            rows = nnsight.save([])
            attn_w = nnsight.save([])
            mlp_w = nnsight.save([])
            w_at = 0
            for k in range(L):
                if k == 0:
                    h0 = blocks[0].input
                    h0 = h0[0] if isinstance(h0, (tuple, list)) else h0
                    for pos, value in by_loc.get(("resid", 0), ()):
                        h0[0, pos] = value.to(device=h0.device, dtype=h0.dtype)
                    rows.append(h0[0].clone())
                while w_at < len(writers) and writers[w_at][1] == k:
                    site, _, env = writers[w_at]
                    w = env.output
                    w = w[0] if isinstance(w, (tuple, list)) else w
                    for pos, value in by_loc.get((site, k), ()):
                        w[0, pos] = value.to(device=w.device, dtype=w.dtype)
                    if save_writes:
                        (attn_w if site == "attn_out" else mlp_w).append(w[0].clone())
                    w_at += 1
                h = blocks[k].output
                h = h[0] if isinstance(h, (tuple, list)) else h
                for pos, value in by_loc.get(("resid", k + 1), ()):
                    h[0, pos] = value.to(device=h.device, dtype=h.dtype)
                rows.append(h[0].clone())
            logits = root.output.logits[0].save()
        res = pending.result(timeout=timeout, on_status=on_status, cancel=cancel)
    if res is not None:
        rows, attn_w, mlp_w, logits = res["rows"], res["attn_w"], res["mlp_w"], res["logits"]
    writes = None
    if save_writes:
        writes = {
            "attn_out": torch.stack(list(attn_w)).float().cpu(),
            "mlp_out": torch.stack(list(mlp_w)).float().cpu(),
        }
    return RunRecord(
        resid=torch.stack(list(rows)).float().cpu(), logits=logits.float().cpu(), writes=writes
    )


def traced_unembed(
    lm: LoadedModel,
    vectors: torch.Tensor,
    remote=None,
    *,
    timeout: float | None = None,
    on_status=None,
) -> torch.Tensor:
    """Final norm + unembedding (+ soft-cap) of residual ``vectors`` ``[n, d_model]`` → logits
    ``[n, vocab]``, computed where the weights are: for a weightless remote skeleton, inside a
    trace on the server (on a one-token input, so the forward pass it rides on costs little)."""
    norm, head = lm.envoy(lm.final_norm_path), lm.envoy(lm.unembed_path)
    cap = lm.logit_softcap
    x = vectors.detach().float().cpu()
    input_ids = torch.tensor([[0]], device=lm.input_device)
    root = lm.nn
    pending = rm.trace_kwargs(lm, remote)
    with pending.guard():
        with lm.lock, torch.no_grad(), root.trace(input_ids, **pending.kwargs):
            lg = head(norm(x.to(root.output.logits.dtype)))
            if cap:
                lg = torch.tanh(lg / cap) * cap
            logits = lg.float().save()
        res = pending.result(timeout=timeout, on_status=on_status)
    if res is not None:
        logits = res["logits"]
    return logits.detach().cpu()
