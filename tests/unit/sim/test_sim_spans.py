"""``JobModel.advance`` (many steps at once while the job flows freely) against ``JobModel.step`` one by one.

The fast path must be the same model, not a second one: on random jobs (random DAGs with every ship
strategy, forward pairs, several sources, key skew, selectivities) under random load that sometimes fits and
sometimes floods a vertex, a model advanced span by span (falling back to steps where ``advance`` declines)
and a model stepped one by one must agree on everything the run loop and the snapshots read: every queue, the
pending records after each step, the per-vertex totals and the metrics window. They may differ only in the
order of floating-point additions, hence the relative tolerance of 1e-9 (observed differences are ~1e-15).
The same holds for whole simulations, decisions and rescales included.
"""

from __future__ import annotations

import numpy as np
import pytest

from flinkscale.core.policy.registry import make_policy
from flinkscale.core.sim.engine import JobModel
from flinkscale.core.sim.keyload import KeyDistribution
from flinkscale.core.sim.model import ClusterSpec, RescaleSpec, SimEdge, SimPipeline, SimVertex
from flinkscale.core.sim.run import SimConfig, simulate
from flinkscale.core.snapshot import ShipStrategy

RTOL = 1e-9
SHIPS = (ShipStrategy.REBALANCE, ShipStrategy.HASH, ShipStrategy.FORWARD, ShipStrategy.BROADCAST,
         ShipStrategy.GLOBAL, ShipStrategy.RESCALE)


def random_job(rng: np.random.Generator) -> SimPipeline:
    """2-7 vertices, 1-2 sources, each later vertex fed by 1-2 earlier ones; forward edges where the
    parallelism matches (half of them made to match)."""
    n = int(rng.integers(2, 8))
    n_sources = 1 if n < 4 else int(rng.integers(1, 3))
    parallelism = [int(rng.integers(1, 6)) for _ in range(n)]
    vertices: list[SimVertex] = []
    edges: list[SimEdge] = []
    for i in range(n):
        if i >= n_sources:
            inputs = sorted({int(x) for x in rng.integers(0, i, size=int(rng.integers(1, 3)))})
            for u in inputs:
                ship = SHIPS[int(rng.integers(0, len(SHIPS)))]
                if ship is ShipStrategy.FORWARD and rng.random() < 0.5:
                    parallelism[i] = parallelism[u]
                keys = KeyDistribution("zipf", int(rng.integers(10, 5000)), float(rng.uniform(0.3, 1.2))) \
                    if ship is ShipStrategy.HASH and rng.random() < 0.7 else KeyDistribution()
                edges.append(SimEdge(f"v{u}", f"v{i}", ship, float(rng.uniform(0.2, 2.0)), keys))
        vertices.append(SimVertex(id=f"v{i}", parallelism=parallelism[i], capacity=float(rng.uniform(200, 3000)),
                                  max_parallelism=int(rng.choice([16, 32, 128])), is_source=i < n_sources,
                                  partitions=int(rng.integers(1, 12)) if i < n_sources else None))
    return SimPipeline(tuple(vertices), tuple(edges))


def random_load(rng: np.random.Generator, steps: int) -> np.ndarray:
    """Records per step: mostly a level the job may carry, with floods that overflow some buffer."""
    level = float(rng.uniform(50, 1500))
    load = level * (1 + 0.1 * rng.standard_normal(steps)).clip(0)
    for _ in range(int(rng.integers(0, 3))):
        start = int(rng.integers(0, steps))
        load[start:start + int(rng.integers(5, 40))] *= float(rng.uniform(2, 20))
    return load


def assert_same_state(fast: JobModel, slow: JobModel) -> None:
    np.testing.assert_allclose(fast.queue, slow.queue, rtol=RTOL, atol=1e-9)
    for name in ("processed_total", "arrived_total", "discarded_total", "replayed_total"):
        np.testing.assert_allclose(getattr(fast, name), getattr(slow, name), rtol=RTOL, atol=1e-9, err_msg=name)
    assert fast.admitted_total == pytest.approx(slow.admitted_total, rel=RTOL)
    a, b = fast.window(), slow.window()
    assert (a is None) == (b is None)
    if a is not None and b is not None:
        assert a.seconds == b.seconds
        np.testing.assert_allclose(a.processed, b.processed, rtol=RTOL, atol=1e-9)
        np.testing.assert_allclose(a.wanted, b.wanted, rtol=RTOL, atol=1e-9)
        assert a.admitted == pytest.approx(b.admitted, rel=RTOL)


