"""A small stand-in for an NDIF server, on localhost, for offline tests of the real remote path.

It speaks the part of NDIF's HTTP protocol that nnsight's non-blocking ``RemoteBackend`` uses:

* ``POST /request`` (multipart: ``data`` = the request's JSON envelope, ``blob`` = the serialized
  trace; header ``ndif-api-key``) → a ``RECEIVED`` response with the job id, or HTTP 401 for a
  wrong key, or HTTP 404 for a model it does not host;
* ``GET /response/{id}`` → the job's latest status (``QUEUED``, ``RUNNING``, ``COMPLETED`` with a
  download URL, or ``ERROR``);
* ``GET /result/{id}`` → the saved values, ``torch.save``-d (zstd-compressed if asked).

Jobs run in a thread: deserialized with nnsight's own ``RequestModel.deserialize`` against the
hosted model and executed, exactly the server half of ``remote="local"``; the values the
outermost trace pushes are the result (nested traces, such as a backward pass, push theirs into
the enclosing block as usual). ``hang=True`` keeps
every job queued forever (for timeouts); every request's headers are kept in ``seen_keys``.
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

import torch


class FakeNDIF:
    def __init__(
        self, models: dict, keys=("good-key-123",), hang: bool = False, queued_polls: int = 2
    ):
        self.models, self.keys, self.hang, self.queued_polls = models, set(keys), hang, queued_polls
        self.jobs: dict[str, dict] = {}
        self.seen_keys: list[str] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    # ---- jobs -----------------------------------------------------------------------------
    def _run(self, job_id: str, meta: dict, blob: bytes) -> None:
        from nnsight.schema.request import RequestModel
        from nnsight.tracing import tracer as tracer_mod

        job = self.jobs[job_id]
        try:
            model = self.models[meta["model_key"]]
            tracer = RequestModel.deserialize(
                blob, model._remoteable_persistent_objects(), compress=meta.get("compress", False)
            )
            saves: dict = {}
            real_push = tracer_mod.push

            def push(frame, variables):
                # the outermost trace (depth 1) pushes its saved values: those are the result;
                # a nested trace (the backward pass of attribution) pushes all its locals up
                # into the enclosing block, as on the server, and none of them is a result
                if getattr(tracer_mod._local, "depth", 0) <= 1:
                    saves.update(variables)
                else:
                    real_push(frame, variables)

            job["status"] = "RUNNING"
            with mock.patch.object(tracer_mod, "push", push):
                tracer_mod.inc()
                try:
                    tracer.execute(tracer.info.code)
                finally:
                    tracer_mod.dec()
            buf = io.BytesIO()
            torch.save(saves, buf)
            data = buf.getvalue()
            if meta.get("compress"):
                import zstandard as zstd

                data = zstd.ZstdCompressor().compress(data)
            job["result"] = data
            job["status"] = "COMPLETED"
        except Exception as e:  # noqa: BLE001 - reported to the client like NDIF does
            job["status"], job["description"] = "ERROR", f"{type(e).__name__}: {e}"

    # ---- HTTP -----------------------------------------------------------------------------
    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _json(self, code: int, obj) -> None:
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                if self.path != "/request":
                    return self._json(404, {"detail": "no such endpoint"})
                body = self.rfile.read(int(self.headers["Content-Length"]))
                key = self.headers.get("ndif-api-key", "")
                fake.seen_keys.append(key)
                if key not in fake.keys:
                    return self._json(401, {"detail": "Invalid API key."})
                msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                    b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body
                )
                parts = {
                    p.get_param("name", header="content-disposition"): p.get_payload(decode=True)
                    for p in msg.iter_parts()
                }
                meta = json.loads(parts["data"])
                if meta["model_key"] not in fake.models:
                    return self._json(
                        404, {"detail": f"Model {meta['model_key']} is not hosted on this server."}
                    )
                job_id = uuid.uuid4().hex
                fake.jobs[job_id] = {
                    "status": "QUEUED",
                    "polls": 0,
                    "meta": meta,
                    "blob": parts["blob"],
                    "description": "",
                }
                self._json(200, {"id": job_id, "status": "RECEIVED", "description": "received"})

            def do_GET(self):
                kind, _, job_id = self.path.strip("/").partition("/")
                job = fake.jobs.get(job_id)
                if job is None:
                    return self._json(404, {"detail": "unknown job"})
                if kind == "result":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(job["result"])))
                    self.end_headers()
                    self.wfile.write(job["result"])
                    return
                with fake.lock:
                    job["polls"] += 1
                    if (
                        job["status"] == "QUEUED"
                        and not fake.hang
                        and job["polls"] > fake.queued_polls
                    ):
                        job["status"] = "DISPATCHED"
                        threading.Thread(
                            target=fake._run, daemon=True, args=(job_id, job["meta"], job["blob"])
                        ).start()
                st = job["status"]
                out = {
                    "id": job_id,
                    "status": "RUNNING" if st == "DISPATCHED" else st,
                    "description": job.get("description", ""),
                }
                if st == "COMPLETED":
                    out["data"] = f"{fake.url}/result/{job_id}"
                self._json(200, out)

        return Handler
