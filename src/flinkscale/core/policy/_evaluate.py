"""Evaluation maths shared by the policies: rates over a window, true processing rates, target rates
propagated along the graph, key-group and partition layout, and what the history says about rescales.

Everything here is a plain function of snapshots and history, so the Flink-operator reproduction and
our own policy compute the same quantities the same way and differ only in the rules they apply.

Definitions (per job vertex ``v`` at parallelism ``p``):

- input rate ``λ``: ``num_records_in_per_second`` summed over subtasks; for a source, the records it
  reads (a collector or simulator reports them there; if only ``num_records_out_per_second`` is known
  it stands in).
- true processing rate (busy time): ``TPR = λ / (busy_time_ms_per_second_max / 1000)``: what the vertex
  would process if its busiest subtask were busy all the time. A vertex that is never busy has an
  infinite TPR.
- observed true processing rate (sources under backpressure): ``λ / (1 - back_pressured_ms / 1000)``.
- target rate: at a source ``λ + d(lag)/dt`` (what arrives, whether or not it is read); downstream the
  sum over input edges of ``upstream target x output ratio`` with ``output ratio = records arriving on
  the edge / upstream records in``.
- key-group layout: with ``K`` key groups (max parallelism, or a source's partition count) over ``p``
  subtasks the busiest subtask owns ``ceil(K/p)`` of them, ``ceil(K/p) / (K/p)`` times its fair share.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from flinkscale.core.keygroups import layout_imbalance
from flinkscale.core.policy.base import DEFAULT_HISTORY_SECONDS, Decision, History, VertexDecision
from flinkscale.core.rates import busy_ratio, true_processing_rate, window_mean
from flinkscale.core.snapshot import Edge, MetricsSnapshot, Vertex, frozen_instances, same_tuple

# Guards float noise in ceil(): 7.000000000001 subtasks are 7 subtasks.
_EPSILON = 1e-9


def ceil_safe(value: float) -> int:
    return math.ceil(value - _EPSILON)


def vertex_input_rate(vertex: Vertex) -> float | None:
    metrics = vertex.metrics
    if metrics.num_records_in_per_second is not None and (
            metrics.num_records_in_per_second > 0 or not vertex.is_source):
        return metrics.num_records_in_per_second
    if vertex.is_source and metrics.num_records_out_per_second is not None:
        return metrics.num_records_out_per_second
    return metrics.num_records_in_per_second


# --- window of snapshots ---------------------------------------------------------------------------

@dataclass(frozen=True)
class WindowMetrics:
    """One vertex's metrics averaged over the snapshots of an evaluation window."""

    input_rate: float | None
    output_rate: float | None
    busy_time_ms_per_second_max: float | None
    busy_time_ms_per_second_avg: float | None
    back_pressured_time_ms_per_second: float | None
    lag: float | None
    lag_growth_rate: float
    observations: int


def parallelism_of(snapshot: MetricsSnapshot) -> dict[str, int]:
    return snapshot.parallelism_by_id  # cached per snapshot; callers only read it


def same_parallelism(a: MetricsSnapshot, b: MetricsSnapshot) -> bool:
    """``parallelism_of(a) == parallelism_of(b)``; for two snapshots of the same vertex ids in the same order (one
    identity test for the simulator's, which share their ids tuple) a comparison of their parallelism tuples."""
    if same_tuple(a.vertex_ids, b.vertex_ids):
        return same_tuple(a.parallelisms, b.parallelisms)
    return parallelism_of(a) == parallelism_of(b)


def window_snapshots(snapshot: MetricsSnapshot, history: History, start: float) -> tuple[MetricsSnapshot, ...]:
    """History snapshots of the RUNNING job whose own sampling window starts at or after ``start``, at
    the current parallelism, followed by ``snapshot`` itself (always included)."""
    # A restarting or failing job's metrics describe the restart, not the workload.
    earlier = tuple(
        s for s in history.snapshots
        if s.timestamp < snapshot.timestamp and s.timestamp - s.window_seconds >= start - _EPSILON
        and same_parallelism(s, snapshot) and s.job_state == "RUNNING")
    return (*earlier, snapshot)


def window_coverage_seconds(window: Sequence[MetricsSnapshot]) -> float:
    """Seconds from the start of the first snapshot's sampling window to the last snapshot."""
    return window[-1].timestamp - (window[0].timestamp - window[0].window_seconds)


