"""flink-operator: one test per rule of the operator's autoscaler; expected values worked out by hand from
the formulas in anchors.md section 1 (u = 0.7 +- 0.3, restart 300 s, catch-up 1800 s unless set)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from policy_snapshots import clickstream, history_of, job, vertex

from flinkscale.core import control
from flinkscale.core.errors import InputError
from flinkscale.core.policy import History, make_policy, replay_history
from flinkscale.core.policy.base import Decision, VertexDecision
from flinkscale.core.policy.flink_operator import align_parallelism, observed_scaling_coefficient, target_capacity
from flinkscale.core.snapshot import JvmPressure, MetricsSnapshot

FAST = {"job.autoscaler.stabilization.interval": "0", "job.autoscaler.metrics.window": "60s"}


def decide(snapshot: MetricsSnapshot, history: History | None = None, **settings: str) -> Decision:
    return make_policy("flink-operator", settings).decide(snapshot, history or History())


def by_id(decision: Decision) -> dict[str, int]:
    return decision.parallelism()


def numbers(decision: Decision, vertex_id: str) -> dict[str, float]:
    return dict(next(v for v in decision.vertices if v.vertex_id == vertex_id).numbers)


def source_only(ts: float, p: int, rate: float, *, ms_per_record: float, lag: float = 0.0, lag_rate: float = 0.0,
                partitions: int | None = None, back_pressured: float | None = None) -> MetricsSnapshot:
    busy = min(1000.0, rate / p * ms_per_record)
    return job(ts, vertex("src", p, rate_in=rate, busy_max=busy, lag=lag, lag_rate=lag_rate, partitions=partitions,
                          back_pressured=back_pressured, source=True))


def test_overloaded_clickstream_every_changed_vertex_rescales_together() -> None:
    # Source reads 5000/s, lag 180000 growing 1000/s: target 6000/s everywhere up to the window, 100/s at
    # the sink; catch-up 180000 / 1800 = 100/s (sink 100/60). capacity(0.7) = 100 + 6000 x 300/1800 +
    # 6000/0.7 = 9671.4. Window TPR 5000 < 100 + 6000/1.0 -> out of bounds; factor 1.934 -> p 2.
    # Source TPR 5000/0.75 = 6666.7: inside its bounds, but factor 1.451 -> p 2 rides along.
    decision = decide(clickstream(0.0, arrival=6000.0, lag=180000.0))
    assert by_id(decision) == {"src": 2, "win": 2, "sink": 1}
    win = numbers(decision, "win")
    assert win["target_rate"] == pytest.approx(6000.0)
    assert win["catch_up_rate"] == pytest.approx(100.0)
    # The operator rounds every capacity to a whole record/s (AutoScalerUtils.getTargetProcessingCapacity).
    assert win["target_capacity"] == round(100 + 6000 * 300 / 1800 + 6000 / 0.7)
    assert win["scale_up_threshold"] == round(100 + 6000 / 1.0)
    assert win["scale_down_threshold"] == round(100 + 6000 * 300 / 1800 + 6000 / 0.4)
    assert win["scale_factor"] == pytest.approx(round(100 + 1000 + 6000 / 0.7) / 5000)
    assert numbers(decision, "src")["true_processing_rate"] == pytest.approx(5000 / 0.75)
    assert numbers(decision, "sink")["target_rate"] == pytest.approx(100.0)
    assert decision.rescale


def test_nothing_scales_when_every_changed_vertex_is_within_bounds() -> None:
    # Window p=4 at 9000/s (0.2 ms/record): TPR 20000; bounds [9000 + 0, 1500 + 22500] hold it; factor
    # (1500 + 9000/0.7) / 20000 = 0.718 -> p 3 (max parallelism 120: 3 divides). Source p=2: TPR 13333,
    # factor 1.077 -> 3 -> 4 (8 partitions). Both would change, neither is out of bounds.
    snap = clickstream(0.0, arrival=9000.0, p_src=2, p_win=4, max_p=120)
    decision = decide(snap, **{"job.autoscaler.scale-down.interval": "0"})
    assert by_id(decision) == {"src": 2, "win": 4, "sink": 1}
    assert not decision.rescale
    assert "within bounds" in next(v for v in decision.vertices if v.vertex_id == "win").reason
    assert numbers(decision, "win")["recommended_parallelism"] == 3
    assert numbers(decision, "src")["recommended_parallelism"] == 4


@pytest.mark.parametrize(("min_observations", "history_snapshots", "expected_tpr"), [
    (2, 0, 1000 / 0.2),   # one observation (the snapshot itself): stays with busy time
    (2, 1, 1000 / 0.5),   # two: busy TPR 5000 > 1.15 x observed 2000 -> observed
    (3, 1, 1000 / 0.2),
    (1, 0, 1000 / 0.5),
])
def test_observed_true_processing_rate_for_lagging_backpressured_source(
        min_observations: int, history_snapshots: int, expected_tpr: float) -> None:
    # 1000/s read, busy 200 ms/s, backpressured 500 ms/s, lag 60 s of input (>= 30 s).
    snaps = [source_only(60.0 * i, 1, 1000.0, ms_per_record=0.2, lag=60000.0, back_pressured=500.0)
             for i in range(history_snapshots + 1)]
    decision = decide(snaps[-1], history_of(*snaps[:-1]), **FAST, **{
        "job.autoscaler.observed-true-processing-rate.min-observations": str(min_observations)})
    assert numbers(decision, "src")["true_processing_rate"] == pytest.approx(expected_tpr)


def test_observed_rate_needs_lag_of_at_least_the_threshold() -> None:
    # 20 s of lag < 30 s: no observation at all
    snap = source_only(0.0, 1, 1000.0, ms_per_record=0.2, lag=20000.0, back_pressured=500.0)
    assert "observed_true_processing_rate" not in numbers(decide(snap), "src")


@pytest.mark.parametrize(("max_factor", "expected"), [("100000", 10), ("0.5", 3), ("1", 4)])
def test_scale_up_factor_is_clamped(max_factor: str, expected: int) -> None:
    # p=2 saturated at 2000/s, lag growing 4000/s: target 6000, capacity 1000 + 8571.4 = 9571.4,
    # factor 4.786 -> ceil(9.57) = 10; clamped to 1 + max_factor.
    snap = source_only(0.0, 2, 2000.0, ms_per_record=1.0, lag_rate=4000.0)
    decision = decide(snap, **{"job.autoscaler.scale-up.max-factor": max_factor})
    assert by_id(decision)["src"] == expected


@pytest.mark.parametrize(("lag", "min_p", "expected"), [
    (0.0, "1", 2),        # factor (1000 x 300/1800 + 1000/0.7) / 20000 = 0.08 -> clamped 0.4 -> ceil(1.6) = 2
    (200000.0, "1", 2),   # 200 s of lag < backlog threshold 300 s
    (400000.0, "1", 4),   # 400 s of lag: backlog mode, bounds 1.0/0.0: no scale-down trigger
    (0.0, "3", 3),        # vertex.min-parallelism
])
def test_scale_down_clamp_backlog_and_min_parallelism(lag: float, min_p: str, expected: int) -> None:
    snap = source_only(0.0, 4, 1000.0, ms_per_record=0.2, lag=lag)  # busy 50 ms/s -> TPR 20000
    decision = decide(snap, **{"job.autoscaler.scale-down.interval": "0",
                               "job.autoscaler.vertex.min-parallelism": min_p})
    assert by_id(decision)["src"] == expected
    if lag == 400000.0:
        assert "backlog" in decision.vertices[0].reason


def test_scale_down_waits_the_interval_then_takes_the_highest_recommendation() -> None:
    # p=4, 0.2 ms/record: TPR 20000 at any rate. At 1000/s the recommendation is 2 (clamped factor 0.4);
    # at 8000/s it is ceil(4 x (8000/6 + 8000/0.7) / 20000) = ceil(2.55) = 3 (inside bounds, but still a
    # scale-down request, so the run of requests is unbroken).
    snaps = [source_only(60.0 * i, 4, 8000.0 if i == 10 else 1000.0, ms_per_record=0.2) for i in range(61)]
    policy = make_policy("flink-operator", FAST)
    before = replay_history(policy, snaps[:-2])
    held = policy.decide(snaps[-2], before)  # t = 3540 < 0 + 3600
    assert held.parallelism()["src"] == 4
    assert "delayed" in held.vertices[0].reason
    # The timer as numbers, for the state store: the highest asked for so far, due when the run is an interval old.
    assert control.pending_scale_downs(held) == (control.PendingScaleDown("src", 3, 3600.0),)
    history = replay_history(policy, snaps[:-1])
    applied = policy.decide(snaps[-1], history)  # t = 3600
    assert applied.parallelism()["src"] == 3
    assert applied.vertices[0].numbers["max_recommended_in_interval"] == 3


def test_a_recommendation_at_or_above_current_restarts_the_scale_down_interval() -> None:
    low = [source_only(60.0 * i, 4, 1000.0, ms_per_record=0.2) for i in range(61)]
    high = source_only(60.0 * 30, 4, 19000.0, ms_per_record=0.2)  # recommends >= 4 at t = 1800
    snaps = [*low[:30], high, *low[31:]]
    policy = make_policy("flink-operator", FAST)
    decision = policy.decide(snaps[-1], replay_history(policy, snaps[:-1]))
    assert decision.parallelism()["src"] == 4  # the run began again at t = 1860: 1740 s < 3600 s


@pytest.mark.parametrize(("partitions", "expected"), [(8, 8), (12, 6), (4, 4), (5, 5)])
def test_source_partition_alignment_and_cap(partitions: int, expected: int) -> None:
    # p=2 saturated at 2000/s with lag growing 600/s: target 2600, capacity 433.3 + 3714.3 = 4147.6 ->
    # factor 2.07 -> ceil(4.15) = 5. Up to a divisor of the partition count within [5, partitions], else
    # down; never above the partition count.
    snap = source_only(0.0, 2, 2000.0, ms_per_record=1.0, lag_rate=600.0, partitions=partitions)
    assert by_id(decide(snap))["src"] == expected


def test_keyed_vertex_aligns_to_a_divisor_of_max_parallelism() -> None:
    # window TPR 5000 at p=1; 9000/s arrive (source p=2 reads them): target 9000, capacity 1500 + 12857.1
    # -> factor 2.87 -> p 3 -> 4 divides 128.
    snap = clickstream(0.0, arrival=9000.0, p_src=2, lag=0.0)
    decision = decide(snap)
    assert by_id(decision)["win"] == 4


def test_vertex_max_parallelism_caps() -> None:
    snap = source_only(0.0, 2, 2000.0, ms_per_record=1.0, lag_rate=4000.0)
    assert by_id(decide(snap, **{"job.autoscaler.vertex.max-parallelism": "6"}))["src"] == 6


@pytest.mark.parametrize(("gc_ms", "heap", "threshold_key", "blocked"), [
    (400.0, 0.5, "job.autoscaler.memory.gc-pressure.threshold", True),
    (400.0, 0.5, None, False),  # defaults are 1.0: never blocks
    (10.0, 0.95, "job.autoscaler.memory.heap-usage.threshold", True),
])
def test_gc_and_heap_pressure_block_all_scaling(gc_ms: float, heap: float, threshold_key: str | None,
                                                blocked: bool) -> None:
    snap = clickstream(0.0, arrival=6000.0, lag=180000.0, jvm=JvmPressure(heap, gc_ms))
    decision = decide(snap, **({threshold_key: "0.3" if "gc" in threshold_key else "0.9"} if threshold_key else {}))
    assert (decision.blocked_reason is not None) == blocked
    assert decision.rescale != blocked


def test_stabilization_and_full_metrics_window_are_required() -> None:
    first = clickstream(0.0, arrival=6000.0, lag=60000.0)
    stabilizing = decide(clickstream(120.0, arrival=6000.0, lag=180000.0), history_of(first))
    assert stabilizing.blocked_reason and "stabiliz" in stabilizing.blocked_reason
    partial = decide(clickstream(600.0, arrival=6000.0, lag=600000.0), history_of(first))
    assert partial.blocked_reason and "window not full" in partial.blocked_reason
    assert not partial.rescale


def test_a_window_of_jittered_live_samples_counts_as_full() -> None:
    # A live loop samples every ~5.2 s, not 5 s: the snapshot straddling the window's start is left out, so exact
    # coverage stays 15.6 s of a 20 s window for ever. Within one sampling interval the window is full.
    settings = {"job.autoscaler.stabilization.interval": "0", "job.autoscaler.metrics.window": "20s"}
    samples = [replace(clickstream(5.2 * k, arrival=6000.0, lag=1000.0 * k), window_seconds=5.2) for k in range(12)]
    decision = decide(samples[-1], history_of(*samples[:-1]), **settings)
    assert not (decision.blocked_reason or "").startswith("metrics window not full"), decision.blocked_reason
    assert decision.rescale
    # With only two samples (10.4 s of 20 s) it still holds.
    early = decide(samples[2], history_of(*samples[:2]), **settings)
    assert early.blocked_reason and "window not full" in early.blocked_reason


def _scale_up_record(ts: float, old: int, new: int, tpr: float, expected: float) -> Decision:
    """The decision of an applied operator scale-up, as the operator's scaling history keeps it."""
    return Decision(ts, "flink-operator", (VertexDecision("src", "src", old, new, "scale-up", {
        "true_processing_rate": tpr, "expected_processing_rate": expected}),))


