"""``FlinkRestClient``: a small, typed client for the parts of Flink's REST API that flinkscale needs.

Built on httpx so that tests can hand it an ``httpx.MockTransport`` that replays responses recorded from the
real embedded cluster (tests/fixtures/rest/), and so TLS and proxy options are httpx's own.

Behaviour users rely on:
- Idempotent requests (GET) are retried with exponential backoff on connection errors, timeouts and 5xx
  answers; a PUT/POST/PATCH is sent once. After the last try the error names the endpoint, never a header
  value (auth tokens travel in ``headers`` and are never logged or put in messages).
- 404 becomes ``NotFoundError`` naming what was missing (a job, a savepoint request); other 4xx answers become
  ``EndpointError`` with Flink's own first error line.
- Metric reads go through ``models``: the string "NaN" and missing metrics become ``None``.
- The REST metric store refreshes lazily (``metrics.fetcher.update-interval``), so the first read after a quiet
  spell can be stale; ``warm_metrics`` touches a job's metrics once so that the next read is fresh.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

from flinkscale.core.errors import EndpointError, NotFoundError, RuntimeFailure
from flinkscale.flink.models import (
    AggregatedMetric,
    CheckpointConfig,
    CheckpointStatistics,
    ClusterOverview,
    JobDetails,
    JobSummary,
    TaskManagerInfo,
    parse_aggregated,
    parse_metric_values,
    parse_resource_requirements,
    resource_requirements_body,
)

_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
TERMINAL_JOB_STATES = frozenset({"FINISHED", "CANCELED", "FAILED", "SUSPENDED"})


class FlinkRestClient:
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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self._sleep = sleep
        self.calls = 0  # requests sent, for "REST calls per sample" accounting
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=dict(headers or {}),
                                  verify=verify, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> FlinkRestClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- transport -------------------------------------------------------------------------------
    def _request(self, method: str, path: str, *, what: str = "", **kwargs: Any) -> Any:
        attempts = self.retries + 1 if method == "GET" else 1
        endpoint = f"{method} {self.base_url}{path}"
        last_error = ""
        for attempt in range(attempts):
            if attempt:
                self._sleep(self.backoff_seconds * 2 ** (attempt - 1))
            self.calls += 1
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TimeoutException:
                last_error = "timed out"
                continue
            except httpx.TransportError as exc:
                last_error = f"cannot connect ({type(exc).__name__})"
                continue
            if response.status_code >= 500 and "errors" not in response.text[:20]:
                last_error = f"HTTP {response.status_code}"
                continue
            return self._decode(response, endpoint, what)
        raise EndpointError(f"{last_error} after {attempts} attempt(s); is Flink running there?", endpoint=endpoint)

    @staticmethod
    def _decode(response: httpx.Response, endpoint: str, what: str) -> Any:
        if response.status_code == 404 or (response.status_code >= 400 and "not found" in response.text.lower()):
            raise NotFoundError(f"{what or 'resource'} not found", endpoint=endpoint, status=response.status_code)
        if response.status_code >= 400:
            raise EndpointError(f"HTTP {response.status_code}: {_flink_error(response)}", endpoint=endpoint,
                                status=response.status_code)
        if not response.content:
            return {}
        try:
            return response.json()
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
        return ClusterOverview.parse(self._request("GET", "/overview"))

    def config(self) -> dict[str, str]:
        return {str(e["key"]): str(e["value"]) for e in self._request("GET", "/jobmanager/config")}

    def task_managers(self) -> list[TaskManagerInfo]:
        return [TaskManagerInfo.parse(tm) for tm in self._request("GET", "/taskmanagers")["taskmanagers"]]

    def task_manager_metrics(self, names: Iterable[str], aggregations: str = "max") -> dict[str, AggregatedMetric]:
        data = self._request("GET", "/taskmanagers/metrics", params={"get": ",".join(names), "agg": aggregations})
        return parse_aggregated(data)

    # --- jobs ------------------------------------------------------------------------------------
    def jobs(self) -> list[JobSummary]:
        return [JobSummary.parse(j) for j in self._request("GET", "/jobs/overview")["jobs"]]

    def running_jobs(self) -> list[JobSummary]:
        return [j for j in self.jobs() if j.state not in TERMINAL_JOB_STATES]

    def job(self, job_id: str) -> JobDetails:
        return JobDetails.parse(self._request("GET", self._job_path(job_id), what=f"job {job_id}"))

    def scheduler_type(self, job_id: str) -> str | None:
        """The job's ``schedulerType`` (Flink 2.x: "Adaptive", "Default", ...); None when Flink does not say."""
        raw = self._request("GET", self._job_path(job_id), what=f"job {job_id}")
        value = raw.get("schedulerType") if isinstance(raw, dict) else None
        return str(value) if value else None

    def job_exceptions(self, job_id: str) -> list[str]:
        data = self._request("GET", f"{self._job_path(job_id)}/exceptions", what=f"job {job_id}")
        return [str(e.get("exceptionName", "")) + ": " + str(e.get("stacktrace", "")).split("\n")[0]
                for e in data.get("exceptionHistory", {}).get("entries", [])]

    def vertex_detail(self, job_id: str, vertex_id: str) -> Mapping[str, Any]:
        """``GET /jobs/:jid/vertices/:vid``: per-subtask cumulative counters (read-records, accumulated-busy-time)."""
        data: Mapping[str, Any] = self._request("GET", f"{self._job_path(job_id)}/vertices/{vertex_id}",
                                                what=f"vertex {vertex_id} of job {job_id}")
        return data

    def vertex_metrics(self, job_id: str, vertex_id: str, names: Iterable[str],
                       aggregations: str = "min,max,avg,sum,skew") -> dict[str, AggregatedMetric]:
        """Metrics aggregated over all subtasks of a vertex: one call per vertex, whatever its parallelism."""
        path = f"{self._job_path(job_id)}/vertices/{vertex_id}/subtasks/metrics"
        return parse_aggregated(self._request("GET", path, params={"get": ",".join(names), "agg": aggregations},
                                              what=f"vertex {vertex_id} of job {job_id}"))

    def vertex_metric_names(self, job_id: str, vertex_id: str) -> list[str]:
        path = f"{self._job_path(job_id)}/vertices/{vertex_id}/subtasks/metrics"
        return [str(m["id"]) for m in self._request("GET", path, what=f"vertex {vertex_id} of job {job_id}")]

    def subtask_metrics(self, job_id: str, vertex_id: str, subtask: int,
                        names: Iterable[str]) -> dict[str, float | None]:
        path = f"{self._job_path(job_id)}/vertices/{vertex_id}/subtasks/{subtask}/metrics"
        return parse_metric_values(self._request("GET", path, params={"get": ",".join(names)},
                                                 what=f"subtask {subtask} of vertex {vertex_id}"))

    def warm_metrics(self, job_id: str, vertex_ids: Iterable[str], name: str = "numRecordsInPerSecond") -> None:
        for vid in vertex_ids:
            self.vertex_metrics(job_id, vid, [name], "sum")

    def checkpoints(self, job_id: str) -> CheckpointStatistics:
        return CheckpointStatistics.parse(self._request("GET", f"{self._job_path(job_id)}/checkpoints",
                                                        what=f"job {job_id}"))

    def checkpoint_config(self, job_id: str) -> CheckpointConfig:
        return CheckpointConfig.parse(self._request("GET", f"{self._job_path(job_id)}/checkpoints/config",
                                                    what=f"job {job_id}"))

    # --- rescaling -------------------------------------------------------------------------------
    def resource_requirements(self, job_id: str) -> dict[str, tuple[int, int]]:
        return parse_resource_requirements(self._request(
            "GET", f"{self._job_path(job_id)}/resource-requirements", what=f"job {job_id}"))

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
        data = self._request("POST", f"{self._job_path(job_id)}/{action}", json=payload, what=f"job {job_id}")
        return str(data["request-id"])

    def savepoint_status(self, job_id: str, request_id: str) -> tuple[str, str | None, str | None]:
        """``(status, location, failure)``; status is IN_PROGRESS or COMPLETED (failure set when it failed)."""
        data = self._request("GET", f"{self._job_path(job_id)}/savepoints/{request_id}",
                             what=f"savepoint request {request_id}")
        operation = data.get("operation") or {}
        failure = operation.get("failure-cause")
        failure_text = str(failure.get("stack-trace", failure)).split("\n")[0] if failure else None
        return str(data["status"]["id"]), operation.get("location"), failure_text

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
            data = self._request("POST", "/jars/upload",
                                 files={"jarfile": (jar.name, handle, "application/x-java-archive")})
        return str(data["filename"]).rsplit("/", 1)[-1]

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
        return str(self._request("POST", f"/jars/{jar_id}/run", json=body, what=f"jar {jar_id}")["jobid"])


def _flink_error(response: httpx.Response) -> str:
    try:
        errors = response.json().get("errors") or []
    except ValueError:
        return response.text[:200]
    first = str(errors[0]) if errors else response.text[:200]
    lines = [line.strip() for line in first.splitlines() if line.strip()]
    # Flink puts a Java stack trace in errors[0]; its first "Caused by"/exception line is the useful part.
    useful = [line for line in lines if not line.startswith("at ")]
    return " | ".join(useful[:2])[:300]
