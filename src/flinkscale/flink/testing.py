"""Testing helpers shipped with the package: record a real Flink REST conversation, replay it offline.

``RecordingTransport`` sits between ``FlinkRestClient`` and a real cluster and keeps every exchange;
``ReplayTransport`` answers the same requests from such a recording, in order per request, through httpx's
mock transport. Recordings are plain JSON (a list of ``{"method", "path", "query", "status", "body"}``), so a
test can also edit one to create a case a real cluster rarely shows (a "NaN", a missing metric, a restart).
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

import httpx


def _key(method: str, path: str, query: str) -> str:
    return f"{method} {path}?{query}"


class RecordingTransport(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport | None = None) -> None:
        self.inner = inner or httpx.HTTPTransport()
        self.exchanges: list[dict[str, Any]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        body = response.json() if response.content else None
        self.exchanges.append({"method": request.method, "path": request.url.path,
                               "query": request.url.query.decode(), "status": response.status_code, "body": body})
        return response

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.exchanges, indent=1))


class ReplayTransport(httpx.MockTransport):
    """Answers each request with the next recorded response for the same method, path and query.

    When a request's recorded answers run out, the last one is repeated (a cluster that keeps answering the same);
    a request never recorded gets a 404 like Flink's, so a test sees what an unknown endpoint would do.
    """

    def __init__(self, exchanges: list[dict[str, Any]]) -> None:
        self.queues: dict[str, deque[dict[str, Any]]] = defaultdict(deque)
        for exchange in exchanges:
            self.queues[_key(exchange["method"], exchange["path"], exchange["query"])].append(exchange)
        self.requests: list[str] = []
        super().__init__(self._answer)

    @classmethod
    def from_file(cls, path: Path) -> ReplayTransport:
        return cls(json.loads(path.read_text()))

    def _answer(self, request: httpx.Request) -> httpx.Response:
        key = _key(request.method, request.url.path, request.url.query.decode())
        self.requests.append(key)
        queue = self.queues.get(key)
        if not queue:
            return httpx.Response(404, json={"errors": ["Not found: " + request.url.path]})
        exchange = queue.popleft() if len(queue) > 1 else queue[0]
        return httpx.Response(exchange["status"], json=exchange["body"])
