"""The command line, end to end: exit codes, the HTML file and its data, errors on bad input."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

import residual_widgets as rw
from residual_widgets import cli
from residual_widgets.tiny import tiny_model

from helpers import PROMPT


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny-llama")
    hf, tok = tiny_model("llama", n_layers=2)
    hf.save_pretrained(d)
    tok.save_pretrained(d)
    return d


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "residual_widgets.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path)},
    )


def test_ablate_writes_the_explorable_page(model_dir, tmp_path):
    """--out: the widget page with the effect (and its logit lens) embedded, nothing fetched."""
    from residual_widgets._export import read_page

    out = tmp_path / "effect.html"
    r = run("ablate", "--model", model_dir, "--prompt", PROMPT, "--cell", "1,3", "--out", out)
    assert r.returncode == 0, r.stderr
    assert "total KL" in r.stdout and "KL per position" in r.stdout
    html = out.read_text()
    assert "https://" not in html and "plotly" not in html.lower()
    t = read_page(html)["traits"]
    sess = rw.Session(rw.load_model(str(model_dir)), PROMPT)
    eff = sess.ablate((1, 3))
    assert t["selection"] == [[1, 3]] and t["atlas"] is None and "no sweep" in t["page"]["note"]
    np.testing.assert_allclose(t["effect"]["resid_delta"], eff.resid_delta, rtol=1e-6)
    assert t["tokens"] == sess.token_strings
    assert read_page(html)["lens"]["clean"]["2,3"] == [
        [s, pytest.approx(p)] for s, p in sess.logit_lens((2, 3))
    ]


def test_ablate_plotly_writes_the_figure(model_dir, tmp_path):
    out = tmp_path / "effect.html"
    r = run(
        "ablate",
        "--model",
        model_dir,
        "--prompt",
        PROMPT,
        "--cell",
        "1,3",
        "--out",
        out,
        "--plotly",
    )
    assert r.returncode == 0, r.stderr
    html = out.read_text()
    assert "plotly" in html.lower()
    eff = rw.Session(rw.load_model(str(model_dir)), PROMPT).ablate((1, 3))
    # the figure's heatmap carries the same numbers the Python API gives
    z = _first_heatmap_z(html)
    np.testing.assert_allclose(np.array(z, dtype=np.float32), eff.resid_delta, rtol=1e-5)


def _first_heatmap_z(html: str):
    m = re.search(r'"name":"resid_delta".*?"z":(\{.*?\}|\[\[.*?\]\])', html)
    if m is None:
        m = re.search(r'"z":(\{.*?\}|\[\[.*?\]\]).*?"name":"resid_delta"', html)
    blob = json.loads(m.group(1))
    if isinstance(blob, dict):  # plotly 6+ encodes arrays as typed buffers
        import base64

        arr = np.frombuffer(base64.b64decode(blob["bdata"]), dtype=blob["dtype"])
        shape = blob.get("shape")
        if isinstance(shape, str):
            shape = [int(x) for x in shape.split(",")]
        return arr.reshape(shape) if shape else arr
    return blob


def test_sweep_summary_and_html(model_dir, tmp_path):
    out = tmp_path / "sweep.html"
    r = run(
        "sweep",
        "--model",
        model_dir,
        "--prompt",
        PROMPT,
        "--logit-diff",
        " Mary| John",
        "--out",
        out,
    )
    assert r.returncode == 0, r.stderr
    assert "cells that matter most (logit diff)" in r.stdout and "clean logit diff" in r.stdout
    assert "cells" in r.stderr  # the progress bar
    from residual_widgets._export import read_page

    t = read_page(out.read_text())["traits"]
    sess = rw.Session(rw.load_model(str(model_dir)), PROMPT)
    atlas = sess.sweep(logit_diff=(" Mary", " John"))
    assert t["atlas"]["storage"] == "float16" and t["logit_pair"] == [" Mary", " John"]
    np.testing.assert_allclose(t["atlas"]["resid_delta"], atlas.resid_delta, rtol=1e-3, atol=1e-7)
    np.testing.assert_allclose(t["atlas"]["logit_diff"], atlas.logit_diff, rtol=1e-5, atol=1e-6)
    drop = np.abs(atlas.logit_diff - atlas.logit_diff_clean)
    assert t["selection"] == [list(np.unravel_index(np.argmax(drop), drop.shape))]


@pytest.mark.parametrize(
    "args,code,msg",
    [
        (["ablate", "--prompt", PROMPT, "--cell", "9,0"], 2, "row 9 out of range"),
        (["ablate", "--prompt", PROMPT, "--cell", "a,b"], 2, "ROW,POSITION"),
        (["ablate", "--prompt", PROMPT, "--cell", "1,1", "--kind", "blur"], 2, "invalid choice"),
        (["ablate", "--prompt", PROMPT, "--cell", "1,1", "--kind", "patch"], 2, "needs a source"),
        (["sweep", "--prompt", ""], 2, "empty"),
        (["ablate", "--prompt", PROMPT], 2, "--cell"),
    ],
)
def test_bad_arguments(model_dir, args, code, msg, capsys):
    # in-process (the subprocess path is covered above): same main(), same exit codes
    try:
        rc = cli.main([*args, "--model", str(model_dir)])
    except SystemExit as e:  # argparse exits by itself
        rc = e.code
    assert rc == code
    assert msg in capsys.readouterr().err


def test_help_reads_well(capsys):
    for argv, want in (
        (["--help"], ["ablate", "sweep", "ROW,POSITION"]),
        (["ablate", "--help"], ["ROW,POS", "--logit-diff", "--kind"]),
    ):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert all(w in out for w in want)


def test_remote_run_against_a_server(model_dir, tmp_path, monkeypatch, capsys):
    """--remote URL: the skeleton is built from the model's config, every trace runs on the
    server, the numbers equal a local run; a refused key exits 1 with words and no key."""
    import secrets

    from residual_widgets import remote as rm

    from fake_ndif import FakeNDIF

    key = "cli-" + secrets.token_hex(8)
    local = rw.load_model(str(model_dir))
    with FakeNDIF({}, keys=[key]) as srv:
        skeleton = rw.load_model(str(model_dir), remote=srv.url)
        assert skeleton.device.type == "meta"
        srv.models[rm.model_key_for(skeleton)] = local.nn
        monkeypatch.setenv("NDIF_API_KEY", key)
        out = tmp_path / "remote.html"
        rc = cli.main(
            [
                "ablate",
                "--model",
                str(model_dir),
                "--prompt",
                PROMPT,
                "--cell",
                "1,3",
                "--remote",
                srv.url,
                "--out",
                str(out),
            ]
        )
        text = capsys.readouterr().out
        assert rc == 0 and out.exists()
        want = rw.Session(local, PROMPT).intervene([(1, 3)])
        assert f"total KL {want.total_kl:.4g} nats" in text
        monkeypatch.setenv("NDIF_API_KEY", "bad-" + key)
        rc = cli.main(
            [
                "ablate",
                "--model",
                str(model_dir),
                "--prompt",
                PROMPT,
                "--cell",
                "1,3",
                "--remote",
                srv.url,
            ]
        )
        err = capsys.readouterr().err
        assert rc == 1 and "refused the API key" in err and key not in err


def test_demo_writes_the_explorable_page(model_dir, tmp_path):
    """python -m residual_widgets.demo --out: the sweep and its most important cell, pinned."""
    from residual_widgets import demo
    from residual_widgets._export import read_page

    out = tmp_path / "demo.html"
    assert demo.main(["--model", str(model_dir), "--prompt", PROMPT, "--out", str(out)]) == 0
    t = read_page(out.read_text())["traits"]
    assert t["atlas"]["storage"] == "float16" and len(t["selection"]) == 1
    assert t["overview_metric"] == "logit_diff" and t["page"]["note"].startswith("It holds")
