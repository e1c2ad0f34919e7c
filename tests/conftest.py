"""Shared fixtures: tiny random-weight models of every family (built once per test session, see
helpers.py), and a remote client with no API key that polls fast."""

import os
import warnings

# before anything imports huggingface_hub, which reads these once: tests never touch the hub
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest
from nnsight import CONFIG

import residual_widgets as rw
from residual_widgets import remote
from residual_widgets.tiny import FAMILIES

from helpers import tiny_lm

warnings.filterwarnings("ignore", message=".*LanguageModel is deprecated.*")


@pytest.fixture(params=FAMILIES)
def family(request):
    return request.param


@pytest.fixture
def lm(family):
    return tiny_lm(family)


@pytest.fixture
def gpt2():
    return tiny_lm("gpt2")


@pytest.fixture
def no_ndif_key(monkeypatch):
    """No API key anywhere (the environment, nnsight's config, ours) and fast polls of the
    remote queue; a key a test sets is forgotten after it."""
    monkeypatch.delenv("NDIF_API_KEY", raising=False)
    monkeypatch.setattr(CONFIG.API, "APIKEY", None)
    monkeypatch.setattr(remote, "POLL_INTERVAL", 0.02)
    rw.set_api_key(None)
    yield
    rw.set_api_key(None)


@pytest.fixture
def server_without_our_package(monkeypatch):
    """Make nnsight's in-process remote simulation stricter: while it deserializes a request,
    ``residual_widgets`` cannot be imported (as on an NDIF server, where it is not installed;
    nnsight's own hiding misses editable installs)."""
    import sys

    from nnsight.intervention.backends.local import LocalSimulationBackend

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "residual_widgets":
                raise ModuleNotFoundError(f"No module named {name!r} (simulated server)")
            return None

    import nnsight.ndif
    from cloudpickle.cloudpickle import _PICKLE_BY_VALUE_MODULES

    nnsight.ndif.pull_env()  # then un-register us: as if pip-installed, not editable
    monkeypatch.setattr(nnsight.ndif, "_PULLED_ENV", True)
    for name in [m for m in _PICKLE_BY_VALUE_MODULES if m.split(".")[0] == "residual_widgets"]:
        _PICKLE_BY_VALUE_MODULES.discard(name)
    hide, restore = LocalSimulationBackend._hide_local_modules, LocalSimulationBackend._restore
    blocker, calls = Blocker(), []

    def hide_more(self):
        calls.append(1)
        sys.meta_path.insert(0, blocker)
        return hide(self)

    def restore_more(self, hidden):
        sys.meta_path.remove(blocker)
        return restore(self, hidden)

    monkeypatch.setattr(LocalSimulationBackend, "_hide_local_modules", hide_more)
    monkeypatch.setattr(LocalSimulationBackend, "_restore", restore_more)
    return calls
