/**
 * The saved page's entry point (built to `static/page.js`, inlined by `_export.page_html`): reads
 * the state saved in `<script type="application/json" id="rw-state">`, turns its base64 arrays
 * into buffers, and renders the widget into `#rw-page` on a `PageModel` (host.ts) whose requests
 * an `OfflineBackend` (offline.ts) answers from that state. Nothing is fetched.
 *
 * Test hook: `window.__rwPage = { model, ready }` (`ready` is true once rendered).
 */

import { PageModel } from "./host";
import { OfflineBackend, type SavedLens } from "./offline";
import type { Traits } from "./traits";
import widget from "./widget";

/** `{dtype, shape, b64}` → `{dtype, shape, buffer}` throughout a saved value. */
export function revive(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(revive);
  if (x === null || typeof x !== "object") return x;
  const o = x as Record<string, unknown>;
  if (typeof o.b64 === "string" && typeof o.dtype === "string" && Array.isArray(o.shape)) {
    const bin = atob(o.b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return { dtype: o.dtype, shape: o.shape, buffer: bytes.buffer };
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[k] = revive(v);
  return out;
}

/** Render the saved state `saved` into `el`; returns the model (for tests) and the teardown. */
export function mount(el: HTMLElement, saved: { traits: Traits; lens?: SavedLens | null }) {
  const model = new PageModel<Traits>(revive(saved.traits) as Traits);
  model.backend = new OfflineBackend(model, saved.lens ?? null);
  const dispose = widget.render({ model: model as never, el } as never);
  return { model, dispose };
}

function main() {
  const src = document.getElementById("rw-state");
  const el = document.getElementById("rw-page");
  if (!src || !el) return;
  el.replaceChildren();
  try {
    const { model } = mount(el, JSON.parse(src.textContent ?? "{}"));
    (window as unknown as { __rwPage: unknown }).__rwPage = { model, ready: true };
  } catch (e) {
    el.textContent = `residual-widgets: this saved page could not be shown (${String(e)})`;
    throw e;
  }
}

if (typeof document !== "undefined") main();