def window_metrics(window: Sequence[MetricsSnapshot]) -> dict[str, WindowMetrics]:
    """Per-vertex means over ``window`` (oldest first, ``rates.window_mean``: weighted by each snapshot's
    ``window_seconds``); lag is the latest and its growth the slope
    between the first and last snapshots that report it (the snapshot's own
    ``pending_records_per_second`` when only one does).

    A window of several snapshots of one graph (the usual case: a policy's window is at one parallelism) is
    averaged for all vertices at once, column by column in ``window_mean``'s order of additions
    (``_window_metrics_columns``): the same numbers, without a Python loop per vertex and snapshot."""
    latest = window[-1]
    if len(window) > 1 and all(same_tuple(s.vertex_ids, latest.vertex_ids) for s in window):
        return _window_metrics_columns(window)
    result: dict[str, WindowMetrics] = {}
    for vertex in latest.vertices:
        series = [(s.vertex(vertex.id), s.window_seconds) for s in window if _has_vertex(s, vertex.id)]

        def mean(value: Callable[[Vertex], float | None], series: list[tuple[Vertex, float]] = series) -> float | None:
            return window_mean((value(v), seconds) for v, seconds in series)

        lag_points = [(s.timestamp, s.vertex(vertex.id).metrics.pending_records) for s in window
                      if _has_vertex(s, vertex.id) and s.vertex(vertex.id).metrics.pending_records is not None]
        growth = 0.0
        if len(lag_points) >= 2 and lag_points[-1][0] > lag_points[0][0]:
            (t0, lag0), (t1, lag1) = lag_points[0], lag_points[-1]
            growth = ((lag1 or 0.0) - (lag0 or 0.0)) / (t1 - t0)
        elif vertex.metrics.pending_records_per_second is not None:
            growth = vertex.metrics.pending_records_per_second
        result[vertex.id] = WindowMetrics(
            input_rate=mean(vertex_input_rate),
            output_rate=mean(lambda v: v.metrics.num_records_out_per_second),
            busy_time_ms_per_second_max=mean(lambda v: v.metrics.busy_time_ms_per_second_max),
            busy_time_ms_per_second_avg=mean(lambda v: v.metrics.busy_time_ms_per_second_avg),
            back_pressured_time_ms_per_second=mean(
                lambda v: v.metrics.back_pressured_time_ms_per_second_avg
                if v.metrics.back_pressured_time_ms_per_second_avg is not None
                else v.metrics.back_pressured_time_ms_per_second_max),
            lag=vertex.metrics.pending_records,
            lag_growth_rate=growth,
            observations=len(series),
        )
    return result


def _has_vertex(snapshot: MetricsSnapshot, vertex_id: str) -> bool:
    return snapshot.has_vertex(vertex_id)


# The per-vertex values window_metrics averages, one row each: input rate, output rate, busy max, busy avg,
# backpressured (avg, else max). NaN where Flink reported none (``window_mean`` leaves those out).
_MEAN_ROWS = 5


def _metric_rows(snapshot: MetricsSnapshot) -> Any:
    import numpy as np

    vertices = snapshot.vertices
    metrics = [v.metrics for v in vertices]
    # None becomes NaN in a float64 array.
    rows = [[vertex_input_rate(v) for v in vertices],
            [m.num_records_out_per_second for m in metrics],
            [m.busy_time_ms_per_second_max for m in metrics],
            [m.busy_time_ms_per_second_avg for m in metrics],
            [m.back_pressured_time_ms_per_second_avg if m.back_pressured_time_ms_per_second_avg is not None
             else m.back_pressured_time_ms_per_second_max for m in metrics]]
    return np.array(rows, dtype=np.float64).reshape(_MEAN_ROWS, len(vertices))


def _pending_vertices(snapshot: MetricsSnapshot) -> tuple[int, ...]:
    return tuple(i for i, v in enumerate(snapshot.vertices) if v.metrics.pending_records is not None)


