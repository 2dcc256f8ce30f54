"""The policy loop: rescale downtime and catch-up against the closed form, ceilings, shedding, snapshots."""

from __future__ import annotations

import gc
import math
from collections.abc import Callable

import numpy as np
import pytest

from flinkscale.core.errors import RuntimeFailure
from flinkscale.core.policy.base import Decision, History
from flinkscale.core.policy.registry import POLICY_NAMES, make_policy
from flinkscale.core.shedding import ShedSettings
from flinkscale.core.sim.calibration import catch_up_seconds
from flinkscale.core.sim.model import CheckpointSpec, ClusterSpec, RescaleSpec, SimPipeline
from flinkscale.core.sim.run import SimConfig, clamp_parallelism, simulate
from flinkscale.core.snapshot import MetricsSnapshot

Chain = Callable[..., SimPipeline]


@pytest.mark.parametrize(("rate", "per_subtask", "restart", "state_gb", "bandwidth"),
                         [(800.0, 250.0, 30.0, 9.0, 100e6), (2000.0, 1000.0, 60.0, 0.0, 1e9),
                          (350.0, 100.0, 10.0, 50.0, 500e6)])
def test_rescale_downtime_and_catch_up_match_r_d_over_c_minus_r(
        chain: Chain, scripted: type, rate: float, per_subtask: float, restart: float, state_gb: float,
        bandwidth: float) -> None:
    pipeline = chain(per_subtask, parallelism=4, state_bytes=state_gb * 1e9)
    policy = scripted(plan={600.0: {"v0": 5}})
    config = SimConfig(duration_seconds=3 * 3600, rescale=RescaleSpec(restart, bandwidth))
    run = simulate(pipeline, np.full(config.steps, rate), policy, config)

    downtime = restart + state_gb * 1e9 / bandwidth
    (record,) = run.history.rescales
    assert record.requested_at == 600.0
    assert record.completed_at == pytest.approx(600.0 + downtime)
    assert dict(record.new_parallelism) == {"v0": 5}
    assert run.outcome.downtime_seconds == pytest.approx(downtime)
    # The sources fill for the whole downtime: backlog r x D when the job comes back.
    back = round(600 + downtime)
    assert run.lag_records[back - 1] == pytest.approx(rate * downtime)
    # Then it drains at c - r: recovered r x D / (c - r) seconds later (within one step).
    recovered_at = back + int(np.nonzero(run.lag_records[back:] <= 1e-6)[0][0]) + 1
    expected = catch_up_seconds(rate, downtime, 5 * per_subtask)
    assert recovered_at - back == pytest.approx(expected, abs=1.0)
    assert run.outcome.peak_lag_records == pytest.approx(rate * downtime)


def test_no_decision_is_asked_for_while_the_job_restarts(chain: Chain, scripted: type) -> None:
    policy = scripted(plan={120.0: {"v0": 2}})
    config = SimConfig(duration_seconds=900, rescale=RescaleSpec(restart_seconds=150.0))
    simulate(chain(1000.0), np.full(900, 100.0), policy, config)
    times = [snapshot.timestamp for snapshot, _ in policy.seen]
    assert 180.0 not in times and 240.0 not in times   # down from 120 s to 270 s
    after = [(s, h) for s, h in policy.seen if s.timestamp > 270]
    first, history = after[0]
    assert first.window_seconds == pytest.approx(first.timestamp - 270.0)   # metrics restart with the tasks
    assert len(history.rescales) == 1


def test_core_hours_integrate_slots_over_time(chain: Chain, scripted: type) -> None:
    policy = scripted(plan={600.0: {"v0": 3, "v1": 5}})
    config = SimConfig(duration_seconds=3600, rescale=RescaleSpec(restart_seconds=0.0))
    run = simulate(chain(1000.0, 1000.0, parallelism=2), np.full(3600, 100.0), policy, config)
    assert run.outcome.core_hours == pytest.approx((4 * 600 + 8 * 3000) / 3600)
    shared = SimConfig(duration_seconds=3600, rescale=RescaleSpec(restart_seconds=0.0),
                       cluster=ClusterSpec(slot_sharing=True))
    run = simulate(chain(1000.0, 1000.0, parallelism=2), np.full(3600, 100.0), scripted(plan={600.0: {"v1": 5}}),
                   shared)
    assert run.outcome.core_hours == pytest.approx((2 * 600 + 5 * 3000) / 3600)


def test_requested_parallelism_is_clamped_to_the_cluster_ceiling(chain: Chain, scripted: type) -> None:
    config = SimConfig(duration_seconds=300, cluster=ClusterSpec(max_slots=10))
    run = simulate(chain(100.0, 100.0), np.full(300, 10.0), scripted(plan={60.0: {"v0": 40, "v1": 60}}), config)
    final = run.outcome.final_parallelism
    assert sum(final.values()) <= 10
    assert final["v1"] > final["v0"]   # the requested shape survives the clamp
    assert run.outcome.peak_slots <= 10


