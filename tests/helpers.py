"""Shared test helpers: the prompts the tests use and tiny random-weight models built once.

Imported as ``from helpers import ...`` (pytest puts ``tests/`` on ``sys.path``; notebooks and
subprocesses that need it insert it themselves). Fixtures live in ``conftest.py``.
"""

import functools

from residual_widgets.models import load_model
from residual_widgets.tiny import tiny_model

PROMPT = "When Mary and John went to the store, John gave a drink to"
SOURCE = "When Mary and John went to the store, Mary gave a drink to"


@functools.cache
def tiny_lm(family: str, n_layers: int = 3, seed: int = 0):
    """A LoadedModel of ``family`` (cached: build each configuration once)."""
    hf, tok = tiny_model(family, n_layers=n_layers, seed=seed)
    return load_model(hf, tok)