def _window_metrics_columns(window: Sequence[MetricsSnapshot]) -> dict[str, WindowMetrics]:
    """``window_metrics`` for snapshots that all have the latest one's vertices in its order: every mean is
    ``window_mean``'s, its additions made in the same order (oldest snapshot first) on whole rows of vertices,
    so the results are the same floats. Each snapshot's rows are extracted once (``MetricsSnapshot.derived``)."""
    import numpy as np

    latest = window[-1]
    values = np.stack([s.derived("evaluate.metric_rows", _metric_rows) for s in window])  # (snapshots, rows, V)
    known = ~np.isnan(values)
    weights = [s.window_seconds for s in window]
    shape = values.shape[1:]
    total = np.zeros(shape)
    weighted = np.zeros(shape)
    plain = np.zeros(shape)
    for k, w in enumerate(weights):
        plain += np.where(known[k], values[k], 0.0)
        if w > 0:
            total += np.where(known[k], w, 0.0)
            weighted += np.where(known[k], values[k] * w, 0.0)
    count = known.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        means = np.where(total > 0, weighted / total, plain / np.maximum(count, 1))
    # A mean of nothing reported is None (a few entries: patched in place of the 0.0 computed there).
    columns: list[list[float | None]] = means.tolist()
    for row, index in zip(*np.nonzero(count == 0), strict=True):
        columns[row][index] = None
    input_rate, output_rate, busy_max, busy_avg, back_pressured = columns
    # Lag: the latest; its growth from the first and last snapshots that report it (sources, mostly).
    growth_of: dict[int, float] = {}
    for index in sorted(set().union(*(s.derived("evaluate.pending_vertices", _pending_vertices) for s in window))):
        points = [(s.timestamp, s.vertices[index].metrics.pending_records) for s in window
                  if s.vertices[index].metrics.pending_records is not None]
        if len(points) >= 2 and points[-1][0] > points[0][0]:
            (t0, lag0), (t1, lag1) = points[0], points[-1]
            growth_of[index] = ((lag1 or 0.0) - (lag0 or 0.0)) / (t1 - t0)
    latest_metrics = [vertex.metrics for vertex in latest.vertices]
    lags = [metrics.pending_records for metrics in latest_metrics]
    # Else the snapshot's own growth, else none.
    growths = [0.0 if metrics.pending_records_per_second is None else metrics.pending_records_per_second
               for metrics in latest_metrics]
    for i, growth in growth_of.items():
        growths[i] = growth
    built = frozen_instances(WindowMetrics, {
        "input_rate": input_rate, "output_rate": output_rate, "busy_time_ms_per_second_max": busy_max,
        "busy_time_ms_per_second_avg": busy_avg, "back_pressured_time_ms_per_second": back_pressured,
        "lag": lags, "lag_growth_rate": growths}, {"observations": len(window)})
    return dict(zip(latest.vertex_ids, built, strict=True))


# --- rates along the graph -------------------------------------------------------------------------

def edge_output_ratio(snapshot: MetricsSnapshot, metrics: Mapping[str, WindowMetrics], edge: Edge) -> float:
    """Records arriving on ``edge`` per record its upstream vertex takes in.

    With a single input the target's own input rate is what arrives on the edge (exact even when the
    upstream has several outputs or side outputs); otherwise the upstream's output rate stands in.
    An upstream that takes nothing in gives no ratio to measure; 1.0 (pass-through) is assumed.
    """
    return _output_ratio(metrics[edge.source], metrics[edge.target], len(snapshot.inputs_of(edge.target)) == 1)


def _output_ratio(upstream: WindowMetrics, downstream: WindowMetrics, single_input: bool) -> float:
    """``edge_output_ratio`` of an edge from ``upstream`` to ``downstream``, the edge's target's only input or not."""
    if not upstream.input_rate:
        return 1.0
    arriving = downstream.input_rate if single_input and downstream.input_rate is not None else upstream.output_rate
    return 1.0 if arriving is None else arriving / upstream.input_rate


def is_graph_source(snapshot: MetricsSnapshot, vertex_id: str) -> bool:
    return not snapshot.has_inputs(vertex_id)


def _propagation_order(snapshot: MetricsSnapshot) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """Every vertex in topological order with the (source, target) keys of its input edges."""
    return tuple((v.id, tuple((e.source, e.target) for e in snapshot.inputs_of(v.id)))
                 for v in snapshot.topological_order())


