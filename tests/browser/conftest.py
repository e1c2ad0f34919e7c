"""Browser tests run only when Chromium, playwright and the built front end are present."""

import pytest

from .harness import available

_why = available()


def pytest_collection_modifyitems(config, items):
    if _why is None:
        return
    skip = pytest.mark.skip(reason=f"browser tests need: {_why}")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)