@pytest.mark.parametrize(("tpr_after", "enabled", "blocked"), [
    (2000.0, "true", True),     # gained 0 of the 2000/s expected (< 10%): blocked
    (2150.0, "true", True),     # 150 of 2000 = 7.5%: blocked
    (2250.0, "true", False),    # 250 of 2000 = 12.5%: effective
    (2000.0, "false", False),   # detection off (the default): reported, not blocked
])
def test_ineffective_scale_up_detection(tpr_after: float, enabled: str, blocked: bool) -> None:
    # Scaled 2 -> 4 at t = 540 expecting EXPECTED_PROCESSING_RATE 4000 from a TPR of 2000; now at p = 4 the
    # source reads 2000/s fully busy on its busiest subtask while the lag keeps growing 4000/s.
    busy = 2000.0 / tpr_after * 1000.0
    after = [job(60.0 * i, vertex("src", 4, rate_in=2000.0, busy_max=busy, lag_rate=4000.0, source=True))
             for i in range(10, 20)]
    history = history_of(*after[:-1])
    history = History(history.snapshots, (_scale_up_record(540.0, 2, 4, 2000.0, 4000.0),), history.rescales)
    decision = decide(after[-1], history, **FAST, **{"job.autoscaler.scaling.effectiveness.detection.enabled": enabled})
    assert numbers(decision, "src")["expected_tpr_gain"] == pytest.approx(2000.0)
    assert numbers(decision, "src")["actual_tpr_gain"] == pytest.approx(tpr_after - 2000.0)
    assert (by_id(decision)["src"] == 4) is blocked
    assert ("ineffective" in decision.vertices[0].reason) is blocked


