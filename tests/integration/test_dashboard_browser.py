"""The live dashboard in a real browser: headless Chromium (Debian's package) driven over the DevTools protocol.

A fake autoscale run is written to a run directory (snapshots of the reference clickstream job built from the
recorded example, decisions through ``Decision.to_dict``), the dashboard serves it, and Chromium loads the
page. The test checks what a user relies on: the job graph is drawn with one box per vertex, a decision
appended to ``decisions.jsonl`` appears at the top of the log within seconds, and the page logs no console
error. It does not start Flink.

The screenshot goes to the test's temp dir; with ``FLINKSCALE_UPDATE_SCREENSHOT=1`` (or when docs/dashboard.png
does not exist yet) it is also copied to docs/dashboard.png, so ordinary test runs do not dirty the tree. The
committed docs/dashboard.png is of a real full demo run (scripts/dashboard_screenshot.py on its run directory).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flinkscale.core.policy.base import Decision, VertexDecision
from flinkscale.report.dashboard import serve_dashboard

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "snapshots" / "clickstream-p1-overload-history.jsonl"
SCREENSHOT = REPO / "docs" / "dashboard.png"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--remote-debugging-port=0", "--window-size=1400,1200", "--hide-scrollbars")
NEW_DECISION_REASON = "spike: utilization 1.00 > 0.70 at 9000 rec/s, true_processing_rate 3100/s per subtask"


# --- the browser ----------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium, installed here when missing (apt is the only way to get a browser on this machine)."""
    if not CHROMIUM.exists():
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "chromium"]
        done = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:  # a stale package list is the usual cause: refresh once and retry
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
            done = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not CHROMIUM.exists():
            pytest.skip(f"Debian's chromium could not be installed (apt-get exit {done.returncode}: "
                        f"{done.stderr.strip()[-300:]})")
    return CHROMIUM


class DevTools:
    """A minimal Chrome DevTools protocol session on one page target (commands in order, events collected)."""

    def __init__(self, websocket_url: str) -> None:
        import websocket

        # No Origin header: Chromium refuses DevTools websockets from origins it was not told to allow.
        self._socket = websocket.create_connection(websocket_url, timeout=30, suppress_origin=True)
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        self._socket.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv())
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float) -> float:
        """Poll a JS expression until it is truthy; returns the seconds it took."""
        start = time.monotonic()
        while not self.evaluate(expression):
            if time.monotonic() - start > timeout:
                raise AssertionError(f"not true within {timeout} s: {expression}")
            time.sleep(0.1)
        return time.monotonic() - start

    def console_errors(self) -> list[str]:
        errors = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                errors.append(details.get("exception", {}).get("description") or details.get("text", ""))
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(f"{params['entry']['text']} ({params['entry'].get('url', '')})")
        return errors

    def close(self) -> None:
        self._socket.close()


