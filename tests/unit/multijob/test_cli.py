"""``flinkscale autoscale --all-jobs`` and ``autoscale status`` from the command line: bad input is one line
and exit 2, status shows each job's phase; the job's own configuration comes over REST (a mock transport
answering as Flink 2.3 does)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from flinkscale.app.multijob import DaemonConfig, MultiJobDaemon, job_statuses
from flinkscale.cli import main
from flinkscale.core.job_settings import parse_config_text
from flinkscale.core.policy.base import Decision, VertexDecision
from flinkscale.flink.rest import FlinkRestClient
from flinkscale.store import StateStore
from flinkscale.testing import FakeClock, ScriptedSampler

A, B = "a" * 32, "b" * 32


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    return err


def test_an_unreadable_store_is_one_line_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "state.db"
    bad.write_bytes(b"this is not a database" * 100)
    code = main(["autoscale", "status", "--state", f"sqlite:///{bad}"])
    assert code == 2
    assert str(bad) in one_line_error(capsys)


def test_status_of_a_store_that_is_not_there_is_refused_not_created(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "typo.db"
    code = main(["autoscale", "status", "--state", f"sqlite:///{missing}"])
    assert code == 2
    assert "--state: no state store at" in one_line_error(capsys)
    assert not missing.exists()


def test_a_newer_or_foreign_store_is_refused_for_the_daemon_too(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "state.db"
    with sqlite3.connect(bad) as db:
        db.execute("create table alembic_version (version_num varchar(32) primary key)")
        db.execute("insert into alembic_version values ('ffffffffffff')")
    code = main(["autoscale", "--all-jobs", "--state", f"sqlite:///{bad}", "--rest", "http://127.0.0.1:9"])
    assert code in (1, 2)
    assert str(bad) in one_line_error(capsys)


def test_a_config_file_with_an_unknown_key_is_one_line_naming_file_and_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "autoscale.yaml"
    config.write_text("defaults:\n  policy: flinkscale\n  setings: {}\n")
    code = main(["autoscale", "--all-jobs", "--config", str(config), "--state-dir", str(tmp_path),
                 "--rest", "http://127.0.0.1:9"])
    assert code == 2
    err = one_line_error(capsys)
    assert str(config) in err and "defaults.setings: unknown key" in err


@pytest.mark.parametrize(("args", "field"), [
    (["autoscale"], None),
    (["autoscale", "--state-dir", "X"], "--job"),
    (["autoscale", "stauts"], "ACTION"),
    (["autoscale", "status", "--format", "xml", "--state", "sqlite:///X/s.db"], "--format"),
    (["autoscale", "--all-jobs", "--max-slots", "0", "--state", "sqlite:///X/s.db"], "--max-slots"),
    (["autoscale", "--all-jobs", "--policy", "static", "--state", "sqlite:///X/s.db"], "--policy"),
    (["autoscale", "--all-jobs", "--quota-cpu", "many", "--state", "sqlite:///X/s.db"], "--quota-cpu"),
    (["autoscale", "--all-jobs", "--quota-cpu", "0", "--state", "sqlite:///X/s.db"], "--quota-cpu"),
    (["autoscale", "--all-jobs", "--quota-memory", "9 parsecs", "--state", "sqlite:///X/s.db"], "--quota-memory"),
])
def test_bad_flags_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                field: str | None) -> None:
    code = main([a.replace("X", str(tmp_path)) for a in args])
    if field is None:  # no arguments: the help text
        assert code in (0, 2)
        return
    assert code == 2
    assert field in one_line_error(capsys)


def test_status_without_a_store_says_where_it_looked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["autoscale", "status", "--state-dir", str(tmp_path)]) == 2
    assert str(tmp_path / "autoscale.db") in one_line_error(capsys)


def _hold(timestamp: float, reason: str, numbers: dict[str, float] | None = None) -> Decision:
    return Decision(timestamp, "flink-operator", (VertexDecision("v1", "Source", 4, 4, reason, numbers or {}),))


def test_status_shows_each_jobs_phase(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'autoscale.db'}"
    now = 1_700_000_000.0  # 22:13:20 UTC
    with StateStore.open(url, clock=lambda: now) as store:
        store.upsert_job(A, "clickstream")
        store.add_decision(A, _hold(now, "scale-down to 2 delayed until 1700003600 "
                                         "(job.autoscaler.scale-down.interval) (rate is low)",
                                    {"scale_down_target": 2.0, "scale_down_due_at": 1700003600.0}))
        store.upsert_job(B, "sql-orders")
        store.add_decision(B, _hold(now, "stabilizing: the job started at 22:12:00 UTC, no decision for 40s more"))
    assert main(["autoscale", "status", "--state", url, "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    phases = {job["job_name"]: job for job in shown["jobs"]}
    assert phases["clickstream"]["phase"] == "scale-down pending"
    assert phases["clickstream"]["scale_down_due_at"] == 1700003600
    assert phases["sql-orders"]["phase"] == "stabilizing"
    assert main(["autoscale", "status", "--state", url]) == 0
    table = capsys.readouterr().out
    assert "scale-down due at 23:13 UTC" in table and "stabilizing" in table


def test_pause_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["autoscale", "pause", "--state-dir", str(tmp_path)]) == 0
    assert (tmp_path / "autoscale.pause").exists()
    assert main(["autoscale", "resume", "--state-dir", str(tmp_path)]) == 0
    assert not (tmp_path / "autoscale.pause").exists()


# --- the REST side: discovery and each job's own configuration through a mock transport --------------------------
def _flink(jobs: dict[str, tuple[str, list[dict[str, str]]]]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/jobs/overview":
            return httpx.Response(200, json={"jobs": [
                {"jid": jid, "name": name, "state": "RUNNING", "start-time": 1_699_990_000_000}
                for jid, (name, _) in jobs.items()]})
        parts = path.strip("/").split("/")
        if len(parts) >= 2 and parts[0] == "jobs" and parts[1] in jobs:
            name, config = jobs[parts[1]]
            if parts[2:] == ["jobmanager", "config"]:
                return httpx.Response(200, json=config)
            if len(parts) == 2:
                body: dict[str, Any] = {"jid": parts[1], "name": name, "state": "RUNNING",
                                        "start-time": 1_699_990_000_000, "now": 1_700_000_000_000,
                                        "vertices": [{"id": "v1", "name": "Source", "parallelism": 1,
                                                      "maxParallelism": 128, "status": "RUNNING",
                                                      "tasks": {"RUNNING": 1}, "metrics": {}}],
                                        "plan": {"nodes": [{"id": "v1"}]}}
                return httpx.Response(200, json=body)
        return httpx.Response(404, json={"errors": ["Not found: " + path]})

    return httpx.MockTransport(answer)


def test_a_jobs_invalid_autoscaler_value_over_rest_is_one_line_and_the_other_job_is_served(tmp_path: Path) -> None:
    client = FlinkRestClient("http://flink:8081", transport=_flink({
        A: ("clickstream", [{"key": "job.autoscaler.utilization.target", "value": "1.7"},
                            {"key": "execution.checkpointing.interval", "value": "10s"}]),
        B: ("sql-orders", [{"key": "job.autoscaler.utilization.target", "value": "0.6"}]),
    }))
    assert client.job_config(B) == [{"key": "job.autoscaler.utilization.target", "value": "0.6"}]
    clock = FakeClock(1_700_000_000.0)
    lines: list[str] = []
    with StateStore.open(f"sqlite:///{tmp_path / 's.db'}", clock=clock) as store:
        daemon = MultiJobDaemon(client, store, parse_config_text("defaults:\n  policy: flinkscale\n", "a.yaml"),
                                DaemonConfig(interval_seconds=15, dry_run=True, owner="h:1"),
                                make_sampler=lambda _job: ScriptedSampler([]), make_executor=lambda _job: None,
                                clock=clock, log=lines.append)
        daemon.cycle()
        errors = [line for line in lines if "utilization.target" in line]
        assert len(errors) == 1
        assert errors[0].startswith(f"job clickstream ({A}): job.autoscaler.utilization.target: ")
        served = daemon.jobs[B]
        assert served.settings is not None and served.error is None
        assert served.settings.sources()["utilization.target"] == "job-config"
        assert served.settings.policy_settings["utilization.target"].value == "0.6"
        assert [s.job_name for s in job_statuses(store)] == ["clickstream", "sql-orders"]