@pytest.mark.parametrize(("requested", "max_slots", "sharing"), [({"v0": 500, "v1": 3}, 100, False),
                                                                  ({"v0": 7, "v1": 7}, 5, True),
                                                                  ({"v0": 0, "v1": 3}, 100, False)])
def test_clamp_parallelism_respects_bounds(chain: Chain, requested: dict[str, int], max_slots: int,
                                           sharing: bool) -> None:
    pipeline = chain(1.0, 1.0, max_parallelism=200)
    cluster = ClusterSpec(max_slots=max_slots, slot_sharing=sharing)
    clamped = clamp_parallelism(requested, pipeline, cluster)
    assert cluster.slots_for(clamped) <= max_slots
    assert all(1 <= p <= 200 for p in clamped.values())


def test_shedding_drops_the_fraction_at_the_source(chain: Chain, scripted: type) -> None:
    config = SimConfig(duration_seconds=600)
    run = simulate(chain(1e6), np.full(600, 1000.0), scripted(shed={300.0: 0.25}), config)
    assert run.outcome.records_dropped == pytest.approx(0.25 * 1000.0 * 300)
    outcome = run.outcome
    assert outcome.records_offered == pytest.approx(outcome.records_dropped + outcome.arrived["v0"])


def test_seconds_over_target_follow_the_lag_growth(chain: Chain, scripted: type) -> None:
    # Capacity 600/s for 1,000/s offered: lag grows 400/s, so lag seconds = 400 t / 1000 > 30 after t = 75 s.
    config = SimConfig(duration_seconds=1000, latency_target_seconds=30.0)
    run = simulate(chain(600.0), np.full(1000, 1000.0), scripted(), config)
    assert run.outcome.seconds_over_target == pytest.approx(1000 - 75, abs=1.0)
    assert run.outcome.peak_lag_seconds == pytest.approx(400.0, rel=1e-3)


def test_snapshots_carry_flinks_metrics(chain: Chain, scripted: type) -> None:
    policy = scripted()
    config = SimConfig(duration_seconds=600, subtask_metrics=True)
    simulate(chain(5000.0, 400.0, parallelism=(2, 2), partitions=4), np.full(600, 1000.0), policy, config)
    snapshot, _ = policy.seen[-1]
    assert isinstance(snapshot, MetricsSnapshot)
    source, sink = snapshot.vertex("v0"), snapshot.vertex("v1")
    assert source.is_source and sink.is_sink and source.partitions == 4
    assert sink.metrics.busy_time_ms_per_second_max == pytest.approx(1000.0, rel=1e-3)
    assert sink.metrics.num_records_in_per_second == pytest.approx(800.0, rel=1e-3)
    assert source.metrics.pending_records_per_second == pytest.approx(200.0, rel=1e-2)
    assert source.metrics.pending_records == pytest.approx(snapshot.source_lag())
    assert len(sink.metrics.subtasks) == 2
    assert snapshot.cluster is not None and snapshot.cluster.slots_total >= 4
    assert MetricsSnapshot.from_dict(snapshot.to_dict()) == snapshot


def test_a_failing_policy_is_named(chain: Chain) -> None:
    class Broken:
        name = "broken"

        def decide(self, snapshot: MetricsSnapshot, history: History) -> Decision:
            raise ZeroDivisionError("oops")

    with pytest.raises(RuntimeFailure, match="broken"):
        simulate(chain(10.0), np.full(120, 1.0), Broken(), SimConfig(duration_seconds=120))


def test_timeline_has_a_point_per_decision_interval(chain: Chain, scripted: type) -> None:
    run = simulate(chain(10.0, 10.0), np.full(3600, 5.0), scripted(), SimConfig(duration_seconds=3600))
    assert len(run.timeline.times) == 60
    assert run.timeline.parallelism.shape == (60, 2)
    assert math.isclose(run.timeline.offered_rate.mean(), 5.0)


def test_checkpoint_pauses_cut_capacity_by_pause_over_interval(chain: Chain, scripted: type) -> None:
    # 10 s of stopped processing every 60 s leaves 5/6 of 1,000/s: at 900/s offered the lag grows at
    # 900 - 1000 x 50/60 = 66.7/s; over 20 whole intervals (1,200 s) that is 80,000 records.
    config = SimConfig(duration_seconds=2400, checkpoints=CheckpointSpec(interval_seconds=60, pause_seconds=10))
    run = simulate(chain(1000.0), np.full(2400, 900.0), scripted(), config)
    assert run.lag_records[2399] - run.lag_records[1199] == pytest.approx(80_000.0)
    free = simulate(chain(1000.0), np.full(2400, 900.0), scripted(), SimConfig(duration_seconds=2400))
    assert free.outcome.peak_lag_records == 0.0


