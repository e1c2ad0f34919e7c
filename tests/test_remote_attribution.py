"""Attribution patching through the fake NDIF server (tests/fake_ndif.py): the one traced
forward + backward runs on the "server" (a nested backward trace inside the request) and its
``[S, P]`` estimates equal the local session's."""

from __future__ import annotations

import numpy as np
import pytest

import residual_widgets as rw
from residual_widgets import remote as rm

from fake_ndif import FakeNDIF
from helpers import PROMPT, SOURCE, tiny_lm

pytestmark = pytest.mark.usefixtures("no_ndif_key")


@pytest.mark.parametrize(
    "kind, site", [("zero", "resid"), ("patch", "attn_out"), ("noise", "mlp_out")]
)
def test_attribute_through_the_fake_ndif_equals_local(kind, site):
    lm = tiny_lm("gpt2")
    with FakeNDIF({rm.model_key_for(lm): lm.nn}) as server:
        rw.set_api_key("good-key-123")
        remote_lm = rw.load_model(tiny_lm("gpt2"), remote=server.url)
        pair = (" Mary", " John")
        remote = rw.Session(remote_lm, PROMPT, source=SOURCE, logit_diff=pair)
        local = rw.Session(tiny_lm("gpt2"), PROMPT, source=SOURCE, logit_diff=pair)
        statuses = []
        remote.on_remote_status = statuses.append
        a, b = remote.attribute(kind, site), local.attribute(kind, site)
        assert "COMPLETED" in statuses or "RUNNING" in statuses  # it went to the server
        assert (
            a.logprob_delta.shape
            == b.logprob_delta.shape
            == (
                rw.grid.n_source_rows(site, lm.n_layers),
                len(remote.ids),
            )
        )
        np.testing.assert_allclose(a.logprob_delta, b.logprob_delta, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a.logit_diff, b.logit_diff, rtol=1e-5, atol=1e-6)
        assert np.abs(b.logprob_delta).max() > 0  # a real estimate, not zeros on both sides
