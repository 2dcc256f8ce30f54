"""The policies' fast paths decide exactly what the per-vertex code they replaced decided.

Large jobs (1,000 vertices decided every minute for a day) made the evaluation maths the simulator's cost, so
it works on whole rows of vertices: ``window_metrics`` averages columns, the scale-down window propagates
every sample at once and keeps running sums per vertex, ``propagate_rates`` and the snapshot's graph queries
are computed once per graph instead of once per snapshot, ``layout_factor`` is cached. None of this may change
a number: the same additions happen in the same order. Here the straightforward per-vertex code (as it was
written before, kept below as the reference) is put back in place with ``monkeypatch`` and compared with the
fast paths on random jobs, random windows and whole simulations: decisions, reasons, numbers and outcomes
must be equal, not close.

The references add one value after the other from 0 (``_add_all``), which is what ``sum`` did on the floats
before Python 3.12 and what the code they stand for now does on every version.
"""

from __future__ import annotations

import functools
import json
import math
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

import numpy as np
import pytest

from flinkscale.core import snapshot as snapshot_module
from flinkscale.core.policy import _evaluate as ev
from flinkscale.core.policy.base import History
from flinkscale.core.policy.flinkscale import FlinkscalePolicy, _DownBlock
from flinkscale.core.policy.registry import make_policy
from flinkscale.core.sim.keyload import KeyDistribution
from flinkscale.core.sim.model import ClusterSpec, RescaleSpec, SimEdge, SimPipeline, SimVertex
from flinkscale.core.sim.run import SimConfig, SimRun, simulate
from flinkscale.core.snapshot import MetricsSnapshot, ShipStrategy, Vertex, VertexMetrics

SHIPS = (ShipStrategy.REBALANCE, ShipStrategy.HASH, ShipStrategy.FORWARD, ShipStrategy.BROADCAST,
         ShipStrategy.RESCALE)


# --- the reference: the per-vertex code the fast paths replaced ------------------------------------------

def _add_all(values: Iterable[float]) -> float:
    return functools.reduce(operator.add, values, 0)  # type: ignore[no-any-return]


def reference_window_mean(values: Iterable[tuple[float | None, float]]) -> float | None:
    known = [(v, w) for v, w in values if v is not None and not math.isnan(v)]
    if not known:
        return None
    total = _add_all(w for _, w in known if w > 0)
    if total <= 0:
        return _add_all(v for v, _ in known) / len(known)
    return _add_all(v * w for v, w in known if w > 0) / total


def reference_window_metrics(window: Sequence[MetricsSnapshot]) -> dict[str, ev.WindowMetrics]:
    latest = window[-1]
    result: dict[str, ev.WindowMetrics] = {}
    for vertex in latest.vertices:
        series = [(s.vertex(vertex.id), s.window_seconds) for s in window if s.has_vertex(vertex.id)]

        def mean(value: object, series: list[tuple[Vertex, float]] = series) -> float | None:
            return reference_window_mean((value(v), seconds) for v, seconds in series)  # type: ignore[operator]

        lag_points = [(s.timestamp, s.vertex(vertex.id).metrics.pending_records) for s in window
                      if s.has_vertex(vertex.id) and s.vertex(vertex.id).metrics.pending_records is not None]
        growth = 0.0
        if len(lag_points) >= 2 and lag_points[-1][0] > lag_points[0][0]:
            (t0, lag0), (t1, lag1) = lag_points[0], lag_points[-1]
            growth = ((lag1 or 0.0) - (lag0 or 0.0)) / (t1 - t0)
        elif vertex.metrics.pending_records_per_second is not None:
            growth = vertex.metrics.pending_records_per_second
        result[vertex.id] = ev.WindowMetrics(
            input_rate=mean(ev.vertex_input_rate),
            output_rate=mean(lambda v: v.metrics.num_records_out_per_second),
            busy_time_ms_per_second_max=mean(lambda v: v.metrics.busy_time_ms_per_second_max),
            busy_time_ms_per_second_avg=mean(lambda v: v.metrics.busy_time_ms_per_second_avg),
            back_pressured_time_ms_per_second=mean(
                lambda v: v.metrics.back_pressured_time_ms_per_second_avg
                if v.metrics.back_pressured_time_ms_per_second_avg is not None
                else v.metrics.back_pressured_time_ms_per_second_max),
            lag=vertex.metrics.pending_records, lag_growth_rate=growth, observations=len(series))
    return result


