"""A session's inputs, checked before anything runs: prompts as token ids, the token pair of a
logit difference, the cells of an intervention.

Every check raises with words that say what was given and what to give instead (the prompt is
too long for the model's context, a "single token" string is three tokens, a cell is outside
the grid…); a session stays usable after any of these errors, since nothing is mutated before
the input is validated.
"""

from __future__ import annotations

import numpy as np
import torch

from . import grid


def tokenize(sess, prompt, what: str) -> list[int]:
    """``prompt`` (a string, or a 1-D sequence of token ids) as a list of token ids of
    ``sess``'s model (BOS prepended to a string with ``prepend_bos``), checked: not empty,
    within the vocabulary and the model's context. ``what`` names it in errors."""
    tok = sess.model.tokenizer
    if isinstance(prompt, str):
        ids = tok(prompt, add_special_tokens=False)["input_ids"]
        if sess.prepend_bos and tok.bos_token_id is not None:
            ids = [tok.bos_token_id] + list(ids)
    elif isinstance(prompt, (list, tuple, np.ndarray, torch.Tensor)):
        arr = np.asarray(prompt.tolist() if isinstance(prompt, torch.Tensor) else prompt)
        if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise TypeError(
                f"the {what} must be a string or a 1-D sequence of token ids, got "
                f"an array of shape {arr.shape} and dtype {arr.dtype}"
            )
        ids = [int(x) for x in arr]
        bad = [x for x in ids if not 0 <= x < sess.model.vocab_size]
        if bad:
            raise ValueError(
                f"token ids {bad[:5]} in the {what} are outside the vocabulary "
                f"0..{sess.model.vocab_size - 1}"
            )
    else:
        raise TypeError(
            f"the {what} must be a string or a 1-D sequence of token ids, "
            f"got {type(prompt).__name__}"
        )
    if len(ids) == 0:
        raise ValueError(f"the {what} is empty: give at least one token")
    n_ctx = sess.model.n_ctx
    if n_ctx is not None and len(ids) > n_ctx:
        raise ValueError(
            f"the {what} has {len(ids)} tokens, more than the model's context of "
            f"{n_ctx}; shorten it"
        )
    return list(ids)


def token_pair(sess, pair) -> tuple[int, int]:
    """``(good, bad)`` as token ids; strings must each be exactly one token."""
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
        raise TypeError(f"logit_diff must be a (good, bad) pair of tokens, got {pair!r}")
    out = []
    for t in pair:
        if isinstance(t, str):
            ids = sess.model.tokenizer(t, add_special_tokens=False)["input_ids"]
            if len(ids) != 1:
                pieces = [sess.model.tokenizer.decode([i]) for i in ids]
                raise ValueError(
                    f"{t!r} is {len(ids)} tokens {pieces}, not one; "
                    "pick a single-token string or pass a token id"
                )
            out.append(int(ids[0]))
        elif isinstance(t, (int, np.integer)) and 0 <= int(t) < sess.model.vocab_size:
            out.append(int(t))
        else:
            raise ValueError(
                f"token {t!r} is neither a string nor an id in 0..{sess.model.vocab_size - 1}"
            )
    return out[0], out[1]


def check_cells(sess, cells, kind: str, site: str) -> list[grid.Cell]:
    """``cells`` of ``site`` for ``kind`` as a list of ``(row, pos)`` (``(layer, head, pos)``
    for heads), each checked against the grid."""
    if site == grid.HEAD_SITE:  # (layer, head, pos) triples
        from . import heads

        return heads.check_cells(sess, cells, kind)
    grid.check_kind(kind)
    grid.check_site(site)
    if kind == "knockout":
        if site != "resid":
            raise ValueError("kind='knockout' removes attention edges; use site='resid'")
        return grid.normalize_cells(cells, sess.n_layers, sess.n_positions, "block")
    return grid.normalize_cells(
        cells, grid.n_source_rows(site, sess.n_layers), sess.n_positions, site
    )
