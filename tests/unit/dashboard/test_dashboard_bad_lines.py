"""One bad line in a run directory is a reported problem of that line; every /api/* answer stays 200 and the
good records around it stay on the page (the README's promise; a bad snapshot once made every answer 500)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from flinkscale.report.dashboard import create_app

from .conftest import FakeRunWriter, clickstream_snapshot, scale_decision

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

ENDPOINTS = ("/api/state", "/api/graph", "/api/timeline", "/api/decisions", "/api/events")


def _snapshot(edit: Callable[[dict[str, Any]], object]) -> str:
    data = clickstream_snapshot(110.0).to_dict()
    edit(data)
    return json.dumps(data)


def _vertex(key: str, value: object) -> Callable[[dict[str, Any]], object]:
    return lambda d: d["vertices"][1].__setitem__(key, value)


def _metric(key: str, value: object) -> Callable[[dict[str, Any]], object]:
    return lambda d: d["vertices"][1]["metrics"].__setitem__(key, value)


BAD_SNAPSHOTS: dict[str, str] = {
    "not-json": "{timestamp: 1",
    "deep-nesting": "[" * 50_000 + "]" * 50_000,
    "a-list": "[1, 2, 3]",
    "null": "null",
    "string-parallelism": _snapshot(_vertex("parallelism", "2")),
    "huge-parallelism": _snapshot(_vertex("parallelism", 10**400)),
    "vertices-number": _snapshot(lambda d: d.__setitem__("vertices", 5)),
    "edge-to-unknown-vertex": _snapshot(lambda d: d["edges"].append(
        {"source": "src0", "target": "nowhere", "ship_strategy": "HASH"})),
    "cycle": _snapshot(lambda d: d["edges"].append({"source": "snk2", "target": "src0", "ship_strategy": "FORWARD"})),
    "string-timestamp": _snapshot(lambda d: d.__setitem__("timestamp", "yesterday")),
    "huge-timestamp": _snapshot(lambda d: d.__setitem__("timestamp", 10**400)),
    "nan-timestamp": _snapshot(lambda d: d.__setitem__("timestamp", float("nan"))),
    "string-busy-time": _snapshot(_metric("busy_time_ms_per_second_max", "busy")),
    "list-metrics": _snapshot(_vertex("metrics", [1, 2])),
    "duplicate-vertex": _snapshot(lambda d: d["vertices"].append(d["vertices"][0])),
}
BAD_EVENTS = {
    "nan-timestamp": '{"timestamp": NaN, "kind": "x", "message": "y"}',
    "huge-timestamp": '{"timestamp": 1' + "0" * 400 + ', "kind": "x"}',
    "string-timestamp": '{"timestamp": "noon", "kind": "x"}',
}
BAD_DECISIONS = {
    "vertices-string": json.dumps({"timestamp": 1.0, "decision": {**scale_decision(1.0, 1, 2, "r").to_dict(),
                                                                  "vertices": "all"}}),
    "infinite-timestamp": '{"timestamp": Infinity, "decision": {}}',
}


@pytest.fixture()
def client(writer: FakeRunWriter) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(create_app(writer.run_dir), raise_server_exceptions=False) as test_client:
        yield test_client


def _all_answer(client: Any) -> dict[str, Any]:
    answers = {path: client.get(path) for path in ENDPOINTS}
    assert {path: a.status_code for path, a in answers.items()} == dict.fromkeys(ENDPOINTS, 200)
    state: dict[str, Any] = answers["/api/state"].json()
    return state


@pytest.mark.parametrize("name", list(BAD_SNAPSHOTS))
def test_a_bad_snapshot_line_is_a_problem_and_the_good_ones_stay(client: Any, writer: FakeRunWriter,
                                                                 name: str) -> None:
    writer.snapshot(clickstream_snapshot(100.0))
    writer.raw("snapshots.jsonl", BAD_SNAPSHOTS[name] + "\n")
    writer.snapshot(clickstream_snapshot(120.0, parallelism=2))
    for _ in range(2):  # and again: the problem does not come back as a failure on the next poll
        state = _all_answer(client)
        assert state["counts"]["snapshots"] == 2
        assert len(state["problems"]) == 1 and state["problems"][0].startswith("snapshots.jsonl:2: ")
        assert len(state["problems"][0]) < 600
    assert state["timeline"]["timestamps"] == [100.0, 120.0]


@pytest.mark.parametrize(("file", "text"), [*(("events.jsonl", t) for t in BAD_EVENTS.values()),
                                            *(("decisions.jsonl", t) for t in BAD_DECISIONS.values())],
                         ids=[*(f"event-{n}" for n in BAD_EVENTS), *(f"decision-{n}" for n in BAD_DECISIONS)])
def test_bad_event_and_decision_lines_are_problems(client: Any, writer: FakeRunWriter, file: str, text: str) -> None:
    writer.event(100.0, "phase", "good")
    writer.raw(file, text + "\n")
    state = _all_answer(client)
    assert state["counts"]["events"] == 1 and [p.split(":")[0] for p in state["problems"]] == [file]
    json.dumps(state, allow_nan=False)  # what the page parses is strict JSON


def test_a_line_that_is_not_utf8_is_a_problem(client: Any, writer: FakeRunWriter) -> None:
    writer.snapshot(clickstream_snapshot(100.0))
    with (writer.run_dir / "snapshots.jsonl").open("ab") as stream:
        stream.write(b"\xff\xfe{\x00}\n")
    state = _all_answer(client)
    assert state["counts"]["snapshots"] == 1 and len(state["problems"]) == 1