@pytest.fixture()
def browser(chromium: Path, tmp_path: Path) -> Iterator[DevTools]:
    profile = tmp_path / "chromium-profile"
    process = subprocess.Popen([str(chromium), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    session: DevTools | None = None
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"chromium did not open its DevTools port (exit code {process.poll()})")
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(t for t in targets if t["type"] == "page")
        session = DevTools(page["webSocketDebuggerUrl"])
        for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
            session.call(domain)
        session.call("Emulation.setDeviceMetricsOverride", width=1400, height=1200, deviceScaleFactor=1,
                     mobile=False)
        yield session
    finally:
        if session is not None:
            session.close()
        # Chromium's renderers and zygote share its process group (start_new_session): end them together.
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


# --- a fake autoscale run -------------------------------------------------------------------------------
def _story_snapshots() -> list[dict[str, Any]]:
    """The reference job through a 3x step and a rescale of the window, built from the recorded snapshot."""
    template = json.loads(EXAMPLE.read_text(encoding="utf-8").splitlines()[0])
    start = time.time() - 40 * 15
    snapshots = []
    for step in range(40):
        rate = 2000.0 if step < 12 else 6000.0
        window_parallelism = 1 if step < 18 else (2 if step < 30 else 3)
        per_subtask_capacity = 5000.0
        processed = min(rate, per_subtask_capacity * window_parallelism)
        lag = max(0.0, (min(step, 18) - 12) * 15 * (rate - per_subtask_capacity)) if step >= 12 else 0.0
        if step >= 18:
            lag = max(0.0, lag - (step - 18) * 15 * 2500.0)
        data = copy.deepcopy(template)
        data["timestamp"] = start + step * 15
        data["window_seconds"] = 15.0
        source, window, sink = data["vertices"]
        source["metrics"].update(num_records_in_per_second=processed, num_records_out_per_second=processed,
                                 busy_time_ms_per_second_max=processed / 6000.0 * 900.0, pending_records=lag)
        window["parallelism"] = window_parallelism
        window["metrics"].update(num_records_in_per_second=processed, busy_time_ms_per_second_max=min(
            1000.0, processed / window_parallelism / per_subtask_capacity * 1000.0))
        sink["metrics"].update(num_records_in_per_second=processed / 60.0)
        snapshots.append(data)
    return snapshots


def _decision_line(snapshot: dict[str, Any], old: int, new: int, reason: str, *, applied: bool,
                   rescale_seconds: float | None) -> str:
    source, window, _ = snapshot["vertices"]
    decision = Decision(snapshot["timestamp"], "flinkscale", (
        VertexDecision(window["id"], window["name"], old, new, reason,
                       {"utilization": window["metrics"]["busy_time_ms_per_second_max"] / 1000.0,
                        "target_utilization": 0.7, "true_processing_rate": 5000.0 * old}),
        VertexDecision(source["id"], source["name"], 1, 1, "utilization below target"),
    ))
    return json.dumps({"timestamp": decision.timestamp, "decision": decision.to_dict(), "applied": applied,
                       "rescale_seconds": rescale_seconds, "error": None}) + "\n"


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as stream:
        stream.write(text)


@pytest.fixture()
def run_dir(tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    run = tmp_path / "run"
    run.mkdir()
    snapshots = _story_snapshots()
    _append(run / "snapshots.jsonl", "".join(json.dumps(s) + "\n" for s in snapshots))
    _append(run / "events.jsonl", "".join(json.dumps(e) + "\n" for e in (
        {"timestamp": snapshots[0]["timestamp"], "kind": "phase", "message": "steady 2000 rec/s"},
        {"timestamp": snapshots[12]["timestamp"], "kind": "phase", "message": "3x step to 6000 rec/s"})))
    _append(run / "decisions.jsonl", _decision_line(
        snapshots[17], 1, 2, "utilization 1.00 > target 0.70; lag 30000 records growing at 1000/s",
        applied=True, rescale_seconds=11.8))
    return run, snapshots


# --- the test --------------------------------------------------------------------------------------------
def test_dashboard_draws_the_graph_and_shows_a_new_decision_live(
        browser: DevTools, run_dir: tuple[Path, list[dict[str, Any]]], tmp_path: Path) -> None:
    run, snapshots = run_dir
    vertex_names = [v["name"] for v in snapshots[-1]["vertices"]]
    with serve_dashboard(run) as server:
        browser.call("Page.navigate", url=server.url)
        browser.wait_for("!!document.body && document.body.dataset.state === 'ready'", timeout=20)

        # The graph: one coloured box per vertex, each labelled with its name and parallelism, edges labelled.
        assert browser.evaluate("document.querySelectorAll('#job-graph .shapelayer path').length") == 3
        labels: str = browser.evaluate(
            "Array.from(document.querySelectorAll('#job-graph .annotation-text')).map(e => e.textContent).join('|')")
        for name in vertex_names:
            assert name.split(" ")[0] in labels
        assert "p=3" in labels and "HASH" in labels
        assert browser.evaluate("document.querySelectorAll('#parallelism .scatterlayer .trace').length") == 3
        assert browser.evaluate("document.querySelectorAll('#decision-log li.decision').length") == 1

        _append(run / "decisions.jsonl", _decision_line(snapshots[29], 2, 3, NEW_DECISION_REASON,
                                                          applied=True, rescale_seconds=9.4))
        shown_after = browser.wait_for(
            f"(document.querySelector('#decision-log li.decision') || {{textContent: ''}})"
            f".textContent.includes({json.dumps(NEW_DECISION_REASON)})", timeout=8)
        assert browser.evaluate("document.querySelectorAll('#decision-log li.decision').length") == 2
        first = browser.evaluate("document.querySelector('#decision-log li.decision').textContent")
        assert "2 → 3" in first and "applied" in first

        shot = browser.call("Page.captureScreenshot", format="png")
        errors = browser.console_errors()

    image = base64.b64decode(shot["data"])
    assert image.startswith(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "dashboard.png").write_bytes(image)
    if os.environ.get("FLINKSCALE_UPDATE_SCREENSHOT") == "1" or not SCREENSHOT.exists():
        shutil.copyfile(tmp_path / "dashboard.png", SCREENSHOT)
    assert errors == []
    print(f"new decision shown {shown_after:.1f} s after it was appended")


def test_the_job_list_of_the_multi_job_daemon_drills_into_one_job(browser: DevTools, tmp_path: Path) -> None:
    """Two jobs in a state store, as the multi-job daemon writes it: the list shows both, a click opens one."""
    from dataclasses import replace as replaced

    from flinkscale.app.multijob import job_statuses
    from flinkscale.core.snapshot import MetricsSnapshot
    from flinkscale.report.dashboard import create_jobs_app
    from flinkscale.store import CycleEntry, StateStore

    snapshots = [MetricsSnapshot.from_dict(s) for s in _story_snapshots()]
    jobs = {"a" * 32: "clickstream", "b" * 32: "sql-orders"}
    with StateStore.open(f"sqlite:///{tmp_path / 'autoscale.db'}") as store:
        for job_id, name in jobs.items():
            store.upsert_job(job_id, name, snapshots[0].timestamp)
        for snap in snapshots:
            store.record_cycle([CycleEntry(job_id, replaced(snap, job_id=job_id, job_name=name), None, None)
                                for job_id, name in jobs.items()])
        app = create_jobs_app(store, lambda s: [status.to_dict() for status in job_statuses(s)])
        with serve_dashboard(None, app=app) as server:
            browser.call("Page.navigate", url=server.url)
            browser.wait_for("!!document.body && document.body.dataset.state === 'ready'", timeout=20)
            names = browser.evaluate("Array.from(document.querySelectorAll('#jobs tbody tr a'))"
                                     ".map(a => a.textContent).join('|')")
            assert names == "clickstream|sql-orders"
            browser.evaluate("document.querySelector('#jobs tbody tr a').click()")
            browser.wait_for("location.pathname.startsWith('/job/') && !!document.body"
                             " && document.body.dataset.state === 'ready'", timeout=20)
            assert browser.evaluate("location.pathname") == "/job/" + "a" * 32
            assert browser.evaluate("document.querySelectorAll('#job-graph .shapelayer path').length") == 3
            assert "clickstream" in browser.evaluate("document.getElementById('job-title').textContent")
            errors = browser.console_errors()
    assert errors == []
