"""Single attention heads as a site: ``site="head"``, a cell is ``(layer, head, pos)``.

What a head writes. Block ``layer``'s attention computes, for every *query* head ``h`` and
position ``pos``, a mixture of value vectors ``z[pos, h]`` ``[d_head]`` (TransformerLens's
``blocks.{layer}.attn.hook_z``). The heads' vectors are concatenated, head-major, into one vector
``[n_heads · d_head]`` and the output projection (``c_proj`` in GPT-2, ``o_proj`` in Llama-likes,
``dense`` in GPT-NeoX) maps it back into the residual stream. So the *input* of the output
projection, viewed as ``[pos, n_heads, d_head]``, is exactly ``hook_z``, and writing into
``z[pos, h]`` changes that one head's contribution at that one position and nothing else.

Grouped-query (GQA) and multi-query (MQA) attention share key/value heads between query heads,
but every query head still has its own ``z``: cells address *query* heads, ``0..n_heads-1``,
whatever ``num_key_value_heads`` is.

Finding the output projection without a list of names (:func:`layout`): inside each block's
attention module the candidates are the linear maps whose output is ``d_model`` wide and whose
input splits into ``n_heads`` equal parts. When there is more than one (a Llama ``q_proj`` is
``d_model → d_model`` too), one forward pass on three tokens decides by behaviour: the output
projection is the candidate whose output *is* the attention module's output (checked even when
there is only one candidate, so a block that adds anything after its projection is refused
rather than mis-addressed). A weightless remote skeleton cannot run, so there the last such
candidate in registration order is taken (every supported family registers its output
projection after the query projection).

The cone. A head's write at ``(layer, head, pos)`` enters the residual at row ``layer + 1``,
position ``pos``, exactly like an ``attn_out`` write of block ``layer`` (:mod:`.grid`).

Kinds (:func:`values_for`), on ``[d_head]`` vectors: ``zero``; ``mean`` (that head's mean over
the prompt's positions and the ``mean_reference`` prompts'); ``noise`` (the clean vector plus
Gaussian noise of ``noise_scale`` × σ per dimension, seeded per cell); ``patch``/``resample``
(the source run's ``z`` at the same cell); ``set`` (``value=`` ``[d_head]`` or ``[n_cells,
d_head]``).

The noise σ of a head cell is the standard deviation of the clean ``z`` of *its layer* (over the
prompt's positions, the heads and ``d_head``; :func:`noise_sigma`, once per session), not the
embeddings' σ the block sites use: ``z`` lives on another scale. Measured on SmolLM2-135M (three
prompts of 13-18 tokens), std(z of layer k) / std(embeddings) runs from 0.27 (layer 0) to 7.5
(layer 29), median 2.6: the embeddings' σ would make noise on layer 0's heads 3-4× too strong and
on the top layers' 3-7× too weak, relative to what those heads write.

One intervention is one nnsight trace (:func:`head_run`) that edits the output projections'
inputs, so it runs locally and remotely alike, or, on a local model whose blocks step, only its
cone; :func:`.head_click.intervene` picks and measures the Effect. Sweeps live in
:mod:`.head_sweep`.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import nnsight
import torch

from . import grid
from . import remote as rm
from .interventions import replacement_values
from .runs import RunRecord

_ATTN_NAMES = ("self_attn", "attn", "attention", "self_attention")  # fallback only


@dataclass(frozen=True)
class HeadLayout:
    """Where the heads are: ``n_heads`` query heads of ``d_head`` each per block, and per block
    the dotted path of the output projection whose input is ``z`` ``[B, P, n_heads · d_head]``."""

    n_heads: int
    d_head: int
    paths: tuple[str, ...]


_LAYOUTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def layout(lm) -> HeadLayout:
    """The :class:`HeadLayout` of a loaded model (found once per model, then cached)."""
    got = _LAYOUTS.get(lm.hf)
    if got is None:
        got = _LAYOUTS[lm.hf] = _find_layout(lm)
    return got


def _dims(m) -> tuple[int, int] | None:
    """``(in, out)`` of a linear map: ``nn.Linear`` or GPT-2's ``Conv1D`` (weight ``[in, out]``)."""
    if hasattr(m, "in_features") and hasattr(m, "out_features"):
        return int(m.in_features), int(m.out_features)
    if type(m).__name__ == "Conv1D" and hasattr(m, "nf") and hasattr(m, "nx"):
        return int(m.nx), int(m.nf)
    return None


