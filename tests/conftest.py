"""Shared fixtures: tiny random-weight models of every family, built once per test session."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import functools
import warnings

import pytest

warnings.filterwarnings("ignore", message=".*LanguageModel is deprecated.*")

from residual_widgets.models import load_model  # noqa: E402
from residual_widgets.tiny import FAMILIES, tiny_model  # noqa: E402

PROMPT = "When Mary and John went to the store, John gave a drink to"
SOURCE = "When Mary and John went to the store, Mary gave a drink to"


@functools.lru_cache(maxsize=None)
def tiny_lm(family: str, n_layers: int = 3, seed: int = 0):
    """A LoadedModel of ``family`` (cached: build each configuration once)."""
    hf, tok = tiny_model(family, n_layers=n_layers, seed=seed)
    return load_model(hf, tok)


@pytest.fixture(params=FAMILIES)
def family(request):
    return request.param


@pytest.fixture
def lm(family):
    return tiny_lm(family)


@pytest.fixture
def gpt2():
    return tiny_lm("gpt2")
