"""``FlinkRestClient``: a small, typed client for the parts of Flink's REST API that flinkscale needs.

Built on httpx so that tests can hand it an ``httpx.MockTransport`` that replays responses recorded from the
real embedded cluster (tests/fixtures/rest/), and so TLS and proxy options are httpx's own.

Behaviour users rely on:
- Every answer is validated into a typed model (``models``, pydantic) before anything reads it: an answer of
  the wrong shape (``null``, HTML, a list for an object, a string parallelism, a number beyond Flink's range,
  nesting no JSON from Flink has) is an ``EndpointError`` naming the endpoint and the field path. Answers are
  read up to ``MAX_ANSWER_BYTES``.
- One overall deadline per call (``deadline``, default 30 s), retries included, and optionally per *phase* of a
  command (``with client.phase(60, "sampling")``): per-read timeouts alone never end a server that trickles one
  byte every few seconds. The deadline is enforced on every socket operation (connect, TLS handshake, each
  read and write), so a silent port or a trickle fails at the deadline, not after it. Until the endpoint has
  answered once, a GET's deadline is ``first_contact`` (8 s) when that is shorter: a port that accepts and never
  answers is told in seconds, not after the whole deadline.
- Idempotent requests (GET) are retried with exponential backoff on connection errors, timeouts and 5xx
  answers, within the deadline; a PUT/POST/PATCH is sent once. A redirect is not followed: it is reported with
  where it points, so a wrong --rest URL is fixed rather than silently replaced.
- A TLS failure says so (``certificate verify failed``, with the way out: ``--rest-ca`` or ``--rest-insecure``)
  instead of suggesting that Flink is not running.
- Credentials never appear in a message: ``user:pass@`` in the URL becomes HTTP basic auth and leaves the URL
  the client reports; header values (auth tokens) are registered with ``core.redaction`` so that every message,
  log and run-dir file drops them.
- 404 becomes ``NotFoundError`` naming what was missing (a job, a savepoint request); other 4xx answers become
  ``EndpointError`` with Flink's own first error line.
- Metric reads go through ``models``: the string "NaN" and missing metrics become ``None``.
- The REST metric store refreshes lazily (``metrics.fetcher.update-interval``), so the first read after a quiet
  spell can be stale; ``warm_metrics`` touches a job's metrics once so that the next read is fresh.
"""

from __future__ import annotations

import contextlib
import json
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpcore
import httpx
from pydantic import BaseModel

from flinkscale.core.errors import EndpointError, InputError, NotFoundError, RuntimeFailure
from flinkscale.core.redaction import redact, register_secret
from flinkscale.flink.models import (
    AggregatedMetric,
    AggregatedMetricsWire,
    CheckpointConfig,
    CheckpointConfigWire,
    CheckpointStatistics,
    CheckpointStatisticsWire,
    ClusterOverview,
    ConfigWire,
    JarRunWire,
    JarUploadWire,
    JobDetails,
    JobDetailsWire,
    JobExceptionsWire,
    JobsOverviewWire,
    JobSummary,
    MetricValuesWire,
    OverviewWire,
    RescaleConfig,
    RescaleConfigWire,
    RescaleHistoryEntry,
    RescaleHistoryWire,
    ResourceRequirementsWire,
    SavepointStatusWire,
    SubtaskDetail,
    TaskManagerInfo,
    TaskManagersWire,
    TriggerWire,
    VertexDetailWire,
    aggregated_from_wire,
    first_line,
    metric_value,
    resource_requirements_body,
    validate_answer,
)

_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
TERMINAL_JOB_STATES = frozenset({"FINISHED", "CANCELED", "FAILED", "SUSPENDED"})
#: The overall deadline of one REST call, retries included, unless the caller gives another.
DEFAULT_DEADLINE_SECONDS = 30.0
#: Until the endpoint has answered once, a GET ends within this (or the deadline, if shorter) unless the caller set
#: the deadline itself (``--rest-timeout``): Flink answers a first GET in milliseconds, and a port that accepts a
#: connection and never answers would otherwise hold every command for the whole deadline.
FIRST_CONTACT_SECONDS = 8.0
#: Answers are read up to this size (the largest real one here, a vertex's metric names, is ~25 kB).
MAX_ANSWER_BYTES = 32 * 1024 * 1024

