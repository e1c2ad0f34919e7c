"""The logit lens of one residual cell: the final norm and unembedding applied to the row, top
``k`` next tokens, in the clean run or under an intervention. For a remote model without local
weights the unembedding runs on the server (one small request; clean cells are cached).
"""

from __future__ import annotations

import torch

from . import grid
from .runs import traced_unembed


def logit_lens(sess, cell, k: int = 5, effect=None) -> list[tuple[str, float]]:
    """Top-``k`` next tokens read from residual cell ``(row, pos)`` through the final norm and
    unembedding, in the clean run or (with ``effect``) under that intervention. For a remote
    model without local weights the unembedding runs on the server (one small request;
    clean cells are cached)."""
    ((r, p),) = grid.normalize_cells(cell, sess.n_rows, sess.n_positions)
    resid = sess.clean.resid if effect is None else effect.resid
    if sess.model.device.type == "meta":  # a remote skeleton: unembed on the server
        if sess.remote is None:
            raise ValueError("this model has no local weights; give the session remote=")
        probs = sess._lens_cache.get((r, p)) if effect is None else None
        if probs is None:
            logits = traced_unembed(
                sess.model,
                resid[r, p][None],
                sess.remote,
                timeout=sess.timeout,
                on_status=sess.note_status,
            )[0]
            probs = torch.softmax(logits, dim=-1)
            if effect is None:
                sess._lens_cache[(r, p)] = probs
    else:
        with sess.lock, torch.no_grad():
            probs = torch.softmax(
                sess.model.unembed(resid[r, p].to(sess.model.device)).float(), dim=-1
            ).cpu()
    top = torch.topk(probs, k)
    return [
        (sess.model.tokenizer.decode([int(i)]), float(v))
        for v, i in zip(top.values, top.indices, strict=True)
    ]