def _propagation_places(snapshot: MetricsSnapshot) -> tuple[tuple[int, ...], ...]:
    """For every vertex of ``_propagation_order``, the places (in that order) of its input edges' upstream vertices."""
    order = snapshot.graph_derived("evaluate.propagation_order", _propagation_order)
    place = {vertex_id: j for j, (vertex_id, _) in enumerate(order)}
    return tuple(tuple(place[key[0]] for key in inputs) for _, inputs in order)


def propagate_rates(snapshot: MetricsSnapshot, source_rates: Mapping[str, float],
                    ratios: Mapping[tuple[str, str], float]) -> dict[str, float]:
    """A rate given at every graph source carried downstream: each vertex gets the sum over its input
    edges (added in edge order) of the upstream value times that edge's output ratio."""
    rates: dict[str, float] = {}
    for vertex_id, inputs in snapshot.graph_derived("evaluate.propagation_order", _propagation_order):
        if not inputs:
            rate = source_rates.get(vertex_id, 0.0)
            rates[vertex_id] = rate if rate > 0.0 else 0.0  # max(0.0, rate)
        else:
            total = 0.0
            for key in inputs:
                total += rates[key[0]] * ratios[key]
            rates[vertex_id] = total
    return rates


def propagate_rate_rows(snapshot: MetricsSnapshot, source_rows: Mapping[str, Any],
                        ratios: Mapping[tuple[str, str], float]) -> tuple[tuple[str, ...], Any]:
    """``propagate_rates`` for many samples at once: ``source_rows`` holds a numpy row of rates per graph
    source (one value per sample); returns the vertex ids in topological order and a (samples, vertices)
    array whose row ``k`` equals ``propagate_rates`` of sample ``k`` (the same operations, elementwise)."""
    import numpy as np

    order = snapshot.graph_derived("evaluate.propagation_order", _propagation_order)
    places = snapshot.graph_derived("evaluate.propagation_places", _propagation_places)
    samples = len(next(iter(source_rows.values()))) if source_rows else 0
    # Row j of ``by_vertex`` is the j-th vertex's rates over the samples (contiguous: one operation per vertex).
    by_vertex = np.empty((len(order), samples))
    zero = np.zeros(samples)
    for j, (vertex_id, inputs) in enumerate(order):
        if not inputs:
            rate = source_rows.get(vertex_id, zero)
            by_vertex[j] = np.where(rate > 0.0, rate, 0.0)
        elif len(inputs) == 1:
            # 0.0 + x, as the scalar sum does, is added once for all rows below (it only turns -0.0 into 0.0).
            np.multiply(by_vertex[places[j][0]], ratios[inputs[0]], out=by_vertex[j])
        else:
            total = np.zeros(samples)
            for place, key in zip(places[j], inputs, strict=True):
                total = total + (by_vertex[place] + 0.0) * ratios[key]
            by_vertex[j] = total
    by_vertex += 0.0
    return tuple(vertex_id for vertex_id, _ in order), np.ascontiguousarray(by_vertex.T)


def output_ratios(snapshot: MetricsSnapshot, metrics: Mapping[str, WindowMetrics]) -> dict[tuple[str, str], float]:
    """``edge_output_ratio`` of every edge (the edges and whether each is its target's only input known per graph)."""
    return {(source, target): _output_ratio(metrics[source], metrics[target], single)
            for source, target, single in snapshot.graph_derived("evaluate.edge_ends", _edge_ends)}


def _edge_ends(snapshot: MetricsSnapshot) -> tuple[tuple[str, str, bool], ...]:
    """Every edge's source and target, and whether it is the target's only input."""
    return tuple((e.source, e.target, len(snapshot.inputs_of(e.target)) == 1) for e in snapshot.edges)


def source_target_rate(metrics: WindowMetrics) -> float:
    """What arrives at a source: the rate it reads plus the growth of its lag (never negative)."""
    return max(0.0, (metrics.input_rate or 0.0) + metrics.lag_growth_rate)


def lag_seconds(metrics: WindowMetrics) -> float:
    """The source's lag expressed in seconds of its input (infinite when lag exists but nothing is read)."""
    lag = metrics.lag or 0.0
    if lag <= 0:
        return 0.0
    rate = source_target_rate(metrics) or (metrics.input_rate or 0.0)
    return math.inf if rate <= 0 else lag / rate


