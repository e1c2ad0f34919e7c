"""The metrics on their own, against torch's independent implementations, for every input shape
their docstrings promise (found by the mutation run: the batched and default paths were never
exercised by the engine tests)."""

import torch
import torch.nn.functional as F

from residual_widgets import metrics


def _logits(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 3


def test_kl_from_logprobs_on_batched_inputs_matches_torch():
    clean, new = _logits(4, 5, 11), _logits(4, 5, 11, seed=1)  # [A, P, V]
    clean_lp, new_lp = clean.log_softmax(-1), new.log_softmax(-1)
    want = F.kl_div(new_lp, clean_lp, log_target=True, reduction="none").sum(-1)
    got = metrics.kl_from_logprobs(clean_lp, new_lp)
    assert got.shape == (4, 5)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


def test_fast_kl_computes_the_log_normaliser_when_not_given():
    clean, new = _logits(5, 11), _logits(3, 5, 11, seed=2)  # [q, V], [A, q, V]
    clean_lp = clean.log_softmax(-1)
    neg_ent = (clean_lp.exp() * clean_lp).sum(-1)
    want = metrics.kl_from_logprobs(clean_lp, new.log_softmax(-1))
    for lse in (None, torch.logsumexp(new, dim=-1)):
        got = metrics.kl_from_logits_fast(clean_lp, neg_ent, new, lse)
        torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-4)


def test_logsumexp_rows_is_one_call_in_slices():
    """The sweep's sliced logsumexp gives exactly one call's numbers, for row counts that do and
    do not divide the slice size."""
    g = torch.Generator().manual_seed(0)
    for a, q in [(1, 1), (3, 11), (2, 32), (5, 33)]:
        z = 8 * torch.randn(a, q, 1000, generator=g)
        torch.testing.assert_close(
            metrics.logsumexp_rows(z, rows=32), torch.logsumexp(z, -1), rtol=0, atol=0
        )
        assert metrics.logsumexp_rows(z, rows=7).shape == (a, q)
