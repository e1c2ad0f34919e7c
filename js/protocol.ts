/**
 * Request ids and stale-reply dropping for JS-initiated kernel requests.
 *
 * Every request a view sends (`{type, id, …}`) gets an id `"<client>:<n>"`, unique per view
 * (`client` is random, so two views of one widget never confuse each other's replies). For each
 * request *type* only the latest id matters: a reply carrying an older id of this client is
 * stale and is dropped, so a storm of 100 clicks ends showing the 100th click's map even if
 * replies arrive out of order or for skipped requests.
 *
 * Replies carrying an id from another client (another view, or the kernel itself, id "py:n")
 * are accepted unless this view is waiting for a newer reply of its own.
 *
 * The kernel acknowledges each request as soon as its comm handler sees it (`{type: "ack", id}`).
 * No ack within `ackTimeoutMs` means the kernel is busy with a cell, dead, restarted, or absent
 * (a static HTML page): `onSilence` is called so the view can say so in words.
 */

export interface Pending {
  id: string;
  type: string;
  sentAt: number;
  acked: boolean;
}

export class Requests {
  readonly client: string;
  private n = 0;
  private latest = new Map<string, Pending>();
  private timers = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(
    client: string = Math.random().toString(36).slice(2, 8),
    private ackTimeoutMs = 4000,
    private onSilence: (p: Pending) => void = () => {},
    private now: () => number = () => Date.now(),
  ) {
    this.client = client;
  }

  /** Allocate an id for a new request of `type`; it becomes the latest of its type. */
  next(type: string): string {
    const id = `${this.client}:${++this.n}`;
    const p: Pending = { id, type, sentAt: this.now(), acked: false };
    this.latest.set(type, p);
    const old = this.timers.get(type);
    if (old !== undefined) clearTimeout(old);
    if (this.ackTimeoutMs > 0) {
      this.timers.set(
        type,
        setTimeout(() => {
          const cur = this.latest.get(type);
          if (cur && cur.id === id && !cur.acked) this.onSilence(cur);
        }, this.ackTimeoutMs),
      );
    }
    return id;
  }

  /** Is `id` one of ours? */
  mine(id: unknown): boolean {
    return typeof id === "string" && id.startsWith(`${this.client}:`);
  }

  /** The kernel has seen request `id`. */
  ack(id: string): void {
    for (const p of this.latest.values()) if (p.id === id) p.acked = true;
  }

  /** Outstanding (unanswered) request of `type`, if any. */
  pending(type: string): Pending | undefined {
    return this.latest.get(type);
  }

  /**
   * Should a reply of `type` carrying `id` be shown? Ours: only if it is the latest.
   * Someone else's: only if we are not waiting for one of ours.
   */
  accept(type: string, id: unknown): boolean {
    const p = this.latest.get(type);
    if (this.mine(id)) return !!p && p.id === id;
    return !p;
  }

  /** The reply to the latest request of `type` has arrived (or failed): stop waiting. */
  settle(type: string, id: unknown): void {
    const p = this.latest.get(type);
    if (p && p.id === id) {
      this.latest.delete(type);
      const t = this.timers.get(type);
      if (t !== undefined) clearTimeout(t);
      this.timers.delete(type);
    }
  }

  /** Forget everything (view teardown). */
  dispose(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.latest.clear();
  }
}

/** What `watchKernel` uses of a host's kernel connection (JupyterLab's `IKernelConnection`), if any. */
interface KernelLike {
  status?: string;
  connectionStatus?: string;
  statusChanged?: {
    connect?(fn: (sender: unknown, status: string) => void): unknown;
    disconnect?(fn: (sender: unknown, status: string) => void): unknown;
  };
}

/**
 * The kernel's own status, where the host exposes it (JupyterLab / Notebook 7 widget managers
 * hold the kernel connection; its lumino `statusChanged` signal reports restarts and deaths).
 * `onLost(text)` is told in words; `status()` is for the test hook.
 */
export function watchKernel(
  model: { widget_manager?: unknown },
  onLost: (text: string) => void,
): { status: () => string | null; dispose: () => void } {
  const kernel = (model.widget_manager as { kernel?: KernelLike } | undefined)?.kernel;
  const log: string[] = [];
  const on = (_: unknown, st: string) => {
    log.push(st);
    if (st === "restarting" || st === "autorestarting" || st === "starting") {
      onLost(
        "The kernel restarted: this view is disconnected from it (dead or restarted) and shows its last state. Re-run the cell to reconnect.",
      );
    } else if (st === "dead") {
      onLost(
        "The kernel is dead: this view is disconnected (dead or restarted) and shows its last state. Restart the kernel and re-run the cell.",
      );
    }
  };
  try {
    kernel?.statusChanged?.connect?.(on);
  } catch {
    /* host without a kernel object */
  }
  return {
    status: () => (kernel ? `${kernel.status} ${kernel.connectionStatus} [${log.join(",")}]` : null),
    dispose: () => {
      try {
        kernel?.statusChanged?.disconnect?.(on);
      } catch {
        /* ignore */
      }
    },
  };
}