def reference_propagate_rates(snapshot: MetricsSnapshot, source_rates: Mapping[str, float],
                              ratios: Mapping[tuple[str, str], float]) -> dict[str, float]:
    rates: dict[str, float] = {}
    for vertex in snapshot.topological_order():
        inputs = snapshot.inputs_of(vertex.id)
        if not inputs:
            rates[vertex.id] = max(0.0, source_rates.get(vertex.id, 0.0))
        else:
            rates[vertex.id] = _add_all(rates[e.source] * ratios[(e.source, e.target)] for e in inputs)
    return rates


def reference_source_targets_at(window: Sequence[MetricsSnapshot], index: int) -> dict[str, float]:
    snapshot = window[index]
    return {v.id: max(0.0, (ev.vertex_input_rate(v) or 0.0) + ev._lag_growth_at(window, index, v.id))
            for v in snapshot.vertices if not snapshot.inputs_of(v.id)}


def reference_scale_down_window(self: FlinkscalePolicy, snapshot: MetricsSnapshot, history: History,
                                since: float | None, ratios: Mapping[tuple[str, str], float],
                                backlog_seconds: float) -> tuple[dict[str, float], _DownBlock | None]:
    s = self.settings
    now = snapshot.timestamp
    if since is None:
        return {}, _DownBlock("no history: the rate has not been seen low for scale-down.interval")
    if now - since < s.scale_down_interval:
        return {}, _DownBlock(f"{now - since:.0f}s since the last change < scale-down.interval "
                              f"{s.scale_down_interval:.0f}s", due_at=since + s.scale_down_interval)
    if backlog_seconds > s.backlog_lag_threshold:
        return {}, _DownBlock(f"backlog of {backlog_seconds:.0f}s of input is draining "
                              "(backlog-processing.lag-threshold)")
    heap = ev.heap_usage(snapshot)
    if heap is not None and heap > s.heap_usage_threshold:
        return {}, _DownBlock(f"heap usage {heap:.2f} > memory.heap-usage.threshold (fewer subtasks hold more "
                              "state)")
    start = now - s.scale_down_interval
    window = ev.window_snapshots(snapshot, history, start)
    loads = [reference_propagate_rates(snapshot, reference_source_targets_at(window, i), ratios)
             for i in range(len(window))]
    peaks: dict[str, float] = {}
    sums: dict[str, float] = {}
    first = 0
    for index, sample in enumerate(window):
        for vertex_id, load in loads[index].items():
            sums[vertex_id] = sums.get(vertex_id, 0.0) + load
        while window[first].timestamp <= sample.timestamp - s.metrics_window:
            for vertex_id, load in loads[first].items():
                sums[vertex_id] -= load
            first += 1
        count = index - first + 1
        for vertex_id, total in sums.items():
            peaks[vertex_id] = max(peaks.get(vertex_id, 0.0), total / count)
    return peaks, None


def reference_is_keyed(self: MetricsSnapshot, vertex_id: str) -> bool:
    return any(e.ship_strategy.is_keyed for e in self.inputs_of(vertex_id))


