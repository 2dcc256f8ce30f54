"""The rate formulas, each in one place: true processing rate, capacity to provision, window means.

Every caller (the policies, the profiler, the simulator's calibration, the shedding controller, the
workload reader, the collector) computes these quantities through the functions here, so that a number
printed by ``profile`` and the same number used by a policy or by ``shed auto`` cannot drift apart.

Definitions (Flink's metric names; ``busy`` in ms per second, as Flink reports ``busyTimeMsPerSecond``):

- busy ratio ``u = min(busy, 1000) / 1000``: the fraction of the interval a subtask was busy.
- true processing rate ``TPR = rate / u``: records per *busy* second, what the subtask(s) would process
  if busy all the time (the operator autoscaler's ``TPR``; infinite for a vertex never busy).
- observed TPR of a backpressured source ``rate / (1 - backpressured / 1000)``.
- per-subtask capacity ``rate / (p x busy_avg / 1000)``: total records over total busy seconds of the
  ``p`` subtasks, exact for equal subtasks whatever the skew; its inverse is the cost per record, and a
  stated cost per record (a workload spec's ``cost_us_per_record``) gives the capacity ``10^6 / cost``.
- sustainable rate under shedding ``TPR x p_keep``: the source reads ``TPR`` records per busy second, of
  which it processes the kept fraction fully.
- capacity to provision (the operator's formula, and the planner's with RTO for restart):
  ``catch_up_rate + target x restart / catch_up_duration + target / utilization``.
- window mean: the mean of per-interval values weighted by each interval's length (``window_seconds``),
  so that a short interval after a restart counts for what it covers; values that are unknown (``None``
  or NaN) are left out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

MS_PER_SECOND = 1000.0


def busy_ratio(busy_ms_per_second: float) -> float:
    """``min(busy, 1000) / 1000``; negative readings count as 0."""
    return min(max(busy_ms_per_second, 0.0), MS_PER_SECOND) / MS_PER_SECOND


def true_processing_rate(rate: float, busy_ms_per_second: float) -> float:
    """``rate / busy ratio``: records per busy second; infinite for a vertex that is never busy."""
    ratio = busy_ratio(busy_ms_per_second)
    if ratio <= 0:
        return math.inf
    return rate / ratio


def observed_true_processing_rate(rate: float, back_pressured_ms_per_second: float) -> float:
    """``rate / (1 - backpressured ratio)``: what a source reads when nothing downstream holds it back."""
    free = 1.0 - busy_ratio(back_pressured_ms_per_second)
    return math.inf if free <= 0 else rate / free


def per_subtask_capacity(rate: float, busy_ms_per_second_avg: float, parallelism: int) -> float:
    """``rate / (p x busy_avg / 1000)``: records one subtask processes per busy second."""
    if parallelism < 1:
        raise ValueError(f"parallelism must be >= 1, got {parallelism}")
    return true_processing_rate(rate, busy_ms_per_second_avg) / parallelism


def cost_us_per_record(rate: float, busy_ms_per_second_avg: float, parallelism: int) -> float:
    """Busy microseconds one record costs one subtask: ``1e6 / per_subtask_capacity``."""
    capacity = per_subtask_capacity(rate, busy_ms_per_second_avg, parallelism)
    return 0.0 if math.isinf(capacity) else 1e6 / capacity


def capacity_from_cost(cost_us_per_record: float) -> float:
    """``10^6 / cost_us_per_record``: records one subtask processes per busy second; infinite for a free operator."""
    return math.inf if cost_us_per_record <= 0 else 1e6 / cost_us_per_record


def sustainable_rate(consumed_rate: float, busy_ms_per_second: float, keep_probability: float) -> float:
    """``TPR x p``: fully processed records per second a source sustains while it keeps a fraction p."""
    return true_processing_rate(consumed_rate, busy_ms_per_second) * keep_probability


def required_capacity(target_rate: float, utilization: float, restart_seconds: float = 0.0,
                      catch_up_seconds: float = 0.0, catch_up_rate: float = 0.0) -> float:
    """``catch_up_rate + target x restart / catch_up_duration + target / utilization``.

    The restart term is the backlog a restart of ``restart_seconds`` leaves, drained within
    ``catch_up_seconds`` (0 = no catch-up term). Infinite for a utilization of 0 or less."""
    if utilization <= 0:
        return math.inf
    restart_term = target_rate * restart_seconds / catch_up_seconds if catch_up_seconds > 0 else 0.0
    return catch_up_rate + restart_term + target_rate / utilization


def window_mean(values: Iterable[tuple[float | None, float]]) -> float | None:
    """Mean of ``(value, seconds)`` pairs weighted by seconds; unknown values (None, NaN) are left out.

    Equal intervals give the plain mean. Pairs with no positive weight count equally (weight 1) when
    every known pair has none, so a window of zero-length samples still has a mean."""
    known = [(v, w) for v, w in values if v is not None and not math.isnan(v)]
    if not known:
        return None
    # Added one after the other, oldest first (``_evaluate.window_metrics`` adds whole columns in this order).
    total = 0.0
    for _, w in known:
        if w > 0:
            total += w
    if total <= 0:
        plain = 0.0
        for v, _ in known:
            plain += v
        return plain / len(known)
    weighted = 0.0
    for v, w in known:
        if w > 0:
            weighted += v * w
    return weighted / total
