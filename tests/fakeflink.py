"""A fake Flink REST server for tests: a real HTTP server on 127.0.0.1 (a free port), in a thread.

It answers like Flink from the responses recorded on the real embedded cluster (tests/fixtures/rest/), or
misbehaves in one of the ways a careless proxy, a wrong URL or a broken cluster does (``MODES``): an empty
body, HTML, ``null``, a list or an object of the wrong shape, a redirect, an error with a list body, numbers
beyond any range, nesting deeper than any JSON parser likes, broken framing, a slow trickle (one byte every few
seconds), a port that accepts and never answers, TLS with a self-signed certificate. ``MUTATIONS`` are
Flink-like answers with one field missing or of the wrong type on one endpoint.

The server speaks HTTP/1.1 over raw sockets (not ``http.server``) so that it can send exactly the bytes a case
needs, including none at all. Every request is recorded with its headers (``requests``), which the redaction
tests read to check that credentials did reach the server while never reaching any message.
"""

from __future__ import annotations

import contextlib
import copy
import json
import socket
import ssl
import subprocess
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

RECORDINGS = Path(__file__).parent / "fixtures" / "rest"
STEP = RECORDINGS / "collector_clickstream_step.json"
P1 = RECORDINGS / "clickstream_p1"

# The job of the collector recording (one vertex); answers taken from the other recording are rewritten to it.
JOB_ID = "fbe2f9fd51e8ce0812ff7fcd1b8bb3bf"
VERTEX_ID = "cbc357ccb763df2852fee8c4fc7d55f2"
_P1_JOB = "faef837b83771766806a6b397645b80a"
_P1_VERTICES = ("e3dfc0d7e9ecd8a43f85f0b68ebf3b80", "7fc3fc47263b6c498ac3facaf12547db")
SAVEPOINT_REQUEST = "02d4ffc27893992d264cfe58a3fd8b0b"

# Global misbehaviours: every request gets this answer.
MODES = (
    "empty", "html", "null", "list", "wrong-object", "string", "redirect", "400-list", "500-list",
    "huge-numbers", "deep-nesting", "not-utf8", "truncated-json", "bad-content-length", "oversized",
    "close", "trickle", "silent", "tls-self-signed",
)
# Servers that repeat the credentials they got in their error text (a naive proxy): for the redaction tests.
ECHO_MODES = ("echo-credentials", "echo-credentials-in-sampling")


def _key(method: str, path: str, query: str) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    return method, path, tuple(sorted(parse_qsl(query)))


def _load_recordings() -> dict[tuple[str, str, tuple[tuple[str, str], ...]], list[Any]]:
    answers: dict[tuple[str, str, tuple[tuple[str, str], ...]], list[Any]] = defaultdict(list)
    for exchange in json.loads(STEP.read_text()):
        answers[_key(exchange["method"], exchange["path"], exchange["query"])].append(exchange["body"])

    def p1(name: str) -> Any:
        text = (P1 / f"{name}.json").read_text().replace(_P1_JOB, JOB_ID)
        return json.loads(text)["body"]

    overview = p1("jobs_overview")
    overview["jobs"] = overview["jobs"][:1]
    answers[_key("GET", "/jobs/overview", "")].append(overview)
    answers[_key("GET", "/taskmanagers", "")].append(p1("taskmanagers"))
    requirements = p1("resource_requirements")
    answers[_key("GET", f"/jobs/{JOB_ID}/resource-requirements", "")].append(
        {VERTEX_ID: requirements[_P1_VERTICES[0]]})
    answers[_key("POST", f"/jobs/{JOB_ID}/stop", "")].append(p1("post_stop"))
    answers[_key("GET", f"/jobs/{JOB_ID}/savepoints/{SAVEPOINT_REQUEST}", "")].append(p1("savepoint_status"))
    answers[_key("GET", f"/jobs/{JOB_ID}/checkpoints/config", "")].append(p1("checkpoints_config"))
    # Not recorded: /jobmanager/config has Flink's documented shape, a list of {key, value} (strings).
    answers[_key("GET", "/jobmanager/config", "")].append([
        {"key": "metrics.fetcher.update-interval", "value": "1000"},
        {"key": "jobmanager.scheduler", "value": "adaptive"}])
    return dict(answers)


