"""The Message Batches endpoints of the fake Anthropic API, so batch code runs through the real SDK.

    POST /v1/messages/batches               create (requests: [{custom_id, params}])
    GET  /v1/messages/batches/{id}          retrieve: processing_status, request_counts, results_url
    GET  /v1/messages/batches/{id}/results  JSON lines, one per custom_id, in a shuffled order
    POST /v1/messages/batches/{id}/cancel   cancel: "canceling", then ended with the rest canceled

Each request is answered by the server's own responder (so `route` and `script` apply) at an even
share of `duration` seconds after creation; a request the API would refuse, a responder that raises
or an injected Fault whose `match` accepts it ends `errored` (a Fault matching a request to these
endpoints themselves answers it with that error); past `expire_after` seconds what is
left ends `expired`. The request counts move while the batch runs (the documented API fills them in
when processing ends; live counts let a progress display be tested), and `processing_status`
turns "ended" once every request has a result."""

from __future__ import annotations

import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ._fakeserver import Reply, Request, _Handler

if TYPE_CHECKING:
    from .fake_anthropic import FakeAnthropic

PREFIX = "/v1/messages/batches"
_CUSTOM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: The real API ends an unfinished batch 24 hours after creation.
REAL_EXPIRY = 24 * 3600.0


def _stamp(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class FakeBatch:
    id: str
    requests: list[dict[str, Any]]
    headers: dict[str, str]
    created: float
    duration: float
    expire_after: float | None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # custom_id → result
    cancel_at: float | None = None
    ended: float | None = None
    retrieves: int = 0

    def counts(self) -> dict[str, int]:
        kinds = [r["type"] for r in self.results.values()]
        out = {k: kinds.count(k) for k in ("succeeded", "errored", "canceled", "expired")}
        out["processing"] = len(self.requests) - len(kinds)
        return out

    @property
    def status(self) -> str:
        if self.ended is not None:
            return "ended"
        return "canceling" if self.cancel_at is not None else "in_progress"


class BatchDesk:
    """The batches of one FakeAnthropic. Knobs: `duration` (seconds until a batch's last request is
    answered; or a function of the request count), `expire_after` (seconds; None: never within a
    test), `seed` for the order of results. `created` lists every batch ever created."""

    def __init__(self, server: FakeAnthropic, *, duration: float = 0.2, seed: int = 0) -> None:
        self.server = server
        self.duration: float | Any = duration
        self.expire_after: float | None = None
        self.created: list[FakeBatch] = []
        self.cancels = 0
        self._by_id: dict[str, FakeBatch] = {}
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.created.clear()
            self._by_id.clear()
            self.cancels = 0

    def get(self, batch_id: str) -> FakeBatch:
        return self._by_id[batch_id]

    # -- routing --
    def serve(self, h: _Handler, request: Request) -> bool:
        path = request.path
        if not path.startswith(PREFIX):
            return False
        problem = self.server._auth_problem(h.headers)
        if problem is not None:
            self.server._send_error(h, request, *problem)
            return True
        fault = self.server._take_fault(request)  # injected faults hit these endpoints too
        if fault is not None:
            self.server._send_error(h, request, fault.status, fault.message, fault.headers())
            return True
        parts = path[len(PREFIX):].strip("/").split("/")
        if h.command == "POST" and parts == [""]:
            self._create(h, request)
            return True
        batch = self._by_id.get(parts[0])
        if batch is None:
            self.server._send_error(h, request, 404, f"message batch {parts[0]!r} not found")
            return True
        if h.command == "GET" and len(parts) == 1:
            with self._lock:
                batch.retrieves += 1
                self._advance(batch)
            self._send(h, request, self._public(batch))
        elif h.command == "GET" and parts[1:] == ["results"]:
            self._results(h, request, batch)
        elif h.command == "POST" and parts[1:] == ["cancel"]:
            with self._lock:
                self.cancels += 1
                if batch.ended is None and batch.cancel_at is None:
                    batch.cancel_at = time.time()
                body = self._public(batch)
            self._send(h, request, body)
        else:
            self.server._send_error(h, request, 404, f"{h.command} {path} is not served here")
        return True

    # -- endpoints --
    def _create(self, h: _Handler, request: Request) -> None:
        reqs = request.get("requests")
        if not isinstance(reqs, list) or not reqs:
            return self.server._send_error(h, request, 400, "requests: at least one request is required")
        seen: set[str] = set()
        for i, r in enumerate(reqs):
            cid = r.get("custom_id") if isinstance(r, dict) else None
            if not isinstance(cid, str) or not _CUSTOM_ID.match(cid):
                return self.server._send_error(h, request, 400, f"requests.{i}.custom_id: 1-64 of [A-Za-z0-9_-]")
            if cid in seen:
                return self.server._send_error(h, request, 400, f"requests.{i}.custom_id: {cid!r} is not unique")
            if not isinstance(r.get("params"), dict):
                return self.server._send_error(h, request, 400, f"requests.{i}.params: Field required")
            seen.add(cid)
        duration = self.duration(len(reqs)) if callable(self.duration) else float(self.duration)
        with self._lock:
            batch = FakeBatch(f"msgbatch_fake_{len(self.created) + 1:06d}", reqs, dict(request.headers),
                              time.time(), duration, self.expire_after)
            self.created.append(batch)
            self._by_id[batch.id] = batch
            body = self._public(batch)
        self._send(h, request, body)

    def _results(self, h: _Handler, request: Request, batch: FakeBatch) -> None:
        with self._lock:
            self._advance(batch)
            if batch.ended is None:
                return self.server._send_error(h, request, 400, f"message batch {batch.id} is still {batch.status}")
            lines = [{"custom_id": cid, "result": res} for cid, res in batch.results.items()]
            self._rng.shuffle(lines)
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        request.status = 200
        h.send_response(200)
        h.send_header("content-type", "application/binary")
        h.send_header("content-length", str(len(data)))
        for k, v in self.server._response_headers().items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)
        h.wfile.flush()

    # -- processing --
    def _advance(self, batch: FakeBatch) -> None:
        """Answer every request whose time has come; then apply cancel and expiry."""
        if batch.ended is not None:
            return
        now, n = time.time(), len(batch.requests)
        for i, r in enumerate(batch.requests):
            if r["custom_id"] in batch.results:
                continue
            if batch.created + batch.duration * (i + 1) / n > now:
                break
            if batch.cancel_at is not None and batch.created + batch.duration * (i + 1) / n > batch.cancel_at:
                break
            batch.results[r["custom_id"]] = self._answer(batch, i, r["params"])
        leftover = None
        if batch.cancel_at is not None:
            leftover = "canceled"
        elif batch.expire_after is not None and now >= batch.created + batch.expire_after:
            leftover = "expired"
        if leftover is not None:
            for r in batch.requests:
                batch.results.setdefault(r["custom_id"], {"type": leftover})
        if len(batch.results) == n:
            batch.ended = now

    def _answer(self, batch: FakeBatch, i: int, params: dict[str, Any]) -> dict[str, Any]:
        srv = self.server
        req = Request(dict(params, stream=False), path="/v1/messages", headers=batch.headers, size=0, index=i)
        fault = srv._take_fault(req)
        problem = (fault.status, fault.message) if fault is not None else srv._check(req, batch.headers)
        if problem is None:
            try:
                reply = srv.responder(req)
            except Exception as err:
                srv.errors.append(f"{type(err).__name__}: {err}")
                problem = (500, f"{srv.label} responder failed: {type(err).__name__}: {err}")
        if problem is not None:
            from .fake_anthropic import error_body

            return {"type": "errored", "error": error_body(*problem)}
        message = srv._message(req, reply if isinstance(reply, Reply) else Reply(str(reply)), batch=True)
        return {"type": "succeeded", "message": message}

    def _public(self, batch: FakeBatch) -> dict[str, Any]:
        ended = batch.ended is not None
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": batch.status,
            "request_counts": batch.counts(),
            "created_at": _stamp(batch.created),
            "expires_at": _stamp(batch.created + (batch.expire_after or REAL_EXPIRY)),
            "ended_at": _stamp(batch.ended),
            "cancel_initiated_at": _stamp(batch.cancel_at),
            "archived_at": None,
            "results_url": f"{self.server.url}{PREFIX}/{batch.id}/results" if ended else None,
        }

    def _send(self, h: _Handler, request: Request, body: dict[str, Any]) -> None:
        request.status = 200
        h.send_json(200, body, self.server._response_headers())
