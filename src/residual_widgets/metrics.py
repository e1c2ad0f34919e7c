"""How an intervened run differs from the clean run: the numbers every view shows.

All metrics compare an intervened run against the clean run of the same prompt:

* ``resid_delta[row, pos] = ||h' - h|| / ||h||`` — relative L2 change of the residual vector
  (``||h' - h||`` itself where the clean vector is exactly zero);
* ``kl[pos] = KL(p_clean || p_new)`` of the next-token distribution at ``pos``, natural log;
* ``logprob_delta[j] = log p_new(t_{j+1}) - log p_clean(t_{j+1})`` — the change in log-probability
  of the token that actually comes next (so it has ``P - 1`` entries);
* ``logit_diff = logit(good) - logit(bad)`` at the last position (equal to the difference of
  log-probabilities, since the normaliser cancels).

Identical inputs give exactly 0.0 in every metric (no epsilon tricks): each formula reduces to
a difference of equal floats.
"""

from __future__ import annotations

import torch


def resid_delta(new: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """``[..., d]`` × ``[..., d]`` → ``[...]``: ``||new - clean|| / ||clean||``."""
    num = (new - clean).norm(dim=-1)
    den = clean.norm(dim=-1)
    return torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), num)


def kl_from_logprobs(clean_lp: torch.Tensor, new_lp: torch.Tensor) -> torch.Tensor:
    """``[..., V]`` log-probabilities → ``[...]`` KL(clean || new), natural log."""
    return (clean_lp.exp() * (clean_lp - new_lp)).sum(-1).clamp_min(0.0)


def logprob_delta(clean_lp: torch.Tensor, new_lp: torch.Tensor, ids) -> torch.Tensor:
    """``[P, V]`` log-probs and ``P`` token ids → ``[P - 1]`` change in log p(next token)."""
    nxt = torch.as_tensor(list(ids)[1:], dtype=torch.long, device=clean_lp.device)
    pos = torch.arange(len(nxt), device=clean_lp.device)
    return new_lp[..., pos, nxt] - clean_lp[..., pos, nxt]


def logit_diff(lp_last: torch.Tensor, pair: tuple[int, int]) -> torch.Tensor:
    """``[..., V]`` log-probs (or logits) at the last position → ``[...]`` good − bad."""
    return lp_last[..., pair[0]] - lp_last[..., pair[1]]


def kl_from_logits_fast(
    clean_lp: torch.Tensor,
    clean_neg_entropy: torch.Tensor,
    new_logits: torch.Tensor,
    new_lse: torch.Tensor | None = None,
) -> torch.Tensor:
    """KL(clean || new) without materialising ``log_softmax(new_logits)``.

    ``KL = Σ p log p − Σ p · z + logsumexp(z)`` with ``p`` the clean distribution and ``z`` the new
    logits. Shapes: ``clean_lp`` ``[q, V]``, ``clean_neg_entropy`` ``[q]``, ``new_logits``
    ``[A, q, V]`` → ``[A, q]``; ``new_lse`` ``[A, q]`` is ``logsumexp(new_logits)`` if already
    known. Used by the sweep, where memory bandwidth over the vocabulary dominates; agrees with
    :func:`kl_from_logprobs` to float32 rounding.
    """
    p = clean_lp.exp()
    cross = torch.einsum("qv,aqv->aq", p, new_logits)
    if new_lse is None:
        new_lse = torch.logsumexp(new_logits, dim=-1)
    return (clean_neg_entropy - cross + new_lse).clamp_min(0.0)


def logsumexp_rows(logits: torch.Tensor, rows: int = 32) -> torch.Tensor:
    """``logsumexp`` over the vocabulary of ``[a, q, V]``, ``rows`` positions at a time: the same
    numbers as one call (each row is reduced alone either way), about 3× faster here, where one
    call's ``[a, q, V]`` temporaries cost more than the arithmetic."""
    flat = logits.reshape(-1, logits.shape[-1])
    parts = [torch.logsumexp(flat[r : r + rows], dim=-1) for r in range(0, len(flat), rows)]
    return torch.cat(parts).view(logits.shape[:-1])
