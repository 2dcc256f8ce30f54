"""A rate step through a fixed-parallelism pipeline: the simulator's side of calibration.

``step_response`` runs the model with no policy at all: the pipeline at the parallelism it was given (per-vertex
capacities usually come from a profile of the real job), ``rate_before`` until ``step_at``, then
``rate_during`` for ``pulse_seconds`` (or to the end), then ``rate_after``. It returns the source lag every
step plus the two numbers compared with the real cluster (bench/sim_calibration):

- peak lag, in records and in seconds of the offered rate at that moment;
- time to recover: from the step to the first step after the peak lag where the lag is back at or below
  ``recovered_lag`` (default: the lag before the step plus one second of the final rate). ``None`` when it
  never recovers within the run (the pipeline is too slow for the final rate).

``pipeline_from_snapshot`` builds the simulated pipeline from a snapshot of the real job (the collector's
``MetricsSnapshot``): the graph, ship strategies and max parallelism as Flink reports them, per-subtask
capacity = records in per second / (parallelism x average busy ratio) unless a profile's capacities are
given, and each edge's selectivity from the measured rates.

``catch_up_seconds`` is the closed form the tests hold the simulator to: after ``downtime`` seconds without
processing at offered rate ``r``, a job of capacity ``c > r`` drains the backlog ``r x D`` at ``c - r``, taking
``r x D / (c - r)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from flinkscale.core.errors import InputError
from flinkscale.core.rates import per_subtask_capacity
from flinkscale.core.sim.engine import JobModel
from flinkscale.core.sim.keyload import FloatArray
from flinkscale.core.sim.model import SimEdge, SimPipeline, SimVertex
from flinkscale.core.snapshot import MetricsSnapshot, Vertex


def catch_up_seconds(rate: float, downtime_seconds: float, capacity: float) -> float:
    """r x D / (c - r): seconds to drain the backlog of a D-second stop at rate r with capacity c (inf if c <= r)."""
    if capacity <= rate:
        return math.inf
    return rate * downtime_seconds / (capacity - rate)


def pipeline_capacity(pipeline: SimPipeline) -> float:
    """Records/s at the sources the pipeline sustains with evenly spread load: min over vertices of p x c / factor."""
    factors = pipeline.vertex_rate_factors()
    return min(v.parallelism * v.capacity / factors[v.id] for v in pipeline.vertices if factors[v.id] > 0)


@dataclass(frozen=True)
class StepResponse:
    times: FloatArray
    offered_rate: FloatArray
    lag_records: FloatArray
    lag_seconds: FloatArray
    peak_lag_records: float
    peak_lag_seconds: float
    peak_at_seconds: float
    # Seconds from the step until the lag is back to ``recovered_lag``; None = not within the run.
    time_to_recover_seconds: float | None
    recovered_lag: float


def step_response(pipeline: SimPipeline, *, rate_before: float, rate_during: float, step_at_seconds: float,
                  duration_seconds: float, pulse_seconds: float | None = None, rate_after: float | None = None,
                  step_seconds: float = 1.0, buffer_seconds: float = 4.0,
                  recovered_lag: float | None = None) -> StepResponse:
    """The source lag of ``pipeline`` (at its own parallelism) through a rate step or pulse."""
    if duration_seconds <= step_at_seconds:
        raise InputError("must be longer than step_at", field="duration")
    for name, value in (("rate_before", rate_before), ("rate_during", rate_during)):
        if value < 0:
            raise InputError(f"must be >= 0, got {value}", field=name)
    final_rate = rate_after if rate_after is not None else (rate_before if pulse_seconds is not None else rate_during)
    steps = max(1, round(duration_seconds / step_seconds))
    times = np.arange(1, steps + 1, dtype=np.float64) * step_seconds
    starts = times - step_seconds
    offered = np.where(starts < step_at_seconds, rate_before, rate_during).astype(np.float64)
    if pulse_seconds is not None:
        offered = np.where(starts >= step_at_seconds + pulse_seconds, final_rate, offered)
    model = JobModel(pipeline, step_seconds=step_seconds, buffer_seconds=buffer_seconds)
    lag = np.zeros(steps)
    for t in range(steps):
        model.step(float(offered[t]) * step_seconds)
        lag[t] = model.source_pending()
    rate_for_seconds = np.where(offered > 0, offered, max(final_rate, 1e-9))
    lag_seconds = lag / rate_for_seconds
    peak_index = int(np.argmax(lag))
    step_index = int(np.searchsorted(times, step_at_seconds, side="right"))
    before = float(lag[step_index - 1]) if step_index > 0 else 0.0
    threshold = recovered_lag if recovered_lag is not None else before + final_rate * 1.0
    recovered = np.nonzero(lag[peak_index:] <= threshold)[0]
    time_to_recover = None
    if recovered.size:
        time_to_recover = float(times[peak_index + int(recovered[0])] - step_at_seconds)
    return StepResponse(times=times, offered_rate=offered, lag_records=lag, lag_seconds=lag_seconds,
                        peak_lag_records=float(lag[peak_index]), peak_lag_seconds=float(lag_seconds.max()),
                        peak_at_seconds=float(times[peak_index]), time_to_recover_seconds=time_to_recover,
                        recovered_lag=threshold)


def measured_capacity_per_subtask(vertex: Vertex) -> float | None:
    """Records/s one subtask processes at 100% busy: rate in / (p x average busy ratio); None if not measurable.

    Total busy time over the subtasks is p x busy_avg, so this is the total rate over the total busy time, exact
    for equal subtasks whatever the skew (a hot subtask is busier, and counted so).
    """
    metrics = vertex.metrics
    rate, busy = metrics.num_records_in_per_second, metrics.busy_time_ms_per_second_avg
    if rate is None or busy is None or rate <= 0 or busy <= 0:
        return None
    return per_subtask_capacity(rate, busy, vertex.parallelism)


def pipeline_from_snapshot(snapshot: MetricsSnapshot, capacities: Mapping[str, float] | None = None,
                           state_bytes: Mapping[str, float] | None = None) -> SimPipeline:
    """The real job as a ``SimPipeline``: capacities from ``capacities`` (per subtask) or from the snapshot.

    Keys are taken as uniform (only the key-group layout makes skew); pass a profile's capacities when the
    snapshot's busy times are too low to measure (an idle vertex has no measurable capacity).
    """
    given = dict(capacities or {})
    vertices = []
    for index, vertex in enumerate(snapshot.vertices):
        capacity = given.get(vertex.id) or measured_capacity_per_subtask(vertex)
        if capacity is None:
            raise InputError(f"no capacity for vertex {vertex.id!r}: it reports no busy time and none was given",
                             field=f"capacities.{vertex.id}")
        vertices.append(SimVertex(id=vertex.id, name=vertex.name, parallelism=vertex.parallelism, capacity=capacity,
                                  max_parallelism=vertex.max_parallelism, is_source=vertex.is_source,
                                  partitions=vertex.partitions,
                                  state_bytes=float((state_bytes or {}).get(vertex.id, 0.0)),
                                  where=f"vertices[{index}]"))
    edges = []
    for index, edge in enumerate(snapshot.edges):
        upstream, downstream = snapshot.vertex(edge.source), snapshot.vertex(edge.target)
        rate_up = upstream.metrics.num_records_in_per_second
        # One input: the downstream rate is all from this edge; several: the upstream's own out/in ratio.
        rate_edge = (downstream.metrics.num_records_in_per_second if len(snapshot.inputs_of(edge.target)) == 1
                     else upstream.metrics.num_records_out_per_second)
        selectivity = rate_edge / rate_up if rate_up and rate_edge else 1.0
        edges.append(SimEdge(edge.source, edge.target, edge.ship_strategy, selectivity, where=f"edges[{index}]"))
    return SimPipeline(tuple(vertices), tuple(edges), name=snapshot.job_name)
