"""Nothing is decided on a partial sample (issue 15, lessons from the operator's bug tracker), over real responses.

Replays of one job recorded on the embedded cluster (``recorded_rescale``): the collector turns them into
snapshots and the one control step decides, as in ``flinkscale autoscale``. Flink reports the job RUNNING
throughout; what makes these samples partial is inside it: a task still INITIALIZING, and IO counters
flagged ``*-complete: false`` (all at 0) on a job whose tasks all run.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from recorded_rescale import JOB_ID, SOURCE, WINDOW, collector_support, polls

from flinkscale.core.control import ControllerState, ControlSettings, partial_metrics, step
from flinkscale.core.policy import make_policy
from flinkscale.core.policy.base import History
from flinkscale.core.snapshot import MetricsSnapshot
from flinkscale.flink.autoscaler import AutoscaleLoop, LoopConfig
from flinkscale.flink.collector import Collector
from flinkscale.flink.models import VertexCounters, io_counter
from flinkscale.flink.rest import FlinkRestClient
from flinkscale.flink.testing import ReplayTransport
from flinkscale.testing import FakeClock

STARTUP = polls("startup_checkpointed.json")
RESCALE = polls("rescale_checkpointed.json")
# startup polls: 0-1 the window task INITIALIZING; 2 all RUNNING, every IO counter incomplete (0); 3- complete.
# rescale polls: 0 before the PUT; 5-8 RESTARTING; 9-10 RUNNING, all tasks INITIALIZING at the new parallelism with
# incomplete counters; 11-13 the same, counters complete; 14-18 the source RUNNING, the window's two tasks
# INITIALIZING; 19- all RUNNING.
INTERVAL = 5.0


def client_over(poll_list: list[list[dict[str, Any]]]) -> FlinkRestClient:
    exchanges = [e for poll in poll_list for e in poll] + collector_support()
    return FlinkRestClient("http://flink.test:8081", transport=ReplayTransport(exchanges), retries=0)


def snapshots(poll_list: list[list[dict[str, Any]]], clock: FakeClock) -> list[MetricsSnapshot | None]:
    """A collector's snapshot per poll after the first (which primes it)."""
    collector = Collector(client_over(poll_list), JOB_ID, clock=clock, refresh_seconds=0)
    collector.sample()
    out = []
    for _ in poll_list[1:]:
        clock.advance(INTERVAL)
        out.append(collector.sample())
    return out


def start_clock() -> FakeClock:
    body = STARTUP[0][0]["body"]
    return FakeClock(body["now"] / 1000.0)


# --- IO counters Flink marks incomplete --------------------------------------------------------------------
def test_the_recording_has_the_case_flink_flags_incomplete_counters_at_zero_on_a_running_job() -> None:
    job = STARTUP[2][0]["body"]
    assert job["state"] == "RUNNING" and all(v["tasks"]["RUNNING"] == v["parallelism"] for v in job["vertices"])
    source = STARTUP[2][1]["body"]["subtasks"][0]["metrics"]
    assert source["write-records"] == 0 and source["write-records-complete"] is False
    # read as a number it is 0; read as a counter it is unknown
    assert io_counter(source, "write-records") is None
    assert io_counter(STARTUP[3][1]["body"]["subtasks"][0]["metrics"], "write-records") == 7074
    assert VertexCounters.parse(job["vertices"][0]["metrics"]).write_records is None


