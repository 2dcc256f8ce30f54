"""flink-operator: one test per rule of the operator's autoscaler; expected values worked out by hand from
the formulas in anchors.md section 1 (u = 0.7 +- 0.3, restart 300 s, catch-up 1800 s unless set)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from policy_snapshots import clickstream, history_of, job, vertex

from flinkscale.core.errors import InputError
from flinkscale.core.policy import History, make_policy, replay_history
from flinkscale.core.policy.base import Decision
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
    assert win["target_capacity"] == pytest.approx(100 + 6000 * 300 / 1800 + 6000 / 0.7)
    assert win["scale_up_threshold"] == pytest.approx(100 + 6000 / 1.0)
    assert win["scale_down_threshold"] == pytest.approx(100 + 6000 * 300 / 1800 + 6000 / 0.4)
    assert win["scale_factor"] == pytest.approx((100 + 1000 + 6000 / 0.7) / 5000)
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
    (400000.0, "1", 4),   # 400 s of lag: backlog mode, no scale-down
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


def test_ineffective_scale_up_blocks_further_scale_up_when_detection_is_on() -> None:
    # Scaled 2 -> 4 at t = 600 but the TPR stayed 2000/s (expected 4000): gain 0 < 10% of 2000.
    before = [source_only(60.0 * i, 2, 2000.0, ms_per_record=1.0, lag_rate=4000.0) for i in range(10)]
    after = [job(60.0 * i, vertex("src", 4, rate_in=2000.0, busy_max=1000.0, busy_avg=500.0, lag_rate=4000.0,
                                  source=True)) for i in range(10, 20)]
    on = {**FAST, "job.autoscaler.scaling.effectiveness.detection.enabled": "true"}
    blocked = decide(after[-1], history_of(*before, *after[:-1]), **on)
    assert by_id(blocked)["src"] == 4
    assert "ineffective" in blocked.vertices[0].reason
    assert by_id(decide(after[-1], history_of(*before, *after[:-1]), **FAST))["src"] > 4


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