# --- layout ----------------------------------------------------------------------------------------

def layout_groups(snapshot: MetricsSnapshot, vertex: Vertex) -> int | None:
    """How many indivisible units spread over the subtasks: a source's partitions, a keyed vertex's key
    groups (max parallelism); ``None`` when records spread freely (rebalance, forward)."""
    if is_graph_source(snapshot, vertex.id):
        return vertex.partitions
    if snapshot.is_keyed(vertex.id):
        return vertex.max_parallelism
    return None


@functools.lru_cache(maxsize=4096)  # a pure function of two integers, asked per vertex at every decision
def layout_factor(parallelism: int, groups: int | None) -> float:
    """``ceil(K/p) / (K/p)``: how much more than its fair share the busiest subtask owns (1 = even)."""
    if not groups or parallelism <= 0:
        return 1.0
    if parallelism > groups:  # more subtasks than groups: the busiest owns one, the rest sit idle
        return parallelism / groups
    return layout_imbalance(groups, parallelism)


def smallest_parallelism_for_load(load: float, per_subtask_allowed: float, groups: int | None,
                                  lower: int, upper: int) -> int:
    """The fewest subtasks whose busiest one carries at most ``per_subtask_allowed`` records/s.

    Records spread freely: ``ceil(load / allowed)``. Over ``K`` groups the busiest subtask carries
    ``ceil(K/p) / K x load``, so it needs ``ceil(K/p) <= g = floor(allowed x K / load)`` and the fewest
    subtasks doing that are ``ceil(K/g)``: always a parallelism that spreads the groups as evenly as
    any larger one with the same busiest share (aligned by construction). Clamped to [lower, upper];
    a clamp at ``upper`` steps down to the aligned value under it.
    """
    if load <= 0 or math.isinf(per_subtask_allowed):
        return max(lower, 1)
    if per_subtask_allowed <= 0 or math.isinf(load):
        return upper
    if groups:
        # min() keeps a vanishing load from overflowing floor(): one subtask can own every group.
        most_groups = math.floor(min(per_subtask_allowed * groups / load, float(groups)) + _EPSILON)
        wanted = groups if most_groups < 1 else math.ceil(groups / most_groups)
    else:
        wanted = ceil_safe(load / per_subtask_allowed)
    if wanted > upper:
        wanted = upper if not groups else math.ceil(groups / math.ceil(groups / upper))
    return max(lower, min(wanted, upper))


# --- cluster ---------------------------------------------------------------------------------------

def slots_required(parallelism: Mapping[str, int]) -> int:
    """Slots a job needs in Flink's default slot sharing group: its highest vertex parallelism."""
    return max(parallelism.values(), default=0)


def job_slot_ceiling(snapshot: MetricsSnapshot) -> int | None:
    """Slots this job may use: the cluster's ceiling minus what other jobs hold (``None`` = unknown)."""
    cluster = snapshot.cluster
    if cluster is None:
        return None
    used_by_job = slots_required(parallelism_of(snapshot))
    used_by_others = max(0, cluster.slots_total - cluster.slots_available - used_by_job)
    return max(1, cluster.slots_ceiling - used_by_others)


def job_at_slot_ceiling(snapshot: MetricsSnapshot) -> bool:
    """The job already holds every slot it may get (``False`` when the ceiling is unknown)."""
    ceiling = job_slot_ceiling(snapshot)
    return ceiling is not None and slots_required(parallelism_of(snapshot)) >= ceiling


# --- history ---------------------------------------------------------------------------------------

#: What a policy's ``history_seconds`` adds to its longest look-back: one more sample's worth of slack.
HISTORY_SLACK_SECONDS = 600.0


def scale_down_history_seconds(scale_down_interval: float, metrics_window: float,
                               stabilization_interval: float) -> float:
    """The history a policy with a scale-down interval reads (its ``history_seconds``): the interval itself
    (of unchanged parallelism or of recommendations), the metrics window and the stabilization before it,
    plus the slack; never less than the default history."""
    return max(DEFAULT_HISTORY_SECONDS,
               scale_down_interval + metrics_window + stabilization_interval + HISTORY_SLACK_SECONDS)