def test_incomplete_counters_make_the_vertex_rates_unknown_never_zero_and_the_step_holds() -> None:
    clock = start_clock()
    # polls 2 (incomplete, 0) -> 3 (complete, 7074 written) -> 4 (complete)
    partial, complete = snapshots(STARTUP[2:5], clock)
    assert partial is not None and complete is not None
    source = partial.vertex(SOURCE).metrics
    # Read as counters, 0 -> 7074 in 5 s would claim 1,415 records/s the source never wrote in that interval.
    assert source.num_records_out_per_second is None and source.num_records_in_per_second is None
    assert partial.vertex(WINDOW).metrics.num_records_in_per_second is None
    assert any("incomplete" in note and "read-records" in note for note in partial.notes)
    assert partial_metrics(partial) == f"no record rate for {partial.vertex(SOURCE).name}"
    result = step(partial, History(), ControllerState(), ControlSettings(interval_seconds=INTERVAL),
                  make_policy("cpu-threshold"))
    assert result.decision is None and result.history == History()
    # the next interval's counters are complete: a real rate, taken from two complete reads
    written = (STARTUP[4][1]["body"]["subtasks"][0]["metrics"]["write-records"]
               - STARTUP[3][1]["body"]["subtasks"][0]["metrics"]["write-records"])
    assert complete.vertex(SOURCE).metrics.num_records_out_per_second == pytest.approx(written / INTERVAL)
    assert not any("incomplete" in note for note in complete.notes)


# --- tasks not RUNNING ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("first", "running"), [(9, 0), (11, 0), (14, 1)])
def test_a_running_job_with_a_task_not_running_holds_saying_how_many_run(first: int, running: int) -> None:
    clock = start_clock()
    (snap,) = snapshots(RESCALE[first:first + 2], clock)
    assert snap is not None and snap.job_state == "RUNNING"
    assert (snap.tasks_running, snap.tasks_total) == (running, 3)
    assert partial_metrics(snap) == f"{running} of 3 tasks RUNNING"
    result = step(snap, History(), ControllerState(), ControlSettings(interval_seconds=INTERVAL),
                  make_policy("cpu-threshold"))
    assert result.decision is None and result.held == f"{running} of 3 tasks RUNNING"


def test_once_every_task_runs_the_snapshot_is_complete() -> None:
    clock = start_clock()
    (snap,) = snapshots(RESCALE[19:21], clock)
    assert snap is not None and (snap.tasks_running, snap.tasks_total) == (3, 3)
    assert partial_metrics(snap, require_busy_time=False) is None


def test_the_task_counts_survive_the_snapshot_json() -> None:
    clock = start_clock()
    (snap,) = snapshots(RESCALE[14:16], clock)
    assert snap is not None
    again = MetricsSnapshot.from_dict(json.loads(json.dumps(snap.to_dict())))
    assert (again.tasks_running, again.tasks_total) == (1, 3)
    assert partial_metrics(again) == "1 of 3 tasks RUNNING"


# --- the single-job loop (flinkscale autoscale) ---------------------------------------------------------------
def test_the_autoscale_loop_holds_on_each_partial_sample_and_decides_on_complete_ones(tmp_path: Path) -> None:
    clock = start_clock()
    client = client_over(STARTUP[:6])
    loop = AutoscaleLoop(make_policy("cpu-threshold"), lambda jid: Collector(client, jid, clock=clock,
                                                                             refresh_seconds=0),
                         JOB_ID, config=LoopConfig(interval_seconds=INTERVAL, dry_run=True, run_dir=tmp_path,
                                                   busy_time_grace_ticks=0),
                         clock=clock, sleep=clock.sleep)
    loop._prime()
    entries = []
    for _ in range(5):
        clock.advance(INTERVAL)
        entries.append(loop.tick())
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    holds = [e["message"] for e in events if e["kind"] == "hold"]
    # polls 0 -> 1 -> 2: the window task INITIALIZING at either end; 2 -> 3: counters incomplete at the start
    assert holds == ["1 of 2 tasks RUNNING"] * 2 + [f"no record rate for {STARTUP[0][1]['body']['name']}"]
    # decisions only from the first interval between two complete reads of a fully running job on
    assert [e is not None for e in entries] == [False, False, False, True, True]


def test_a_flink_that_gives_no_task_counts_is_not_held_for_it() -> None:
    clock = start_clock()
    edited = copy.deepcopy(STARTUP[3:5])
    for poll in edited:
        for vertex in poll[0]["body"]["vertices"]:
            vertex.pop("tasks")
    (snap,) = snapshots(edited, clock)
    assert snap is not None and snap.tasks_running is None and snap.tasks_total is None
    assert partial_metrics(snap, require_busy_time=False) is None
