"""Running traces on NDIF (or any nnsight remote server) — keys, waiting, errors.

A model loaded with ``remote=True`` keeps only a weightless skeleton here; every forward pass is
an nnsight trace shipped to the server. This module owns the pieces around that:

* **The API key.** :func:`set_api_key` keeps it in this process's memory only (never on disk,
  never on a model, session or widget). Without it, ``NDIF_API_KEY`` or nnsight's own config is
  read at request time. :func:`redact` removes the key from any text that leaves this module, so
  no exception message, progress status or widget trait can carry it.
* **Waiting.** :func:`run_trace` submits a trace without blocking (nnsight's ``blocking=False``),
  then polls the server, reporting each status (``"RECEIVED"``, ``"QUEUED"``, ``"RUNNING"`` …) to
  an ``on_status`` callback — the widget shows "waiting on the remote queue" from it — until the
  result arrives, the ``timeout`` passes, or ``cancel`` is set.
* **Errors.** Every failure becomes a :class:`RemoteError` subclass with a message that says what
  to do: :class:`RemoteAuthError` (missing or refused key), :class:`RemoteModelError` (the server
  does not host that model), :class:`RemoteNetworkError`, :class:`RemoteTimeout`,
  :class:`RemoteCancelled`. Nothing is mutated locally before a remote run succeeds, so a failed
  call leaves the session usable.

``remote="local"`` is nnsight's offline simulation of the same path (serialize, deserialize with
the user's modules hidden, execute here); it needs no key and is what the tests run.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable

_KEY: str | None = None
DEFAULT_TIMEOUT = 600.0  # seconds a remote request may take, queue included
POLL_INTERVAL = 0.5  # seconds between status polls
#: activation memory one batched sweep request may use on the server (sizes ``cells_per_request``:
#: 8 GiB is 33 cells per request for Llama-3.1-70B on 24 tokens); each request also queues, so
#: fewer, larger requests finish sooner
REQUEST_BYTES = 8 << 30


class RemoteError(RuntimeError):
    """A remote run failed; the message says why and what to do (and never holds the key)."""


class RemoteAuthError(RemoteError):
    """No API key, or the server refused it."""


class RemoteModelError(RemoteError):
    """The server does not host this model (or the name is not a model at all)."""


class RemoteNetworkError(RemoteError):
    """The server could not be reached."""


class RemoteTimeout(RemoteError):
    """The request did not finish within the timeout."""


class RemoteCancelled(RemoteError):
    """The request was cancelled while waiting."""


def set_api_key(key: str | None) -> None:
    """Use ``key`` for remote runs in this process (memory only; ``None`` forgets it)."""
    global _KEY
    if key is not None and (not isinstance(key, str) or not key.strip()):
        raise ValueError("the API key must be a non-empty string (or None to forget it)")
    _KEY = key.strip() if key is not None else None


def api_key() -> str | None:
    """The key a remote run will send: :func:`set_api_key`, else ``NDIF_API_KEY``, else nnsight's
    config. Read at request time, never stored elsewhere."""
    if _KEY:
        return _KEY
    if os.environ.get("NDIF_API_KEY"):
        return os.environ["NDIF_API_KEY"]
    from nnsight import CONFIG

    return CONFIG.API.APIKEY or None


def redact(text: str) -> str:
    """``text`` with every known API key replaced by ``<api key>``."""
    for k in {_KEY, os.environ.get("NDIF_API_KEY"), _config_key()}:
        if k:
            text = text.replace(k, "<api key>")
    return text


def in_words(exc: BaseException) -> str:
    """An exception as a sentence for the user: its message with any API key redacted (the type
    name only when the message is empty). What the widget shows in its error line and notes."""
    msg = redact(str(exc).strip())
    return msg if msg else type(exc).__name__


def _config_key():
    try:
        from nnsight import CONFIG

        return CONFIG.API.APIKEY
    except Exception:  # noqa: BLE001 - redaction must never fail
        return None


def is_remote(remote) -> bool:
    """True for a real server (``True`` or a host URL), False for local and ``"local"``."""
    return bool(remote) and remote != "local"


def host_for(remote) -> str:
    from nnsight import CONFIG

    return remote if isinstance(remote, str) and remote != "local" else CONFIG.API.HOST


class _Pending:
    """What :func:`trace_kwargs` hands back: the nnsight kwargs and, for a real server, the
    non-blocking backend to poll after the trace block exits. Every traced call uses it the
    same way::

        pending = trace_kwargs(lm, remote)
        with pending.guard():
            with lm.lock, torch.no_grad(), lm.nn.trace(ids, **pending.kwargs):
                x = ....save()
            res = pending.result(timeout=..., on_status=..., cancel=...)
        if res is not None:          # a real server: the saves come back here, not in x
            x = res["x"]
    """

    def __init__(self, kwargs: dict, backend=None, remote=None, model_name: str = ""):
        self.kwargs, self.backend = kwargs, backend
        self.remote, self.model_name = remote, model_name

    def guard(self):
        """For a remote run, :func:`translated` (failures become key-free ``RemoteError``s);
        local runs raise what they raise."""
        return translated(self.model_name) if self.remote else contextlib.nullcontext()

    def result(self, *, timeout=None, on_status=None, cancel=None) -> dict | None:
        """The saved values from a real server (:func:`wait`), or ``None`` when the trace ran
        here (its saves are already in the caller's variables)."""
        if self.backend is None:
            return None
        return wait(
            self, timeout=timeout, on_status=on_status, cancel=cancel, model_name=self.model_name
        )


def trace_kwargs(lm, remote) -> _Pending:
    """The keyword arguments for ``lm.nn.trace(...)`` under ``remote``."""
    if not remote:
        return _Pending({})
    if remote == "local":
        return _Pending({"remote": "local"}, remote=remote, model_name=lm.name)
    key = api_key()
    if not key:
        raise RemoteAuthError(
            "no NDIF API key: call rw.set_api_key(...) or set NDIF_API_KEY "
            "(get a key at https://login.ndif.us)"
        )
    from nnsight.intervention.backends.remote import RemoteBackend

    backend = RemoteBackend(model_key_for(lm), host=host_for(remote), api_key=key, blocking=False)
    backend.display.enabled = False  # statuses go to on_status (and the widget), not stdout
    return _Pending({"backend": backend}, backend, remote=remote, model_name=lm.name)


def model_key_for(lm) -> str:
    """nnsight's key naming the model on the server (no hub call when it cannot be reached)."""
    try:
        return lm.nn.to_model_key()
    except Exception:  # noqa: BLE001 - offline: build the same key without canonicalising
        import json

        from nnsight.modeling.mixins.remotable import to_import_path

        cls = lm.nn._remoteable_class() if hasattr(lm.nn, "_remoteable_class") else type(lm.nn)
        return f"{to_import_path(cls)}:" + json.dumps({"repo_id": lm.name, "revision": "main"})


@contextlib.contextmanager
def translated(model_name: str = ""):
    """Turn any failure of a remote run inside the block into a :class:`RemoteError` subclass
    whose message holds no key (the original is dropped: its text or headers might)."""
    try:
        yield
    except RemoteError as e:
        raise type(e)(redact(str(e))) from None
    except Exception as e:  # noqa: BLE001 - classified below
        raise classify(e, model_name) from None


def classify(e: BaseException, model_name: str = "") -> RemoteError:
    """The :class:`RemoteError` for an exception raised by nnsight, httpx or websocket."""
    text = redact(f"{type(e).__name__}: {e}")
    low = text.lower()
    name = f" {model_name!r}" if model_name else ""
    if re.search(r"\b401\b|\b403\b|api key|api-key|unauthori|forbidden", low):
        return RemoteAuthError(
            f"the server refused the API key ({text}); check it with "
            "rw.set_api_key(...) or NDIF_API_KEY"
        )
    if re.search(
        r"not (found|hosted|deployed|supported|available)|unknown model|no model|"
        r"repositorynotfound|\b404\b",
        low,
    ):
        return RemoteModelError(
            f"the server does not host the model{name} ({text}); see "
            "https://nnsight.net/status for the models NDIF serves"
        )
    if re.search(
        r"connect|network|resolve|unreachable|refused|ssl|socket|websocket|"
        r"name or service|timed out|readtimeout|remoteprotocol",
        low,
    ):
        return RemoteNetworkError(
            f"could not reach the remote server ({text}); check the "
            "network and the host, then retry"
        )
    return RemoteError(f"the remote run failed: {text}")


def wait(
    pending: _Pending,
    *,
    timeout: float | None = None,
    on_status: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
    model_name: str = "",
) -> dict:
    """Poll a submitted non-blocking request until its saves arrive; returns ``{name: value}``."""
    backend = pending.backend
    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    start, last = time.monotonic(), None
    if on_status is not None and backend.status is not None:
        last = _status_name(backend.status)
        on_status(last)
    while True:
        if cancel is not None and cancel.is_set():
            raise RemoteCancelled("cancelled while waiting on the remote server")
        if time.monotonic() - start > timeout:
            raise RemoteTimeout(
                f"the remote request did not finish within {timeout:g} s (last "
                f"status: {last or 'none'}); the queue may be long — retry, or "
                "pass a larger timeout"
            )
        with translated(model_name):
            result = backend()
        status = _status_name(backend.status) if backend.status is not None else None
        if status and status != last and on_status is not None:
            on_status(status)
        last = status or last
        if result is not None:  # values computed on the server may carry autograd
            return {k: _detach(v) for k, v in result.items()}
        time.sleep(POLL_INTERVAL)


#: what the widget says for each status of nnsight's remote protocol
STATUS_WORDS = {
    "RECEIVED": "sent to the remote server",
    "QUEUED": "waiting on the remote queue",
    "PROVISIONING": "waiting on the remote queue (model loading)",
    "DEPLOYING": "waiting on the remote queue (model loading)",
    "DISPATCHED": "waiting on the remote queue",
    "RUNNING": "running remotely",
    "COMPLETED": "",
    "ERROR": "remote error",
}


def describe_status(status: str) -> str:
    """The server's status in words for the widget's header ("" once a request is done)."""
    return STATUS_WORDS.get(status, status.lower())


def _status_name(status) -> str:
    return getattr(status, "value", str(status))


def _detach(v):
    if hasattr(v, "detach"):
        return v.detach()
    if isinstance(v, (list, tuple)):
        return type(v)(_detach(x) for x in v)
    return v