def last_change_time(snapshot: MetricsSnapshot, history: History) -> float | None:
    """When the job last started running at its current parallelism, as far as the history knows.

    The latest of: the first snapshot of the history (observation start counts as a start), each
    completed rescale, and each snapshot whose parallelism differs from the one before it. ``None``
    with an empty history (an offline snapshot: nothing is known about restarts).
    """
    if not history.snapshots and not history.rescales:
        return None
    times = [r.completed_at for r in history.rescales if r.completed_at <= snapshot.timestamp]
    ordered = [s for s in history.snapshots if s.timestamp < snapshot.timestamp] + [snapshot]
    if history.snapshots:
        times.append(ordered[0].timestamp)
    for before, after in itertools.pairwise(ordered):
        if not same_parallelism(before, after):
            times.append(after.timestamp)
    return max(times) if times else None


@dataclass(frozen=True)
class StableWindow:
    """The metrics window a policy may read: after the last change and its stabilization interval."""

    since: float | None  # last change (None: offline snapshot, nothing known)
    stabilizing_seconds: float  # > 0: still inside the stabilization interval, no decision
    snapshots: tuple[MetricsSnapshot, ...]


def stable_window(snapshot: MetricsSnapshot, history: History, stabilization_interval: float,
                  metrics_window: float) -> StableWindow:
    now = snapshot.timestamp
    since = last_change_time(snapshot, history)
    if since is None:
        return StableWindow(None, 0.0, (snapshot,))
    stable_at = since + stabilization_interval
    if now < stable_at:
        return StableWindow(since, stable_at - now, (snapshot,))
    return StableWindow(since, 0.0, window_snapshots(snapshot, history, max(stable_at, now - metrics_window)))


def learned_restart_seconds(history: History) -> float | None:
    """Mean duration of the rescales the history recorded (``None`` before the first one)."""
    durations = [r.duration_seconds for r in history.rescales if r.duration_seconds >= 0]
    return sum(durations) / len(durations) if durations else None


@dataclass(frozen=True)
class ScaleUpOutcome:
    """How the last scale-up of a vertex worked out: the TPR it expected and the TPR it got."""

    old_parallelism: int
    new_parallelism: int
    true_processing_rate_before: float
    true_processing_rate_after: float
    busy_ratio_before: float = 1.0  # mean busiest-subtask busy ratio before the scale-up

    @property
    def expected_gain(self) -> float:
        return self.true_processing_rate_before * (self.new_parallelism / self.old_parallelism - 1.0)

    @property
    def actual_gain(self) -> float:
        return self.true_processing_rate_after - self.true_processing_rate_before

    def effective(self, threshold: float) -> bool:
        """At least ``threshold`` of the expected TPR gain was realised."""
        return self.actual_gain >= threshold * self.expected_gain


def _mean_tpr(snapshots: Iterable[MetricsSnapshot], vertex_id: str) -> float | None:
    values: list[tuple[float | None, float]] = []
    for s in snapshots:
        vertex = s.vertex(vertex_id)
        rate, busy = vertex_input_rate(vertex), vertex.metrics.busy_time_ms_per_second_max
        if rate is not None and busy is not None and busy > 0:
            values.append((true_processing_rate(rate, busy), s.window_seconds))
    return window_mean(values)


@dataclass(frozen=True)
class ParallelismChanges:
    """The history before a snapshot, and the snapshot, when all of them list the same vertex ids in the same
    order (``ordered``), with the indexes where the parallelism of some vertex changed (``changes``, oldest
    first): what ``last_scale_up_outcome`` looks for, found once per decision instead of once per vertex."""

    ordered: tuple[MetricsSnapshot, ...]
    changes: tuple[int, ...]
    index: Mapping[str, int]  # vertex id -> its place in every snapshot of ``ordered``


def parallelism_changes(snapshot: MetricsSnapshot, history: History) -> ParallelismChanges | None:
    """``ParallelismChanges`` for ``last_scale_up_outcome``; None when the snapshots differ in their vertices."""
    ids = snapshot.vertex_ids
    ordered = (*[s for s in history.snapshots if s.timestamp < snapshot.timestamp], snapshot)
    if not all(same_tuple(s.vertex_ids, ids) for s in ordered):
        return None
    changes = tuple(i for i in range(1, len(ordered))
                    if not same_tuple(ordered[i].parallelisms, ordered[i - 1].parallelisms))
    return ParallelismChanges(ordered, changes, {vertex_id: i for i, vertex_id in enumerate(ids)})


