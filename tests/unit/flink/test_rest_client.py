"""The REST client against responses recorded from the real embedded cluster (tests/fixtures/rest/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from flinkscale.core.errors import EndpointError, NotFoundError, RuntimeFailure
from flinkscale.core.snapshot import ShipStrategy
from flinkscale.flink.rest import FlinkRestClient
from flinkscale.flink.testing import ReplayTransport

RECORDED = Path(__file__).parents[2] / "fixtures" / "rest" / "clickstream_p1"
BASE = "http://flink.test:8081"


def _exchanges(edit: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    exchanges = []
    for path in sorted(RECORDED.glob("*.json")):
        record = json.loads(path.read_text())
        if edit and path.stem in edit:
            record["body"] = edit[path.stem](record["body"])
        exchanges.append({"method": record["method"], "path": record["path"],
                          "query": urlencode(record.get("params") or {}), "status": record["status"],
                          "body": record["body"]})
    return exchanges


def _recorded(name: str) -> dict[str, Any]:
    return json.loads((RECORDED / f"{name}.json").read_text())  # type: ignore[no-any-return]


def _client(edit: dict[str, Any] | None = None, **kwargs: Any) -> FlinkRestClient:
    return FlinkRestClient(BASE, transport=ReplayTransport(_exchanges(edit)), sleep=lambda _: None, **kwargs)


JOB = _recorded("job")["body"]["jid"]
SOURCE, AGG = (v["id"] for v in _recorded("job")["body"]["vertices"])
METRICS = _recorded("vertex0_metrics")["params"]["get"].split(",")


def test_overview_and_task_managers() -> None:
    client = _client()
    assert client.overview().flink_version == "2.3.0"
    tms = client.task_managers()
    assert tms and all(tm.slots >= 1 for tm in tms)
    assert tms[0].memory["taskHeap"] > 0


def test_job_graph_has_current_parallelism_and_a_keyed_edge() -> None:
    job = _client().job(JOB)
    assert [v.id for v in job.vertices] == [SOURCE, AGG]
    assert job.max_parallelism == 120 or all(v.max_parallelism == 120 for v in job.vertices)
    assert [(e.source, e.target, e.ship_strategy) for e in job.edges] == [(SOURCE, AGG, ShipStrategy.HASH)]
    assert job.all_running


def test_aggregated_metrics_turn_the_string_nan_into_none() -> None:
    def nan_busy(body: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**m, "max": "NaN", "avg": "NaN"} if m["id"] == "busyTimeMsPerSecond" else m for m in body]

    metrics = _client({"vertex0_metrics": nan_busy}).vertex_metrics(JOB, SOURCE, METRICS)
    assert metrics["busyTimeMsPerSecond"].max is None
    assert metrics["busyTimeMsPerSecond"].min is not None  # only the NaN parts are unknown
    assert metrics["numRecordsInPerSecond"].sum is not None and metrics["numRecordsInPerSecond"].sum > 0


def test_a_metric_flink_does_not_report_is_absent_not_zero() -> None:
    def drop_idle(body: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [m for m in body if m["id"] != "idleTimeMsPerSecond"]

    metrics = _client({"vertex0_metrics": drop_idle}).vertex_metrics(JOB, SOURCE, METRICS)
    assert "idleTimeMsPerSecond" not in metrics


def test_unknown_job_is_not_found_and_names_the_endpoint() -> None:
    with pytest.raises(NotFoundError) as info:
        _client().job("00000000000000000000000000000000")
    assert "/jobs/00000000000000000000000000000000" in str(info.value)


def test_malformed_job_id_is_rejected_without_a_request() -> None:
    transport = ReplayTransport([])
    with pytest.raises(NotFoundError, match="32 hex characters"):
        FlinkRestClient(BASE, transport=transport).job("my-job")
    assert transport.requests == []


def test_checkpoint_statistics_and_config() -> None:
    client = _client()
    stats = client.checkpoints(JOB)
    assert stats.completed > 0 and stats.latest_completed is not None
    assert stats.latest_completed.external_path is not None
    assert client.checkpoint_config(JOB).mode == "exactly_once"


def test_resource_requirements_round_trip_to_the_recorded_put_body() -> None:
    client = _client()
    bounds = client.resource_requirements(JOB)
    assert bounds == {SOURCE: (1, 1), AGG: (1, 1)}
    put = _recorded("put_resource_requirements")
    seen: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(put["status"], json=put["body"])

    FlinkRestClient(BASE, transport=httpx.MockTransport(answer)).set_resource_requirements(
        JOB, {**bounds, AGG: (1, 2)})
    assert seen == [put["request"]]


def test_savepoint_location_from_the_recorded_status() -> None:
    status = _recorded("savepoint_status")
    path = status["path"]

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=status["body"])

    client = FlinkRestClient(BASE, transport=httpx.MockTransport(answer))
    job_id, request_id = path.split("/")[2], path.split("/")[-1]
    assert client.wait_savepoint(job_id, request_id).startswith("file:")


def test_failed_savepoint_raises_and_says_the_job_keeps_running() -> None:
    body = {"status": {"id": "COMPLETED"}, "operation": {"failure-cause": {"stack-trace": "CheckpointException: x"}}}
    client = FlinkRestClient(BASE, transport=httpx.MockTransport(lambda r: httpx.Response(200, json=body)))
    with pytest.raises(RuntimeFailure, match="keeps running"):
        client.wait_savepoint(JOB, "r1")


class _Flaky(httpx.BaseTransport):
    def __init__(self, failures: int, error: Exception | int) -> None:
        self.failures = failures
        self.error = error
        self.attempts = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts += 1
        if self.attempts <= self.failures:
            if isinstance(self.error, int):
                return httpx.Response(self.error, text="busy")
            raise self.error
        return httpx.Response(200, json=_recorded("overview")["body"])


@pytest.mark.parametrize("error", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), 503])
def test_reads_retry_with_exponential_backoff(error: Exception | int) -> None:
    sleeps: list[float] = []
    transport = _Flaky(2, error)
    client = FlinkRestClient(BASE, transport=transport, retries=3, backoff_seconds=0.5, sleep=sleeps.append)
    assert client.overview().flink_version == "2.3.0"
    assert transport.attempts == 3
    assert sleeps == [0.5, 1.0]


def test_reads_give_up_after_the_last_retry_naming_the_endpoint() -> None:
    client = FlinkRestClient(BASE, transport=_Flaky(99, httpx.ConnectError("refused")), retries=2,
                             sleep=lambda _: None)
    with pytest.raises(EndpointError) as info:
        client.overview()
    assert str(info.value).startswith(f"GET {BASE}/overview: cannot connect")
    assert "after 3 attempt(s)" in str(info.value)


def test_writes_are_sent_once() -> None:
    transport = _Flaky(99, 503)
    client = FlinkRestClient(BASE, transport=transport, retries=5, sleep=lambda _: None)
    with pytest.raises(EndpointError):
        client.set_resource_requirements(JOB, {SOURCE: (1, 2)})
    assert transport.attempts == 1


def test_auth_headers_are_sent_but_never_shown_in_errors() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization", ""))
        return httpx.Response(401, json={"errors": ["Unauthorized"]})

    client = FlinkRestClient(BASE, transport=httpx.MockTransport(answer), headers={"Authorization": "Bearer s3cret"})
    with pytest.raises(EndpointError) as info:
        client.overview()
    assert seen == ["Bearer s3cret"]
    assert "s3cret" not in str(info.value) and "401" in str(info.value)


@pytest.mark.parametrize(("call", "path", "body"), [
    (lambda c: c.trigger_stop_with_savepoint(JOB, "file:///sp", drain=False), "stop",
     {"drain": False, "formatType": "CANONICAL", "targetDirectory": "file:///sp"}),
    (lambda c: c.trigger_savepoint(JOB, "file:///sp"), "savepoints",
     {"cancel-job": False, "formatType": "CANONICAL", "target-directory": "file:///sp"}),
    (lambda c: c.trigger_savepoint(JOB), "savepoints", {"cancel-job": False, "formatType": "CANONICAL"}),
])
def test_savepoint_requests_use_flinks_spelling_for_each_endpoint(call: Any, path: str, body: dict[str, Any]) -> None:
    posts: list[tuple[str, dict[str, Any]]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":  # the job must be RUNNING first
            return httpx.Response(200, json={"jid": JOB, "name": "j", "state": "RUNNING", "vertices": [],
                                             "plan": {"nodes": []}})
        posts.append((request.url.path, json.loads(request.content)))
        return httpx.Response(202, json={"request-id": "r-1"})

    assert call(FlinkRestClient(BASE, transport=httpx.MockTransport(answer))) == "r-1"
    assert posts == [(f"/jobs/{JOB}/{path}", body)]
