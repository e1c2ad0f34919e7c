"""Widget latency in real JupyterLab + Chromium (no GPU, CPU torch).

    python bench/bench_widget.py            # prints the numbers; ~3 minutes

1. click → repainted map: a GPT-2-small-shaped random model (12 layers, d 768, vocab 50257),
   a 24-token prompt; 30 clicks on different cells, each timed in the page from the click event
   to the paint of the kernel's answer for that cell (request → kernel intervene → trait →
   decode → canvas). p50 / p95.
2. hover over the overview → repaint from the precomputed atlas (no kernel): 30 hovers.
3. fresh kernel → first paint with the bundled SmolLM2-135M: a new notebook (new kernel) running
   ``rw.explore(prompt)``: from pressing run to the first paint of the grid with the prompt's
   tokens (``explore`` shows it before the model is loaded), and to the paint of the pinned map.
   ``bench_first_paint.py`` splits the kernel side into pieces.
"""

from __future__ import annotations

import os
import pathlib
import statistics
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.browser.harness import (  # noqa: E402
    JupyterServer,
    available,
    cell_xy,
    chromium,
    open_notebook,
    run_cell,
    wait_widget,
)

WORDS = (
    "When Mary and John went to the store , John gave a drink to Mary . "
    "Then the cat sat on the mat and the dog ran up"
).split()
PROMPT = "".join(w if k == 0 or w in ",." else " " + w for k, w in enumerate(WORDS[:24]))

GPT2_CELL = f"""
import residual_widgets as rw
from residual_widgets.explore import explore
from residual_widgets.tiny import tiny_model
hf, tok = tiny_model("gpt2", n_layers=12, d_model=768, n_heads=12, vocab_size=50257, n_ctx=64)
w = explore({PROMPT!r}, model=rw.load_model(hf, tok), cell=None)
w.wait()
assert w.n_rows == 13 and len(w.tokens) == 24, (w.n_rows, len(w.tokens))
w
"""

BUNDLED_CELL = """
from residual_widgets.explore import explore
explore("When Mary and John went to the store, John gave a drink to")
"""

CLICK_JS = """
async ([x, y, cells]) => {
  const root = document.querySelector('.rw-root');
  const cv = root.querySelector('.rw-map canvas');
  const want = JSON.stringify(cells);
  const done = new Promise((resolve) => {
    const on = (ev) => {
      const d = ev.detail;
      if (d.mode === 'effect' && JSON.stringify(d.cells) === want
          && (d.id || '').startsWith(root.__rw.clientId + ':')) {
        root.removeEventListener('rw-paint', on);
        resolve(performance.now());
      }
    };
    root.addEventListener('rw-paint', on);
  });
  const t0 = performance.now();
  cv.dispatchEvent(new MouseEvent('click', {clientX: x, clientY: y, bubbles: true}));
  return (await done) - t0;
}
"""

HOVER_JS = """
async ([x, y, cells]) => {
  const root = document.querySelector('.rw-root');
  const cv = root.querySelector('.rw-overview canvas');
  const want = JSON.stringify(cells);
  let t1 = null;
  const on = (ev) => {
    const hit = ev.detail.mode === 'atlas' && JSON.stringify(ev.detail.cells) === want;
    if (hit) t1 = performance.now();
  };
  root.addEventListener('rw-paint', on);
  const t0 = performance.now();
  cv.dispatchEvent(new MouseEvent('mousemove', {clientX: x, clientY: y, bubbles: true}));
  await new Promise((r) => requestAnimationFrame(() => r(null)));   // the frame is on screen
  const t2 = performance.now();
  root.removeEventListener('rw-paint', on);
  return [t1 === null ? null : t1 - t0, t2 - t0];
}
"""


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def main() -> int:
    why = available()
    if why:
        print(f"cannot run: {why}")
        return 1
    print(f"load average before: {os.getloadavg()} (on {os.cpu_count()} cores)")
    with JupyterServer("lab") as srv, chromium() as ctx:
        page = ctx.new_page()
        srv.write_notebook("bench.ipynb", [GPT2_CELL])
        open_notebook(page, srv, "bench.ipynb")
        t0 = time.monotonic()
        run_cell(page, 0)
        wait_widget(page, timeout_ms=300_000)
        print(
            f"GPT-2-small-shaped model, 24 tokens: widget up (model build + sweep) in "
            f"{time.monotonic() - t0:.1f} s"
        )
        clicks = []
        for k in range(30):
            r, c = (k * 5) % 13, (k * 7) % 24
            x, y = cell_xy(page, "map", r, c)
            clicks.append(page.evaluate(CLICK_JS, [x, y, [[r, c]]]))
        print(
            f"click -> repainted map (30 clicks): p50 {statistics.median(clicks):.0f} ms, "
            f"p95 {pct(clicks, 95):.0f} ms, max {max(clicks):.0f} ms"
        )
        paint, frame = [], []
        for k in range(30):
            r, c = (k * 3) % 13, (k * 11) % 24
            x, y = cell_xy(page, "overview", r, c)
            a, b = page.evaluate(HOVER_JS, [x, y, [[r, c]]])
            paint.append(a)
            frame.append(b)
        print(
            "hover overview -> repaint from atlas (30 hovers): "
            f"paint p50 {statistics.median(paint):.1f} ms, "
            f"p95 {pct(paint, 95):.1f} ms; next frame p50 {statistics.median(frame):.1f} ms, "
            f"p95 {pct(frame, 95):.1f} ms"
        )

        page2 = ctx.new_page()
        srv.write_notebook("fresh.ipynb", [BUNDLED_CELL])
        open_notebook(page2, srv, "fresh.ipynb")  # a new notebook: a fresh kernel
        t0 = time.monotonic()
        run_cell(page2, 0)
        page2.wait_for_selector(".rw-root[data-paints]:not([data-positions='0'])", timeout=300_000)
        t_grid = time.monotonic() - t0
        page2.wait_for_selector(".rw-root[data-mode='effect']", timeout=300_000)
        t_first = time.monotonic() - t0
        rows = page2.locator(".rw-root").get_attribute("data-rows")
        print(
            f"fresh kernel -> grid and tokens painted (SmolLM2-135M, {rows} rows): {t_grid:.1f} s;"
            f" -> first painted map: {t_first:.1f} s (imports + model load from the float32 "
            "cache + clean run + one intervention)"
        )
    print(f"load average after: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
