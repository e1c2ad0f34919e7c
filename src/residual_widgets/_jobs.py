"""The widget's request worker: one thread, latest pending job per type wins."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class LatestJobs:
    """One worker thread that runs jobs by type, keeping only the latest pending job per type.

    ``submit(typ, payload)`` replaces any queued job of ``typ`` (the replaced one never runs).
    The worker picks pending types in ``priority`` order and calls ``run(typ, payload)``.
    ``wait_idle`` blocks until nothing is queued or running.
    """

    def __init__(self, run: Callable[[str, Any], None], priority: tuple[str, ...]):
        self._run, self._priority = run, priority
        self._pending: dict[str, Any] = {}
        self._busy = False
        self._stopped = False
        self._cv = threading.Condition()
        self._thread = threading.Thread(
            target=self._main, name="residual-widgets-jobs", daemon=True
        )
        self._thread.start()

    def submit(self, typ: str, payload) -> None:
        with self._cv:
            self._pending[typ] = payload
            self._cv.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        with self._cv:
            return self._cv.wait_for(lambda: not self._pending and not self._busy, timeout)

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify_all()

    def _main(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._pending or self._stopped)
                if self._stopped:
                    return
                typ = next(
                    (k for k in self._priority if k in self._pending), next(iter(self._pending))
                )
                payload = self._pending.pop(typ)
                self._busy = True
            try:
                self._run(typ, payload)
            except Exception:  # noqa: BLE001 - run() reports its own errors; keep the worker alive
                pass
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()
