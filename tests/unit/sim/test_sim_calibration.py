"""Step response (the calibration helper) and peak provisioning, against closed forms."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from flinkscale.core.sim.calibration import catch_up_seconds, pipeline_capacity, step_response
from flinkscale.core.sim.model import SimEdge, SimPipeline, SimVertex
from flinkscale.core.sim.provisioning import peak_parallelism
from flinkscale.core.snapshot import ShipStrategy

Chain = Callable[..., SimPipeline]


@pytest.mark.parametrize(("base", "burst", "capacity", "pulse"),
                         [(500.0, 1500.0, 1000.0, 120.0), (200.0, 900.0, 800.0, 300.0), (0.0, 2000.0, 1000.0, 60.0)])
def test_a_pulse_peaks_at_excess_times_duration_and_recovers_in_closed_form(
        chain: Chain, base: float, burst: float, capacity: float, pulse: float) -> None:
    # One vertex of capacity c: during the pulse the lag grows at (R - c); afterwards it drains at (c - r0).
    response = step_response(chain(capacity / 4, parallelism=4), rate_before=base, rate_during=burst,
                             step_at_seconds=100.0, pulse_seconds=pulse, duration_seconds=3600.0, recovered_lag=0.0)
    backlog = (burst - capacity) * pulse
    assert response.peak_lag_records == pytest.approx(backlog)
    assert response.peak_at_seconds == pytest.approx(100.0 + pulse)
    assert response.time_to_recover_seconds == pytest.approx(pulse + backlog / (capacity - base), abs=1.0)


def test_a_step_beyond_capacity_never_recovers(chain: Chain) -> None:
    response = step_response(chain(100.0, parallelism=2), rate_before=100.0, rate_during=300.0,
                             step_at_seconds=60.0, duration_seconds=600.0)
    assert response.time_to_recover_seconds is None
    assert response.peak_lag_records == pytest.approx((300.0 - 200.0) * 540)


def test_a_step_within_capacity_builds_no_lag(chain: Chain) -> None:
    response = step_response(chain(1000.0, 500.0, parallelism=2), rate_before=200.0, rate_during=900.0,
                             step_at_seconds=60.0, duration_seconds=600.0)
    assert response.peak_lag_records <= 1e-9
    assert response.time_to_recover_seconds is not None


def test_catch_up_closed_form() -> None:
    assert catch_up_seconds(800.0, 120.0, 1000.0) == pytest.approx(480.0)
    assert math.isinf(catch_up_seconds(1000.0, 1.0, 1000.0))


def test_pipeline_capacity_is_the_slowest_vertex(chain: Chain) -> None:
    pipeline = chain(1000.0, 100.0, 300.0, parallelism=(2, 8, 4), selectivity=0.5)
    # v1 sees 0.5 of the source rate: 8 x 100 / 0.5 = 1600; v2 sees 0.25: 4 x 300 / 0.25 = 4800; v0: 2000.
    assert pipeline_capacity(pipeline) == pytest.approx(1600.0)


@pytest.mark.parametrize(("max_parallelism", "rate", "capacity", "utilization"),
                         [(128, 9600.0, 100.0, 1.0), (720, 40_000.0, 90.0, 0.8), (128, 1000.0, 100.0, 0.7)])
def test_peak_provisioning_of_a_keyed_vertex_is_the_smallest_p_whose_busiest_subtask_fits(
        max_parallelism: int, rate: float, capacity: float, utilization: float) -> None:
    pipeline = SimPipeline(
        (SimVertex("src", 1, 1e9, is_source=True, max_parallelism=max_parallelism),
         SimVertex("keyed", 1, capacity, max_parallelism=max_parallelism)),
        (SimEdge("src", "keyed", ShipStrategy.HASH),))

    def fits(p: int) -> bool:
        # Uniform keys: the busiest subtask owns ceil(maxP / p) key groups of 1/maxP each.
        return rate * math.ceil(max_parallelism / p) / max_parallelism <= capacity * utilization

    expected = next(p for p in range(1, max_parallelism + 1) if fits(p))
    assert peak_parallelism(pipeline, rate, utilization)["keyed"] == expected


def test_peak_provisioning_of_a_source_counts_partitions_per_reader() -> None:
    pipeline = SimPipeline((SimVertex("src", 1, 4000.0, is_source=True, partitions=240, max_parallelism=720),))
    # Smallest p with ceil(240 / p) / 240 x 44,000 <= 3,200: ceil(240/p) <= 17 -> p = 15.
    assert peak_parallelism(pipeline, 44_000.0, 0.8)["src"] == 15


def test_a_snapshot_of_a_simulated_job_gives_back_its_capacities_and_selectivities(scripted: type) -> None:
    from flinkscale.core.sim.calibration import pipeline_from_snapshot
    from flinkscale.core.sim.run import SimConfig, simulate

    original = SimPipeline(
        (SimVertex("src", 4, 5000.0, is_source=True, partitions=8),
         SimVertex("parse", 6, 400.0),
         SimVertex("agg", 5, 900.0, max_parallelism=120),
         SimVertex("sink", 2, 3000.0)),
        (SimEdge("src", "parse", ShipStrategy.REBALANCE, 1.0),
         SimEdge("parse", "agg", ShipStrategy.HASH, 0.8),
         SimEdge("agg", "sink", ShipStrategy.REBALANCE, 0.25)))
    policy = scripted()
    simulate(original, np.full(600, 1500.0), policy, SimConfig(duration_seconds=600))
    snapshot, _ = policy.seen[-1]
    rebuilt = pipeline_from_snapshot(snapshot)
    for vertex in original.vertices:
        assert rebuilt.vertex(vertex.id).capacity == pytest.approx(vertex.capacity, rel=1e-6)
        assert rebuilt.vertex(vertex.id).max_parallelism == vertex.max_parallelism
    for before, after in zip(original.edges, rebuilt.edges, strict=True):
        assert after.ship_strategy is before.ship_strategy
        assert after.selectivity == pytest.approx(before.selectivity, rel=1e-3)


def test_a_recorded_snapshot_becomes_a_pipeline_for_a_step_response() -> None:
    import json
    from pathlib import Path

    from flinkscale.core.sim.calibration import pipeline_from_snapshot
    from flinkscale.core.snapshot import MetricsSnapshot

    path = Path(__file__).resolve().parents[3] / "examples" / "snapshots" / "clickstream-p1-steady.json"
    snapshot = MetricsSnapshot.from_dict(json.loads(path.read_text()))
    pipeline = pipeline_from_snapshot(snapshot)
    for vertex in snapshot.vertices:
        rate = vertex.metrics.num_records_in_per_second
        busy = vertex.metrics.busy_time_ms_per_second_avg
        assert rate is not None and busy is not None
        assert pipeline.vertex(vertex.id).capacity == pytest.approx(rate / (vertex.parallelism * busy / 1000))
    capacity = pipeline_capacity(pipeline)
    response = step_response(pipeline, rate_before=0.5 * capacity, rate_during=1.5 * capacity,
                             step_at_seconds=60, pulse_seconds=60, duration_seconds=1200, recovered_lag=0.0)
    # Excess 0.5c for 60 s, drained at 0.5c: a backlog of 30c records, back to zero 60 s after the pulse ends.
    # The bottleneck's input buffer (4 s of its capacity) holds part of the backlog instead of the source.
    backlog = 0.5 * capacity * 60
    assert backlog - 4 * capacity <= response.peak_lag_records <= backlog
    assert response.time_to_recover_seconds == pytest.approx(120.0, abs=4.0)