RECORDED = _load_recordings()


def _endpoint_of(path: str, query: str) -> str:
    """A stable name for the endpoint a request hits (what MUTATIONS target)."""
    if path == "/overview":
        return "overview"
    if path == "/jobs/overview":
        return "jobs-overview"
    if path == "/taskmanagers":
        return "taskmanagers"
    if path == "/taskmanagers/metrics":
        return "tm-metrics"
    if path == "/jobmanager/config":
        return "config"
    if path == f"/jobs/{JOB_ID}":
        return "job"
    if path.endswith("/checkpoints"):
        return "checkpoints"
    if path.endswith("/resource-requirements"):
        return "resource-requirements"
    if path.endswith("/stop"):
        return "stop"
    if "/savepoints/" in path:
        return "savepoint-status"
    if path.endswith("/subtasks/metrics"):
        return "pending" if "get=" in query else "metric-names"
    if "/vertices/" in path:
        return "vertex-detail"
    return "other"


def _set(path: list[Any], value: Any) -> Callable[[Any], Any]:
    def edit(body: Any) -> Any:
        node = body
        for step in path[:-1]:
            node = node[step]
        node[path[-1]] = value
        return body
    return edit


def _delete(path: list[Any]) -> Callable[[Any], Any]:
    def edit(body: Any) -> Any:
        node = body
        for step in path[:-1]:
            node = node[step]
        del node[path[-1]]
        return body
    return edit