def test_expected_processing_rate_is_the_capped_target_capacity() -> None:
    # p=2 saturated at 2000/s, lag growing 4000/s: factor 4.786 clamped to 1 + 0.5 -> expected 2000 x 1.5.
    snap = source_only(0.0, 2, 2000.0, ms_per_record=1.0, lag_rate=4000.0)
    decision = decide(snap, **{"job.autoscaler.scale-up.max-factor": "0.5"})
    assert numbers(decision, "src")["expected_processing_rate"] == pytest.approx(3000.0)


def test_scaling_disabled_recommends_only() -> None:
    decision = decide(clickstream(0.0, arrival=6000.0, lag=180000.0), **{"job.autoscaler.scaling.enabled": "false"})
    assert decision.blocked_reason and not decision.rescale
    assert by_id(decision) == {"src": 1, "win": 1, "sink": 1}
    assert "would set 2" in decision.vertices[1].reason


def test_idle_vertex_has_infinite_tpr() -> None:
    snap = source_only(0.0, 4, 1000.0, ms_per_record=0.0)
    assert math.isinf(numbers(decide(snap), "src")["true_processing_rate"])


@pytest.mark.parametrize(("key", "value"), [
    ("job.autoscaler.utilization.target", "1.7"),
    ("job.autoscaler.metrics.window", "soon"),
    ("job.autoscaler.vertex.max-parallelism", "0"),
    ("job.autoscaler.no-such-option", "1"),
])
def test_bad_settings_name_the_key(key: str, value: str) -> None:
    with pytest.raises(InputError) as info:
        make_policy("flink-operator", {key: value})
    assert info.value.field == key


