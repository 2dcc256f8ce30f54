"""The multi-job daemon holds on partial samples too, over real responses (issue 15, point 4).

The daemon runs as ``flinkscale autoscale --all-jobs`` does: the REST client (here over a replay of one job
recorded on the embedded cluster while it deployed, ``recorded_rescale``), one real ``Collector`` per job, the
one control step and a SQLite state store. The job is RUNNING throughout; the daemon must hold while a task is
still INITIALIZING and while Flink flags the IO counters incomplete, store no decision for those cycles, and
decide once two complete reads of a fully running job are in.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from recorded_rescale import JOB_ID, OTHER_JOB_ID, collector_support, polls, recorded

from flinkscale.app.multijob import DaemonConfig, MultiJobDaemon
from flinkscale.core.job_settings import parse_config_text
from flinkscale.flink.collector import Collector
from flinkscale.flink.protocols import Applier
from flinkscale.flink.rest import FlinkRestClient
from flinkscale.flink.testing import ReplayTransport
from flinkscale.store import StateStore
from flinkscale.testing import FakeClock

INTERVAL = 5.0
STARTUP = polls("startup_checkpointed.json")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(STARTUP[0][0]["body"]["now"] / 1000.0)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[StateStore]:
    opened = StateStore.open(f"sqlite:///{tmp_path / 'autoscale.db'}", clock=clock)
    yield opened
    opened.close()


def daemon_over(exchanges: list[dict[str, Any]], store: StateStore, clock: FakeClock) -> MultiJobDaemon:
    client = FlinkRestClient("http://flink.test:8081", transport=ReplayTransport(exchanges), retries=0)
    def make_executor(job_id: str) -> Applier | None:
        raise AssertionError(f"job {job_id}: nothing is applied in this test")

    config = parse_config_text("defaults:\n  policy: cpu-threshold\n", "autoscale.yaml")
    return MultiJobDaemon(client, store, config,
                          DaemonConfig(interval_seconds=INTERVAL, job_ids=(JOB_ID,), owner="test-host:1"),
                          make_sampler=lambda jid: Collector(client, jid, clock=clock, refresh_seconds=0),
                          make_executor=make_executor, clock=clock)


def test_the_daemon_holds_while_a_task_is_not_running_or_counters_are_incomplete(
        store: StateStore, clock: FakeClock) -> None:
    # The daemon reads the job once for reconciliation before its collector primes: that read repeats poll 0.
    job_reads = [STARTUP[0][0]] + [poll[0] for poll in STARTUP]
    vertex_reads = [e for poll in STARTUP for e in poll[1:]]
    exchanges = [*recorded("config.json", "/jobs/overview"),
                 *recorded("config.json", f"/jobs/{JOB_ID}/jobmanager/config"),
                 *job_reads, *vertex_reads, *collector_support()]
    daemon = daemon_over(exchanges, store, clock)
    phases, decided = [], []
    for _ in range(len(STARTUP) + 2):
        report = daemon.cycle()
        phases.append(daemon.jobs[JOB_ID].phase)
        decided.append(report.decided)
        clock.advance(INTERVAL)
    assert OTHER_JOB_ID not in daemon.jobs  # the recording's second job is not asked for
    source = STARTUP[0][1]["body"]["name"]
    assert phases[:6] == ["holding: priming the collector", "holding: 1 of 2 tasks RUNNING",
                          "holding: 1 of 2 tasks RUNNING", f"holding: no record rate for {source}",
                          # complete from poll 3 on; the datagen source reports no busy time: held for the
                          # control step's grace of two steps, then decided without it
                          f"holding: no busy time for {source}", f"holding: no busy time for {source}"]
    # After the recording the replay repeats its last answers (a quiet job): the first complete sample of a job
    # is a stabilizing hold *decision*, the next one the policy's.
    assert phases[6].startswith("holding: stabilizing: first sample of this job")
    assert decided == [0, 0, 0, 0, 0, 0, 1, 1]
    assert len(store.decisions(JOB_ID)) == 2 and len(store.snapshots(JOB_ID)) == 2
    assert all((s.tasks_running, s.tasks_total) == (2, 2) for s in store.snapshots(JOB_ID))
    daemon.close()
