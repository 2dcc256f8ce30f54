"""The dashboard's HTTP side: JSON endpoints through FastAPI's TestClient, the real server, the CLI."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flinkscale.cli import main
from flinkscale.core.errors import InputError
from flinkscale.report.dashboard import create_app, plotly_js_path, serve_dashboard

from .conftest import WINDOW, FakeRunWriter, clickstream_snapshot, scale_decision

# Starlette's TestClient still runs on httpx and says so in a deprecation warning; it works as documented.
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture()
def client(writer: FakeRunWriter) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(create_app(writer.run_dir)) as test_client:
        yield test_client


def test_state_of_an_empty_run_dir(client: Any) -> None:
    state = client.get("/api/state").json()
    assert state["counts"] == {"snapshots": 0, "decisions": 0, "events": 0}
    assert state["graph"] is None and client.get("/api/graph").json() is None


def test_endpoints_follow_the_files_as_they_grow(client: Any, writer: FakeRunWriter) -> None:
    writer.snapshot(clickstream_snapshot(100.0, parallelism=1, busy_ms=1000.0, rate=5000.0, lag=12000.0))
    state = client.get("/api/state").json()
    assert state["job"]["job_name"] == "clickstream" and state["job"]["source_lag_records"] == 12000.0
    assert client.get("/api/state", params={"version": state["version"]}).json() == {
        "version": state["version"], "unchanged": True}

    writer.decision(scale_decision(105.0, 1, 2, "utilization 1.00 above target 0.70"), applied=True,
                    rescale_seconds=14.0)
    writer.snapshot(clickstream_snapshot(120.0, parallelism=2, busy_ms=520.0, rate=6000.0, lag=3000.0))
    writer.event(104.0, "phase", "step to 6000/s")
    newer = client.get("/api/state", params={"version": state["version"]}).json()
    assert newer["version"] != state["version"]
    assert newer["counts"] == {"snapshots": 2, "decisions": 1, "events": 1}
    window = next(n for n in client.get("/api/graph").json()["nodes"] if n["id"] == WINDOW)
    assert (window["parallelism"], window["utilization"]) == (2, pytest.approx(0.52))
    assert client.get("/api/timeline").json()["vertices"][WINDOW]["parallelism"] == [1, 2]
    (decision,) = client.get("/api/decisions").json()
    assert decision["outcome"] == "applied" and decision["rescale_seconds"] == 14.0
    assert decision["vertices"][0]["reason"] == "utilization 1.00 above target 0.70"
    assert client.get("/api/events").json() == [{"timestamp": 104.0, "kind": "phase", "message": "step to 6000/s"}]


def test_a_partial_decision_line_is_not_shown_until_complete(client: Any, writer: FakeRunWriter) -> None:
    text = json.dumps({"timestamp": 1.0, "decision": scale_decision(1.0, 1, 2, "r").to_dict(), "applied": True,
                       "rescale_seconds": None, "error": None}) + "\n"
    writer.raw("decisions.jsonl", text[:-20])
    state = client.get("/api/state").json()
    assert state["decisions"] == [] and state["problems"] == []
    writer.raw("decisions.jsonl", text[-20:])
    assert len(client.get("/api/decisions").json()) == 1


def test_bad_lines_reach_the_page_as_problems(client: Any, writer: FakeRunWriter) -> None:
    writer.raw("events.jsonl", "[1, 2]\n")
    assert client.get("/api/state").json()["problems"] == ["events.jsonl:1: timestamp: an event needs a timestamp"]


def test_the_page_loads_only_local_scripts_and_plotly_comes_from_the_plotly_package(client: Any) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    sources = re.findall(r'<script src="([^"]+)"', page.text)
    assert sources == ["/static/plotly.min.js", "/static/poll.js", "/static/dashboard.js"]
    assert client.get("/static/plotly.min.js").content == plotly_js_path().read_bytes()
    for asset in ("/static/poll.js", "/static/dashboard.js", "/static/dashboard.css"):
        response = client.get(asset)
        assert response.status_code == 200 and "http://" not in response.text and "https://" not in response.text


def test_served_dashboard_answers_on_the_port_it_reports_and_stops(writer: FakeRunWriter) -> None:
    writer.snapshot(clickstream_snapshot(1.0))
    server = serve_dashboard(writer.run_dir)
    try:
        assert server.host == "127.0.0.1" and server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}/"
        assert httpx.get(server.url + "api/state").json()["counts"]["snapshots"] == 1
    finally:
        server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "api/state")


def test_a_port_in_use_is_an_input_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(InputError) as raised:
            serve_dashboard(tmp_path, port=port)
    assert raised.value.field == "--port"


@pytest.mark.parametrize(("args", "message"), [
    (["dashboard", "{missing}"], "no such directory"),
    (["dashboard", "{run_dir}", "--format", "xml"], "--format: expected text or json"),
    (["dashboard", "{run_dir}", "--port", "70000"], "--port: must be between 0 and 65535"),
])
def test_cli_rejects_bad_input_in_one_line_with_exit_code_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    filled = [a.format(missing=tmp_path / "missing", run_dir=tmp_path) for a in args]
    assert main(filled) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_help_teaches_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    main(["dashboard", "--help"])
    out = capsys.readouterr().out
    assert "flinkscale dashboard runs/latest --port 0" in out and "snapshots.jsonl" in out


def test_cli_serves_until_ctrl_c_and_then_exits_cleanly(writer: FakeRunWriter) -> None:
    writer.snapshot(clickstream_snapshot(1.0))
    process = subprocess.Popen(
        [sys.executable, "-m", "flinkscale", "dashboard", str(writer.run_dir), "--port", "0", "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        started = json.loads(process.stdout.readline())
        assert started["host"] == "127.0.0.1" and started["url"] == f"http://127.0.0.1:{started['port']}/"
        assert httpx.get(started["url"] + "api/state").json()["counts"]["snapshots"] == 1
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 130
        assert process.stderr is not None and "Traceback" not in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