def test_legacy_operator_prefix_is_accepted() -> None:
    policy = make_policy("flink-operator", {"kubernetes.operator.job.autoscaler.utilization.target": "0.5"})
    assert policy.settings.utilization_target == 0.5  # type: ignore[attr-defined]


# --- rules checked against the released operator (1.16) -------------------------------------------

@pytest.mark.parametrize(("mode", "current", "new", "groups", "expected"), [
    # Scale-up 4 -> 7 over 128 key groups: 8 divides; BALANCED would also take a lower share first:
    # 128 // 7 = 18, 128 // 8 = 16 -> 8 either way.
    ("EVENLY_SPREAD", 4, 7, 128, 8),
    ("BALANCED", 4, 7, 128, 8),
    ("OFF", 4, 7, 128, 7),
    # 720 key groups, 4 -> 25: divisors 30 (EVENLY); BALANCED takes 26 (720 // 26 = 27 < 720 // 25 = 28).
    ("EVENLY_SPREAD", 4, 25, 720, 30),
    ("BALANCED", 4, 25, 720, 26),
    # Scale-down 10 -> 7 over 24 partitions: region [7, 10]: 8 divides.
    ("EVENLY_SPREAD", 10, 7, 24, 8),
    # Scale-down 10 -> 7 over 23 (prime) partitions: no divisor in [7, 10]; the new modes keep the target,
    # BALANCED first takes 8 (23 // 8 = 2 < 23 // 7 = 3).
    ("EVENLY_SPREAD", 10, 7, 23, 7),
    ("BALANCED", 10, 7, 23, 8),
    # The legacy key falls back downward and blocks a direction change: 23 over [7, 10] finds nothing, the
    # fallback steps down to 6 (23 // 6 = 3 = 23 // 7, 23 // 5 = 4 > 3 -> 5 + 1 = 6): still a scale-down.
    ("LEGACY_EVENLY_SPREAD", 10, 7, 23, 6),
    # Scale-up 5 -> 6 over 7 groups capped at 6 by the upper limit: no divisor in [6, 6]; fallback from 6
    # lands on 4 (7 // 3 = 2 > 1), below current: blocked, keeps 5.
    ("LEGACY_EVENLY_SPREAD", 5, 6, 7, 5),
])
def test_alignment_modes(mode: str, current: int, new: int, groups: int, expected: int) -> None:
    assert align_parallelism(mode, current, new, groups, 1, 6 if groups == 7 else 10_000) == expected


