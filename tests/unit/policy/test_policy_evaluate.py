"""The shared evaluation maths, each case worked out by hand from the formulas in anchors.md."""

from __future__ import annotations

import pytest
from policy_snapshots import clickstream, history_of, job, vertex

from flinkscale.core.policy import _evaluate as ev
from flinkscale.core.policy.base import History, RescaleRecord
from flinkscale.core.policy.flink_operator import align_parallelism
from flinkscale.core.snapshot import MetricsSnapshot


def test_target_rate_at_source_adds_lag_growth_and_propagates_by_output_ratio() -> None:
    # The source reads 5000/s and its lag grows 1000/s -> 6000/s arrive. The window emits 1 record per 60
    # it takes in, so the sink's target is 6000 / 60 = 100/s.
    snap = clickstream(0.0, arrival=6000.0, lag=60000.0)
    metrics = ev.window_metrics((snap,))
    ratios = ev.output_ratios(snap, metrics)
    assert ratios[("src", "win")] == pytest.approx(1.0)
    assert ratios[("win", "sink")] == pytest.approx(1 / 60)
    targets = ev.propagate_rates(snap, {"src": ev.source_target_rate(metrics["src"])}, ratios)
    assert targets == pytest.approx({"src": 6000.0, "win": 6000.0, "sink": 100.0})


def test_fan_in_sums_upstream_targets() -> None:
    snap = job(0.0,
               vertex("a", 1, rate_in=100.0, rate_out=100.0, busy_max=100.0, source=True),
               vertex("b", 1, rate_in=200.0, rate_out=50.0, busy_max=100.0, source=True),
               vertex("join", 1, rate_in=150.0, busy_max=100.0),
               edges=(("a", "join", "HASH"), ("b", "join", "HASH")))
    metrics = ev.window_metrics((snap,))
    targets = ev.propagate_rates(snap, {"a": 1000.0, "b": 400.0}, ev.output_ratios(snap, metrics))
    # two inputs: each edge carries upstream out/in -> 1000 x 1 + 400 x 0.25
    assert targets["join"] == pytest.approx(1100.0)


def test_lag_growth_over_a_window_is_the_slope_between_first_and_last() -> None:
    first = clickstream(0.0, arrival=6000.0, lag=60000.0)
    last = clickstream(120.0, arrival=6000.0, lag=180000.0)
    metrics = ev.window_metrics((first, last))
    assert metrics["src"].lag_growth_rate == pytest.approx((180000 - 60000) / 120)
    assert metrics["src"].lag == 180000.0


@pytest.mark.parametrize(("p", "groups", "expected"), [
    (96, 128, 1.5),        # anchors.md: 128 key groups over 96 subtasks -> the busiest carries 1.5x
    (64, 128, 1.0), (3, 8, 9 / 8), (5, 8, 10 / 8), (7, None, 1.0)])
def test_layout_factor(p: int, groups: int | None, expected: float) -> None:
    assert ev.layout_factor(p, groups) == pytest.approx(expected)


@pytest.mark.parametrize(("p", "groups", "lower", "upper", "expected"), [
    (5, 720, 1, 200, 5),     # 5 divides 720
    (7, 720, 1, 200, 8),     # up: 7 no, 8 yes
    (100, 128, 1, 128, 128),  # up to min(groups, upper): 128 divides
    (100, 128, 1, 110, 64),  # no divisor in 100..110 -> down: 128//64 = 2 > 128//100 = 1 at 64, which divides
    (5, 8, 1, 7, 4),         # 5..7 no divisor of 8; down: 8//4 = 2 > 1 -> 4
    (8, 8, 1, 8, 8),
    # 3, 4 do not divide 10; down: 10//2 = 5 > 10//3 = 3 and 2 divides 10 -> 2. (Its floor-based rule
    # misses that the busiest of 2 reads 5 partitions where the busiest of 3 read 4.)
    (3, 10, 1, 4, 2),
])
def test_legacy_evenly_spread_alignment_of_a_scale_up(p: int, groups: int, lower: int, upper: int,
                                                      expected: int) -> None:
    # The operator's legacy key-group alignment, scaling up from 1: upward to a divisor, else downward.
    assert align_parallelism("LEGACY_EVENLY_SPREAD", 1, p, groups, lower, upper) == expected


@pytest.mark.parametrize(("load", "allowed", "groups", "expected"), [
    (7500.0, 5000.0, None, 2),     # ceil(1.5)
    (7000.0, 1000.0, None, 7),     # exactly 7, not 8 (float noise)
    (7500.0, 5000.0, 128, 2),      # g = floor(5000 x 128 / 7500) = 85 groups each -> ceil(128 / 85) = 2
    (10000.0, 100.0, 128, 128),    # needs 100 subtasks; 128 groups -> 2 per subtask impossible under 1.28 -> 1 each
    (7500.0, 1000.0, 8, 8),        # g = floor(1000 x 8 / 7500) = 1 -> 8
    (3000.0, 1000.0, 8, 4),        # g = floor(8000 / 3000) = 2 -> 4 (3 subtasks would leave one with 3 partitions)
])
def test_smallest_parallelism_for_load(load: float, allowed: float, groups: int | None, expected: int) -> None:
    assert ev.smallest_parallelism_for_load(load, allowed, groups, 1, 10_000) == expected


def test_job_slot_ceiling_subtracts_slots_of_other_jobs() -> None:
    snap = clickstream(0.0, arrival=100.0, p_win=2, slots=8)
    assert ev.job_slot_ceiling(snap) == 8  # the builder leaves 8 - 2 available: no other job
    from dataclasses import replace
    other_jobs = replace(snap, cluster=replace(snap.cluster, slots_available=3))  # type: ignore[arg-type]
    assert ev.job_slot_ceiling(other_jobs) == 8 - (8 - 3 - 2)


