"""Execute every notebook in examples/ top to bottom; any error (including a failed assertion of
the notebook's claim) fails the test."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOKS = sorted(p.name for p in EXAMPLES.glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes(name, tmp_path):
    nb = nbformat.read(EXAMPLES / name, as_version=4)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    client = NotebookClient(
        nb,
        timeout=900,
        kernel_name="python3",
        store_widget_state=True,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
    nbformat.write(nb, tmp_path / name)


def test_every_lecture_notebook_is_present():
    want = {
        "quickstart",
        "causal_cone",
        "depth_bound",
        "kv_cache",
        "lookahead",
        "ffn_hidden",
        "memory_vs_position",
        "patching_ioi",
        "patchscope",
        "induction_heads",
    }
    assert want <= {Path(n).stem for n in NOTEBOOKS}


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_states_its_limits_and_ends_with_assertions(name):
    nb = nbformat.read(EXAMPLES / name, as_version=4)
    md = [c.source for c in nb.cells if c.cell_type == "markdown"]
    assert any("What this does not show" in s for s in md), name
    last = [c for c in nb.cells if c.cell_type == "code"][-1].source
    assert "assert" in last, name


def test_the_lecture_index_lists_every_notebook():
    index = (EXAMPLES / "README.md").read_text()
    for name in NOTEBOOKS:
        assert f"`{Path(name).stem}`" in index, name