def test_time_metrics_split_each_second_and_skew_is_flinks_formula(chain: Chain, scripted: type) -> None:
    policy = scripted()
    config = SimConfig(duration_seconds=300, subtask_metrics=True)
    # Partitions 3 over 2 readers: reader loads 2:1.
    simulate(chain(5000.0, 1000.0, parallelism=(2, 3), partitions=3), np.full(300, 1200.0), policy, config)
    snapshot, _ = policy.seen[-1]
    for vertex in snapshot.vertices:
        for subtask in vertex.metrics.subtasks:
            parts = (subtask.busy_time_ms_per_second, subtask.back_pressured_time_ms_per_second,
                     subtask.idle_time_ms_per_second)
            assert all(p is not None and p >= -1e-9 for p in parts)
            assert sum(p or 0.0 for p in parts) == pytest.approx(1000.0)
    source = snapshot.vertex("v0")
    rates = [s.num_records_in_per_second or 0.0 for s in source.metrics.subtasks]
    mean = sum(rates) / len(rates)
    expected = min(sum(abs(r - mean) for r in rates) / len(rates) / mean * 100, 100)
    assert source.metrics.records_in_skew == pytest.approx(expected)
    assert rates[0] == pytest.approx(2 * rates[1], rel=1e-3)


def test_a_restore_from_checkpoint_re_reads_what_was_read_since_the_checkpoint(chain: Chain, scripted: type) -> None:
    # Checkpoints every 100 s; the rescale at 660 s restores the one of 600 s: 60 s x 500/s are read again,
    # on top of the 500/s x D that arrive during the downtime.
    rescale = RescaleSpec(restart_seconds=40.0, mode="checkpoint")
    config = SimConfig(duration_seconds=1800, rescale=rescale,
                       checkpoints=CheckpointSpec(interval_seconds=100))
    run = simulate(chain(1000.0), np.full(1800, 500.0), scripted(plan={660.0: {"v0": 2}}), config)
    assert run.lag_records[660 + 40 - 1] == pytest.approx(500.0 * 40 + 500.0 * 60)
    assert run.outcome.records_replayed == pytest.approx(500.0 * 60)
    savepoint = simulate(chain(1000.0), np.full(1800, 500.0), scripted(plan={660.0: {"v0": 2}}),
                         SimConfig(duration_seconds=1800, rescale=RescaleSpec(restart_seconds=40.0)))
    assert savepoint.lag_records[660 + 40 - 1] == pytest.approx(500.0 * 40)
    assert savepoint.outcome.records_replayed == 0.0


@pytest.mark.parametrize("idle_hours", [6.5, 8.0])
def test_cpu_threshold_halves_after_six_idle_hours_in_the_simulator(chain: Chain, idle_hours: float) -> None:
    """The simulator keeps the history the policy needs (required_history_seconds), so cpu-threshold's
    "halve below 10% for 6 h" rule can fire; with History's 2 h default it never could."""
    from flinkscale.core.policy import make_policy

    policy = make_policy("cpu-threshold")
    # 4 subtasks of 1,000 records/s at 100 records/s: 2.5% busy, far below the 10% threshold all the time.
    config = SimConfig(duration_seconds=idle_hours * 3600, rescale=RescaleSpec(restart_seconds=10.0))
    run = simulate(chain(1000.0, parallelism=4), np.full(config.steps, 100.0), policy, config)

    rescales = run.history.rescales
    assert rescales, "the 6 h scale-down rule never fired"
    first = rescales[0]
    assert dict(first.old_parallelism) == {"v0": 4} and dict(first.new_parallelism) == {"v0": 2}
    # Not before the rule's 6 h have passed (counted from the first snapshot), and at the first decision after.
    assert 6 * 3600 <= first.requested_at <= 6 * 3600 + 2 * config.decision_interval_seconds


def test_history_handed_to_the_policy_spans_what_the_policy_asks_for(chain: Chain, scripted: type) -> None:
    policy = scripted()
    policy.history_seconds = 3 * 3600.0   # read by required_history_seconds
    config = SimConfig(duration_seconds=4 * 3600)
    simulate(chain(1000.0), np.full(config.steps, 100.0), policy, config)
    snapshot, history = policy.seen[-1]
    oldest = history.snapshots[0].timestamp
    assert snapshot.timestamp - oldest == pytest.approx(3 * 3600.0, abs=config.decision_interval_seconds)


@pytest.mark.parametrize("policy_name", POLICY_NAMES)
def test_a_run_makes_no_reference_cycles_and_leaves_the_collector_as_it_was(chain: Chain, policy_name: str) -> None:
    # simulate() holds the automatic cyclic collector off (the history's snapshots made it a third of a large
    # run's time): that is free only while a run makes no garbage that needs it, which this checks per policy,
    # over rescales (a step up and down in the rate) and shedding.
    pipeline = chain(400.0, 300.0, parallelism=(2, 2), partitions=8)
    rates = np.concatenate([np.full(2400, 300.0), np.full(2400, 1500.0), np.full(2400, 100.0)])
    config = SimConfig(duration_seconds=len(rates), shedding=ShedSettings(), cluster=ClusterSpec(max_slots=6))
    policy = make_policy(policy_name, {})
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        run = simulate(pipeline, rates, policy, config)
        assert not gc.isenabled()  # left off, as it was
        assert gc.collect() == 0  # nothing unreachable that reference counting did not free
    finally:
        if was_enabled:
            gc.enable()
    assert run.timeline.times.size == 120
    simulate(pipeline, rates[:600], policy, config)
    assert gc.isenabled() is was_enabled
