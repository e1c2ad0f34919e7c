"""examples/quickstart_marimo.py: a valid marimo notebook that runs top to bottom as a script on
the bundled SmolLM2-135M and writes the explorable page of its sweep."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples/quickstart_marimo.py"

# (not imported here: marimo's config module does not import under pytest's assertion rewriting)
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("marimo") is None, reason="marimo is not installed (dev extra)"
)


def test_marimo_check_finds_nothing():
    r = subprocess.run(
        [sys.executable, "-m", "marimo", "check", str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and "warning" not in r.stdout + r.stderr, r.stdout + r.stderr


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_runs_as_a_script_and_writes_the_page(tmp_path):
    from residual_widgets._export import read_page

    env = dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    )
    r = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=800,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "zero at resid cells [(10, 3)]" in r.stdout
    t = read_page((tmp_path / "quickstart_explore.html").read_text())["traits"]
    assert t["atlas"]["complete"] and t["atlas"]["storage"] == "float16"
    assert t["selection"] == [[10, 3]] and t["n_rows"] == 31 and len(t["tokens"]) == 14