def use_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """Put the per-vertex code back everywhere the fast paths are."""
    monkeypatch.setattr(ev, "window_metrics", reference_window_metrics)
    monkeypatch.setattr(ev, "propagate_rates", reference_propagate_rates)
    monkeypatch.setattr(ev, "source_targets_at", reference_source_targets_at)
    monkeypatch.setattr(ev, "layout_factor", ev.layout_factor.__wrapped__)
    monkeypatch.setattr(FlinkscalePolicy, "_scale_down_window", reference_scale_down_window)
    monkeypatch.setattr(MetricsSnapshot, "is_keyed", reference_is_keyed)
    # No graph index shared between snapshots: each snapshot indexes its own edges.
    monkeypatch.setattr(snapshot_module, "_graph_index", snapshot_module._GraphIndex)


# --- random jobs ---------------------------------------------------------------------------------------

def random_job(rng: np.random.Generator) -> SimPipeline:
    """3-9 vertices, 1-2 sources, later vertices fed by 1-3 earlier ones (some with three inputs)."""
    n = int(rng.integers(3, 10))
    n_sources = int(rng.integers(1, 3))
    vertices: list[SimVertex] = []
    edges: list[SimEdge] = []
    for i in range(n):
        if i >= n_sources:
            for u in sorted({int(x) for x in rng.integers(0, i, size=int(rng.integers(1, 4)))}):
                ship = SHIPS[int(rng.integers(0, len(SHIPS)))]
                keys = KeyDistribution("zipf", int(rng.integers(10, 2000)), float(rng.uniform(0.3, 1.1))) \
                    if ship is ShipStrategy.HASH and rng.random() < 0.6 else KeyDistribution()
                edges.append(SimEdge(f"v{u}", f"v{i}", ship, float(rng.uniform(0.3, 1.8)), keys))
        vertices.append(SimVertex(id=f"v{i}", parallelism=int(rng.integers(1, 5)),
                                  capacity=float(rng.uniform(300, 3000)),
                                  max_parallelism=int(rng.choice([16, 32, 128])), is_source=i < n_sources,
                                  partitions=int(rng.integers(2, 24)) if i < n_sources else None))
    return SimPipeline(tuple(vertices), tuple(edges))


def random_rates(rng: np.random.Generator, steps: int) -> np.ndarray:
    """A swell (two periods over the run) with noise, a spike and a quiet stretch."""
    base = float(rng.uniform(150, 900))
    t = np.arange(steps)
    rates = base * (1.2 + np.sin(2 * np.pi * t / (steps / 2))) * (1 + 0.05 * rng.standard_normal(steps))
    spike = int(rng.integers(0, steps - 300))
    rates[spike:spike + int(rng.integers(60, 300))] *= float(rng.uniform(2, 5))
    quiet = int(rng.integers(0, steps - 600))
    rates[quiet:quiet + 600] *= 0.2
    return rates.clip(0)


def prior_load(rng: np.random.Generator, base: float) -> History:
    """A day and an hour of load before the run (one sample a minute): the forecast and planned paths."""
    times = np.arange(-(86400.0 + 3600.0) + 60, 1, 60.0)
    values = base * (1.2 + np.sin(2 * np.pi * times / 7200)) * (1 + 0.05 * rng.standard_normal(len(times)))
    return History(load=tuple((float(t), float(v)) for t, v in zip(times, values.clip(0), strict=True)))


def run(seed: int, policy: str, settings: tuple[tuple[str, str], ...] = ()) -> SimRun:
    rng = np.random.default_rng(7000 + seed)
    job = random_job(rng)
    steps = 2 * 3600 if seed else 3600
    rates = random_rates(rng, steps)
    history = prior_load(rng, float(rates.mean())) if seed == 0 else None
    config = SimConfig(duration_seconds=steps, decision_interval_seconds=60.0,
                       cluster=ClusterSpec(max_slots=int(rng.choice([10, 60]))),
                       rescale=RescaleSpec(restart_seconds=float(rng.uniform(5, 60)),
                                           mode=str(rng.choice(["savepoint", "checkpoint"]))))
    return simulate(job, rates, make_policy(policy, dict(settings)), config, history=history)


