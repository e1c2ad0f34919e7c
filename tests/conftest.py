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