def last_scale_up_outcome(snapshot: MetricsSnapshot, history: History, vertex_id: str,
                          settle_seconds: float, lookback_seconds: float,
                          changes: ParallelismChanges | None = None) -> ScaleUpOutcome | None:
    """The TPR before and after the vertex's most recent parallelism change, if that was a scale-up.

    "Before" averages the snapshots at the old parallelism within ``lookback_seconds`` before the
    change; "after" those at the new parallelism from ``settle_seconds`` after it (a restarting job's
    first metrics say little). ``None`` when there is no such change or too little data to judge.
    ``changes``: ``parallelism_changes(snapshot, history)``, for a caller that asks for many vertices.
    """
    change_index = None
    position = None if changes is None else changes.index.get(vertex_id)
    if changes is not None and position is not None:
        # Every snapshot has the vertex (same ids); its parallelism can only change where some vertex's did.
        ordered = list(changes.ordered)
        for i in reversed(changes.changes):
            if ordered[i].parallelisms[position] != ordered[i - 1].parallelisms[position]:
                change_index = i
                break
    else:
        ordered = [s for s in history.snapshots if s.timestamp < snapshot.timestamp and _has_vertex(s, vertex_id)]
        ordered.append(snapshot)
        for i in range(len(ordered) - 1, 0, -1):
            if ordered[i].vertex(vertex_id).parallelism != ordered[i - 1].vertex(vertex_id).parallelism:
                change_index = i
                break
    if change_index is None:
        return None
    old_p = ordered[change_index - 1].vertex(vertex_id).parallelism
    new_p = ordered[change_index].vertex(vertex_id).parallelism
    if new_p <= old_p:
        return None
    changed_at = ordered[change_index].timestamp
    before = [s for s in ordered[:change_index]
              if s.vertex(vertex_id).parallelism == old_p and s.timestamp >= changed_at - lookback_seconds]
    after = [s for s in ordered[change_index:] if s.timestamp >= changed_at + settle_seconds]
    tpr_before, tpr_after = _mean_tpr(before, vertex_id), _mean_tpr(after, vertex_id)
    if tpr_before is None or tpr_after is None or math.isinf(tpr_before) or math.isinf(tpr_after):
        return None
    busy_before = window_mean((s.vertex(vertex_id).metrics.busy_time_ms_per_second_max, s.window_seconds)
                              for s in before)
    return ScaleUpOutcome(old_p, new_p, tpr_before, tpr_after, busy_ratio(busy_before or 0.0))


def gc_pressure(snapshot: MetricsSnapshot) -> float | None:
    """Fraction of time the worst TaskManager spends collecting garbage."""
    if snapshot.jvm is None or snapshot.jvm.gc_time_ms_per_second_max is None:
        return None
    return busy_ratio(snapshot.jvm.gc_time_ms_per_second_max)


def heap_usage(snapshot: MetricsSnapshot) -> float | None:
    return None if snapshot.jvm is None else snapshot.jvm.heap_used_ratio_max


# --- decisions -------------------------------------------------------------------------------------

def hold_decision(snapshot: MetricsSnapshot, policy: str, reason: str, blocked_reason: str | None = None,
                  numbers: Mapping[str, Mapping[str, float]] | None = None) -> Decision:
    """Every vertex stays where it is, for ``reason`` (and, when something wanted to change, why not).

    Without ``numbers`` the vertex decisions depend on the vertices' ids, names and parallelism and the reason
    alone: they are built once per layout and reason (``MetricsSnapshot.layout_derived``) and shared by the
    decisions that hold with that reason (a static policy holds at every decision)."""
    if numbers is None:
        held = snapshot.layout_derived("evaluate.held_vertices", _held_cache)
        vertices = held.get(reason)
        if vertices is None:
            vertices = held.put(reason, tuple(VertexDecision(v.id, v.name, v.parallelism, v.parallelism, reason, {})
                                              for v in snapshot.vertices))
    else:
        vertices = tuple(VertexDecision(v.id, v.name, v.parallelism, v.parallelism, reason, dict(numbers.get(v.id, {})))
                         for v in snapshot.vertices)
    return Decision(timestamp=snapshot.timestamp, policy=policy, blocked_reason=blocked_reason, vertices=vertices)


