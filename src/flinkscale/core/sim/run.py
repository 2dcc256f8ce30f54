"""The run loop: a policy drives the simulated job exactly as it would drive a real one.

Every ``decision_interval`` the loop builds a ``MetricsSnapshot`` (the type the real collector emits) from
the model's metrics window and runs the one control step (``flinkscale.core.control.step``, the same the
live loop runs) on it with the ``History`` (kept as far back as the policy's longest rule looks,
``required_history_seconds(policy)``), then applies the ``Decision``: its ``shed_fraction`` at the sources
from then on, and, when ``decision.rescale`` is true, the new parallelism clamped to
``[1, max_parallelism]`` and to the cluster ceiling. With ``SimConfig.shedding`` the step's shedding
controller sets that fraction under the live loop's rules (scale first, shed only at the slot ceiling); its
offered rate is the trace's over the interval, as the live loop reads it from the topic's end offsets.
Shed records are dropped as the in-job sampler drops them, right after the source reads them, so a source's
records-in rate in the snapshots counts them (it reads them) while its busy time does not. A rescale stops the job for
``restart_time + state / restore_bandwidth`` seconds (``RescaleSpec``) while the sources keep filling, is
recorded as a ``RescaleRecord`` (requested_at, completed_at) and fed back through the history, and restarts
the metrics window (Flink's meters restart with the tasks). No decision is asked for while the job is down,
as the operator autoscaler does not evaluate a restarting job.

``SimOutcome`` holds what the comparison table shows, each a plain definition:

- core-hours = integral of slots in use dt / 3600 (1 slot = 1 core; ``ClusterSpec`` says how slots count);
- lag seconds = pending records / offered rate of that step (the trace mean when the rate is 0);
  ``seconds_over_target`` counts steps with lag seconds above the latency target, times the step;
- peak lag in records and in seconds; rescales; records dropped by shedding.

The per-step lag is kept in full; the timeline (for plots) has one point per decision interval.
"""

from __future__ import annotations

import contextlib
import gc
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from flinkscale.core import control
from flinkscale.core.errors import InputError, RuntimeFailure
from flinkscale.core.policy.base import Decision, History, Policy, RescaleRecord
from flinkscale.core.policy.registry import required_history_seconds
from flinkscale.core.shedding import ShedSettings
from flinkscale.core.sim.engine import IntArray, JobModel, WindowMetrics
from flinkscale.core.sim.keyload import FloatArray
from flinkscale.core.sim.model import CheckpointSpec, ClusterSpec, RescaleSpec, SimPipeline, SimVertex
from flinkscale.core.snapshot import (
    CheckpointStats,
    ClusterResources,
    Edge,
    MetricsSnapshot,
    SubtaskMetrics,
    Vertex,
    VertexMetrics,
    frozen_instances,
)

ProgressCallback = Callable[[float], None]


@dataclass(frozen=True)
class SimConfig:
    duration_seconds: float = 3600.0
    step_seconds: float = 1.0
    decision_interval_seconds: float = 60.0
    metrics_window_seconds: float = 60.0
    latency_target_seconds: float = 60.0
    buffer_seconds: float = 4.0
    cluster: ClusterSpec = field(default_factory=ClusterSpec)
    rescale: RescaleSpec = field(default_factory=RescaleSpec)
    checkpoints: CheckpointSpec = field(default_factory=CheckpointSpec)
    # Put per-subtask metrics into snapshots (costly for thousands of subtasks; max/avg are always there).
    subtask_metrics: bool = False
    # Load shedding under the control step's rules (None: only a policy's own shed fraction applies).
    shedding: ShedSettings | None = None

    def __post_init__(self) -> None:
        if not self.step_seconds > 0:
            raise InputError(f"must be > 0, got {self.step_seconds}", field="step")
        if self.duration_seconds < self.step_seconds:
            raise InputError(f"must be >= one step, got {self.duration_seconds}", field="duration")
        if self.decision_interval_seconds < self.step_seconds:
            raise InputError(f"must be >= one step, got {self.decision_interval_seconds}",
                             field="decision_interval")
        if self.latency_target_seconds <= 0:
            raise InputError(f"must be > 0, got {self.latency_target_seconds}", field="latency_target")

    @property
    def steps(self) -> int:
        return max(1, round(self.duration_seconds / self.step_seconds))