_W = TypeVar("_W", bound=BaseModel)
_T = TypeVar("_T")


@dataclass(frozen=True)
class RestAccess:
    """How to reach a Flink REST endpoint: extra headers (auth), TLS verification, the deadline per call.

    ``verify`` is True (system CAs), False (``--rest-insecure``) or the path of a CA bundle (``--rest-ca``).
    """

    headers: Mapping[str, str] = field(default_factory=dict)
    verify: bool | str = True
    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
    first_contact_seconds: float | None = FIRST_CONTACT_SECONDS  # None: the deadline from the first call on

    def client(self, base_url: str, **kwargs: Any) -> FlinkRestClient:
        return FlinkRestClient(base_url, headers=self.headers, verify=self.verify, deadline=self.deadline_seconds,
                               first_contact=self.first_contact_seconds, **kwargs)


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """``http://user:pass@host:8081/`` -> (``http://host:8081``, (user, pass)); the secret is registered."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise InputError(f"not a valid URL: {redact(url)[:200]!r}", field="--rest") from None
    if not parsed.userinfo:
        return url.rstrip("/"), None
    username, password = parsed.username, parsed.password
    register_secret(password, parsed.userinfo.decode("ascii", "replace"))
    clean = str(parsed.copy_with(username=None, password=None)).rstrip("/")
    return clean, (username, password)


def ssl_context(verify: bool | str) -> ssl.SSLContext | bool:
    """An SSL context for ``verify`` (a CA file path is loaded now, so a bad one is an error naming the flag)."""
    if not isinstance(verify, str):
        return verify
    try:
        return ssl.create_default_context(cafile=verify)
    except (OSError, ssl.SSLError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise InputError(f"cannot use {verify} as a CA bundle: {reason}", field="--rest-ca") from None


class _CallDeadline(threading.local):
    """The monotonic deadline of the call this thread is making (None outside a call)."""

    at: float | None = None


def _bounded(deadline: _CallDeadline, timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` cut to what is left of the call's deadline; ``error`` when nothing is left."""
    if deadline.at is None:
        return timeout
    remaining = deadline.at - time.monotonic()
    if remaining <= 0:
        raise error("the call's deadline passed")
    return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every operation ends by the call's deadline, whatever the per-read timeout."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: _CallDeadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def _bound(self, timeout: float | None, error: type[Exception]) -> float | None:
        return _bounded(self._deadline, timeout, error)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._bound(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._bound(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, self._bound(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend, deadline: _CallDeadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        bounded = _bounded(self._deadline, timeout, httpcore.ConnectTimeout)
        stream = self._inner.connect_tcp(host, port, bounded, local_address, socket_options)
        return _DeadlineStream(stream, self._deadline)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[Any] | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.connect_unix_socket(path, timeout, socket_options), self._deadline)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _deadline_transport(verify: ssl.SSLContext | bool, deadline: _CallDeadline) -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport(verify=verify)
    pool = transport._pool
    # httpcore takes a network backend at construction only and httpx does not pass one through; the pool keeps
    # it in one attribute, read whenever it opens a connection. A unit test (slow trickle) guards this.
    if isinstance(getattr(pool, "_network_backend", None), httpcore.NetworkBackend):
        pool._network_backend = _DeadlineBackend(pool._network_backend, deadline)
    return transport


class _DeadlinePassed(Exception):
    pass


class _TooLarge(Exception):
    pass


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    headers: httpx.Headers

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class FlinkRestClient(contextlib.AbstractContextManager["FlinkRestClient"]):
    """A client for one Flink cluster's REST endpoint, e.g. ``http://localhost:8081``."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff_seconds: float = 0.5,
        headers: Mapping[str, str] | None = None,
        verify: bool | str = True,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        deadline: float = DEFAULT_DEADLINE_SECONDS,
        first_contact: float | None = FIRST_CONTACT_SECONDS,
    ) -> None:
        self.base_url, auth = split_credentials(base_url)
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.timeout = timeout
        self.deadline = deadline
        self.first_contact = first_contact
        self._answered = False  # whether the endpoint has answered a call (with any status) yet
        self._sleep = sleep
        self.calls = 0  # requests sent, for "REST calls per sample" accounting
        self._phase: tuple[float, float, str] | None = None
        self._call_deadline = _CallDeadline()
        register_secret(*(headers or {}).values())
        if transport is None:
            transport = _deadline_transport(ssl_context(verify), self._call_deadline)
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=dict(headers or {}),
                                  auth=auth, transport=transport, follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextlib.contextmanager
    def phase(self, seconds: float, what: str) -> Iterator[None]:
        """Every call inside must finish within ``seconds`` of entering: a deadline for a step of a command."""
        previous = self._phase
        self._phase = (time.monotonic() + seconds, seconds, what)
        try:
            yield
        finally:
            self._phase = previous

    # --- transport -------------------------------------------------------------------------------
    def _request(self, method: str, path: str, *, what: str = "", **kwargs: Any) -> Any:
        """The decoded JSON answer (not validated; see ``_fetch``)."""
        return self._decode(self._exchange(method, path, what, **kwargs), f"{method} {self.base_url}{path}", what)

    def _fetch(self, model: type[_W], method: str, path: str, *, what: str = "", **kwargs: Any) -> _W:
        """The answer validated as ``model``; a wrong shape is an ``EndpointError`` naming the field path."""
        endpoint = f"{method} {self.base_url}{path}"
        data = self._decode(self._exchange(method, path, what, **kwargs), endpoint, what)
        try:
            return validate_answer(model, data)
        except InputError as exc:
            raise EndpointError(f"the answer is not what Flink sends: {exc}", endpoint=endpoint) from None

    def _convert(self, endpoint: str, build: Callable[[], _T]) -> _T:
        try:
            return build()
        except InputError as exc:
            raise EndpointError(f"the answer is not what Flink sends: {exc}", endpoint=endpoint) from None

    def _exchange(self, method: str, path: str, what: str, **kwargs: Any) -> _Answer:
        attempts = self.retries + 1 if method == "GET" else 1
        endpoint = f"{method} {self.base_url}{path}"
        budget, deadline, limit = self._budget(endpoint, first=method == "GET" and not self._answered)
        last_error = ""
        tried = 0
        for attempt in range(attempts):
            if attempt:
                pause = self.backoff_seconds * 2 ** (attempt - 1)
                if time.monotonic() + pause >= deadline:
                    break
                self._sleep(pause)
            if time.monotonic() >= deadline:
                break
            self.calls += 1
            tried += 1
            try:
                answer = self._send(method, path, deadline, **kwargs)
            except _DeadlinePassed:
                last_error = "no complete answer"
                break
            except _TooLarge:
                raise EndpointError(f"answered with more than {MAX_ANSWER_BYTES // 2**20} MiB; is this a Flink "
                                    "REST endpoint?", endpoint=endpoint) from None
            except httpx.TimeoutException:
                last_error = "timed out"
                continue
            except httpx.TransportError as exc:
                tls = _tls_problem(exc)
                if tls:
                    raise EndpointError(tls, endpoint=endpoint) from None
                if isinstance(exc, httpx.ConnectError):
                    last_error = f"cannot connect ({type(exc).__name__})"
                else:
                    last_error = f"the connection broke off mid-answer ({type(exc).__name__})"
                continue
            if 300 <= answer.status < 400:
                where = redact(answer.headers.get("location", "?"))[:200]
                raise EndpointError(f"answered with a redirect (HTTP {answer.status}) to {where}; give that URL "
                                    "with --rest", endpoint=endpoint, status=answer.status)
            self._answered = True
            if answer.status >= 500 and "errors" not in answer.text[:20]:
                last_error = f"answered HTTP {answer.status}"
                continue
            return answer
        if last_error in ("no complete answer", "") or time.monotonic() >= deadline:
            raise EndpointError(f"{last_error or 'no answer'} within {budget:g}s ({limit}) after {tried} attempt(s)",
                                endpoint=endpoint)
        hint = "; is Flink running there?" if last_error.startswith("cannot connect") else ""
        raise EndpointError(f"{last_error} after {tried} attempt(s){hint}", endpoint=endpoint)

    def _budget(self, endpoint: str, first: bool = False) -> tuple[float, float, str]:
        """(seconds, monotonic deadline, what limits it) for the next call: the call's own, the first contact's
        (``first``: a GET before the endpoint has answered) or the phase's, whichever ends first."""
        now = time.monotonic()
        budget, deadline, limit = self.deadline, now + self.deadline, "the deadline per REST call"
        if first and self.first_contact is not None and self.first_contact < budget:
            budget, deadline = self.first_contact, now + self.first_contact
            limit = "no answer from this endpoint yet; --rest-timeout sets a longer wait"
        if self._phase is not None:
            phase_end, phase_seconds, what = self._phase
            if phase_end <= now:
                raise EndpointError(f"{what} did not finish within {phase_seconds:g}s", endpoint=endpoint)
            if phase_end < deadline:
                budget, deadline, limit = phase_seconds, phase_end, f"the deadline for {what}"
        return budget, deadline, limit

    def _send(self, method: str, path: str, deadline: float, **kwargs: Any) -> _Answer:
        self._call_deadline.at = deadline
        try:
            timeout = httpx.Timeout(max(min(self.timeout, deadline - time.monotonic()), 0.001))
            with self._http.stream(method, path, timeout=timeout, **kwargs) as response:
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        raise _TooLarge
                    if time.monotonic() > deadline:
                        raise _DeadlinePassed
                return _Answer(response.status_code, bytes(body), response.headers)
        except httpx.TimeoutException:
            if time.monotonic() >= deadline - 0.01:
                raise _DeadlinePassed from None
            raise
        except httpx.DecodingError:
            raise httpx.RemoteProtocolError("the answer's content encoding is broken") from None
        finally:
            self._call_deadline.at = None

    @staticmethod
    def _decode(answer: _Answer, endpoint: str, what: str) -> Any:
        status = answer.status
        if status == 404 or (status >= 400 and "not found" in answer.text[:2000].lower()):
            raise NotFoundError(f"{what or 'resource'} not found", endpoint=endpoint, status=status)
        if status >= 400:
            raise EndpointError(f"HTTP {status}: {_flink_error(answer.text)}", endpoint=endpoint, status=status)
        if not answer.body.strip():
            return None
        try:
            return json.loads(answer.body)
        except RecursionError:
            raise EndpointError("answered with JSON nested too deeply to be Flink's", endpoint=endpoint) from None
        except ValueError:
            raise EndpointError("answered with something that is not JSON; is this a Flink REST endpoint?",
                                endpoint=endpoint) from None

    def _job_path(self, job_id: str) -> str:
        if not _JOB_ID.match(job_id):
            raise NotFoundError(f"job {job_id!r} not found (a Flink job id is 32 hex characters)",
                                endpoint=f"{self.base_url}/jobs/{job_id}")
        return f"/jobs/{job_id}"

    # --- cluster ---------------------------------------------------------------------------------
    def overview(self) -> ClusterOverview:
        return ClusterOverview.from_wire(self._fetch(OverviewWire, "GET", "/overview"))

    def config(self) -> dict[str, str]:
        return {e.key: e.value for e in self._fetch(ConfigWire, "GET", "/jobmanager/config").root}

    def task_managers(self) -> list[TaskManagerInfo]:
        wire = self._fetch(TaskManagersWire, "GET", "/taskmanagers")
        return [TaskManagerInfo.from_wire(tm) for tm in wire.taskmanagers]

    def task_manager_metrics(self, names: Iterable[str], aggregations: str = "max") -> dict[str, AggregatedMetric]:
        return aggregated_from_wire(self._fetch(AggregatedMetricsWire, "GET", "/taskmanagers/metrics",
                                                params={"get": ",".join(names), "agg": aggregations}))

    # --- jobs ------------------------------------------------------------------------------------
    def jobs(self) -> list[JobSummary]:
        return [JobSummary.from_wire(j) for j in self._fetch(JobsOverviewWire, "GET", "/jobs/overview").jobs]

    def running_jobs(self) -> list[JobSummary]:
        return [j for j in self.jobs() if j.state not in TERMINAL_JOB_STATES]

    def job(self, job_id: str) -> JobDetails:
        path = self._job_path(job_id)
        wire = self._fetch(JobDetailsWire, "GET", path, what=f"job {job_id}")
        return self._convert(f"GET {self.base_url}{path}", lambda: JobDetails.from_wire(wire))

    def job_config(self, job_id: str) -> list[dict[str, str]]:
        """``GET /jobs/:jid/jobmanager/config``: the job's own configuration, Flink's list of ``{key, value}``
        (where ``job.autoscaler.*`` / ``flinkscale.*`` settings of the job are read from)."""
        path = f"{self._job_path(job_id)}/jobmanager/config"
        return [{"key": e.key, "value": e.value}
                for e in self._fetch(ConfigWire, "GET", path, what=f"job {job_id}").root]

    def scheduler_type(self, job_id: str) -> str | None:
        """The job's ``schedulerType`` (Flink 2.x: "Adaptive", "Default", ...); None when Flink does not say."""
        raw = self._request("GET", self._job_path(job_id), what=f"job {job_id}")
        value = raw.get("schedulerType") if isinstance(raw, dict) else None
        return str(value) if value else None

    def job_exceptions(self, job_id: str) -> list[str]:
        data = self._fetch(JobExceptionsWire, "GET", f"{self._job_path(job_id)}/exceptions", what=f"job {job_id}")
        return [f"{e.exception_name}: {first_line(e.stacktrace)}" for e in data.exception_history.entries]

    def vertex_detail(self, job_id: str, vertex_id: str) -> tuple[SubtaskDetail, ...]:
        """``GET /jobs/:jid/vertices/:vid``: per-subtask cumulative counters (read-records, accumulated-busy-time)."""
        wire = self._fetch(VertexDetailWire, "GET", f"{self._job_path(job_id)}/vertices/{vertex_id}",
                           what=f"vertex {vertex_id} of job {job_id}")
        return tuple(SubtaskDetail(s.subtask, s.metrics, s.attempt, s.start_time) for s in wire.subtasks)

    def vertex_metrics(self, job_id: str, vertex_id: str, names: Iterable[str],
                       aggregations: str = "min,max,avg,sum,skew") -> dict[str, AggregatedMetric]:
        """Metrics aggregated over all subtasks of a vertex: one call per vertex, whatever its parallelism."""
        path = f"{self._job_path(job_id)}/vertices/{vertex_id}/subtasks/metrics"
        return aggregated_from_wire(self._fetch(AggregatedMetricsWire, "GET", path,
                                                params={"get": ",".join(names), "agg": aggregations},
                                                what=f"vertex {vertex_id} of job {job_id}"))

    def vertex_metric_names(self, job_id: str, vertex_id: str) -> list[str]:
        path = f"{self._job_path(job_id)}/vertices/{vertex_id}/subtasks/metrics"
        wire = self._fetch(MetricValuesWire, "GET", path, what=f"vertex {vertex_id} of job {job_id}")
        return [m.id for m in wire.root]

    def subtask_metrics(self, job_id: str, vertex_id: str, subtask: int,
                        names: Iterable[str]) -> dict[str, float | None]:
        path = f"{self._job_path(job_id)}/vertices/{vertex_id}/subtasks/{subtask}/metrics"
        wire = self._fetch(MetricValuesWire, "GET", path, params={"get": ",".join(names)},
                           what=f"subtask {subtask} of vertex {vertex_id}")
        return {m.id: metric_value(m.value) for m in wire.root}

    def warm_metrics(self, job_id: str, vertex_ids: Iterable[str], name: str = "numRecordsInPerSecond") -> None:
        for vid in vertex_ids:
            self.vertex_metrics(job_id, vid, [name], "sum")

    def checkpoints(self, job_id: str) -> CheckpointStatistics:
        wire = self._fetch(CheckpointStatisticsWire, "GET", f"{self._job_path(job_id)}/checkpoints",
                           what=f"job {job_id}")
        return CheckpointStatistics.from_wire(wire)

    def checkpoint_config(self, job_id: str) -> CheckpointConfig:
        return CheckpointConfig.from_wire(self._fetch(CheckpointConfigWire, "GET",
                                                      f"{self._job_path(job_id)}/checkpoints/config",
                                                      what=f"job {job_id}"))

    # --- rescaling -------------------------------------------------------------------------------
    def rescale_config(self, job_id: str) -> RescaleConfig | None:
        """``GET /jobs/:jid/rescales/config`` (Flink 2.3): the adaptive scheduler's settings for the job; None
        when the cluster does not have the endpoint (older Flink: 404)."""
        try:
            wire = self._fetch(RescaleConfigWire, "GET", f"{self._job_path(job_id)}/rescales/config",
                               what=f"the rescale config of job {job_id}")
        except NotFoundError:
            return None
        return RescaleConfig.from_wire(wire)

    def rescale_history(self, job_id: str) -> list[RescaleHistoryEntry] | None:
        """``GET /jobs/:jid/rescales/history`` (Flink 2.3; newest first, empty while
        ``web.adaptive-scheduler.rescale-history.size`` is 0); None when the cluster does not have it (404)."""
        try:
            wire = self._fetch(RescaleHistoryWire, "GET", f"{self._job_path(job_id)}/rescales/history",
                               what=f"the rescale history of job {job_id}")
        except NotFoundError:
            return None
        return [RescaleHistoryEntry.from_wire(e) for e in wire.root]

    def resource_requirements(self, job_id: str) -> dict[str, tuple[int, int]]:
        wire = self._fetch(ResourceRequirementsWire, "GET", f"{self._job_path(job_id)}/resource-requirements",
                           what=f"job {job_id}")
        return {vid: (req.parallelism.lower_bound, req.parallelism.upper_bound) for vid, req in wire.root.items()}

    def set_resource_requirements(self, job_id: str, bounds: Mapping[str, tuple[int, int]]) -> None:
        """Rescale in place (adaptive scheduler): ``{vertex_id: (lower, upper)}`` for every vertex."""
        self._request("PUT", f"{self._job_path(job_id)}/resource-requirements",
                      json=resource_requirements_body(bounds), what=f"job {job_id}")

    # --- stopping --------------------------------------------------------------------------------
    def trigger_stop_with_savepoint(self, job_id: str, target_directory: str | None = None,
                                    drain: bool = False) -> str:
        return self._request_savepoint(job_id, "stop", {"drain": drain}, "targetDirectory", target_directory)

    def _require_running(self, job_id: str) -> None:
        """Flink accepts a savepoint request for any job id and fails it later; say clearly why up front."""
        state = self.job(job_id).state
        if state != "RUNNING":
            raise RuntimeFailure(f"job {job_id} is {state}; only a RUNNING job can take a savepoint")

    def trigger_savepoint(self, job_id: str, target_directory: str | None = None) -> str:
        return self._request_savepoint(job_id, "savepoints", {"cancel-job": False}, "target-directory",
                                       target_directory)

    def _request_savepoint(self, job_id: str, action: str, body: Mapping[str, Any], directory_key: str,
                           target_directory: str | None) -> str:
        """POST ``/jobs/:jid/<action>`` for a savepoint in the canonical format; the request id. Flink names
        the directory ``targetDirectory`` when stopping and ``target-directory`` for a plain savepoint."""
        self._require_running(job_id)
        payload: dict[str, Any] = {**body, "formatType": "CANONICAL"}
        if target_directory:
            payload[directory_key] = target_directory
        return self._fetch(TriggerWire, "POST", f"{self._job_path(job_id)}/{action}", json=payload,
                           what=f"job {job_id}").request_id

    def savepoint_status(self, job_id: str, request_id: str) -> tuple[str, str | None, str | None]:
        """``(status, location, failure)``; status is IN_PROGRESS or COMPLETED (failure set when it failed)."""
        data = self._fetch(SavepointStatusWire, "GET", f"{self._job_path(job_id)}/savepoints/{request_id}",
                           what=f"savepoint request {request_id}")
        failure = data.operation.failure_cause if data.operation else None
        if isinstance(failure, Mapping):
            failure = failure.get("stack-trace", failure)
        failure_text = first_line(str(failure)) if failure else None
        return data.status.id, data.operation.location if data.operation else None, failure_text

    def wait_savepoint(self, job_id: str, request_id: str, timeout: float = 300.0, poll: float = 0.5) -> str:
        """Wait for a savepoint to complete; its location, or ``RuntimeFailure`` naming why it did not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, location, failure = self.savepoint_status(job_id, request_id)
            if status == "COMPLETED":
                if failure or not location:
                    raise RuntimeFailure(f"savepoint of job {job_id} failed: {failure}; the job keeps running")
                return location
            self._sleep(poll)
        raise RuntimeFailure(f"savepoint of job {job_id} did not complete within {timeout:.0f}s")

    def cancel(self, job_id: str) -> None:
        """Cancel without a savepoint. Only for jobs whose state does not matter (tests, stateless loaders)."""
        self._request("PATCH", self._job_path(job_id), params={"mode": "cancel"}, what=f"job {job_id}")

    def wait_job_state(self, job_id: str, states: Iterable[str], timeout: float = 120.0, poll: float = 0.5) -> str:
        wanted = set(states)
        deadline = time.monotonic() + timeout
        state = "?"
        while time.monotonic() < deadline:
            state = self.job(job_id).state
            if state in wanted:
                return state
            self._sleep(poll)
        raise RuntimeFailure(f"job {job_id} stayed {state}, not {'/'.join(sorted(wanted))}, for {timeout:.0f}s")

    def wait_all_running(self, job_id: str, timeout: float = 120.0, poll: float = 0.5) -> JobDetails:
        """Until the job and every one of its subtasks run; a job that ends first is an error with its cause."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job.all_running:
                return job
            if job.state in ("FAILED", "CANCELED", "FINISHED"):
                causes = self.job_exceptions(job_id)[:1]
                raise RuntimeFailure(f"job {job_id} is {job.state}" + (f": {causes[0]}" if causes else ""))
            self._sleep(poll)
        raise RuntimeFailure(f"job {job_id} was not running within {timeout:.0f}s")

    # --- JAR submission --------------------------------------------------------------------------
    def upload_jar(self, jar: Path) -> str:
        with jar.open("rb") as handle:
            data = self._fetch(JarUploadWire, "POST", "/jars/upload",
                               files={"jarfile": (jar.name, handle, "application/x-java-archive")})
        return data.filename.rsplit("/", 1)[-1]

    def run_jar(self, jar_id: str, *, entry_class: str | None = None, program_args: list[str] | None = None,
                parallelism: int | None = None, savepoint_path: str | None = None) -> str:
        body: dict[str, Any] = {}
        if entry_class:
            body["entryClass"] = entry_class
        if program_args:
            body["programArgsList"] = program_args
        if parallelism:
            body["parallelism"] = parallelism
        if savepoint_path:
            body["savepointPath"] = savepoint_path
        return self._fetch(JarRunWire, "POST", f"/jars/{jar_id}/run", json=body, what=f"jar {jar_id}").jobid


def _flink_error(text: str) -> str:
    """Flink's own error line from an error answer: ``errors[0]`` of ``{"errors": [...]}``, else the text."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        data = None
    errors = data.get("errors") if isinstance(data, dict) else None
    first = str(errors[0]) if isinstance(errors, list) and errors else text[:200]
    lines = [line.strip() for line in first.splitlines() if line.strip()]
    # Flink puts a Java stack trace in errors[0]; its first "Caused by"/exception line is the useful part.
    useful = [line for line in lines if not line.startswith("at ")]
    return redact(" | ".join(useful[:2])[:300]) or "(no error text)"


def _tls_problem(exc: BaseException) -> str | None:
    """A one-line explanation when ``exc`` is a TLS failure (certificate or handshake), else None."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    text = " ".join(str(e) for e in chain)
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain) or "CERTIFICATE_VERIFY_FAILED" in text:
        reason = next((e.verify_message for e in chain if isinstance(e, ssl.SSLCertVerificationError)
                       and e.verify_message), None)
        if reason is None:
            found = re.search(r"certificate verify failed: ([^(]+)", text)
            reason = found.group(1).strip() if found else "unknown reason"
        return (f"TLS certificate verify failed ({reason}); pass the cluster's CA with --rest-ca FILE, "
                "or --rest-insecure to skip verification")
    if any(isinstance(e, ssl.SSLError) for e in chain) or "[SSL" in text:
        found = re.search(r"\[SSL[^\]]*\] ([^(]+)", text)
        return f"TLS handshake failed ({found.group(1).strip() if found else 'unknown reason'}); is it an https URL?"
    return None
