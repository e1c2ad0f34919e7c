"""The widget on a remote model (against the local fake NDIF), and API-key hygiene end to end:
a notebook that runs the widget remotely, fails with a wrong key, and is saved with its widget
state must not contain either key anywhere in the file."""

import json
import secrets
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

import residual_widgets as rw
from residual_widgets import remote as rm

from fake_ndif import FakeNDIF
from helpers import PROMPT, tiny_lm

TESTS = Path(__file__).resolve().parent


pytestmark = pytest.mark.usefixtures("no_ndif_key")


def test_widget_on_a_remote_model_says_when_it_waits(monkeypatch):
    key = "k-" + secrets.token_hex(8)
    lm = tiny_lm("gpt2")
    with FakeNDIF({rm.model_key_for(lm): lm.nn}, keys=[key]) as srv:
        rw.set_api_key(key)
        seen = []
        w = rw.explore(PROMPT, model=rw.load_model(lm, remote=srv.url), cell=(1, 2), sweep=False)
        w.observe(lambda ch: seen.append(ch["new"]), names=["remote_status"])
        w.start_sweep()
        w.wait()
        assert w.current_atlas.method == "batch" and w.current_atlas.complete
        assert "waiting on the remote queue" in seen and "running remotely" in seen
        assert w.remote_status == ""
        local = rw.Session(lm, PROMPT).sweep(method="batch")
        assert (w.current_atlas.kl == local.kl).all()
        srv.hang, w.session.timeout = True, 0.3  # a queue that never moves
        w.select((2, 2))
        assert "did not finish within 0.3 s" in w.error
        srv.hang, w.session.timeout = False, None
        w.select((2, 1))
        assert w.error == "" and w.selection == [[2, 1]]  # the same widget recovers
        rw.set_api_key("wrong-" + secrets.token_hex(8))
        w.select((2, 3))
        assert "refused the API key" in w.error and "wrong-" not in w.error
        state = json.dumps({k: v for k, v in w.get_state().items() if isinstance(v, (str, list))})
        assert key not in state and "wrong-" not in state


NOTEBOOK = [
    # 1: a fake NDIF on localhost hosting a tiny model
    """import os, sys
sys.path.insert(0, {tests!r})
os.environ["HF_HUB_OFFLINE"] = "1"
import residual_widgets as rw
from residual_widgets import remote as rm
from helpers import PROMPT, tiny_lm
from fake_ndif import FakeNDIF
lm = tiny_lm("gpt2")
srv = FakeNDIF({{rm.model_key_for(lm): lm.nn}}, keys=[os.environ["RW_TEST_KEY"]]).__enter__()""",
    # 2: the key as a user would give it (from the environment, not typed into the notebook)
    """rw.set_api_key(os.environ["RW_TEST_KEY"])
remote_lm = rw.load_model(lm, remote=srv.url)
w = rw.explore(PROMPT, model=remote_lm, cell=(1, 2))
w.wait()
w""",
    """assert w.current_atlas.complete and w.current_atlas.method == "batch"
print(w.progress, repr(remote_lm), w.session.remote == srv.url)""",
    # 3: a wrong key: the widget shows the error, and a raised error prints its traceback
    """rw.set_api_key(os.environ["RW_BAD_KEY"])
w.select((2, 3))
print("widget error:", w.error)""",
    """rw.Session(remote_lm, PROMPT)""",
]


@pytest.mark.slow
def test_saved_notebook_never_contains_the_key(tmp_path, monkeypatch):
    good, bad = "ndif-" + secrets.token_hex(12), "ndif-" + secrets.token_hex(12)
    monkeypatch.setenv("RW_TEST_KEY", good)
    monkeypatch.setenv("RW_BAD_KEY", bad)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src.format(tests=str(TESTS))) for src in NOTEBOOK]
    nb.cells[-1].metadata["tags"] = ["raises-exception"]
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        store_widget_state=True,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    path = tmp_path / "remote.ipynb"
    nbformat.write(nb, path)
    text = path.read_text()
    # the checks below are not vacuous: the run happened, state and errors were saved
    assert "application/vnd.jupyter.widget-state+json" in text
    assert "refused the API key" in text and "RemoteAuthError" in text
    assert "widget error: the server refused the API key" in text
    assert good not in text and bad not in text
    assert good[5:] not in text and bad[5:] not in text  # not even without its prefix


def test_weightless_skeleton_runs_everything_on_the_server(monkeypatch, tmp_path):
    """As with NDIF: ``load_model(name, remote=...)`` builds the model on the meta device (no
    weights; here the "hub" is a local directory); clean run, clicks and the sweep all come
    back from the server, equal to a local run; the tooltip's logit lens is computed on the
    server and equals the local one."""
    from residual_widgets.tiny import tiny_model

    hf, tok = tiny_model("gpt2", n_layers=3)
    hf.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    key = "k-" + secrets.token_hex(8)
    server_lm = rw.load_model(str(tmp_path))  # the server's real weights
    with FakeNDIF({}, keys=[key]) as srv:
        rw.set_api_key(key)
        remote_lm = rw.load_model(str(tmp_path), tok, remote=srv.url)
        assert remote_lm.device.type == "meta" and remote_lm.n_layers == 3
        srv.models[rm.model_key_for(remote_lm)] = server_lm.nn
        w = rw.explore(PROMPT, model=remote_lm, cell=(1, 2))
        w.wait()
        local = rw.Session(server_lm, PROMPT)
        assert w.session.n_positions == local.n_positions
        assert (w.current_effect.resid_delta == local.ablate((1, 2)).resid_delta).all()
        assert w.current_atlas.complete and w.current_atlas.method == "batch"
        assert (w.current_atlas.kl == local.sweep(method="batch").kl).all()
        sent = []
        monkeypatch.setattr(w, "send", lambda content, buffers=None: sent.append(content))
        w._on_custom_msg(w, {"type": "lens", "id": "c:1", "cell": [1, 2], "key": "clean|1,2"})
        w.wait()
        lens = [m for m in sent if m.get("type") == "lens"]
        assert lens and not w.error, w.error
        want_clean = local.logit_lens((1, 2))
        want_int = local.logit_lens((1, 2), effect=local.ablate((1, 2)))
        assert [t for t, _ in lens[0]["clean"]] == [t for t, _ in want_clean]
        assert [t for t, _ in lens[0]["intervened"]] == [t for t, _ in want_int]
        np.testing.assert_allclose(
            [v for _, v in lens[0]["clean"]], [v for _, v in want_clean], rtol=1e-5
        )
        assert w.session._lens_cache  # clean lens cached: one request
