/**
 * A model that lives in the page: anywidget's model interface (`get`, `set`, `on`, `off`,
 * `send`, `save_changes`) over a plain object of trait values, with no kernel and no widget
 * manager. The saved page (page.ts) renders the widget on one; `send` and `save_changes` go to a
 * `Backend` (offline.ts answers from the saved data), and the backend's replies come back as
 * `msg:custom` events, later (never inside the `send` call), as a kernel's would.
 *
 * Events, as anywidget / Backbone fire them: `set(name, v)` fires `change:<name>` at once when
 * the value changes (from the view or the backend alike); `reply(msg)` fires `msg:custom`.
 */

export type Handler = (...args: unknown[]) => void;

/** Where a page model's outgoing messages and saved changes go. */
export interface Backend {
  /** A custom message from the view (`model.send`). */
  message(content: Record<string, unknown>): void;
  /** The view saved changes to these traits (`model.save_changes`). */
  saved(names: string[]): void;
}

export class PageModel<T extends Record<string, unknown> = Record<string, unknown>> {
  private state: Record<string, unknown>;
  private handlers = new Map<string, Set<Handler>>();
  private dirty = new Set<string>();
  backend: Backend | null = null;
  /** No widget manager, no kernel (protocol.ts's `watchKernel` finds none). */
  readonly widget_manager = undefined;

  constructor(state: T) {
    this.state = { ...state };
  }

  get<K extends keyof T>(name: K): T[K] {
    return this.state[name as string] as T[K];
  }

  set<K extends keyof T>(name: K, value: T[K]): void {
    const key = name as string;
    const old = this.state[key];
    this.state[key] = value;
    this.dirty.add(key);
    if (old !== value) this.fire(`change:${key}`);
  }

  on(event: string, fn: Handler): void {
    let s = this.handlers.get(event);
    if (!s) {
      s = new Set();
      this.handlers.set(event, s);
    }
    s.add(fn);
  }

  off(event?: string | null, fn?: Handler | null): void {
    if (!event) {
      this.handlers.clear();
      return;
    }
    if (!fn) this.handlers.delete(event);
    else this.handlers.get(event)?.delete(fn);
  }

  send(content: unknown, _callbacks?: unknown, _buffers?: unknown): void {
    const b = this.backend;
    if (b && content && typeof content === "object") b.message(content as Record<string, unknown>);
  }

  save_changes(): void {
    const names = [...this.dirty];
    this.dirty.clear();
    this.backend?.saved(names);
  }

  /** Deliver a reply from the backend as a `msg:custom` event, after the current task. */
  reply(msg: Record<string, unknown>): void {
    setTimeout(() => this.fire("msg:custom", msg, []), 0);
  }

  /** Set traits from the backend (not marked dirty: the view did not change them). */
  update(values: Partial<T>): void {
    for (const [k, v] of Object.entries(values)) {
      const old = this.state[k];
      this.state[k] = v;
      if (old !== v) this.fire(`change:${k}`);
    }
  }

  /** How many listeners are attached (tests: a disposed view leaves none). */
  listeners(): number {
    let n = 0;
    for (const s of this.handlers.values()) n += s.size;
    return n;
  }

  private fire(event: string, ...args: unknown[]): void {
    for (const fn of [...(this.handlers.get(event) ?? [])]) fn(...args);
  }
}
