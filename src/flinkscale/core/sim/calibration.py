"""A rate step through a fixed-parallelism pipeline: the simulator's side of calibration.

``step_response`` runs the model with no policy at all: the pipeline at the parallelism it was given (per-vertex
capacities usually come from a profile of the real job), ``rate_before`` until ``step_at``, then
``rate_during`` for ``pulse_seconds`` (or to the end), then ``rate_after``. It returns the source lag every
step plus the two numbers compared with the real cluster (bench/sim_calibration):

- peak lag, in records and in seconds of the offered rate at that moment;
- time to recover: from the step to the first step after the peak lag where the lag is back at or below
  ``recovered_lag`` (default: the lag before the step plus one second of the final rate). ``None`` when it
  never recovers within the run (the pipeline is too slow for the final rate).

``catch_up_seconds`` is the closed form the tests hold the simulator to: after ``downtime`` seconds without
processing at offered rate ``r``, a job of capacity ``c > r`` drains the backlog ``r x D`` at ``c - r``, taking
``r x D / (c - r)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from flinkscale.core.errors import InputError
from flinkscale.core.sim.engine import JobModel
from flinkscale.core.sim.keyload import FloatArray
from flinkscale.core.sim.model import SimPipeline


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