def _attention_of(block: torch.nn.Module) -> tuple[str, torch.nn.Module]:
    """The block's attention module: the outermost child whose class says *Attention*, else a
    child with one of the usual names."""
    for name, m in block.named_modules():
        if name and "attention" in type(m).__name__.lower():
            return name, m
    for name in _ATTN_NAMES:
        if hasattr(block, name):
            return name, getattr(block, name)
    raise ValueError(
        f"block {type(block).__name__} has no child whose class name contains 'Attention' nor one "
        f"named {_ATTN_NAMES}; cannot find its heads"
    )


def _n_heads(cfg) -> int:
    for attr in ("num_attention_heads", "n_head", "num_heads"):
        if getattr(cfg, attr, None):
            return int(getattr(cfg, attr))
    raise ValueError("the config names no head count (num_attention_heads / n_head / num_heads)")


def _find_layout(lm) -> HeadLayout:
    H, d = _n_heads(lm.hf.config), lm.d_model
    cls = type(lm.hf).__name__
    per_block = []
    for k, block in enumerate(lm.blocks):
        aname, attn = _attention_of(block)
        cands = [
            (f"{lm.blocks_path}.{k}.{aname}.{n}", m, dims)
            for n, m in attn.named_modules()
            if n and (dims := _dims(m)) and dims[1] == d and dims[0] % H == 0
        ]
        if not cands:
            raise ValueError(
                f"{cls}: block {k}'s attention ({type(attn).__name__}) has no linear map from "
                f"n_heads·d_head (a multiple of {H}) to d_model={d}; cannot find its heads"
            )
        per_block.append((attn, cands))
    if lm.device.type != "meta":  # verified even when one candidate is left
        chosen = _by_behaviour(lm, per_block)
    else:
        chosen = [cands[-1] for _, cands in per_block]
    widths = {dims[0] for _, _, dims in chosen}
    if len(widths) != 1:
        raise ValueError(f"{cls}: the output projections differ in width ({sorted(widths)})")
    return HeadLayout(H, widths.pop() // H, tuple(p for p, _, _ in chosen))


@torch.no_grad()
def _by_behaviour(lm, per_block):
    """Per block, the candidate whose output equals its attention module's output."""
    seen, hooks = {}, []

    def rec(key):
        def hook(mod, args, out):
            seen[key] = (out[0] if isinstance(out, (tuple, list)) else out).detach()

        return hook

    for k, (attn, cands) in enumerate(per_block):
        hooks.append(attn.register_forward_hook(rec((k, "attn"))))
        for j, (_, m, _) in enumerate(cands):
            hooks.append(m.register_forward_hook(rec((k, j))))
    v = min(lm.vocab_size, 1000)
    try:
        lm.hf(torch.tensor([[v // 3, v // 2, v // 5]], device=lm.device))
    finally:
        for h in hooks:
            h.remove()
    chosen = []
    for k, (_, cands) in enumerate(per_block):
        out = seen[(k, "attn")]
        hit = [c for j, c in enumerate(cands) if (k, j) in seen and torch.equal(seen[(k, j)], out)]
        if len(hit) != 1:
            raise ValueError(
                f"block {k}: {len(hit)} of the candidate output projections "
                f"{[p for p, _, _ in cands]} reproduce the attention's output (expected one)"
            )
        chosen.append(hit[0])
    return chosen


# ---- one run -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class HeadEdit:
    """Write ``value`` ``[d_head]`` into ``z`` of ``head`` at ``pos`` in block ``layer``."""

    layer: int
    head: int
    pos: int
    value: torch.Tensor


def head_run(lm, ids, edits=(), *, save_z=False, remote=None, timeout=None, on_status=None):
    """One forward pass of ``ids`` with ``edits`` (:class:`HeadEdit`) applied to the output
    projections' inputs. Returns ``(RunRecord, z)``: every residual row ``[L + 1, P, d]`` and
    the logits as :func:`.runs.traced_run` records them, and (``save_z``) every block's
    ``z`` ``[L, P, n_heads, d_head]``, else ``None``. The trace body references only envoys,
    tensors and plain values, so it runs remotely unchanged."""
    lay = layout(lm)
    L, dh = lm.n_layers, lay.d_head
    by_layer: dict[int, list] = {}
    for e in edits:
        by_layer.setdefault(e.layer, []).append((e.pos, e.head * dh, (e.head + 1) * dh, e.value))
    input_ids = torch.tensor([list(ids)], device=lm.input_device)
    blocks = [lm.envoy(f"{lm.blocks_path}.{k}") for k in range(L)]
    projs = [lm.envoy(p) for p in lay.paths]
    root = lm.nn
    pending = rm.trace_kwargs(lm, remote)
    with pending.guard():
        with lm.lock, torch.no_grad(), root.trace(input_ids, **pending.kwargs):
            rows = nnsight.save([])
            zs = nnsight.save([])
            for k in range(L):
                if k == 0:
                    h0 = blocks[0].input
                    h0 = h0[0] if isinstance(h0, (tuple, list)) else h0
                    rows.append(h0[0].clone())
                if save_z or k in by_layer:
                    z = projs[k].input
                    for pos, a, b, value in by_layer.get(k, ()):
                        z[0, pos, a:b] = value.to(device=z.device, dtype=z.dtype)
                    if save_z:
                        zs.append(z[0].clone())
                h = blocks[k].output
                h = h[0] if isinstance(h, (tuple, list)) else h
                rows.append(h[0].clone())
            logits = root.output.logits[0].save()
        res = pending.result(timeout=timeout, on_status=on_status)
    if res is not None:
        rows, zs, logits = res["rows"], res["zs"], res["logits"]
    run = RunRecord(resid=torch.stack(list(rows)).float().cpu(), logits=logits.float().cpu())
    z = None
    if save_z:
        z = torch.stack(list(zs)).float().cpu().view(L, len(ids), lay.n_heads, dh)
    return run, z


# ---- a session's head activations and interventions ------------------------------------------
def head_acts(sess, which: str = "clean") -> torch.Tensor | None:
    """``z`` ``[L, P, n_heads, d_head]`` of the session's clean or source run (``None`` without
    a source), or a list of them for ``"references"``; computed once per session, then kept."""
    cache = sess.__dict__.setdefault("_head_z", {})
    if which not in cache:
        with sess.lock:
            if which == "clean":
                cache[which] = _z_of(sess, sess.ids)
            elif which == "source":
                cache[which] = None if sess.source_ids is None else _z_of(sess, sess.source_ids)
            elif which == "references":
                cache[which] = [_z_of(sess, ids) for _, ids in sess._references]
            else:
                raise ValueError(f"which must be 'clean', 'source' or 'references', got {which!r}")
    return cache[which]


def _z_of(sess, ids) -> torch.Tensor:
    return head_run(
        sess.model,
        ids,
        save_z=True,
        remote=sess.remote,
        timeout=sess.timeout,
        on_status=sess.note_status,
    )[1]


def check_cells(sess, cells, kind: str) -> list[tuple[int, int, int]]:
    """Validate head cells for ``kind`` (every kind but ``knockout``)."""
    grid.check_kind(kind)
    if kind == "knockout":
        raise ValueError("kind='knockout' removes attention edges; use site='resid'")
    lay = layout(sess.model)
    return grid.normalize_head_cells(cells, sess.n_layers, lay.n_heads, sess.n_positions)


def noise_sigma(sess) -> torch.Tensor:
    """σ of head noise per layer ``[L]``: the standard deviation of the session's clean ``z`` of
    each layer (``z`` ``[L, P, n_heads, d_head]`` flattened per layer); cached per session."""
    cache = sess.__dict__.setdefault("_head_z", {})
    if "sigma" not in cache:
        z = head_acts(sess)
        cache["sigma"] = z.reshape(z.shape[0], -1).float().std(dim=1)
    return cache["sigma"]


def values_for(sess, cells, kind: str, value=None) -> torch.Tensor:
    """The vectors ``[n_cells, d_head]`` an intervention of ``kind`` writes into head ``cells``
    (:mod:`.interventions` on the heads flattened to rows ``layer · n_heads + head``)."""
    lay = layout(sess.model)
    H, dh = lay.n_heads, lay.d_head

    def rows(z):  # [L, P, H, dh] -> [L·H, P, dh]
        return z.permute(0, 2, 1, 3).reshape(-1, z.shape[1], dh)

    clean = rows(head_acts(sess))
    src = head_acts(sess, "source") if kind in ("patch", "resample") else None
    mean = None
    if kind == "mean":
        parts = [clean] + [rows(z) for z in head_acts(sess, "references")]
        mean = torch.cat(parts, dim=1).mean(dim=1)
    if kind == "set" and value is None:
        raise ValueError(f"kind='set' needs value= (a [{dh}] or [n_cells, {dh}] array: d_head)")
    sigma = 0.0
    if kind == "noise":  # [n_cells, 1]: each cell's layer's σ (broadcast over d_head)
        layers = torch.tensor([layer for layer, _, _ in cells], dtype=torch.long)
        sigma = sess.noise_scale * noise_sigma(sess)[layers].unsqueeze(1).to(clean.dtype)
    return replacement_values(
        kind,
        grid.HEAD_SITE,
        [(layer * H + h, p) for layer, h, p in cells],
        clean,
        source=None if src is None else rows(src),
        mean=mean,
        sigma=sigma,
        seed=sess.seed,
        value=value,
    )
