"""Drive a real JupyterLab 4 / Notebook 7 in Debian's Chromium with Python playwright.

Used by the browser tests and by ``bench/bench_widget.py``. Nothing here downloads anything:
the browser is ``/usr/bin/chromium`` (never ``playwright install``), the Jupyter server runs
with every config/runtime/settings/workspace directory inside a temporary directory, and the
kernel finds ``residual_widgets`` through ``PYTHONPATH`` (this checkout's ``src``).

    with JupyterServer("lab") as srv, chromium() as ctx:
        page = ctx.new_page()
        srv.write_notebook("t.ipynb", [code])
        open_notebook(page, srv, "t.ipynb")
        run_cell(page, 0)
        wait_widget(page)
        state = current(page)       # what the widget painted: mode, cells, values [R*P], ...
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("RW_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def available() -> str | None:
    """None when a browser run is possible here, else the reason it is not."""
    if not pathlib.Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "python playwright is not installed"
    if not (REPO / "src/residual_widgets/static/widget.js").exists():
        return "the front end is not built (npm install && npm run build)"
    if shutil.which("jupyter") is None:
        return "jupyter is not installed"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_server(proc, log, tmp: pathlib.Path) -> None:
    """End a test server's process (terminate, then kill after 20 s), close its log, remove its
    temp dir: what every server of the browser tests (Jupyter, marimo, Voilà) does on exit."""
    if proc is not None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    log.close()
    shutil.rmtree(tmp, ignore_errors=True)


def server_env(tmp: pathlib.Path, dirs=(), **overrides) -> dict:
    """The environment of a test server process: ours plus ``overrides``, each ``(VAR, sub)`` of
    ``dirs`` pointing at a fresh ``tmp / sub``, this checkout's ``src`` first on PYTHONPATH, and
    the model hub off (unless the caller's environment says otherwise)."""
    env = dict(os.environ, **overrides)
    for k, sub in dirs:
        (tmp / sub).mkdir(exist_ok=True)
        env[k] = str(tmp / sub)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "src")] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


class JupyterServer:
    """``jupyter lab`` or ``jupyter notebook`` (7) in a temp root, token auth, localhost only."""

    def __init__(self, app: str = "lab"):
        assert app in ("lab", "notebook")
        self.app = app
        self.tmp = pathlib.Path(tempfile.mkdtemp(prefix=f"rw-{app}-"))
        self.root = self.tmp / "root"
        self.root.mkdir()
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict:
        env = server_env(
            self.tmp,
            [
                ("JUPYTER_CONFIG_DIR", "config"),
                ("JUPYTER_RUNTIME_DIR", "runtime"),
                ("JUPYTERLAB_SETTINGS_DIR", "settings"),
                ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
                ("IPYTHONDIR", "ipython"),
            ],
        )
        # no news / update checks (they would try the network and pop up toasts)
        notif = self.tmp / "settings/@jupyterlab/apputils-extension"
        notif.mkdir(parents=True, exist_ok=True)
        (notif / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False})
        )
        return env

    def __enter__(self) -> JupyterServer:
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab" if self.app == "lab" else "notebook",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            "--ServerApp.disable_check_xsrf=False",
            "--allow-root",
        ]
        self.log = open(self.tmp / "server.log", "wb")
        self.proc = subprocess.Popen(cmd, env=self.env(), stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter {self.app} exited: {self.log_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{self.base}/api/status?token={self.token}", timeout=2)
                return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"jupyter {self.app} did not start in 90 s: {self.log_text()[-2000:]}")

    def log_text(self) -> str:
        return (self.tmp / "server.log").read_text(errors="replace")

    def __exit__(self, *exc) -> None:
        stop_server(self.proc, self.log, self.tmp)

    def write_notebook(self, name: str, cells: list[str]) -> pathlib.Path:
        import nbformat

        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
        }
        path = self.root / name
        nbformat.write(nb, path)
        return path

    def url(self, name: str) -> str:
        path = "lab/tree" if self.app == "lab" else "notebooks"
        return f"{self.base}/{path}/{name}?token={self.token}"


@contextlib.contextmanager
def chromium(user_data_dir: str | None = None):
    """A persistent Chromium context (Debian's binary, headless, no network extras)."""
    from playwright.sync_api import sync_playwright

    tmp = user_data_dir or tempfile.mkdtemp(prefix="rw-chromium-")
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            tmp,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            yield ctx
        finally:
            ctx.close()
            if user_data_dir is None:
                shutil.rmtree(tmp, ignore_errors=True)


def open_notebook(page, server: JupyterServer, name: str, timeout_ms: int = 120_000) -> None:
    """Open a notebook and wait until its kernel reports Idle."""
    page.goto(server.url(name))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout_ms)
    page.wait_for_function(
        """() => {
          const bar = document.querySelector('#jp-main-statusbar');              // JupyterLab
          if (bar && /Idle/.test(bar.textContent)) return true;
          const nb7 = '.jp-Notebook-ExecutionIndicator[data-status="idle"]';        // Notebook 7
          return !!document.querySelector(nb7);
        }""",
        timeout=timeout_ms,
    )