def test_last_change_time_is_the_latest_start_rescale_or_parallelism_change() -> None:
    a = clickstream(0.0, arrival=100.0)
    b = clickstream(60.0, arrival=100.0)
    c = clickstream(120.0, arrival=100.0, p_win=2)
    assert ev.last_change_time(c, History()) is None
    assert ev.last_change_time(b, history_of(a)) == 0.0
    assert ev.last_change_time(clickstream(180.0, arrival=100.0, p_win=2), history_of(a, b, c)) == 120.0
    with_rescale = history_of(a, b).append(rescale=RescaleRecord(100.0, 130.0, {"win": 1}, {"win": 2}))
    assert ev.last_change_time(clickstream(150.0, arrival=100.0), with_rescale) == 130.0


def test_learned_restart_is_the_mean_rescale_duration() -> None:
    history = History(rescales=(RescaleRecord(0.0, 20.0, {}, {}), RescaleRecord(100.0, 140.0, {}, {})))
    assert ev.learned_restart_seconds(history) == pytest.approx(30.0)
    assert ev.learned_restart_seconds(History()) is None


def test_hold_decisions_follow_the_reason_and_the_layout_they_are_shared_for() -> None:
    # hold_decision builds its vertex decisions once per layout and reason: each must still be this snapshot's.
    def at(ts: float, p: int) -> MetricsSnapshot:
        source = vertex("src", 2, rate_in=10.0, busy_max=100.0, source=True)
        return job(ts, source, vertex("sink", p, rate_in=10.0, busy_max=100.0), edges=(("src", "sink", "REBALANCE"),))

    def held(snapshot: MetricsSnapshot, reason: str) -> list[tuple[str, int, int, str, dict[str, float]]]:
        decision = ev.hold_decision(snapshot, "test", reason)
        assert decision.timestamp == snapshot.timestamp and not decision.rescale
        return [(v.vertex_id, v.current_parallelism, v.new_parallelism, v.reason, dict(v.numbers))
                for v in decision.vertices]

    assert held(at(60.0, 3), "a") == [("src", 2, 2, "a", {}), ("sink", 3, 3, "a", {})]
    assert held(at(120.0, 3), "b") == [("src", 2, 2, "b", {}), ("sink", 3, 3, "b", {})]
    assert held(at(180.0, 5), "a") == [("src", 2, 2, "a", {}), ("sink", 5, 5, "a", {})]
    for k in range(20):  # reasons with a count in them: only the latest few are kept, each still right
        assert held(at(240.0 + k, 5), f"wait {k}s")[1] == ("sink", 5, 5, f"wait {k}s", {})
    numbers = ev.hold_decision(at(300.0, 5), "test", "a", numbers={"sink": {"x": 1.0}})
    assert [dict(v.numbers) for v in numbers.vertices] == [{}, {"x": 1.0}]


def test_bounds_and_groups_per_vertex_are_the_per_vertex_functions() -> None:
    snap = job(0.0, vertex("src", 4, rate_in=10.0, busy_max=100.0, source=True, partitions=6, max_p=64),
               vertex("agg", 3, rate_in=10.0, busy_max=100.0, max_p=32), vertex("out", 2, rate_in=10.0, busy_max=100.0),
               edges=(("src", "agg", "HASH"), ("agg", "out", "REBALANCE")))
    assert ev.layout_groups_by_id(snap) == {v.id: ev.layout_groups(snap, v) for v in snap.vertices}
    assert ev.layout_groups_by_id(snap) == {"src": 6, "agg": 32, "out": None}
    for limits in ((1, 200, None), (2, 5, 4), (1, 200, 3), (3, 3, None)):
        assert ev.parallelism_bounds_by_id(snap, *limits) == {
            v.id: ev.parallelism_bounds(snap, v, *limits) for v in snap.vertices}


def test_last_scale_up_outcome_from_the_changes_found_once_is_the_per_vertex_search() -> None:
    # Parallelism over time (src, agg): agg scales up at 180 s and again at 420 s, src scales up at 300 s.
    steps = [(1, 2), (1, 2), (1, 2), (1, 4), (1, 4), (2, 4), (2, 4), (2, 8), (2, 8), (2, 8), (2, 8)]

    def at(ts: float, p_src: int, p_agg: int) -> MetricsSnapshot:
        busy = 900.0 / p_agg
        return job(ts, vertex("src", p_src, rate_in=1000.0, busy_max=600.0 / p_src, source=True),
                   vertex("agg", p_agg, rate_in=1000.0, busy_max=busy, busy_avg=busy * 0.9),
                   edges=(("src", "agg", "HASH"),))

    snapshots = [at(60.0 * (k + 1), *p) for k, p in enumerate(steps)]
    for upto in range(1, len(snapshots)):
        history = History(snapshots=tuple(snapshots[:upto]))
        latest = snapshots[upto]
        changes = ev.parallelism_changes(latest, history)
        assert changes is not None
        for vertex_id in ("src", "agg"):
            for settle, lookback in ((0.0, 600.0), (60.0, 120.0)):
                assert (ev.last_scale_up_outcome(latest, history, vertex_id, settle, lookback, changes)
                        == ev.last_scale_up_outcome(latest, history, vertex_id, settle, lookback))
    outcome = ev.last_scale_up_outcome(snapshots[-1], History(snapshots=tuple(snapshots[:-1])), "agg", 0.0, 600.0,
                                       ev.parallelism_changes(snapshots[-1], History(snapshots=tuple(snapshots[:-1]))))
    assert outcome is not None and (outcome.old_parallelism, outcome.new_parallelism) == (4, 8)
