"""`flinkscale profile` and `flinkscale skew` end to end over replayed REST answers on a virtual clock, and the
one-line exit-2 errors for an unreachable REST URL, an unknown job id and a missing local cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flinkscale.cli import main
from flinkscale.cli import profile as profile_cli
from flinkscale.core.profile import PROFILE_SCHEMA, analyze_profile, profile_document
from flinkscale.core.snapshot import MetricsSnapshot
from flinkscale.core.workload import profile_snapshot

from .conftest import JOB_ID, VirtualClock, replay_client
from .test_profile_analysis import _chain


@pytest.fixture()
def replayed(monkeypatch: pytest.MonkeyPatch, exchanges: list[dict[str, Any]], clock: VirtualClock) -> None:
    # The fixture holds no /jobs/overview answer: add the one running job so `--job` can be left out.
    exchanges.append({"method": "GET", "path": "/jobs/overview", "query": "", "status": 200,
                      "body": {"jobs": [{"jid": JOB_ID, "name": "clickstream", "state": "RUNNING",
                                         "start-time": 0, "end-time": -1, "duration": 1, "last-modification": 0,
                                         "tasks": {}}]}})
    monkeypatch.setattr(profile_cli, "make_client", lambda url, access: replay_client(exchanges))
    monkeypatch.setattr(profile_cli, "CLOCK", clock.time)
    monkeypatch.setattr(profile_cli, "SLEEP", clock.sleep)


def test_profile_json_is_versioned_and_its_snapshot_is_what_plan_reads(
        replayed: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "--job", JOB_ID, "--rest", "http://x", "--window", "30s", "--interval", "5s",
                 "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["schema"] == PROFILE_SCHEMA
    assert set(document) >= {"snapshot", "samples", "analysis", "calls_per_sample", "skipped"}
    snapshot = profile_snapshot(document)
    assert snapshot.job_id == JOB_ID
    assert document["analysis"]["bottleneck"] == snapshot.vertices[0].id
    assert document["calls_per_sample"] == 6  # V + S + 4: one vertex, one source


def test_job_can_be_left_out_when_one_runs(replayed: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "--rest", "http://x", "--window", "20s", "--interval", "5s"]) == 0
    out = capsys.readouterr().out
    assert "is the bottleneck" in out and "headroom" in out


def test_html_is_one_file_with_plotly_embedded_once(replayed: None, tmp_path: Path) -> None:
    target = tmp_path / "profile.html"
    assert main(["profile", "--job", JOB_ID, "--rest", "http://x", "--window", "30s", "--interval", "5s",
                 "--format", "html", "--output", str(target)]) == 0
    page = target.read_text()
    assert page.count("Plotly.newPlot") >= 3  # DAG, time bars, timeline
    assert page.count("plotly.js v") == 1  # the library itself, once
    assert "<script src=\"http" not in page  # nothing fetched from the network
    assert "is the bottleneck" in page


def test_skew_command_json(replayed: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["skew", "--job", JOB_ID, "--rest", "http://x", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["job_id"] == JOB_ID
    assert report["skewed_vertex_ids"] == []  # one subtask cannot be skewed
    assert report["window_seconds"] > 0


def test_plan_reads_a_profile_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = _chain(src_busy=800, agg_busy=500)
    document = profile_document(snapshot, [snapshot], analyze_profile(snapshot), calls_per_sample=7, skipped=[])
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(document))
    assert main(["plan", "--from-profile", str(path), "--target", "50k/s", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)
    assert MetricsSnapshot.from_dict(document["snapshot"]).job_id == "j"


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_unreachable_rest_url_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "--job", JOB_ID, "--rest", "http://127.0.0.1:9", "--window", "5s"]) == 2
    assert "127.0.0.1:9" in _one_line_error(capsys)


def test_unknown_job_is_one_line_exit_2(replayed: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "--job", "0" * 32, "--rest", "http://x"]) == 2
    assert "not found" in _one_line_error(capsys)
    assert main(["skew", "--job", "not-a-job", "--rest", "http://x"]) == 2
    assert "not found" in _one_line_error(capsys)


def test_no_local_cluster_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "--state-dir", str(tmp_path)]) == 2
    assert "--rest" in _one_line_error(capsys)


@pytest.mark.parametrize("args", [["--format", "xml"], ["--window", "0s"], ["--interval", "soon"]])
def test_bad_options_are_one_line_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profile", "--rest", "http://127.0.0.1:9", *args]) == 2
    _one_line_error(capsys)


def test_skew_command_table(replayed: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["skew", "--job", JOB_ID, "--rest", "http://x", "--window", "10s", "--interval", "5s"]) == 0
    out = capsys.readouterr().out
    assert "max/mean" in out and "No skewed vertex." in out


def test_ctrl_c_ends_the_window_early_and_still_reports(
        replayed: None, monkeypatch: pytest.MonkeyPatch, clock: VirtualClock,
        capsys: pytest.CaptureFixture[str]) -> None:
    import os
    import signal

    start = clock.now

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.now - start >= 12 and not getattr(sleep, "sent", False):
            sleep.sent = True  # type: ignore[attr-defined]
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends

    monkeypatch.setattr(profile_cli, "SLEEP", sleep)
    assert main(["profile", "--job", JOB_ID, "--rest", "http://x", "--window", "2m", "--interval", "5s",
                 "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert 1 <= len(document["samples"]) <= 3
    assert document["snapshot"]["window_seconds"] < 20
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def _with_fetch_interval(exchanges: list[dict[str, Any]], value: str | None) -> None:
    config = [{"key": "rest.port", "value": "8081"}]
    if value is not None:
        config.append({"key": "metrics.fetcher.update-interval", "value": value})
    exchanges.append({"method": "GET", "path": "/jobmanager/config", "query": "", "status": 200, "body": config})


@pytest.mark.parametrize(("configured", "interval", "warned"), [
    (None, "5s", True),  # Flink's default 10 s, sampled every 5 s
    ("10 s", "5s", True),
    ("10 s", "10s", False),
    ("2000", "5s", False),  # a bare number is milliseconds in Flink's configuration
])
def test_profile_warns_when_the_cluster_refreshes_its_metrics_less_often_than_it_samples(
        replayed: None, exchanges: list[dict[str, Any]], capsys: pytest.CaptureFixture[str],
        configured: str | None, interval: str, warned: bool) -> None:
    _with_fetch_interval(exchanges, configured)
    assert main(["profile", "--job", JOB_ID, "--rest", "http://x", "--window", "30s", "--interval", interval,
                 "--format", "json"]) == 0
    err = capsys.readouterr().err
    assert ("metrics.fetcher.update-interval" in err) == warned, err


def test_a_cluster_that_hides_its_configuration_is_profiled_without_a_warning(
        replayed: None, capsys: pytest.CaptureFixture[str]) -> None:
    # the recorded exchanges hold no /jobmanager/config answer: the replay says 404, as a locked-down cluster would
    assert main(["profile", "--job", JOB_ID, "--rest", "http://x", "--window", "30s", "--interval", "5s",
                 "--format", "json"]) == 0
    assert "update-interval" not in capsys.readouterr().err
