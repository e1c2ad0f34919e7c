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

from .models import LoadedModel


@dataclass(frozen=True)
class Edit:
    """Write ``value`` ``[d_model]`` into cell ``(row, pos)`` of ``site`` (row = block for writes)."""

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


def _tensor(out):
    """Blocks and attention modules may return a tuple whose first entry is the hidden state."""
    return out[0] if isinstance(out, (tuple, list)) else out


def _apply(t: torch.Tensor, edits) -> None:
    for pos, value in edits:
        t[0, pos] = value.to(t.dtype)


def traced_run(lm: LoadedModel, ids: list[int], edits: list[Edit] = (),
               save_writes: bool = False, remote=None) -> RunRecord:
    """Run ``ids`` (a list of token ids) through the model with ``edits`` applied.

    ``remote``: passed to nnsight's ``trace`` (``"local"`` runs the full remote serialization
    path in-process)."""
    by_loc: dict[tuple[str, int], list] = defaultdict(list)
    for e in edits:
        by_loc[(e.site, e.row)].append((e.pos, e.value))
    L = lm.n_layers
    input_ids = torch.tensor([list(ids)], device=lm.device)
    trace_kw = {} if remote is None else {"remote": remote}
    with lm.lock, torch.no_grad(), lm.nn.trace(input_ids, **trace_kw):
        rows = nnsight.save([])
        attn_w = nnsight.save([])
        mlp_w = nnsight.save([])
        blocks = lm.envoy(lm.blocks_path)
        for k in range(L):
            if k == 0:
                h0 = _tensor(blocks[0].input)
                _apply(h0, by_loc.get(("resid", 0), ()))
                rows.append(h0[0].clone())
            for site, store in (("attn_out", attn_w), ("mlp_out", mlp_w)):
                if save_writes or (site, k) in by_loc:
                    w = _tensor(lm.envoy(lm.write_path(site, k)).output)
                    _apply(w, by_loc.get((site, k), ()))
                    if save_writes:
                        store.append(w[0].clone())
            h = _tensor(blocks[k].output)
            _apply(h, by_loc.get(("resid", k + 1), ()))
            rows.append(h[0].clone())
        logits = lm.nn.output.logits[0].save()
    writes = None
    if save_writes:
        writes = {"attn_out": torch.stack(list(attn_w)), "mlp_out": torch.stack(list(mlp_w))}
    return RunRecord(resid=torch.stack(list(rows)).float(), logits=logits.float(), writes=writes)
