"""The dashboard of the multi-job daemon: every job of its state store listed, one job drilled into, through
FastAPI's TestClient; the store is written with the daemon's own store calls, so the rows are the real ones."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from flinkscale.app.multijob import job_statuses
from flinkscale.cli import main
from flinkscale.core.policy.base import RescaleRecord
from flinkscale.report.dashboard import create_jobs_app
from flinkscale.store import CycleEntry, StateStore

from .conftest import WINDOW, clickstream_snapshot, scale_decision

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

A, B = "a" * 32, "b" * 32
T0 = 1_700_000_000.0


def describe(store: StateStore) -> list[dict[str, Any]]:
    return [s.to_dict() for s in job_statuses(store)]


def snap(job_id: str, name: str, t: float, parallelism: int, **kw: Any) -> Any:
    return replace(clickstream_snapshot(t, parallelism=parallelism, **kw), job_id=job_id, job_name=name)


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return tmp_path / "autoscale.db"


@pytest.fixture()
def store(db: Path) -> Iterator[StateStore]:
    with StateStore.open(f"sqlite:///{db}", clock=lambda: T0 + 600) as opened:
        yield opened


@pytest.fixture()
def client(store: StateStore) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(create_jobs_app(store, describe)) as test_client:
        yield test_client


def two_jobs(store: StateStore) -> None:
    """Job A scaled its window 1 -> 2 (an intent carried out, the rescale measured); job B holds."""
    store.upsert_job(A, "clickstream", T0)
    store.upsert_job(B, "sql-orders", T0)
    store.record_cycle([CycleEntry(A, snap(A, "clickstream", T0, 1, busy_ms=1000.0), None, 100.0),
                        CycleEntry(B, snap(B, "sql-orders", T0, 3), None, 50.0)])
    decision = scale_decision(T0 + 15, 1, 2, "utilization 1.00 above target 0.70")
    hold = scale_decision(T0 + 15, 3, 3, "within target")
    store.record_cycle([CycleEntry(A, snap(A, "clickstream", T0 + 15, 1, busy_ms=1000.0), decision, 100.0),
                        CycleEntry(B, snap(B, "sql-orders", T0 + 15, 3), hold, 50.0)])
    intent = store.record_intent(A, {WINDOW: 1}, {WINDOW: 2})
    store.finish_intent(intent.intent_id, "done")
    store.add_rescale(A, RescaleRecord(T0 + 16, T0 + 30, {WINDOW: 1}, {WINDOW: 2}))
    store.record_cycle([CycleEntry(A, snap(A, "clickstream", T0 + 45, 2, busy_ms=520.0), None, 100.0)])


def test_the_job_list_shows_every_job_with_phase_parallelism_and_last_decision(client: Any,
                                                                                store: StateStore) -> None:
    assert client.get("/api/jobs").json()["jobs"] == []
    two_jobs(store)
    answer = client.get("/api/jobs").json()
    assert answer["problems"] == []
    jobs = {j["job_id"]: j for j in answer["jobs"]}
    assert set(jobs) == {A, B}
    a, b = jobs[A], jobs[B]
    assert a["job_name"] == "clickstream" and b["job_name"] == "sql-orders"
    assert a["parallelism"][WINDOW] == 2 and a["total_parallelism"] == 4  # source 1, window 2, sink 1
    assert b["parallelism"][WINDOW] == 3
    assert a["last_decision"]["rescale"] is True and "1 -> 2" in a["last_decision"]["summary"]
    assert b["last_decision"]["summary"] == "no change"
    assert b["phase"] == "holding" and a["phase"] and a["learned_restart_seconds"] == pytest.approx(14.0)
    assert not a["gone"]
    store.mark_gone(B, T0 + 60)
    assert {j["job_id"]: j["gone"] for j in client.get("/api/jobs").json()["jobs"]} == {A: False, B: True}


def test_a_jobs_page_has_its_charts_decisions_and_rescales(client: Any, store: StateStore) -> None:
    two_jobs(store)
    state = client.get(f"/api/jobs/{A}/state").json()
    assert state["job"]["job_id"] == A and state["job"]["job_name"] == "clickstream"
    assert state["counts"] == {"snapshots": 3, "decisions": 1, "events": 3}
    window = next(n for n in state["graph"]["nodes"] if n["id"] == WINDOW)
    assert (window["parallelism"], window["utilization"]) == (2, pytest.approx(0.52))
    assert state["timeline"]["vertices"][WINDOW]["parallelism"] == [1, 1, 2]
    (decision,) = state["decisions"]
    assert decision["outcome"] == "applied" and decision["rescale_seconds"] == pytest.approx(14.0)
    assert sorted(e["kind"] for e in state["events"]) == ["intent-done", "rescale-intent", "rescaled"]
    times = [e["timestamp"] for e in state["events"]]
    assert times == sorted(times, reverse=True)  # newest first, like a run's events
    assert any("in 14.0s" in e["message"] for e in state["events"])
    other = client.get(f"/api/jobs/{B}/state").json()
    assert other["job"]["job_name"] == "sql-orders" and other["decisions"][0]["outcome"] == "no change"


def test_a_jobs_page_answers_unchanged_until_the_store_has_more(client: Any, store: StateStore) -> None:
    two_jobs(store)
    state = client.get(f"/api/jobs/{A}/state").json()
    version = state["version"]
    assert client.get(f"/api/jobs/{A}/state", params={"version": version}).json() == {
        "version": version, "unchanged": True}
    store.record_cycle([CycleEntry(A, snap(A, "clickstream", T0 + 60, 2, busy_ms=500.0), None, 100.0)])
    newer = client.get(f"/api/jobs/{A}/state", params={"version": version}).json()
    assert newer["version"] != version and newer["counts"]["snapshots"] == 4


def test_pruned_rows_leave_the_page(client: Any, store: StateStore) -> None:
    two_jobs(store)
    assert client.get(f"/api/jobs/{A}/state").json()["counts"]["snapshots"] == 3
    with sqlite3.connect(store.url.removeprefix("sqlite:///")) as raw:
        raw.execute("delete from snapshots where job_id = ? and timestamp < ?", (A, T0 + 40))
    assert client.get(f"/api/jobs/{A}/state").json()["timeline"]["vertices"][WINDOW]["parallelism"] == [2]


def test_an_unknown_job_is_a_404_with_one_line(client: Any, store: StateStore) -> None:
    two_jobs(store)
    for path in (f"/api/jobs/{'c' * 32}/state", f"/job/{'c' * 32}"):
        answer = client.get(path)
        assert answer.status_code == 404
        assert "no job 'ccc" in answer.json()["detail"] and "\n" not in answer.json()["detail"]


def test_the_pages_list_then_drill_into_one_job(client: Any, store: StateStore) -> None:
    two_jobs(store)
    index = client.get("/").text
    assert 'src="/static/poll.js"' in index and 'src="/static/jobs.js"' in index and "<table id=\"jobs\"" in index
    page = client.get(f"/job/{A}").text
    assert f'data-api="/api/jobs/{A}/state"' in page and 'href="/">all jobs</a>' in page
    assert client.get("/static/jobs.js").status_code == 200 and client.get("/static/poll.js").status_code == 200
    assert "STATE_URL" in client.get("/static/dashboard.js").text


def test_a_damaged_row_is_a_problem_on_its_page_and_the_rest_is_shown(client: Any, store: StateStore) -> None:
    two_jobs(store)
    with sqlite3.connect(store.url.removeprefix("sqlite:///")) as raw:
        raw.execute("insert into snapshots (job_id, timestamp, payload) values (?, ?, ?)",
                    (A, T0 + 50, '{"timestamp": 1, "vertices": [{"id": 3'))
        raw.execute("insert into decisions (job_id, timestamp, payload) values (?, ?, ?)",
                    (A, T0 + 50, '{"timestamp": "soon", "policy": "x"}'))
        raw.execute("insert into snapshots (job_id, timestamp, payload) values (?, ?, ?)",
                    (B, T0 + 50, "http://user:pw-secret-9@host is not json"))
    state = client.get(f"/api/jobs/{A}/state").json()
    assert state["counts"]["snapshots"] == 3 and state["counts"]["decisions"] == 1  # the good rows stay
    problems = state["problems"]
    assert len(problems) == 2
    assert any(p.startswith("job clickstream: snapshots row ") and "not valid JSON" in p for p in problems)
    assert any(p.startswith("job clickstream: decisions row ") for p in problems)
    assert client.get(f"/api/jobs/{A}/state").json()["problems"] == problems  # reported once, not again
    listing = client.get("/api/jobs").json()
    assert len(listing["jobs"]) == 2  # the list still lists both
    assert any("sql-orders" in p for p in listing["problems"])
    assert "pw-secret-9" not in str(listing) + str(client.get(f"/api/jobs/{B}/state").json())


def test_the_command_without_a_store_or_with_both_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                                              ) -> None:
    assert main(["dashboard", "--state-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--state" in err and str(tmp_path / "autoscale.db") in err
    run = tmp_path / "run"
    run.mkdir()
    assert main(["dashboard", str(run), "--state", f"sqlite:///{tmp_path / 's.db'}"]) == 2
    assert "not both" in capsys.readouterr().err