_K = TypeVar("_K")
_V = TypeVar("_V")


class _Recent(Generic[_K, _V]):
    """The few most recent values by key, the oldest dropped first: what is kept per layout for arguments that
    vary (a reason with a count in it, "stabilizing for 45s more", changes at every decision)."""

    _KEEP = 8

    def __init__(self) -> None:
        self._values: dict[_K, _V] = {}

    def get(self, key: _K) -> _V | None:
        return self._values.get(key)

    def put(self, key: _K, value: _V) -> _V:
        if len(self._values) >= self._KEEP:
            del self._values[next(iter(self._values))]
        self._values[key] = value
        return value


def _held_cache(snapshot: MetricsSnapshot) -> _Recent[str, tuple[VertexDecision, ...]]:
    """``hold_decision``'s vertex decisions for one layout, by reason."""
    return _Recent()


def _bounds_cache(snapshot: MetricsSnapshot) -> _Recent[tuple[int, int, int | None], dict[str, tuple[int, int]]]:
    """``parallelism_bounds_by_id`` for one layout, by limits."""
    return _Recent()


def parallelism_bounds(snapshot: MetricsSnapshot, vertex: Vertex, min_parallelism: int, max_parallelism: int,
                       slot_ceiling: int | None) -> tuple[int, int]:
    """[lower, upper] a policy may choose from: its own limits, the vertex's max parallelism, a
    source's partition count (extra readers would sit idle) and the slots the job may use."""
    upper = min(vertex.max_parallelism, max_parallelism)
    if is_graph_source(snapshot, vertex.id) and vertex.partitions:
        upper = min(upper, vertex.partitions)
    if slot_ceiling is not None:
        upper = min(upper, slot_ceiling)
    upper = max(upper, 1)
    return min(max(min_parallelism, 1), upper), upper


def layout_groups_by_id(snapshot: MetricsSnapshot) -> dict[str, int | None]:
    """``layout_groups`` of every vertex, by id: computed once per layout (``MetricsSnapshot.layout_derived``).
    Shared: read it, never modify it."""
    return snapshot.layout_derived("evaluate.layout_groups", _layout_groups_by_id)


def _layout_groups_by_id(snapshot: MetricsSnapshot) -> dict[str, int | None]:
    return {v.id: layout_groups(snapshot, v) for v in snapshot.vertices}


def parallelism_bounds_by_id(snapshot: MetricsSnapshot, min_parallelism: int, max_parallelism: int,
                             slot_ceiling: int | None) -> dict[str, tuple[int, int]]:
    """``parallelism_bounds`` of every vertex, by id: computed once per layout and limits (the few most recent).
    Shared: read it, never modify it."""
    cache = snapshot.layout_derived("evaluate.parallelism_bounds", _bounds_cache)
    key = (min_parallelism, max_parallelism, slot_ceiling)
    found = cache.get(key)
    if found is None:
        found = cache.put(key, {v.id: parallelism_bounds(snapshot, v, min_parallelism, max_parallelism, slot_ceiling)
                                for v in snapshot.vertices})
    return found


def _lag_growth_at(window: Sequence[MetricsSnapshot], index: int, vertex_id: str) -> float:
    """d(lag)/dt at ``window[index]``: its own ``pending_records_per_second``, else the slope from the
    snapshot before it, else 0."""
    metrics = window[index].vertex(vertex_id).metrics
    if metrics.pending_records_per_second is not None:
        return metrics.pending_records_per_second
    if index > 0 and metrics.pending_records is not None:
        before = window[index - 1]
        previous = before.vertex(vertex_id).metrics.pending_records
        if previous is not None and window[index].timestamp > before.timestamp:
            return (metrics.pending_records - previous) / (window[index].timestamp - before.timestamp)
    return 0.0


def source_targets_at(window: Sequence[MetricsSnapshot], index: int) -> dict[str, float]:
    """Target rate ``λ + d(lag)/dt`` of every graph source in ``window[index]`` alone (no averaging, so a
    step in the rate shows at once)."""
    snapshot = window[index]
    return {v.id: max(0.0, (vertex_input_rate(v) or 0.0) + _lag_growth_at(window, index, v.id))
            for v in snapshot.graph_sources}