def run_cell(page, index: int = 0, attempts: int = 4) -> None:
    """Focus cell ``index`` and run it (Ctrl+Enter); retried until the prompt shows ``[*]`` or
    an execution count, since a kernel that just turned Idle may still drop the first request."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    prompt = cell.locator(".jp-InputPrompt")
    for _ in range(attempts):
        if dialog_text(page):
            break
        try:
            cell.locator(".jp-InputArea-editor").click(timeout=30_000)
            page.keyboard.press("Control+Enter")
            page.wait_for_function(
                "(el) => /\\[(\\*|\\d+)\\]/.test(el.textContent)",
                arg=prompt.element_handle(),
                timeout=8_000,
            )
            return
        except Exception:  # noqa: BLE001 — not started yet (or not clickable yet): try again
            page.wait_for_timeout(1_000)
    raise RuntimeError(
        f"cell {index} never started running"
        + (f"; a dialog is open: {dialog_text(page)!r}" if dialog_text(page) else "")
    )


def dialog_text(page) -> str:
    """The text of an open Jupyter dialog (it blocks every click), or ""."""
    return page.evaluate(
        "() => { const d = document.querySelector('.jp-Dialog');"
        " return d ? d.innerText.replace(/\\s+/g, ' ').trim() : ''; }"
    )


#: JavaScript expression for the widget's root element, also inside a shadow root (marimo renders
#: an anywidget in one; playwright's CSS locators pierce open shadow roots, querySelector does not)
ROOT = (
    "((function find(r) { const h = r.querySelector('.rw-root'); if (h) return h;"
    " for (const e of r.querySelectorAll('*')) if (e.shadowRoot) { const x = find(e.shadowRoot);"
    " if (x) return x; } return null; })(document))"
)


def wait_widget(page, timeout_ms: int = 120_000):
    """Wait for the widget's first paint; return its root element handle."""
    page.wait_for_selector(".rw-root[data-paints]", timeout=timeout_ms)
    return page.locator(".rw-root").first


def current(page) -> dict:
    """What the widget painted last: mode, cells, id, rows, cols, values, reach, strip."""
    return page.evaluate(f"() => {ROOT}.__rw.current()")


def cell_xy(page, panel: str, row: int, col: int) -> tuple[float, float]:
    """Viewport coordinates of the centre of cell (row, col) in the ``map`` or ``overview``."""
    canvas = page.locator(f".rw-root .rw-{panel} canvas").first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    which = "map" if panel == "map" else "overview"
    g = page.evaluate(f"() => {ROOT}.__rw.geom().{which}")
    x = box["x"] + g["x0"] + (col + 0.5) * g["cw"]
    y = box["y"] + g["y0"] + (g["rows"] - 1 - row + 0.5) * g["ch"]
    return x, y


def wait_effect(page, cells, timeout_ms: int = 30_000, mine: bool = True) -> dict:
    """Wait until the map shows the kernel's effect for ``cells`` (requested by this page)."""
    page.wait_for_function(
        "([cells, mine]) => { const r = "
        + ROOT
        + """;
          const c = r.__rw.current();
          return c.mode === 'effect' && JSON.stringify(c.cells) === JSON.stringify(cells)
            && (!mine || (c.id || '').startsWith(r.__rw.clientId + ':'));
        }""",
        arg=[cells, mine],
        timeout=timeout_ms,
    )
    return current(page)


def error_text(page) -> str:
    return page.evaluate(
        f"() => {{ const m = {ROOT}?.querySelector('.rw-message');"
        " return m && m.classList.contains('rw-error') ? m.textContent : ''; }"
    )


def open_widget_page(ctx, server: JupyterServer, name: str, cells: list[str]):
    """A new page that records its JavaScript errors (``page.page_errors``) and dismisses and
    records any dialog (``page.dialogs``: an ``alert`` from a prompt would land there), showing
    notebook ``name`` written with ``cells``, whose cell 0 has drawn the widget and finished its
    sweep."""
    page = ctx.new_page()
    page.dialogs = []
    page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
    page.page_errors = []
    page.on("pageerror", lambda e: page.page_errors.append(f"{e.message} @ {e.stack}"))
    server.write_notebook(name, cells)
    open_notebook(page, server, name)
    run_cell(page, 0)
    wait_widget(page)
    page.wait_for_function(
        "() => { const d = document.querySelector('.rw-root').__rw.atlasDone();"
        " return d && d.every(Boolean); }",
        timeout=60_000,
    )
    return page


def own_page_errors(page) -> list[str]:
    """``page.page_errors`` minus those thrown by the Jupyter app's own bundles (Notebook 7 logs
    a settings-schema TypeError at start-up with temporary settings dirs): ours, or anyone's."""
    return [e for e in page.page_errors if "/static/notebook/" not in e and "/static/lab/" not in e]