@functools.cache
def run_fast(seed: int, policy: str, settings: tuple[tuple[str, str], ...] = ()) -> SimRun:
    """``run`` with the fast paths, shared by the tests below (a run is a few seconds)."""
    return run(seed, policy, settings)


def everything(result: SimRun) -> tuple[str, str, str, bytes]:
    """All a run says, as text and bytes: outcome, every decision (reasons and numbers), the rescales, lag."""
    return (repr(result.outcome), json.dumps([d.to_dict() for d in result.history.decisions]),
            repr(result.history.rescales), result.lag_records.tobytes())


# Scale-down after 10 minutes makes the scale-down window decide often; the default hour reaches it in runs of
# two hours too (seed 0 runs one hour after a day of load: the forecast and planned paths). The other policies
# share window_metrics, propagate_rates and the snapshot's graph queries.
SCALE_DOWN_10M = (("scale-down.interval", "10m"),)
CASES = [("flinkscale", SCALE_DOWN_10M), ("flinkscale", ()), ("flink-operator", ()), ("cpu-threshold", ())]
SEEDS = range(4)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("policy", "settings"), CASES, ids=["flinkscale-10m", "flinkscale", "flink-operator",
                                                             "cpu-threshold"])
def test_whole_simulations_decide_the_same_with_the_fast_paths(
        seed: int, policy: str, settings: tuple[tuple[str, str], ...], monkeypatch: pytest.MonkeyPatch) -> None:
    fast = run_fast(seed, policy, settings)
    with monkeypatch.context() as patched:
        use_reference(patched)
        slow = run(seed, policy, settings)
    assert everything(fast) == everything(slow)
    assert len(fast.history.decisions) >= 50


def test_the_comparison_sees_rescales_and_scale_down_windows() -> None:
    """The runs above are worth comparing: they rescale both ways and reach the scale-down window."""
    rescales = downs = windows = 0
    for seed in SEEDS:
        result = run_fast(seed, "flinkscale", SCALE_DOWN_10M)
        rescales += result.outcome.rescales
        for record in result.history.rescales:
            downs += sum(record.new_parallelism[k] < p for k, p in record.old_parallelism.items())
        windows += sum("peak_target_rate_in_interval" in v.numbers for d in result.history.decisions
                       for v in d.vertices)
    assert rescales >= 6 and downs >= 3 and windows >= 100, (rescales, downs, windows)


# --- window_metrics on windows a simulation would not produce -------------------------------------------

def _blank(vertex: Vertex, rng: np.random.Generator) -> Vertex:
    """Some metrics unknown (None) or NaN, as Flink reports them after a restart."""
    fields = ["num_records_in_per_second", "num_records_out_per_second", "busy_time_ms_per_second_max",
              "busy_time_ms_per_second_avg", "back_pressured_time_ms_per_second_avg",
              "back_pressured_time_ms_per_second_max", "pending_records", "pending_records_per_second"]
    changes: dict[str, float | None] = {}
    for name in fields:
        draw = rng.random()
        if draw < 0.15:
            changes[name] = None
        elif draw < 0.2:
            changes[name] = math.nan
        elif draw < 0.25:
            changes[name] = 0.0
    return replace(vertex, metrics=replace(vertex.metrics, **changes))


def test_window_metrics_columns_equal_the_per_vertex_means_on_random_windows() -> None:
    rng = np.random.default_rng(11)
    base = run_fast(1, "flinkscale").history.snapshots
    compared = 0
    for _ in range(200):
        size = int(rng.integers(2, 8))
        start = int(rng.integers(0, len(base) - size))
        window = []
        for k, s in enumerate(base[start:start + size]):
            seconds = float(rng.choice([60.0, 60.0, 30.0, 0.0, -5.0]))
            vertices = tuple(_blank(v, rng) for v in s.vertices)
            window.append(replace(s, vertices=vertices, window_seconds=seconds,
                                  timestamp=s.timestamp if rng.random() < 0.9 else base[start].timestamp + k))
        fast, slow = ev.window_metrics(window), reference_window_metrics(window)
        assert list(fast) == list(slow)
        for vertex_id in fast:
            a, b = fast[vertex_id], slow[vertex_id]
            for name in ("input_rate", "output_rate", "busy_time_ms_per_second_max", "busy_time_ms_per_second_avg",
                         "back_pressured_time_ms_per_second", "lag", "lag_growth_rate", "observations"):
                x, y = getattr(a, name), getattr(b, name)
                assert (x is None) == (y is None), (name, x, y)
                if x is not None and y is not None:
                    assert x == y or (math.isnan(x) and math.isnan(y)), (name, x, y)
                    assert math.copysign(1, x) == math.copysign(1, y), (name, x, y)
            compared += 1
    assert compared > 1000


