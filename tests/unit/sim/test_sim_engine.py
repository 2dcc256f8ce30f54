"""The step model: conservation, backpressure, skew-bound throughput, Flink's time metrics."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flinkscale.core.errors import InputError
from flinkscale.core.sim.engine import JobModel
from flinkscale.core.sim.keyload import KeyDistribution, imbalance, key_group_weights, subtask_shares
from flinkscale.core.sim.model import SimEdge, SimPipeline, SimVertex
from flinkscale.core.snapshot import ShipStrategy

Chain = Callable[..., SimPipeline]

SHIPS = [ShipStrategy.REBALANCE, ShipStrategy.HASH, ShipStrategy.FORWARD, ShipStrategy.BROADCAST,
         ShipStrategy.GLOBAL, ShipStrategy.RESCALE]


def run(model: JobModel, rates: list[float]) -> None:
    for rate in rates:
        model.step(rate * model.dt)


@st.composite
def pipelines(draw: st.DrawFn) -> SimPipeline:
    length = draw(st.integers(1, 5))
    vertices = tuple(SimVertex(id=f"v{i}", parallelism=draw(st.integers(1, 12)),
                               capacity=draw(st.floats(10, 5000)), max_parallelism=24, is_source=i == 0,
                               partitions=draw(st.one_of(st.none(), st.integers(1, 16))) if i == 0 else None)
                     for i in range(length))
    edges = tuple(SimEdge(f"v{i}", f"v{i + 1}", draw(st.sampled_from(SHIPS)), draw(st.floats(0.2, 2.0)),
                          KeyDistribution("zipf", draw(st.integers(1, 500)), draw(st.floats(0, 2))))
                  for i in range(length - 1))
    return SimPipeline(vertices, edges)


@given(pipeline=pipelines(), rates=st.lists(st.floats(0, 20_000), min_size=1, max_size=40),
       rescale_to=st.integers(1, 12), from_checkpoint=st.booleans(), checkpoint_after=st.integers(0, 40))
@settings(max_examples=80, deadline=None)
def test_conservation_every_vertex_arrived_equals_processed_plus_queued_plus_discarded(
        pipeline: SimPipeline, rates: list[float], rescale_to: int, from_checkpoint: bool,
        checkpoint_after: int) -> None:
    model = JobModel(pipeline, step_seconds=1.0, buffer_seconds=3.0)
    run(model, rates[:checkpoint_after])
    model.mark_checkpoint()
    run(model, rates[checkpoint_after:])
    # From a savepoint buffered records move with the rescale; from a checkpoint they are dropped and re-read.
    model.rescale({pipeline.vertices[-1].id: rescale_to}, restore_from_checkpoint=from_checkpoint)
    run(model, rates)
    arrived, processed = model.arrived_per_vertex(), model.processed_per_vertex()
    discarded = model.discarded_per_vertex()
    queued = dict(zip([v.id for v in model.vertices], model.queued_per_vertex(), strict=True))
    assert model.admitted_total == pytest.approx(2 * sum(rates))
    for vid in arrived:
        assert arrived[vid] == pytest.approx(processed[vid] + queued[vid] + discarded[vid], rel=1e-9, abs=1e-6)
    assert np.all(model.queue >= -1e-9)
    if not from_checkpoint:
        assert sum(discarded.values()) == 0.0 and float(model.replayed_total.sum()) == 0.0


def test_records_in_equal_out_plus_buffered_along_a_chain(chain: Chain) -> None:
    # Selectivity 1: every record offered is written by the sink, still in a buffer, or pending at the source.
    model = JobModel(chain(5000.0, 300.0, 200.0, parallelism=2), buffer_seconds=4.0)
    run(model, [800.0] * 120)
    written = model.processed_per_vertex()["v2"]
    assert pytest.approx(written + float(model.queue.sum())) == 800.0 * 120


def test_buffers_stay_bounded(chain: Chain) -> None:
    model = JobModel(chain(10_000.0, 100.0, parallelism=3), buffer_seconds=4.0)
    run(model, [5_000.0] * 200)
    non_source = model.queue[model.n_source_subtasks:]
    assert np.all(non_source <= model.queue_max[model.n_source_subtasks:] + 1e-9)


def test_a_slow_downstream_vertex_backpressures_upstream_and_the_source_lags(chain: Chain) -> None:
    # Sink: 2 subtasks x 400/s = 800/s for 1,000/s offered; the source could read 4 x 1,000/s.
    model = JobModel(chain(1000.0, 2000.0, 400.0, parallelism=(4, 2, 2)), metrics_window_seconds=60)
    run(model, [1000.0] * 300)
    window = model.window()
    assert window is not None
    sink_rate = window.processed[model.seg_start[2]:].sum() / window.seconds
    assert sink_rate == pytest.approx(800.0, rel=1e-3)
    # The lag grows at offered - sink capacity = 200/s once the buffers are full.
    lag_before = model.source_pending()
    run(model, [1000.0] * 100)
    assert model.source_pending() - lag_before == pytest.approx(200.0 * 100, rel=1e-3)
    # Flink's time split: the sink is ~100% busy; the middle vertex and the source wait for output buffers.
    busy = window.processed / (model.capacity * window.seconds)
    backpressured = (window.wanted - window.processed) / (model.capacity * window.seconds)
    assert busy[model.seg_start[2]:].min() == pytest.approx(1.0, rel=1e-3)
    middle = slice(model.seg_start[1], model.seg_start[2])
    assert backpressured[middle].min() > 0.5   # has input, no room downstream: 1 - 800/4000 busy
    assert backpressured[: model.seg_start[1]].min() > 0.5


def test_without_a_bottleneck_nothing_is_backpressured_or_lagging(chain: Chain) -> None:
    model = JobModel(chain(1000.0, 500.0, 500.0, parallelism=(2, 4, 4)))
    run(model, [1200.0] * 200)
    window = model.window()
    assert window is not None
    assert np.allclose(window.wanted, window.processed)
    assert model.source_pending() < 1200.0 * 1.0 + 1e-6   # at most the records of the current step


@pytest.mark.parametrize(("max_parallelism", "parallelism"), [(128, 96), (128, 100), (120, 64)])
def test_an_unaligned_keyed_vertex_saturates_at_capacity_over_its_busiest_share(
        max_parallelism: int, parallelism: int) -> None:
    # The keyed vertex has p x c of total capacity, but its busiest subtask (share s_max) saturates when
    # rate x s_max = c, so the vertex sustains only c / s_max = p x c / imbalance.
    capacity = 100.0
    pipeline = SimPipeline(
        (SimVertex("src", parallelism=8, capacity=1e6, is_source=True, max_parallelism=max_parallelism),
         SimVertex("keyed", parallelism=parallelism, capacity=capacity, max_parallelism=max_parallelism)),
        (SimEdge("src", "keyed", ShipStrategy.HASH),))
    shares = subtask_shares(key_group_weights(KeyDistribution(), max_parallelism), parallelism)
    sustainable = capacity / shares.max()
    assert sustainable == pytest.approx(parallelism * capacity / imbalance(shares))
    model = JobModel(pipeline)
    run(model, [parallelism * capacity] * 400)   # exactly the total capacity: too much for the busiest subtask
    window = model.window()
    assert window is not None
    keyed = window.processed[model.seg_start[1]:].sum() / window.seconds
    assert keyed == pytest.approx(sustainable, rel=1e-3)


def test_forward_edges_keep_the_subtask_pairing() -> None:
    # Source partitions 3 over 2 readers: reader 0 gets 2/3 of the records; FORWARD keeps it on subtask 0.
    pipeline = SimPipeline(
        (SimVertex("src", parallelism=2, capacity=1e6, is_source=True, partitions=3),
         SimVertex("map", parallelism=2, capacity=1e6)),
        (SimEdge("src", "map", ShipStrategy.FORWARD),))
    model = JobModel(pipeline)
    run(model, [300.0] * 10)
    window = model.window()
    assert window is not None
    assert window.processed[2] / window.processed[3] == pytest.approx(2.0, rel=1e-6)


def test_broadcast_sends_every_record_to_every_subtask() -> None:
    pipeline = SimPipeline(
        (SimVertex("rules", parallelism=1, capacity=1e6, is_source=True),
         SimVertex("join", parallelism=5, capacity=1e6)),
        (SimEdge("rules", "join", ShipStrategy.BROADCAST),))
    model = JobModel(pipeline)
    run(model, [10.0] * 20)
    assert model.arrived_per_vertex()["join"] == pytest.approx(5 * model.processed_per_vertex()["rules"])


def test_selectivity_scales_downstream_records(chain: Chain) -> None:
    model = JobModel(chain(1e6, 1e6, selectivity=0.25))
    run(model, [1000.0] * 50)
    assert model.arrived_per_vertex()["v1"] == pytest.approx(0.25 * model.processed_per_vertex()["v0"])


def test_a_paused_step_processes_nothing_but_admits(chain: Chain) -> None:
    model = JobModel(chain(1e6, 1e6))
    model.step(500.0, processing=False)
    assert model.source_pending() == pytest.approx(500.0)
    assert model.processed_per_vertex()["v0"] == 0.0


def test_buffers_must_hold_two_steps(chain: Chain) -> None:
    with pytest.raises(InputError) as caught:
        JobModel(chain(1.0), step_seconds=1.0, buffer_seconds=1.5)
    assert caught.value.field == "buffer_seconds"


@given(rates=st.lists(st.floats(0, 5_000), min_size=1, max_size=30), skew=st.floats(0, 1.5),
       capacities=st.lists(st.floats(20, 2000), min_size=5, max_size=5))
@settings(max_examples=40, deadline=None)
def test_conservation_on_a_two_source_join_with_fan_out(rates: list[float], skew: float,
                                                          capacities: list[float]) -> None:
    # clicks -> enrich -+-> join (keyed) -> sink ; ads -> join ; enrich -> audit (broadcast fan-out)
    pipeline = SimPipeline(
        (SimVertex("clicks", 3, capacities[0], is_source=True, partitions=7),
         SimVertex("ads", 1, capacities[1], is_source=True),
         SimVertex("enrich", 4, capacities[2]),
         SimVertex("join", 5, capacities[3], max_parallelism=16),
         SimVertex("audit", 2, capacities[4]),
         SimVertex("sink", 2, 1e4)),
        (SimEdge("clicks", "enrich", ShipStrategy.FORWARD),
         SimEdge("enrich", "join", ShipStrategy.HASH, 0.9, KeyDistribution("zipf", 300, skew)),
         SimEdge("ads", "join", ShipStrategy.HASH, 1.0),
         SimEdge("enrich", "audit", ShipStrategy.BROADCAST, 0.1),
         SimEdge("join", "sink", ShipStrategy.GLOBAL, 0.5)))
    model = JobModel(pipeline, buffer_seconds=2.0)
    run(model, rates)
    model.rescale({"join": 3, "enrich": 2})
    run(model, rates)
    arrived, processed = model.arrived_per_vertex(), model.processed_per_vertex()
    queued = dict(zip([v.id for v in model.vertices], model.queued_per_vertex(), strict=True))
    for vid in arrived:
        assert arrived[vid] == pytest.approx(processed[vid] + queued[vid], rel=1e-9, abs=1e-6)
    assert arrived["clicks"] + arrived["ads"] == pytest.approx(model.admitted_total)
    assert np.all(model.queue >= -1e-9)