@dataclass(frozen=True)
class Timeline:
    """One point per decision interval (plots); arrays are (points,) or (points, vertices)."""

    vertex_ids: tuple[str, ...]
    times: FloatArray
    offered_rate: FloatArray
    source_rate: FloatArray
    sink_rate: FloatArray
    lag_records: FloatArray
    lag_seconds: FloatArray
    slots: FloatArray
    parallelism: FloatArray
    busy_max: FloatArray
    busy_avg: FloatArray
    backpressured_max: FloatArray


@dataclass(frozen=True)
class SimOutcome:
    policy: str
    duration_seconds: float
    core_hours: float
    seconds_over_target: float
    latency_target_seconds: float
    peak_lag_records: float
    peak_lag_seconds: float
    rescales: int
    downtime_seconds: float
    records_offered: float
    records_dropped: float
    records_written: float
    peak_slots: int
    final_parallelism: Mapping[str, int]
    # Conservation, per vertex: arrived = processed + queued + discarded (within float rounding).
    arrived: Mapping[str, float]
    processed: Mapping[str, float]
    queued: Mapping[str, float]
    # Restores from a checkpoint (rescale.mode = checkpoint): in-flight records lost, records read again.
    discarded: Mapping[str, float] = field(default_factory=dict)
    records_replayed: float = 0.0

    def as_row(self) -> dict[str, float | int | str]:
        return {
            "policy": self.policy, "core_hours": round(self.core_hours, 2),
            "seconds_over_target": round(self.seconds_over_target, 1),
            "peak_lag_records": round(self.peak_lag_records), "peak_lag_seconds": round(self.peak_lag_seconds, 1),
            "rescales": self.rescales, "downtime_seconds": round(self.downtime_seconds, 1),
            "records_dropped": round(self.records_dropped), "peak_slots": self.peak_slots,
        }


@dataclass(frozen=True)
class SimRun:
    outcome: SimOutcome
    timeline: Timeline
    history: History
    lag_records: FloatArray
    offered_rate: FloatArray


def clamp_parallelism(requested: Mapping[str, int], pipeline: SimPipeline, cluster: ClusterSpec) -> dict[str, int]:
    """The requested parallelism within [1, max_parallelism] per vertex and within the cluster's slots.

    Over the ceiling, every vertex is scaled down by the same factor (never below 1), so the shape a policy
    asked for is kept as far as the cluster allows.
    """
    wanted = {v.id: max(1, min(v.max_parallelism, int(requested.get(v.id, v.parallelism))))
              for v in pipeline.vertices}
    if cluster.slots_for(wanted) <= cluster.max_slots:
        return wanted
    factor = cluster.max_slots / cluster.slots_for(wanted)
    clamped = {vid: max(1, math.floor(p * factor)) for vid, p in wanted.items()}
    while cluster.slots_for(clamped) > cluster.max_slots and max(clamped.values()) > 1:
        biggest = max(clamped, key=lambda vid: clamped[vid])
        clamped[biggest] -= 1
    return clamped


#: numpy sums fewer than this many values one after the other (pairwise summation starts at 8).
_SEQUENTIAL_SUM_BELOW = 8


def _segment_sums(values: FloatArray, starts: IntArray, counts: IntArray) -> FloatArray:
    """``values[lo:hi].sum()`` for every segment, bit for bit what numpy's ``sum`` gives per segment.

    ``np.add.reduceat`` adds in another order (its results differ in the last bits), and the snapshot's
    numbers must not depend on whether they were computed per vertex or for all at once: segments shorter
    than 8 (numpy adds those one after the other) are added column by column across all segments; longer
    ones (pairwise summation) go through ``sum`` one by one, and there are few of them (one per vertex of
    8 or more subtasks)."""
    short = counts < _SEQUENTIAL_SUM_BELOW
    total = values[starts].copy()
    last = len(values) - 1
    for k in range(1, int(min(counts.max(), _SEQUENTIAL_SUM_BELOW - 1))):
        total += np.where(k < counts, values[np.minimum(starts + k, last)], 0.0)
    for i in np.nonzero(~short)[0]:
        total[i] = values[starts[i]:starts[i] + counts[i]].sum()
    return total