def test_window_metrics_of_a_window_whose_graph_changes_is_per_vertex() -> None:
    """Snapshots with other vertices (a vertex added) take the per-vertex path and still agree."""
    m = VertexMetrics(num_records_in_per_second=10.0, busy_time_ms_per_second_max=100.0, pending_records=5.0)
    a = MetricsSnapshot(1.0, "j", "j", (Vertex("x", "x", 1, 8, metrics=m),))
    b = MetricsSnapshot(61.0, "j", "j", (Vertex("x", "x", 1, 8, metrics=replace(m, pending_records=65.0)),
                                         Vertex("y", "y", 1, 8, metrics=m)))
    assert ev.window_metrics([a, b]) == reference_window_metrics([a, b])
    assert ev.window_metrics([a, b])["x"].lag_growth_rate == 1.0


def test_propagated_rows_equal_propagating_each_sample() -> None:
    rng = np.random.default_rng(3)
    for seed in SEEDS:
        history = run_fast(seed, "flink-operator").history
        snapshot = history.snapshots[-1]
        ratios = {(e.source, e.target): float(rng.choice([0.0, 0.5, 1.0, 1.7, -0.0])) for e in snapshot.edges}
        samples = [{v.id: float(rng.choice([0.0, -1.0, 3.5, 1e6, math.nan])) for v in snapshot.graph_sources}
                   for _ in range(int(rng.integers(1, 30)))]
        rows = {v.id: np.array([sample[v.id] for sample in samples]) for v in snapshot.graph_sources}
        ids, table = ev.propagate_rate_rows(snapshot, rows, ratios)
        for k, sample in enumerate(samples):
            expected = reference_propagate_rates(snapshot, sample, ratios)
            assert list(expected) == list(ids) == list(ev.propagate_rates(snapshot, sample, ratios))
            got = dict(zip(ids, table[k].tolist(), strict=True))
            for vertex_id, value in expected.items():
                for mine in (got[vertex_id], ev.propagate_rates(snapshot, sample, ratios)[vertex_id]):
                    assert mine == value or (math.isnan(mine) and math.isnan(value)), (vertex_id, mine, value)
                    assert math.copysign(1, mine) == math.copysign(1, value)


def test_snapshots_sharing_edges_share_graph_queries_only_for_the_same_vertices() -> None:
    """Two snapshots with one edges tuple but other vertex ids do not take each other's order."""
    edges = (snapshot_module.Edge("a", "b", ShipStrategy.HASH),)
    one = MetricsSnapshot(0.0, "j", "j", (Vertex("b", "b", 1, 8), Vertex("a", "a", 1, 8)), edges)
    two = MetricsSnapshot(0.0, "j", "j", (Vertex("a", "a", 1, 8), Vertex("b", "b", 1, 8), Vertex("c", "c", 1, 8)),
                          edges)
    assert [v.id for v in one.topological_order()] == ["a", "b"]
    assert [v.id for v in two.topological_order()] == ["a", "c", "b"]
    assert [v.id for v in one.topological_order()] == ["a", "b"]
    assert one.is_keyed("b") and not one.is_keyed("a") and not two.is_keyed("c")
    assert [v.id for v in two.graph_sources] == ["a", "c"]
