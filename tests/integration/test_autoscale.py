"""The autoscaling loop on real Flink: a 6x rate step is absorbed (PyFlink), a 3x step is absorbed (SQL), a
TaskManager death is ridden out.

What a user leaving the loop on a production job relies on, checked on the embedded cluster with the
reference pipeline (cost_us=400: one source subtask reads 1,300-2,400 ev/s on this machine, by its load):
- a step from 300 to 1,800 ev/s (p=1 then runs above the test's utilization.max; p=2 has room) is met
  with at most 2 scale-ups, after which the source is neither backpressured nor lagging further;
- dropping the rate back scales down, but not before the scale-down interval since the scale-up;
- a TaskManager killed mid-loop makes the loop hold (no decision on partial metrics); the supervisor
  restarts it, the job recovers;
- the reference SQL pipeline (no Python at run time) meets a 3x step from 450 to 1,350 ev/s with 1 or 2
  scale-ups, after which its source runs at p >= 2, unbackpressured, its lag no longer growing;
- in all three, the exactly-once filesystem sink holds every produced event exactly once.

The step scenario runs for the flink-operator policy too when FLINKSCALE_COMPARE_POLICIES=1 (it prints the
same figures; the comparison goes into the issue's closing note), to keep the default run short.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from flinkscale.core.control import partial_metrics
from flinkscale.core.policy import make_policy
from flinkscale.flink.autoscaler import AutoscaleLoop, LoopConfig, LoopSummary
from flinkscale.flink.collector import Collector
from flinkscale.flink.executor import Executor, ExecutorConfig
from flinkscale.kafka.loadgen import LoadGenerator
from flinkscale.pipelines.clickstream_sql import SqlClickstreamOptions
from flinkscale.pipelines.launch import submit_clickstream_sql
from tests.integration.conftest import Runtime
from tests.integration.test_runtime import _committed_event_ids, _wait_caught_up

pytestmark = pytest.mark.integration

# The enrichment burns STEP_COST_US of wall time per event, so what one source subtask reads (C) is bounded by it
# and varies little with the machine's load: measured 2,400 ev/s quiet, 2,150 with one CPU burner, 1,300-1,500
# with two (load average 4-5). At cost_us=100, C ran from ~9,000 quiet to 2,500 in CI: no fixed step was both
# past utilization.max at p=1 on a quiet machine and absorbable at p=2 on a loaded one (a quiet CI run read the
# old 4,200 ev/s step at under 0.6 busy and scaled up 70 s late). Now, for C from 1,300 to 2,400 ev/s: the high
# rate is over 0.6 C (0.75 at the quiet 2,400: p=1 is past utilization.max) and under 0.7 x 2 C (p=2 absorbs it);
# the low rate leaves p=1 under 0.3 busy (at 400 ev/s it read 0.20 quiet, 0.27 with one burner, 0.33-0.39 with two).
STEP_COST_US = 400
LOW, HIGH = 300, 1_800
LOW_SECONDS, HIGH_SECONDS = 35, 80
# The loop starts this long after the load: a fresh job's Python workers run slow for their first seconds (a first
# tick once read 0.84 busy at 1,600 ev/s and scaled up before the step). The loop now also waits the policy's
# stabilization interval from the job's own start and never decides on a first sample (control step rule 5).
WARM_UP_SECONDS = 12
# flinkscale scales down only when the saving pays for the restart twice within the scale-down interval
# (2 x ~20 s learned restart / 100 s = 0.4 < the 0.5 slot saving of 2 -> 1); the operator waits a full
# interval from its first scale-down recommendation; flinkscale also waits until the rate has stayed low for the
# whole interval (until then its reason says which peak holds it). Both need a low phase longer than the interval.
SCALE_DOWN_INTERVAL = 100.0
BACK_SECONDS = {"flinkscale": 150, "flink-operator": 150}
STEP_SETTINGS: dict[str, dict[str, str]] = {
    "flinkscale": {"utilization.target": "0.5", "utilization.max": "0.6", "scale-down.margin": "0.1",
                   "stabilization.interval": "15s", "metrics.window": "20s",
                   "scale-down.interval": f"{SCALE_DOWN_INTERVAL:g}s", "restart.time": "15s",
                   "prediction.horizon": "0", "catch-up.duration": "2m"},
    "flink-operator": {"job.autoscaler.utilization.target": "0.6",
                       "job.autoscaler.target.utilization.boundary": "0.15",
                       "job.autoscaler.stabilization.interval": "15s", "job.autoscaler.metrics.window": "20s",
                       "job.autoscaler.scale-down.interval": f"{SCALE_DOWN_INTERVAL:g}s",
                       "job.autoscaler.restart.time": "15s", "job.autoscaler.catch-up.duration": "2m"},
}


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _finish_and_check_exactly_once(runtime: Runtime, job_id: str, topic: str, group: str, events: Path,
                                   generator: LoadGenerator) -> None:
    _wait_caught_up(runtime, topic, group)
    time.sleep(6)  # one more checkpoint after the last record
    runtime.rest.wait_savepoint(job_id, runtime.rest.trigger_stop_with_savepoint(job_id, drain=True))
    runtime.rest.wait_job_state(job_id, ["FINISHED"])
    ids = _committed_event_ids(events)
    produced = generator.manifest
    assert sum(ids.values()) == produced.produced, "duplicates or losses"
    assert set(ids) == set(range(produced.first_id, produced.next_id))


def _run_step_under_the_loop(
        runtime: Runtime, job_id: str, generator: LoadGenerator, rates: list[int], policy_name: str,
        duration_seconds: float, run_dir: Path) -> tuple[LoopSummary, float, Executor]:
    """The load ``rates`` (one per second) in a thread, and the autoscaling loop on ``job_id`` with the step
    settings from WARM_UP_SECONDS in, for ``duration_seconds``; returns the loop's summary, when the load started
    and the executor (its job id is the job's after a resubmission)."""
    load = threading.Thread(target=generator.run, args=(rates,))
    executor = Executor(runtime.rest, job_id, cluster=runtime.cluster,
                        config=ExecutorConfig(max_task_managers=2, ready_timeout_seconds=180))
    loop = AutoscaleLoop(make_policy(policy_name, STEP_SETTINGS[policy_name]),
                         lambda jid: Collector(runtime.rest, jid, max_task_managers=2), job_id, executor=executor,
                         config=LoopConfig(interval_seconds=5, duration_seconds=duration_seconds, run_dir=run_dir))
    executor.event = loop.event
    started = time.time()
    load.start()
    try:
        time.sleep(WARM_UP_SECONDS)
        summary = loop.run_forever()
    finally:
        load.join()
        generator.close()
    return summary, started, executor


def _is_scale_up(entry: dict[str, Any]) -> bool:
    return sum(v["new_parallelism"] - v["current_parallelism"] for v in entry["decision"]["vertices"]) > 0


def _assert_absorbed(snapshots: list[dict[str, Any]], end_at: float, high: int) -> None:
    """Over the last 20 s at the high rate (up to ``end_at``), the source runs at p >= 2, is not backpressured and
    its lag does not grow."""
    settled = [s for s in snapshots if end_at - 20 <= s["timestamp"] <= end_at]
    assert settled, "no snapshot in the settled high-rate phase"
    source = next(v for v in settled[-1]["vertices"] if v["is_source"])
    assert source["parallelism"] >= 2
    for snap in settled:
        src = next(v for v in snap["vertices"] if v["is_source"])["metrics"]
        assert (src.get("back_pressured_time_ms_per_second_max") or 0) < 200
    lags = [sum((v["metrics"].get("pending_records") or 0) for v in s["vertices"] if v["is_source"])
            for s in settled]
    # Flink refreshes pendingRecords every few seconds and a source reads in fetch batches, so one settled
    # snapshot's lag swings by several seconds of data (CI saw 25k, 69k, 20k, 42k at 7,500 ev/s, draining each
    # time). A lag that still grows ends above everything before it and above 5 s of the high rate.
    assert lags[-1] <= max([*lags[:-1], high * 5]), f"lag still grows after the step: {lags}"


def _policies() -> list[str]:
    return ["flinkscale", "flink-operator"] if os.environ.get("FLINKSCALE_COMPARE_POLICIES") else ["flinkscale"]


@pytest.mark.parametrize("policy_name", _policies())
def test_rate_step_is_absorbed_then_scaled_down_after_the_interval_without_loss(
        clean_jobs: Runtime, tmp_path: Path, policy_name: str) -> None:
    runtime = clean_jobs
    topic = runtime.topic(partitions=4)
    events = tmp_path / "events"
    job_id, options = runtime.clickstream(topic, cost_us=STEP_COST_US, events_dir=f"file://{events}",
                                          agg_dir=f"file://{tmp_path / 'agg'}")
    generator = LoadGenerator(runtime.broker.bootstrap, topic, seed=11)
    rates = [LOW] * LOW_SECONDS + [HIGH] * HIGH_SECONDS + [LOW] * BACK_SECONDS[policy_name]
    run_dir = tmp_path / "run"
    summary, started, executor = _run_step_under_the_loop(runtime, job_id, generator, rates, policy_name,
                                                          len(rates) + 5 - WARM_UP_SECONDS, run_dir)
    step_at, drop_at = started + LOW_SECONDS, started + LOW_SECONDS + HIGH_SECONDS
    applied = [e for e in _read_jsonl(run_dir / "decisions.jsonl") if e["applied"]]
    ups = [e for e in applied if _is_scale_up(e)]
    downs = [e for e in applied if e not in ups]
    print(f"\n{policy_name}: {len(applied)} rescales; step at +{LOW_SECONDS}s, drop at "
          f"+{LOW_SECONDS + HIGH_SECONDS}s")
    for e in applied:
        print(f"  +{e['timestamp'] - started:5.1f}s {e['decision']['vertices'][0]['current_parallelism']}->"
              f"{ {v['vertex_name'][:20]: v['new_parallelism'] for v in e['decision']['vertices']} } "
              f"took {e['rescale_seconds']:.1f}s")
    print(f"  holds {summary.holds}, errors {summary.errors}")

    assert summary.errors == ()
    assert 1 <= len(ups) <= 2, f"the step took {len(ups)} scale-ups"
    assert all(e["timestamp"] >= step_at for e in ups)
    _assert_absorbed(_read_jsonl(run_dir / "snapshots.jsonl"), drop_at, HIGH)
    # Scale-down only after the drop, and not before the scale-down interval since the last scale-up.
    last_up = max(e["timestamp"] for e in ups)
    assert all(e["timestamp"] >= drop_at and e["timestamp"] - last_up >= SCALE_DOWN_INTERVAL for e in downs)
    _finish_and_check_exactly_once(runtime, executor.job_id, topic, options.group, events, generator)
    assert downs, ("the rate dropped back but the job was not scaled down (rescales took "
                   f"{[round(e['rescale_seconds'], 1) for e in applied]} s; the policy pays a restart only when "
                   "the saving covers it twice within the scale-down interval)")


def test_task_manager_killed_mid_loop_the_loop_holds_and_the_job_recovers(clean_jobs: Runtime,
                                                                        tmp_path: Path) -> None:
    runtime = clean_jobs
    topic = runtime.topic(partitions=2)
    events = tmp_path / "events"
    job_id, options = runtime.clickstream(topic, cost_us=20, events_dir=f"file://{events}")
    generator = LoadGenerator(runtime.broker.bootstrap, topic, seed=13)
    load = threading.Thread(target=generator.run, args=([1_500] * 60,))
    run_dir = tmp_path / "run"
    stop = threading.Event()
    loop = AutoscaleLoop(make_policy("flinkscale"), lambda jid: Collector(runtime.rest, jid), job_id,
                         executor=Executor(runtime.rest, job_id, cluster=runtime.cluster),
                         config=LoopConfig(interval_seconds=3, duration_seconds=240, run_dir=run_dir),
                         should_stop=stop.is_set, sleep=lambda s: stop.wait(s))
    runner = threading.Thread(target=loop.run_forever)
    load.start()
    runner.start()
    try:
        time.sleep(15)
        busy = [tm for tm in runtime.rest.task_managers() if tm.free_slots < tm.slots]
        victim = runtime.cluster.task_manager_pid(busy[0])
        assert victim is not None, "could not find the TaskManager running the job"
        failures_before = len(runtime.rest.job_exceptions(job_id))
        os.kill(victim, signal.SIGKILL)
        killed_at = time.time()
        # The JobManager notices a dead TaskManager only by missed heartbeats (up to heartbeat.timeout, 50 s):
        # first wait for the failover to show (an entry in the exception history: it lasts, whereas the restart
        # on the free slot can be over between two polls of a REST view that is cached for seconds), then for
        # the job to run again on 2 TaskManagers.
        deadline = time.monotonic() + 120
        while (runtime.rest.job(job_id).all_running
               and len(runtime.rest.job_exceptions(job_id)) <= failures_before):
            assert time.monotonic() < deadline, "the JobManager never noticed the TaskManager's death"
            time.sleep(0.5)
        while not runtime.rest.job(job_id).all_running or len(runtime.rest.task_managers()) < 2:
            assert time.monotonic() < deadline, "the job did not recover from the TaskManager's death"
            time.sleep(1)
        recovered_at = time.time()
        time.sleep(10)  # a few clean ticks after the recovery
    finally:
        stop.set()
        runner.join(timeout=60)
        load.join()
        generator.close()
    print(f"\nTaskManager {victim} killed; job running again after {recovered_at - killed_at:.1f}s")
    logged = _read_jsonl(run_dir / "events.jsonl")
    holds = [e for e in logged if e["kind"] == "hold"]
    around = [(round(e["timestamp"] - killed_at, 1), e["kind"], e.get("message")) for e in logged
              if killed_at - 5 <= e["timestamp"] <= recovered_at + 10]
    print("events around the kill (seconds after it):", around)
    assert any(killed_at <= e["timestamp"] <= recovered_at + 10 for e in holds), f"the loop did not hold: {around}"
    snapshots = {s["timestamp"]: s for s in _read_jsonl(run_dir / "snapshots.jsonl")}
    from flinkscale.core.snapshot import MetricsSnapshot

    decisions = _read_jsonl(run_dir / "decisions.jsonl")
    assert decisions and all(not e["applied"] for e in decisions)
    for snapshot in snapshots.values():
        # nothing decided on partial data (busy time may be missing right after the restart: the grace ticks)
        assert partial_metrics(MetricsSnapshot.from_dict(snapshot), require_busy_time=False) is None
    assert any(s > recovered_at for s in snapshots), "the loop did not resume after the recovery"
    _finish_and_check_exactly_once(runtime, job_id, topic, options.group, events, generator)


# The SQL pipeline's cost is CPU spent in Flink built-ins (cost_rounds), chained into the source vertex; its busy
# time is the JVM's own work. On this 2-core machine a second subtask adds less than a subtask's worth: measured at
# 16,000 rounds, one subtask read ~1,100 ev/s quiet (0.45 busy at 500 ev/s) and 750-950 at load average 4; two
# read 1,400-1,700 ev/s saturated (1.4x one), quiet and at load average 4, and a 500 -> 1,500 step passed both
# ways with its lag bounded but p=2 fully busy. The high rate is past utilization.max at p=1 on any load, and
# 1,350 leaves p=2 some room; the policy's wish for p=3 stays capped by the 2 TaskManagers.
SQL_COST_ROUNDS = 16_000
SQL_LOW, SQL_HIGH = 450, 1_350
SQL_LOW_SECONDS, SQL_HIGH_SECONDS = 25, 55


def test_sql_rate_step_is_absorbed_in_at_most_two_rescales_exactly_once(clean_jobs: Runtime, tmp_path: Path) -> None:
    runtime = clean_jobs
    topic = runtime.topic(partitions=4)
    events = tmp_path / "events"
    options = SqlClickstreamOptions(bootstrap=runtime.broker.bootstrap, topic=topic, group=runtime.unique("sql-step"),
                                    events_dir=f"file://{events}", agg_dir=f"file://{tmp_path / 'agg'}",
                                    cost_rounds=SQL_COST_ROUNDS)
    job_id = submit_clickstream_sql(runtime.cluster, options).job_id
    runtime.wait_running(job_id)
    generator = LoadGenerator(runtime.broker.bootstrap, topic, seed=17)
    rates = [SQL_LOW] * SQL_LOW_SECONDS + [SQL_HIGH] * SQL_HIGH_SECONDS
    run_dir = tmp_path / "run"
    summary, started, executor = _run_step_under_the_loop(runtime, job_id, generator, rates, "flinkscale",
                                                          len(rates) - WARM_UP_SECONDS, run_dir)
    step_at, end_at = started + SQL_LOW_SECONDS, started + SQL_LOW_SECONDS + SQL_HIGH_SECONDS
    applied = [e for e in _read_jsonl(run_dir / "decisions.jsonl") if e["applied"]]
    snapshots = _read_jsonl(run_dir / "snapshots.jsonl")
    print(f"\nSQL step {SQL_LOW} -> {SQL_HIGH} ev/s at +{SQL_LOW_SECONDS}s: {len(applied)} rescales")
    for e in applied:
        change = {v["vertex_name"][:24]: (v["current_parallelism"], v["new_parallelism"])
                  for v in e["decision"]["vertices"]}
        print(f"  +{e['timestamp'] - started:5.1f}s {change} took {e['rescale_seconds']:.1f}s")
    for snap in snapshots:
        src = next(v for v in snap["vertices"] if v["is_source"])
        m = src["metrics"]
        print(f"  +{snap['timestamp'] - started:5.1f}s p={src['parallelism']} "
              f"read {m.get('num_records_out_per_second') or 0:.0f}/s "
              f"busy {m.get('busy_time_ms_per_second_max') or 0:.0f} ms/s lag {m.get('pending_records')}")
    print(f"  holds {summary.holds}, errors {summary.errors}")

    assert summary.errors == ()
    assert applied and all(_is_scale_up(e) for e in applied), "no scale-up, or a scale-down during the step"
    assert len(applied) <= 2, f"the step took {len(applied)} scale-ups"
    assert all(e["timestamp"] >= step_at for e in applied), "a scale-up before the step"
    _assert_absorbed(snapshots, end_at, SQL_HIGH)
    _finish_and_check_exactly_once(runtime, executor.job_id, topic, options.group, events, generator)