def test_alignment_mode_settings_resolve_new_key_first() -> None:
    from flinkscale.core.policy.flink_operator import FlinkOperatorSettings

    assert FlinkOperatorSettings.from_mapping({}).alignment_mode == "BALANCED"
    legacy = {"job.autoscaler.scaling.key-group.partitions.adjust.mode": "MAXIMIZE_UTILISATION"}
    assert FlinkOperatorSettings.from_mapping(legacy).alignment_mode == "LEGACY_MAXIMIZE_UTILISATION"
    both = {**legacy, "job.autoscaler.scaling.parallelism-alignment.mode": "OFF"}
    assert FlinkOperatorSettings.from_mapping(both).alignment_mode == "OFF"
    with pytest.raises(InputError) as error:
        FlinkOperatorSettings.from_mapping({"job.autoscaler.scaling.parallelism-alignment.mode": "SOMETIMES"})
    assert error.value.field == "job.autoscaler.scaling.parallelism-alignment.mode"


def test_vertex_limits_always_admit_the_current_parallelism() -> None:
    # p = 8 with vertex.max-parallelism 4 and a need for more: the upper limit is max(8, 4) = 8, not 4, so
    # the operator never forces a scale-down below what runs; min-parallelism 10 likewise admits 8.
    snap = source_only(0.0, 8, 8000.0, ms_per_record=1.0, lag_rate=8000.0)
    decision = decide(snap, **{"job.autoscaler.vertex.max-parallelism": "4"})
    assert by_id(decision)["src"] == 8
    calm = source_only(0.0, 8, 1000.0, ms_per_record=0.1)
    held = decide(calm, **{"job.autoscaler.vertex.min-parallelism": "10", "job.autoscaler.scale-down.interval": "0"})
    assert by_id(held)["src"] <= 8