# name -> (endpoint, edit of the recorded body): Flink-like answers with one field missing or of the wrong type.
MUTATIONS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "job-no-vertices": ("job", _delete(["vertices"])),
    "job-vertices-object": ("job", _set(["vertices"], {"0": {}})),
    "job-string-parallelism": ("job", _set(["vertices", 0, "parallelism"], "2")),
    "job-huge-parallelism": ("job", _set(["vertices", 0, "parallelism"], 10**400)),
    "job-zero-parallelism": ("job", _set(["vertices", 0, "parallelism"], 0)),
    "job-negative-max-parallelism": ("job", _set(["vertices", 0, "maxParallelism"], -7)),
    "job-bool-parallelism": ("job", _set(["vertices", 0, "parallelism"], True)),
    "job-float-parallelism": ("job", _set(["vertices", 0, "parallelism"], 1.5)),
    "job-no-vertex-id": ("job", _delete(["vertices", 0, "id"])),
    "job-number-vertex-id": ("job", _set(["vertices", 0, "id"], 12345)),
    "job-no-jid": ("job", _delete(["jid"])),
    "job-null-state": ("job", _set(["state"], None)),
    "job-tasks-strings": ("job", _set(["vertices", 0, "tasks", "RUNNING"], "1")),
    "job-plan-unknown-vertex": ("job", _set(["plan", "nodes", 0, "inputs"], [{"id": "f" * 32, "num": 0}])),
    "job-plan-nodes-string": ("job", _set(["plan", "nodes"], "none")),
    "jobs-overview-no-jobs": ("jobs-overview", _delete(["jobs"])),
    "jobs-overview-jobs-string": ("jobs-overview", _set(["jobs"], "fbe2")),
    "jobs-overview-no-state": ("jobs-overview", _delete(["jobs", 0, "state"])),
    "jobs-overview-huge-start": ("jobs-overview", _set(["jobs", 0, "start-time"], 10**30)),
    "overview-no-taskmanagers": ("overview", _delete(["taskmanagers"])),
    "overview-string-slots": ("overview", _set(["slots-total"], "2")),
    "overview-negative-slots": ("overview", _set(["slots-available"], -3)),
    "taskmanagers-object": ("taskmanagers", _set(["taskmanagers"], {"id": "tm"})),
    "taskmanagers-string-slots": ("taskmanagers", _set(["taskmanagers", 0, "slotsNumber"], "1")),
    "config-object": ("config", lambda body: {"metrics.fetcher.update-interval": "1000"}),
    "config-number-value": ("config", _set([0, "value"], 2000)),
    "vertex-detail-no-subtasks": ("vertex-detail", _delete(["subtasks"])),
    "vertex-detail-string-index": ("vertex-detail", _set(["subtasks", 0, "subtask"], "0")),
    "vertex-detail-metrics-list": ("vertex-detail", _set(["subtasks", 0, "metrics"], [1, 2])),
    "metric-names-object": ("metric-names", lambda body: {"metrics": body}),
    "metric-names-number-id": ("metric-names", _set([0, "id"], 7)),
    "checkpoints-string-count": ("checkpoints", _set(["counts", "completed"], "25")),
    "checkpoints-no-counts": ("checkpoints", _delete(["counts"])),
    "tm-metrics-object": ("tm-metrics", lambda body: {"metrics": body}),
    "resource-requirements-string-bound": (
        "resource-requirements", _set([VERTEX_ID, "parallelism", "upperBound"], "1")),
    "resource-requirements-list": ("resource-requirements", lambda body: [body]),
    "stop-no-request-id": ("stop", lambda body: {}),
    "savepoint-status-no-status": ("savepoint-status", _delete(["status"])),
}


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost and its key, made with the openssl command line."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeFlink:
    """``mode``: "flink" (healthy), one of ``MODES``, or a ``MUTATIONS`` name (healthy but for one endpoint)."""

    mode: str = "flink"
    certificate: tuple[Path, Path] | None = None
    trickle_seconds: float = 3.0
    requests: list[Request] = field(default_factory=list)
    stopped: bool = False

    def __post_init__(self) -> None:
        if self.mode not in ("flink", *MODES, *MUTATIONS, *ECHO_MODES):
            raise ValueError(f"unknown mode {self.mode!r}")
        self._queues = {k: deque(copy.deepcopy(v)) for k, v in RECORDED.items()}
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._sockets: list[socket.socket] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.2)
        self.port = int(self._listener.getsockname()[1])
        self._tls: ssl.SSLContext | None = None
        if self.mode == "tls-self-signed" or self.certificate is not None:
            if self.certificate is None:
                raise ValueError("tls-self-signed needs a certificate (self_signed_certificate)")
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(*self.certificate)
        self._thread = threading.Thread(target=self._serve, name=f"fakeflink-{self.mode}", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._closing.set()
        self._thread.join(5)
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()
        self._listener.close()

    def __enter__(self) -> FakeFlink:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- serving ---------------------------------------------------------------------------------------
    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self._sockets.append(conn)
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(30)
            if self._tls is not None:
                conn = self._tls.wrap_socket(conn, server_side=True)
                with self._lock:
                    self._sockets.append(conn)
            if self.mode == "silent":
                self._closing.wait(60)
                return
            if self.mode == "close":
                return
            reader = conn.makefile("rb")
            while not self._closing.is_set():
                request = _read_request(reader)
                if request is None:
                    return
                with self._lock:
                    self.requests.append(request)
                status, headers, body = self._answer(request)
                head = f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}\r\n"
                headers.setdefault("Content-Length", str(len(body)))
                head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
                data = head.encode("latin-1") + body
                if self.mode == "trickle":
                    for i in range(len(data)):
                        if self._closing.wait(self.trickle_seconds):
                            return
                        conn.sendall(data[i:i + 1])
                    return
                conn.sendall(data)
                if self.mode in ("bad-content-length", "truncated-json"):
                    return
        except (OSError, ssl.SSLError):
            return
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def _answer(self, request: Request) -> tuple[int, dict[str, str], bytes]:
        mode = self.mode
        json_type = {"Content-Type": "application/json; charset=UTF-8"}
        if mode == "empty":
            return 200, json_type, b""
        if mode == "html":
            return 200, {"Content-Type": "text/html"}, b"<!doctype html><html><body><h1>Sign in</h1></body></html>"
        if mode == "null":
            return 200, json_type, b"null"
        if mode == "list":
            return 200, json_type, b"[1, 2, 3]"
        if mode == "wrong-object":
            return 200, json_type, b'{"status": "ok", "data": {"items": []}}'
        if mode == "string":
            return 200, json_type, b'"RUNNING"'
        if mode == "redirect":
            return 302, {"Location": "https://login.example/sso?next=/jobs"}, b""
        if mode == "400-list":
            return 400, json_type, b'["bad request", "no such thing"]'
        if mode == "500-list":
            return 500, json_type, b'[{"error": "internal"}]'
        if mode == "deep-nesting":
            return 200, json_type, b"[" * 200_000 + b"]" * 200_000
        if mode == "not-utf8":
            return 200, json_type, bytes(range(128, 256)) * 8
        if mode == "truncated-json":
            return 200, json_type, b'{"jobs": [{"jid": "fbe2'
        if mode == "bad-content-length":
            return 200, {**json_type, "Content-Length": "100000"}, b'{"jobs": []'
        if mode == "oversized":
            return 200, json_type, b"[" + b"0," * (17 * 2**20) + b"0]"
        if mode == "echo-credentials" or (mode == "echo-credentials-in-sampling"
                                          and _endpoint_of(request.path, request.query) == "vertex-detail"):
            echoed = " ".join(f"{k}: {v}" for k, v in request.headers.items()
                              if k == "authorization" or k.startswith("x-"))
            return 400, json_type, json.dumps({"errors": [f"credentials rejected: {echoed}"]}).encode()
        status, body = self._flink(request)
        if mode == "huge-numbers":
            body = _huge_numbers(body)
        if mode in MUTATIONS and body is not None and status < 300:
            endpoint, edit = MUTATIONS[mode]
            if _endpoint_of(request.path, request.query) == endpoint:
                body = edit(copy.deepcopy(body))
        text = b"" if body is None else json.dumps(body).encode()
        return status, json_type, text

    def _flink(self, request: Request) -> tuple[int, Any]:
        """A healthy answer from the recordings (the next recorded one per request, the last one repeated)."""
        if request.method == "PUT" and request.path.endswith("/resource-requirements"):
            return 200, {}
        if request.method == "PATCH":
            return 202, {}
        if request.method == "POST" and request.path.endswith("/stop"):
            self.stopped = True
        queue = self._queues.get(_key(request.method, request.path, request.query))
        if queue is None and request.path.endswith("/subtasks/metrics") and "get=" in request.query:
            names = dict(parse_qsl(request.query)).get("get", "").split(",")
            return 200, [{"id": n, "min": 1.0, "max": 1.0, "avg": 1.0, "sum": 1.0} for n in names if n]
        if not queue:
            return 404, {"errors": [f"Not found: {request.path}"]}
        body = copy.deepcopy(queue.popleft() if len(queue) > 1 else queue[0])
        if self.stopped and request.path == f"/jobs/{JOB_ID}":
            body["state"] = "FINISHED"  # a stop-with-savepoint ends the job
        return 200, body


def _huge_numbers(body: Any) -> Any:
    if isinstance(body, bool):
        return body
    if isinstance(body, int):
        return 10**400
    if isinstance(body, float):
        return 1e400
    if isinstance(body, dict):
        return {k: _huge_numbers(v) for k, v in body.items()}
    if isinstance(body, list):
        return [_huge_numbers(v) for v in body]
    return body


def _read_request(reader: Any) -> Request | None:
    line = reader.readline(65536)
    if not line:
        return None
    words = line.decode("latin-1").split(" ", 2)
    if len(words) != 3:  # not HTTP (a TLS hello at the plain port): drop the connection, as a server would
        return None
    method, target, _ = words
    headers: dict[str, str] = {}
    while True:
        raw = reader.readline(65536)
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = reader.read(int(headers.get("content-length", "0") or 0)) if headers.get("content-length") else b""
    parts = urlsplit(target)
    return Request(method, parts.path, parts.query, headers, body)


_REASONS = {200: "OK", 202: "Accepted", 302: "Found", 400: "Bad Request", 404: "Not Found",
            500: "Internal Server Error"}


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()
