"""The loop with a real Collector over a recorded real cluster (ReplayTransport) and a virtual clock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from flinkscale.core.control import partial_metrics
from flinkscale.core.policy import make_policy
from flinkscale.flink.autoscaler import AutoscaleLoop, LoopConfig
from flinkscale.flink.collector import Collector
from flinkscale.flink.rest import FlinkRestClient
from flinkscale.flink.testing import ReplayTransport
from flinkscale.testing import FakeClock

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "rest" / "collector_clickstream_step.json"
JOB_ID = "fbe2f9fd51e8ce0812ff7fcd1b8bb3bf"
SAMPLES = 13  # reads recorded: 1 priming + 12 snapshots, 5 s apart


class FlakyTransport(httpx.BaseTransport):
    """Fails the requests numbered in ``down`` as an unreachable JobManager would, else replays."""

    def __init__(self, inner: httpx.BaseTransport, down: range) -> None:
        self.inner = inner
        self.down = down
        self.count = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.count += 1
        if self.count in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        return self.inner.handle_request(request)


def run(tmp_path: Path, transport: httpx.BaseTransport) -> tuple[AutoscaleLoop, list[dict[str, Any]]]:
    clock = FakeClock(1_795_488_521.0)
    client = FlinkRestClient("http://flink.test:8081", transport=transport, retries=0, sleep=clock.sleep)
    loop = AutoscaleLoop(make_policy("flinkscale"),
                         lambda jid: Collector(client, jid, clock=clock, refresh_seconds=0), JOB_ID,
                         config=LoopConfig(interval_seconds=5, dry_run=True, duration_seconds=5 * (SAMPLES - 1) + 1,
                                           run_dir=tmp_path),
                         clock=clock, sleep=clock.sleep)
    loop.run_forever()
    return loop, [json.loads(line) for line in (tmp_path / "snapshots.jsonl").read_text().splitlines()]


def test_every_recorded_sample_becomes_a_logged_snapshot_and_decision(tmp_path: Path) -> None:
    _loop, snapshots = run(tmp_path, ReplayTransport.from_file(FIXTURE))
    decisions = (tmp_path / "decisions.jsonl").read_text().splitlines()
    assert len(snapshots) == len(decisions)
    # The same recording through a bare collector gives the same snapshots (the loop adds nothing, drops nothing).
    clock = FakeClock(1_795_488_521.0)
    client = FlinkRestClient("http://flink.test:8081", transport=ReplayTransport.from_file(FIXTURE), retries=0)
    collector = Collector(client, JOB_ID, clock=clock, refresh_seconds=0)
    collector.sample()
    direct = []
    for _ in range(SAMPLES - 1):
        clock.now += 5
        snap = collector.sample()
        assert snap is not None
        direct.append(snap)
    # Decided on: every complete snapshot; held: those still without busy time (the job had just started).
    complete = [s.to_dict() for s in direct if partial_metrics(s) is None]
    held = [s for s in direct if partial_metrics(s) is not None]
    assert all("no busy time" in str(partial_metrics(s)) for s in held) and len(held) <= 2
    assert [s["vertices"] for s in snapshots] == [s["vertices"] for s in complete]


def test_a_rest_outage_makes_the_loop_hold_then_resume(tmp_path: Path) -> None:
    # requests 20-40 fail: a couple of samples' worth of an unreachable JobManager
    loop, snapshots = run(tmp_path, FlakyTransport(ReplayTransport.from_file(FIXTURE), range(20, 41)))
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    holds = [e for e in events if e["kind"] == "hold"]
    assert any("REST unavailable" in e["message"] for e in holds)
    assert 0 < len(snapshots) < SAMPLES - 1  # fewer decisions, none on the failed reads
    assert loop.status.ticks == SAMPLES - 1