def test_advance_agrees_with_step_by_step_on_random_jobs() -> None:
    spans_taken = spans_declined = 0
    for seed in range(120):
        rng = np.random.default_rng(seed)
        job = random_job(rng)
        window = float(rng.choice([5.0, 20.0, 60.0]))
        fast = JobModel(job, metrics_window_seconds=window)
        slow = JobModel(job, metrics_window_seconds=window)
        load = random_load(rng, 300)
        t = 0
        while t < len(load):
            end = min(len(load), t + int(rng.integers(1, 70)))
            pending = fast.advance(load[t:end])
            if pending is None:
                spans_declined += 1
                for records in load[t:end]:
                    fast.step(float(records))
            else:
                spans_taken += 1
            for k in range(t, end):
                slow.step(float(load[k]))
                if pending is not None:
                    assert pending[k - t] == pytest.approx(slow.source_pending(), rel=RTOL, abs=1e-9), (seed, k)
            assert_same_state(fast, slow)
            if rng.random() < 0.1:  # a rescale in between: the layout (and the forward pairing) changes
                new = {v.id: int(rng.integers(1, 6)) for v in job.vertices}
                fast.rescale(new)
                slow.rescale(new)
            t = end
    # Both paths must have been exercised, or the comparison says nothing.
    assert spans_taken > 200 and spans_declined > 50, (spans_taken, spans_declined)


def test_a_declined_span_leaves_the_model_untouched() -> None:
    job = SimPipeline((SimVertex("src", 2, 1000.0, is_source=True, partitions=4), SimVertex("slow", 1, 100.0)),
                      (SimEdge("src", "slow"),))
    model = JobModel(job)
    model.step(50.0)
    before = (model.queue.copy(), model.processed_total.copy(), model.ring_processed.copy(), model.ring_index)
    assert model.advance(np.full(30, 2000.0)) is None  # floods the slow vertex's buffer
    assert np.array_equal(model.queue, before[0]) and np.array_equal(model.processed_total, before[1])
    assert np.array_equal(model.ring_processed, before[2]) and model.ring_index == before[3]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("policy", ["flinkscale", "flink-operator"])
def test_simulations_agree_with_and_without_spans(seed: int, policy: str) -> None:
    rng = np.random.default_rng(1000 + seed)
    job = random_job(rng)
    steps = 1800
    # A diurnal-like swell with noise and a flood, so that policies rescale and the fast path both
    # applies and declines.
    base = float(rng.uniform(100, 800))
    rates = base * (1.5 + np.sin(np.linspace(0, 3 * np.pi, steps))) * (1 + 0.05 * rng.standard_normal(steps))
    start = int(rng.integers(0, steps - 100))
    rates[start:start + 60] *= 4
    config = SimConfig(duration_seconds=steps, cluster=ClusterSpec(max_slots=200),
                       rescale=RescaleSpec(restart_seconds=float(rng.uniform(5, 60)),
                                           mode=str(rng.choice(["savepoint", "checkpoint"]))))
    fast = simulate(job, rates.clip(0), make_policy(policy, {}), config)
    slow = simulate(job, rates.clip(0), make_policy(policy, {}), config, step_by_step=True)
    a, b = fast.outcome, slow.outcome
    assert a.rescales == b.rescales and a.final_parallelism == b.final_parallelism
    assert a.core_hours == b.core_hours and a.seconds_over_target == b.seconds_over_target
    for name in ("peak_lag_records", "records_written", "records_dropped", "records_replayed"):
        assert getattr(a, name) == pytest.approx(getattr(b, name), rel=RTOL, abs=1e-6), name
    for name in ("arrived", "processed", "queued", "discarded"):
        mine, theirs = getattr(a, name), getattr(b, name)
        assert mine.keys() == theirs.keys()
        for vertex in mine:
            assert mine[vertex] == pytest.approx(theirs[vertex], rel=RTOL, abs=1e-6), (name, vertex)
    np.testing.assert_allclose(fast.lag_records, slow.lag_records, rtol=RTOL, atol=1e-6)
    assert [d.parallelism() for d in fast.history.decisions] == [d.parallelism() for d in slow.history.decisions]