def test_zero_input_with_busy_time_is_infinite_tpr_not_a_crash() -> None:
    # A non-source vertex that received nothing but reports busy time (a timer, a flush): TPR = infinity.
    snap = job(0.0, vertex("src", 2, rate_in=1000.0, busy_max=500.0, source=True),
               vertex("win", 4, rate_in=0.0, rate_out=0.0, busy_max=300.0), edges=(("src", "win", "HASH"),))
    decision = decide(snap)
    assert math.isinf(numbers(decision, "win")["true_processing_rate"])


def test_missing_busy_time_uses_the_observed_rate() -> None:
    # No busy time at all (older connectors): a lagging, backpressured source still has an observed TPR.
    snaps = [job(60.0 * i, vertex("src", 1, rate_in=1000.0, busy_max=None, lag=60000.0, back_pressured=500.0,
                                 source=True)) for i in range(3)]
    decision = decide(snaps[-1], history_of(*snaps[:-1]), **FAST)
    assert numbers(decision, "src")["true_processing_rate"] == pytest.approx(2000.0)
    assert "observed" in decision.vertices[0].reason


def test_backlog_is_lag_over_the_input_rate_and_sets_bounds_one_and_zero() -> None:
    # Lag 400,000 read at 1000/s = 400 s > 300 s (although it arrives at 2000/s: 200 s of arrivals).
    snap = source_only(0.0, 4, 1000.0, ms_per_record=0.2, lag=400000.0, lag_rate=1000.0)
    src = numbers(decide(snap), "src")
    assert src["lag_seconds"] == pytest.approx(400.0)
    assert math.isinf(src["scale_down_threshold"])
    assert src["scale_up_threshold"] == round(400000 / 1800 + 2000 / 1.0)


@pytest.mark.parametrize(("utilization", "expected"), [(1.4, 1000.0), (-0.2, math.inf), (0.0, math.inf),
                                                        (0.5, 2000.0)])
def test_utilization_is_clamped_to_zero_one(utilization: float, expected: float) -> None:
    assert target_capacity(1000.0, 0.0, utilization, 0.0, 1800.0) == expected


@pytest.mark.parametrize(("summaries", "expected"), [
    ([], 1.0),
    ([(2, 2000.0), (4, 4000.0)], 1.0),                   # fewer than 3 observations: linear
    ([(1, 1000.0), (2, 2000.0), (4, 4000.0)], 1.0),       # linear
    ([(1, 1000.0), (2, 1600.0), (4, 2400.0)], 0.66),      # (1000 + 3200 + 9600) / (21 x 1000) = 0.657.. -> 0.66
    ([(1, 1000.0), (2, 1000.0), (4, 1000.0)], 0.5),       # 7000 / 21000 = 0.33 -> clamped to 0.5
])
def test_observed_scaling_coefficient(summaries: list[tuple[int, float]], expected: float) -> None:
    assert observed_scaling_coefficient(summaries, 3, 0.5) == expected