@dataclass(frozen=True)
class _Layout:
    """What every snapshot of the model shares until its next rescale: each vertex's fields apart from its
    metrics, column by column in the model's order, and the cluster the slots in use make."""

    vertices: tuple[SimVertex, ...]  # the model's, whose identity says whether the layout still holds
    fields: list[dict[str, Any]]  # per vertex, its Vertex fields but metrics (in field order)
    sources: tuple[int, ...]  # indexes of the sources (no input edges)
    parallelism: list[float]  # per vertex, for the timeline
    cluster: ClusterResources


def _layout(model: JobModel, config: SimConfig) -> _Layout:
    targets = {e.target for e in model.pipeline.edges}
    origins = {e.source for e in model.pipeline.edges}
    vertices = model.vertices
    slots = config.cluster.slots_for(model.parallelism())
    spt = config.cluster.slots_per_task_manager
    task_managers = -(-slots // spt)
    cluster = ClusterResources(task_managers=task_managers, slots_total=task_managers * spt,
                               slots_available=task_managers * spt - slots, slots_per_task_manager=spt,
                               max_task_managers=config.cluster.max_slots // spt)
    fields: list[dict[str, Any]] = [
        {"id": v.id, "name": v.label, "parallelism": v.parallelism, "max_parallelism": v.max_parallelism,
         "is_source": v.id not in targets, "is_sink": v.id not in origins, "partitions": v.partitions}
        for v in vertices]
    sources = tuple(i for i, v in enumerate(vertices) if v.id not in targets)
    return _Layout(vertices, fields, sources, [float(v.parallelism) for v in vertices], cluster)


@dataclass(frozen=True)
class _Built:
    """A snapshot and the per-vertex columns its timeline point reads (None where Flink would report none)."""

    snapshot: MetricsSnapshot
    rate_in: list[float | None]
    busy_max: list[float | None]
    busy_avg: list[float | None]
    back_pressured_max: list[float | None]


def build_snapshot(model: JobModel, window: WindowMetrics | None, *, timestamp: float, job_name: str,
                   config: SimConfig, job_state: str = "RUNNING", checkpoints: CheckpointStats | None = None,
                   keep_probability: float = 1.0, edges: tuple[Edge, ...] | None = None) -> MetricsSnapshot:
    """What Flink's REST API would report for the simulated job, averaged over the metrics window.

    Under shedding (``keep_probability`` < 1) a source reads ``1 / p`` records for each one it keeps, so
    its records in are the kept ones over p; busy time counts the kept records only.

    The per-subtask metrics are computed for all subtasks at once and reduced per vertex (max; sums in
    numpy's own order, ``_segment_sums``), so a snapshot of a 1,000-vertex job costs a few numpy operations,
    not a few per vertex. Flink's ``agg=skew`` of records in is min(mean absolute deviation / mean x 100, 100).
    ``edges``: the snapshot edges of ``model.pipeline`` (``snapshot_edges``), for a run loop that hands every
    snapshot the same tuple (snapshots sharing it share what is derived from the graph alone).
    """
    return _build(model, window, _layout(model, config), timestamp=timestamp, job_name=job_name, config=config,
                  job_state=job_state, checkpoints=checkpoints, keep_probability=keep_probability,
                  edges=edges).snapshot


def _build(model: JobModel, window: WindowMetrics | None, layout: _Layout, *, timestamp: float, job_name: str,
           config: SimConfig, job_state: str, checkpoints: CheckpointStats | None, keep_probability: float,
           edges: tuple[Edge, ...] | None) -> _Built:
    """``build_snapshot`` with the model's ``layout``; the vertices and their metrics are built column by
    column (``frozen_instances``), each column one ``tolist`` of a numpy array."""
    queued = model.queued_per_vertex().tolist()
    n = len(model.vertices)
    pending: list[float | None] = [None] * n
    for i in layout.sources:
        pending[i] = queued[i]
    if window is not None:
        starts, counts = model.seg_start, model.parallelism_array
        n_sources = len(model.source_ids)
        seconds = window.seconds
        processed = window.processed
        capacity_seconds: FloatArray = model.capacity * seconds
        busy: FloatArray = processed / capacity_seconds * 1000
        backpressured: FloatArray = (window.wanted - processed) / capacity_seconds * 1000
        idle: FloatArray = np.clip(1000 - busy - backpressured, 0, 1000)
        rate_in: FloatArray = processed / seconds
        if keep_probability < 1.0:
            # Sources come first in topological order: their readers are the first subtasks.
            rate_in[: model.n_source_subtasks] = rate_in[: model.n_source_subtasks] / keep_probability
        rate_sum = _segment_sums(rate_in, starts, counts)
        rate_mean = rate_sum / counts
        deviation = _segment_sums(np.abs(rate_in - np.repeat(rate_mean, counts)), starts, counts) / counts
        skew = _records_in_skew(deviation, rate_mean)
        records_out = (rate_sum * model.out_factor).tolist()
        busy_max = np.maximum.reduceat(busy, starts).tolist()
        busy_avg = (_segment_sums(busy, starts, counts) / counts).tolist()
        bp_max = np.maximum.reduceat(backpressured, starts).tolist()
        bp_avg = (_segment_sums(backpressured, starts, counts) / counts).tolist()
        idle_avg = (_segment_sums(idle, starts, counts) / counts).tolist()
        source_processed = _segment_sums(processed[: model.n_source_subtasks], starts[:n_sources],
                                         counts[:n_sources]).tolist()
        rates = rate_sum.tolist()
        pending_growth: list[float | None] = [None] * n
        admitted_here = window.admitted / len(model.source_ids)
        for i in layout.sources:
            pending_growth[i] = (admitted_here - source_processed[i]) / seconds
        columns: dict[str, Sequence[Any]] = {
            "num_records_in_per_second": rates, "num_records_out_per_second": records_out,
            "busy_time_ms_per_second_max": busy_max, "busy_time_ms_per_second_avg": busy_avg,
            "back_pressured_time_ms_per_second_max": bp_max, "back_pressured_time_ms_per_second_avg": bp_avg,
            "idle_time_ms_per_second_avg": idle_avg, "pending_records": pending,
            "pending_records_per_second": pending_growth, "records_in_skew": skew}
        same: dict[str, Any] = {"num_bytes_in_per_second": None, "num_bytes_out_per_second": None}
        if config.subtask_metrics:
            columns["subtasks"] = [
                tuple(SubtaskMetrics(index=k, num_records_in_per_second=float(rate_in[lo + k]),
                                     num_records_out_per_second=float(rate_in[lo + k] * model.out_factor[i]),
                                     busy_time_ms_per_second=float(busy[lo + k]),
                                     back_pressured_time_ms_per_second=float(backpressured[lo + k]),
                                     idle_time_ms_per_second=float(idle[lo + k]))
                      for k in range(hi - lo))
                for i, (lo, hi) in enumerate(zip(starts.tolist(), (starts + counts).tolist(), strict=True))]
        else:
            same["subtasks"] = ()
        per_vertex = frozen_instances(VertexMetrics, columns, same)
        built = _Built(_snapshot(per_vertex, layout, model, window, timestamp=timestamp, job_name=job_name,
                                 job_state=job_state, checkpoints=checkpoints, edges=edges),
                       rates, busy_max, busy_avg, bp_max)
        return built
    nothing: list[float | None] = [None] * n
    per_vertex = frozen_instances(VertexMetrics, {"pending_records": pending}, _NO_METRICS)
    return _Built(_snapshot(per_vertex, layout, model, window, timestamp=timestamp, job_name=job_name,
                            job_state=job_state, checkpoints=checkpoints, edges=edges),
                  nothing, nothing, nothing, nothing)


def _records_in_skew(deviation: FloatArray, mean: FloatArray) -> list[float | None]:
    """Flink's ``agg=skew`` per vertex, ``min(deviation / mean x 100, 100)``; None where nothing flowed (mean 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        skew: list[float | None] = np.minimum(deviation / mean * 100, 100.0).tolist()
    for i in np.nonzero(mean <= 0)[0].tolist():
        skew[i] = None
    return skew


#: A vertex's metrics without a window, but pending records (sources only): every other field at its default.
_NO_METRICS: dict[str, Any] = {f.name: f.default for f in fields(VertexMetrics) if f.name != "pending_records"}


def _snapshot(per_vertex: list[VertexMetrics], layout: _Layout, model: JobModel, window: WindowMetrics | None, *,
              timestamp: float, job_name: str, job_state: str, checkpoints: CheckpointStats | None,
              edges: tuple[Edge, ...] | None) -> MetricsSnapshot:
    vertices = tuple(frozen_instances(Vertex, {"metrics": per_vertex}, leading=layout.fields))
    if edges is None:
        edges = snapshot_edges(model.pipeline)
    return MetricsSnapshot(timestamp=timestamp, job_id=f"sim-{job_name}", job_name=job_name,
                           vertices=vertices, edges=edges, job_state=job_state,
                           window_seconds=window.seconds if window else 0.0, cluster=layout.cluster,
                           checkpoints=checkpoints)


def snapshot_edges(pipeline: SimPipeline) -> tuple[Edge, ...]:
    """The pipeline's edges as a snapshot has them."""
    return tuple(Edge(e.source, e.target, e.ship_strategy) for e in pipeline.edges)


def _lag_seconds(lag_records: FloatArray, offered_rate: FloatArray) -> FloatArray:
    mean_rate = float(offered_rate.mean()) if offered_rate.size else 0.0
    rate = np.where(offered_rate > 0, offered_rate, mean_rate if mean_rate > 0 else 1.0)
    seconds: FloatArray = lag_records / rate
    return seconds


#: Decisions between two collections of the young generations while a run holds the collector off.
_COLLECT_EVERY = 100


@contextlib.contextmanager
def _young_collections_only() -> Iterator[Callable[[], None]]:
    """Holds Python's automatic cyclic garbage collection off for a run, and yields what to call at each decision:
    every ``_COLLECT_EVERY`` decisions it collects the young generations (cycles made since), never the old one.

    Why: the history keeps hours of snapshots, thousands of small objects each (a vertex and its metrics per
    vertex), and the automatic collector walks all of them again whenever a quarter as many new ones have
    survived: at 1,000 vertices a third of a run's time, for no garbage (a run makes no reference cycles; the
    tests check that, and memory is freed by reference counting as snapshots leave the history). The collector
    is as it was when the run ends, and the old generation is collected then as usual."""
    was_enabled = gc.isenabled()
    gc.disable()
    decisions = 0

    def decided() -> None:
        nonlocal decisions
        decisions += 1
        if decisions % _COLLECT_EVERY == 0:
            gc.collect(1)

    try:
        yield decided
    finally:
        if was_enabled:
            gc.enable()


def simulate(pipeline: SimPipeline, rates: FloatArray, policy: Policy, config: SimConfig, *,
             progress: ProgressCallback | None = None, policy_name: str | None = None,
             history: History | None = None, step_by_step: bool = False) -> SimRun:
    """Run ``policy`` on ``pipeline`` under the offered ``rates`` (records/s, one value per step), starting
    from ``history`` (e.g. the load of the days before the run, ``Scenario.prior_history``).

    The steps between two events (a decision, a checkpoint) go through ``JobModel.advance`` at once while the
    job flows freely, else one by one through ``JobModel.step``; ``step_by_step`` takes every step one by one
    (the reference the tests compare the fast path with). The run holds the automatic cyclic garbage collector
    off (``_young_collections_only``)."""
    with _young_collections_only() as decided:
        return _simulate(pipeline, rates, policy, config, progress=progress, policy_name=policy_name,
                         history=history, step_by_step=step_by_step, decided=decided)


def _simulate(pipeline: SimPipeline, rates: FloatArray, policy: Policy, config: SimConfig, *,
              progress: ProgressCallback | None, policy_name: str | None, history: History | None,
              step_by_step: bool, decided: Callable[[], None]) -> SimRun:
    name: str = policy_name or str(getattr(policy, "name", type(policy).__name__))
    dt = config.step_seconds
    steps = min(config.steps, len(rates))
    model = JobModel(pipeline, step_seconds=dt, buffer_seconds=config.buffer_seconds,
                     metrics_window_seconds=config.metrics_window_seconds)
    decision_every = max(1, round(config.decision_interval_seconds / dt))
    checkpoint_every = max(1, round(config.checkpoints.interval_seconds / dt))
    pause_steps = round(config.checkpoints.pause_seconds / dt)
    state_bytes = pipeline.state_bytes()
    history = history if history is not None else History()
    # As much history as the policy's longest rule looks back (cpu-threshold: 6 h), not History's 2 h default.
    settings = control.ControlSettings(interval_seconds=config.decision_interval_seconds, shedding=config.shedding,
                                       history_seconds=required_history_seconds(policy))
    controller = control.ControllerState()
    lag = np.zeros(steps)
    shed_fraction = 0.0
    dropped = 0.0
    down_until = -1.0
    slot_seconds = 0.0
    slots = config.cluster.slots_for(model.parallelism())
    peak_slots = slots
    rescales = 0
    downtime = 0.0
    checkpoints_done = 0
    steps_since_restart = 0
    points: list[dict[str, object]] = []
    progress_every = max(1, steps // 200)
    vertex_ids = tuple(v.id for v in model.vertices)
    edges = snapshot_edges(pipeline)  # a rescale changes parallelism, never the edges
    sink_index = [model.index[s] for s in model.sink_ids]
    source_index = [model.index[s] for s in model.source_ids]
    interval_offered = 0.0
    interval_steps = 0
    layout: _Layout | None = None  # rebuilt after each rescale
    stepped_until = 0  # steps before this one go one by one (a span there did not flow freely)
    t = 0
    while t < steps:
        if (not step_by_step and pause_steps == 0 and t >= stepped_until
                and (t + 1) * dt > down_until + 1e-9):
            # Up to the next event (a decision or the last step, a checkpoint) the steps advance at once.
            next_decision = min(steps - 1, (t // decision_every + 1) * decision_every - 1)
            next_checkpoint = t - 1 + checkpoint_every - steps_since_restart % checkpoint_every
            end = min(next_decision, next_checkpoint)
            if end - t >= 2:
                offered_span = np.asarray(rates[t:end], dtype=np.float64) * dt
                admitted_span = offered_span * (1.0 - shed_fraction)
                pending = model.advance(admitted_span)
                if pending is None:
                    stepped_until = end
                else:
                    for k, (offered, admitted) in enumerate(zip(offered_span.tolist(), admitted_span.tolist(),
                                                                strict=True)):
                        interval_offered += offered
                        interval_steps += 1
                        dropped += offered - admitted
                        slot_seconds += slots * dt
                        if progress is not None and (t + k) % progress_every == 0:
                            progress((t + k) / steps)
                    steps_since_restart += end - t
                    lag[t:end] = pending
                    t = end
                    continue
        now = (t + 1) * dt
        offered = float(rates[t]) * dt
        interval_offered += offered
        interval_steps += 1
        admitted = offered * (1.0 - shed_fraction)
        dropped += offered - admitted
        if now <= down_until + 1e-9:
            model.downtime_step(admitted)
        else:
            steps_since_restart += 1
            # A checkpoint triggers every interval after a (re)start and stops processing for its pause.
            in_checkpoint = (pause_steps > 0 and steps_since_restart >= checkpoint_every
                             and steps_since_restart % checkpoint_every < pause_steps)
            model.step(admitted, processing=not in_checkpoint)
            if steps_since_restart % checkpoint_every == 0:
                checkpoints_done += 1
                model.mark_checkpoint()
        slot_seconds += slots * dt
        lag[t] = model.source_pending()
        if (t + 1) % decision_every == 0 or t == steps - 1:
            running = now > down_until + 1e-9
            window = model.window() if running else None
            checkpoint_stats = CheckpointStats(
                completed=checkpoints_done, interval_ms=config.checkpoints.interval_seconds * 1000,
                state_size_bytes=round(state_bytes), last_duration_ms=config.checkpoints.pause_seconds * 1000)
            if layout is None or layout.vertices is not model.vertices:
                layout = _layout(model, config)
            built = _build(model, window, layout, timestamp=now, job_name=pipeline.name, config=config,
                           job_state="RUNNING" if running else "RESTARTING", checkpoints=checkpoint_stats,
                           keep_probability=1.0 - shed_fraction, edges=edges)
            snapshot = built.snapshot
            arrival_rate = interval_offered / (interval_steps * dt)
            points.append(_timeline_point(built, layout, now, arrival_rate, lag[t], slots, source_index, sink_index))
            decided()
            interval_offered = 0.0
            interval_steps = 0
            if running and window is not None and t < steps - 1:
                try:
                    result = control.step(snapshot, history, controller, settings, policy, arrival_rate=arrival_rate)
                except Exception as exc:  # a policy bug must name the policy, not kill the comparison silently
                    raise RuntimeFailure(f"policy {name!r} failed at t={now:g}s: {exc!r}") from exc
                history, controller, decision = result.history, result.state, result.decision
                if decision is not None:
                    shed_fraction = _checked_shed(decision, name)
                # The step asks for a rescale exactly when the decision rescales (``decision.rescale``).
                rescale = next((a for a in result.actions if isinstance(a, control.Rescale)), None)
                if rescale is not None:
                    old = model.parallelism()
                    new = clamp_parallelism(rescale.parallelism, model.pipeline, config.cluster)
                    if new != old:
                        cost = config.rescale.downtime_seconds(state_bytes)
                        model.rescale(new, restore_from_checkpoint=config.rescale.mode == "checkpoint")
                        slots = config.cluster.slots_for(new)
                        peak_slots = max(peak_slots, slots)
                        down_until = now + cost
                        downtime += cost
                        rescales += 1
                        steps_since_restart = 0
                        history = control.record_rescale(
                            history, RescaleRecord(requested_at=now, completed_at=now + cost, old_parallelism=old,
                                                   new_parallelism=new), settings)
        if progress is not None and t % progress_every == 0:
            progress(t / steps)
        t += 1
    if progress is not None:
        progress(1.0)
    offered_rates = np.asarray(rates[:steps], dtype=np.float64)
    lag_s = _lag_seconds(lag, offered_rates)
    processed = model.processed_per_vertex()
    queued_array = model.queued_per_vertex()
    outcome = SimOutcome(
        policy=name, duration_seconds=steps * dt, core_hours=slot_seconds / 3600,
        seconds_over_target=float(np.count_nonzero(lag_s > config.latency_target_seconds)) * dt,
        latency_target_seconds=config.latency_target_seconds,
        peak_lag_records=float(lag.max()), peak_lag_seconds=float(lag_s.max()), rescales=rescales,
        downtime_seconds=downtime, records_offered=float(offered_rates.sum() * dt), records_dropped=dropped,
        records_written=sum(processed[s] for s in model.sink_ids), peak_slots=peak_slots,
        final_parallelism=model.parallelism(), arrived=model.arrived_per_vertex(), processed=processed,
        queued={v.id: float(queued_array[i]) for i, v in enumerate(model.vertices)},
        discarded=model.discarded_per_vertex(), records_replayed=float(model.replayed_total.sum()))
    return SimRun(outcome=outcome, timeline=_timeline(vertex_ids, points), history=history, lag_records=lag,
                  offered_rate=offered_rates)


def _checked_shed(decision: Decision, policy_name: str) -> float:
    fraction = float(decision.shed_fraction)
    if not 0 <= fraction < 1:
        raise RuntimeFailure(f"policy {policy_name!r} asked to shed {fraction} (must be in [0, 1))")
    return fraction


def _timeline_point(built: _Built, layout: _Layout, now: float, offered_rate: float, lag_records: float,
                    slots: int, source_index: list[int], sink_index: list[int]) -> dict[str, object]:
    rate_in = [rate or 0.0 for rate in built.rate_in]
    return {
        "time": now, "offered": offered_rate, "lag": lag_records, "slots": float(slots),
        "source": sum(rate_in[i] for i in source_index), "sink": sum(rate_in[i] for i in sink_index),
        "parallelism": layout.parallelism,
        "busy_max": [(busy or 0.0) / 1000 for busy in built.busy_max],
        "busy_avg": [(busy or 0.0) / 1000 for busy in built.busy_avg],
        "bp_max": [(back_pressured or 0.0) / 1000 for back_pressured in built.back_pressured_max],
    }


def _timeline(vertex_ids: tuple[str, ...], points: list[dict[str, object]]) -> Timeline:
    def column(key: str) -> FloatArray:
        return np.asarray([p[key] for p in points], dtype=np.float64)

    offered = column("offered")
    lag = column("lag")
    return Timeline(vertex_ids=vertex_ids, times=column("time"), offered_rate=offered, source_rate=column("source"),
                    sink_rate=column("sink"), lag_records=lag, lag_seconds=_lag_seconds(lag, offered),
                    slots=column("slots"), parallelism=column("parallelism"), busy_max=column("busy_max"),
                    busy_avg=column("busy_avg"), backpressured_max=column("bp_max"))
