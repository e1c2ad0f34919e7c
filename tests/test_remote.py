"""The real remote path (HTTP, API key, polling, statuses, errors) against a local fake NDIF.

nnsight's ``remote="local"`` covers serialization (tests/test_engine.py); these tests cover what
it skips: the key travels in a header and nowhere else, the client waits through ``QUEUED`` and
``RUNNING``, results come back over HTTP bit-identical to a local run, and every failure (no
key, refused key, unknown model, unreachable server, timeout, cancel) is a clear
``RemoteError`` that never contains the key and leaves local work possible.
"""

import socket
import threading

import numpy as np
import pytest
import torch

import residual_widgets as rw
from residual_widgets import remote as rm

from fake_ndif import FakeNDIF
from helpers import PROMPT, SOURCE, tiny_lm

KEY = "good-key-123"
BAD = "wrong-key-9f8e7d"


pytestmark = pytest.mark.usefixtures("no_ndif_key")


@pytest.fixture
def server():
    lm = tiny_lm("gpt2")
    with FakeNDIF({rm.model_key_for(lm): lm.nn}) as fake:
        yield fake


def _closed_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def test_remote_session_matches_local_bit_for_bit(server):
    rw.set_api_key(KEY)
    lm = rw.load_model(tiny_lm("gpt2"), remote=server.url)
    statuses = []
    remote = rw.Session(lm, PROMPT, source=SOURCE, logit_diff=(" Mary", " John"))
    remote.on_remote_status = statuses.append
    local = rw.Session(tiny_lm("gpt2"), PROMPT, source=SOURCE, logit_diff=(" Mary", " John"))
    assert remote.remote == server.url and local.remote is None
    assert torch.equal(remote.clean.resid, local.clean.resid)
    a, b = remote.patch([(1, 3)], site="mlp_out"), local.patch([(1, 3)], site="mlp_out")
    assert np.array_equal(a.resid_delta, b.resid_delta) and np.array_equal(a.kl, b.kl)
    assert statuses[:1] == ["RECEIVED"] and "QUEUED" in statuses and "RUNNING" in statuses
    seen = []
    ra = remote.sweep(cells_per_request=9, progress=lambda p: seen.append((p.done, p.status)))
    la = local.sweep(method="batch", cells_per_request=9)
    assert ra.method == "batch" and ra.complete
    for f in ("resid_delta", "kl", "logprob_delta", "logit_diff"):
        assert np.array_equal(getattr(ra, f), getattr(la, f)), f
    n_req = -(-ra.done.size // 9)
    assert [d for d, st in seen if st == ""] == [
        min(9 * k, ra.done.size) for k in range(1, n_req + 1)
    ]
    assert any(st == "QUEUED" for _, st in seen)  # the widget shows "waiting on queue"
    assert set(server.seen_keys) == {KEY}


def test_key_comes_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("NDIF_API_KEY", KEY)
    sess = rw.Session(tiny_lm("gpt2"), PROMPT, remote=server.url)
    assert sess.ablate((0, 1)).total_kl > 0 and server.seen_keys[-1] == KEY


def test_no_key_is_a_clear_error():
    with pytest.raises(rw.RemoteAuthError, match="set_api_key"):
        rw.Session(tiny_lm("gpt2"), PROMPT, remote="http://127.0.0.1:9")


def test_refused_key_never_appears_in_the_error_and_local_work_goes_on(server):
    rw.set_api_key(BAD)
    with pytest.raises(rw.RemoteAuthError) as info:
        rw.Session(tiny_lm("gpt2"), PROMPT, remote=server.url)
    text = "".join(str(e) for e in (info.value, info.value.__cause__, info.value.__context__))
    assert BAD not in text and "Invalid API key" in str(info.value)
    assert info.value.__cause__ is None
    assert server.seen_keys == [BAD]  # it did reach the server, as a header
    local = rw.Session(tiny_lm("gpt2"), PROMPT)  # same model, local: unaffected
    assert local.ablate((1, 2)).total_kl > 0
    rw.set_api_key(KEY)  # fixed key: remote works again
    assert rw.Session(tiny_lm("gpt2"), PROMPT, remote=server.url).ablate((1, 2)).total_kl > 0


def test_unknown_remote_model(server):
    rw.set_api_key(KEY)
    other = tiny_lm("llama")  # not hosted by this server
    with pytest.raises(rw.RemoteModelError, match="does not host"):
        rw.Session(other, PROMPT, remote=server.url)


def test_unknown_model_name_for_remote_loading():
    with pytest.raises((rw.RemoteModelError, rw.RemoteNetworkError), match="nnsight|hub"):
        rw.load_model("no-such-org/no-such-model-xyz", remote=True)
    with pytest.raises(ValueError, match="bundled"):
        rw.load_model("induction-2l", remote=True)


def test_network_failure():
    rw.set_api_key(KEY)
    with pytest.raises(rw.RemoteNetworkError, match="could not reach") as info:
        rw.Session(tiny_lm("gpt2"), PROMPT, remote=_closed_port_url())
    assert KEY not in str(info.value)


def test_remote_timeout_and_session_still_usable(server):
    rw.set_api_key(KEY)
    sess = rw.Session(tiny_lm("gpt2"), PROMPT, remote=server.url, timeout=5)
    server.hang = True
    sess.timeout = 0.3
    with pytest.raises(rw.RemoteTimeout, match="0.3 s.*QUEUED"):
        sess.ablate((1, 1))
    with pytest.raises(rw.RemoteTimeout):
        sess.sweep(cells_per_request=4)
    server.hang = False
    sess.timeout = 10
    assert sess.ablate((1, 1)).total_kl > 0


def test_cancel_while_queued_returns_a_partial_atlas(server):
    rw.set_api_key(KEY)
    sess = rw.Session(tiny_lm("gpt2"), PROMPT, remote=server.url)
    cancel = threading.Event()

    def progress(p):
        if p.done >= 4:
            server.hang = True  # the next request stays queued
        if p.status == "QUEUED" and p.done >= 4:
            cancel.set()

    part = sess.sweep(cells_per_request=4, progress=progress, cancel=cancel)
    assert not part.complete and part.done.sum() == 4
    server.hang = False


def test_server_side_error_is_reported():
    rw.set_api_key(KEY)
    lm = tiny_lm("gpt2")
    with FakeNDIF({rm.model_key_for(lm): tiny_lm("gpt2", n_layers=2).nn}) as wrong:
        # the server's model has fewer blocks: the trace fails there, and says so here
        with pytest.raises(rw.RemoteError, match="remote"):
            rw.Session(lm, PROMPT, remote=wrong.url)


def test_redact_and_key_validation(monkeypatch):
    rw.set_api_key("sekrit-abc")
    assert rm.redact("x sekrit-abc y") == "x <api key> y"
    with pytest.raises(ValueError):
        rw.set_api_key("  ")


def test_remote_session_fetches_block_writes_only_when_needed(server):
    """Session creation downloads the residual rows and logits only; what the blocks wrote comes
    in one extra request the first time a site needs it (and the mean kind per site)."""
    rw.set_api_key(KEY)
    sess = rw.Session(tiny_lm("gpt2"), PROMPT, remote=server.url)
    local = rw.Session(tiny_lm("gpt2"), PROMPT)
    assert len(server.jobs) == 1 and sess.clean.writes is None
    assert np.array_equal(sess.ablate((1, 2)).kl, local.ablate((1, 2)).kl)
    assert len(server.jobs) == 2 and sess.clean.writes is None  # resid: no writes needed
    a = sess.ablate((1, 2), kind="mean", site="attn_out")
    assert len(server.jobs) == 4 and sess.clean.writes is not None  # fetch writes + the run
    assert np.array_equal(
        a.resid_delta, local.ablate((1, 2), kind="mean", site="attn_out").resid_delta
    )
    sess.ablate((0, 3), kind="mean", site="mlp_out")
    assert len(server.jobs) == 5  # writes kept
