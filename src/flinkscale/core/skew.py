"""Skew analysis per vertex: how uneven the subtasks are, why, and what fixes it by how much.

Scaling out only helps when load spreads. A vertex's throughput is bounded by its busiest subtask:
with ``p`` subtasks and a max/mean load ratio ``r``, the vertex saturates at ``p / r`` subtasks' worth of
work. So the unit of everything here is the max/mean ratio, and the expected gain of a remedy is the
ratio of capacities ``(p' / r') / (p / r)``.

For a keyed vertex the ratio has two causes, and they multiply:

* **Key-group layout.** Keys hash into ``maxParallelism`` key groups and each subtask owns a contiguous
  range. When p does not divide maxP, some subtasks own ``ceil(maxP/p)`` groups against a mean of
  ``maxP/p``, so even perfectly uniform keys give ``layout = ceil(maxP/p) x p / maxP`` (128 over 96: 1.5).
* **Hot keys.** Whatever remains, ``hot = observed / layout``, comes from the key distribution itself.
  ``layout_share`` = ln(layout) / ln(observed) says how much of the imbalance (on a log scale, because the
  factors multiply) the layout explains.

The observed ratio is the busy-time ratio (``busyTimeMsPerSecond``, what actually saturates) when the
subtasks report it, otherwise the record-rate ratio; the record-rate ratio also when the vertex is nearly idle
(fixed per-subtask work dilutes busy time) or its busiest subtask is saturated (busy time is capped at 1,000 ms/s).
Flink's own REST skew number is reported alongside: ``min(mean absolute deviation / mean x 100, 100)`` over the
subtasks' records-in rates.

Remedies, each with the Flink config keys or the code change and the expected max/mean after:
align p to a divisor of maxP (upward as the operator autoscaler does, and downward when that keeps the
same throughput with fewer slots); for hot keys, two-phase / mini-batch aggregation in SQL jobs
(``table.optimizer.agg-phase-strategy``, ``table.exec.mini-batch.*``) or salting with a two-phase
aggregation in DataStream jobs (``flinkscale.pipelines.salting``); on non-keyed edges ``rebalance()``
or Flink 2.3's adaptive partitioner (``taskmanager.network.adaptive-partitioner.enabled``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from flinkscale.core.errors import InputError
from flinkscale.core.keygroups import divisors, layout_imbalance
from flinkscale.core.snapshot import MetricsSnapshot, ShipStrategy, Vertex, json_finite

#: A vertex whose busiest subtask carries at least this multiple of the mean is reported as skewed.
DEFAULT_SKEW_THRESHOLD = 1.25
#: Below this busy time (ms/s) on the busiest subtask a skewed vertex is not a bottleneck worth fixing.
DEFAULT_MIN_BUSY_MS_PER_SECOND = 100.0
#: Records in within this multiple of the mean are even: uniform keys hashed over the subtasks differ by chance by a
#: few percent (2,000 keys over 2 subtasks: ~3%). Busy time uneven beside even records is not key skew.
EVEN_RECORDS_MAX_OVER_MEAN = 1.05
#: A subtask at least this busy (ms/s) is saturated. Busy time is capped at 1,000 ms/s, so a saturated subtask's
#: excess demand does not show in it, while its records in still carry the split: the upstream waits on it and
#: sends the others their share of the same stream (CI, loaded: busy 984 ms/s max, busy 1.20x, records 1.23x).
SATURATED_BUSY_MS_PER_SECOND = 950.0
#: Salts per subtask for salting: salted keys are placed by hash, so a hot key needs several per subtask.
SALTS_PER_SUBTASK = 4
#: Max parallelism values with many divisors (anchors.md section 4).
MAX_PARALLELISM_WITH_MANY_DIVISORS = (120, 180, 240, 360, 720)

SQL_TWO_PHASE_CONFIG: Mapping[str, str] = {
    "table.optimizer.agg-phase-strategy": "TWO_PHASE",
    "table.exec.mini-batch.enabled": "true",
    "table.exec.mini-batch.allow-latency": "1 s",
    "table.exec.mini-batch.size": "5000",
}
ADAPTIVE_PARTITIONER_CONFIG: Mapping[str, str] = {"taskmanager.network.adaptive-partitioner.enabled": "true"}


def flink_skew_metric(values: Sequence[float]) -> float:
    """Flink's REST ``agg=skew``: min(mean absolute deviation / mean x 100, 100); 0 for an all-zero vector."""
    if not values:
        raise InputError("needs at least one value", field="values")
    mean = sum(values) / len(values)
    if mean == 0:
        return 0.0
    deviation = sum(abs(v - mean) for v in values) / len(values)
    return min(deviation / mean * 100.0, 100.0)


def max_over_mean(values: Sequence[float]) -> float | None:
    """max / mean, or None when the mean is 0 (nothing to compare)."""
    if not values:
        return None
    mean = sum(values) / len(values)
    return None if mean <= 0 else max(values) / mean


@dataclass(frozen=True)
class SkewRecommendation:
    """One remedy with what to change and what it should give.

    ``expected_max_over_mean`` is the ratio after the change; ``expected_gain`` the vertex capacity after
    over before, ``(p' / r') / (p / r)``; ``explanation`` carries the formula with its inputs.
    """

    action: str
    title: str
    expected_max_over_mean: float
    expected_gain: float
    explanation: str
    config: Mapping[str, str] = field(default_factory=dict)
    parallelism: int | None = None
    needs_restart: bool = False


@dataclass(frozen=True)
class VertexSkew:
    """The skew of one vertex, decomposed, with its remedies (best expected gain first)."""

    vertex_id: str
    vertex_name: str
    parallelism: int
    max_parallelism: int
    keyed: bool
    observed_max_over_mean: float | None
    observed_basis: str  # "busy_time" | "records_in" | "none"
    records_in_max_over_mean: float | None
    busy_time_max_over_mean: float | None
    busy_time_ms_per_second_max: float | None
    flink_skew: float | None
    layout_imbalance: float
    hot_key_imbalance: float | None
    layout_share: float | None
    skewed: bool
    bottleneck: bool
    recommendations: tuple[SkewRecommendation, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SkewReport:
    job_id: str
    job_name: str
    timestamp: float
    threshold: float
    vertices: tuple[VertexSkew, ...]

    @property
    def skewed_vertices(self) -> tuple[VertexSkew, ...]:
        return tuple(v for v in self.vertices if v.skewed)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["skewed_vertex_ids"] = [v.vertex_id for v in self.skewed_vertices]
        cleaned: dict[str, Any] = json_finite(data)
        return cleaned


def analyze_skew(snapshot: MetricsSnapshot, *, threshold: float = DEFAULT_SKEW_THRESHOLD, sql_job: bool = False,
                 min_busy_time_ms_per_second: float = DEFAULT_MIN_BUSY_MS_PER_SECOND) -> SkewReport:
    """Skew of every vertex of the snapshot, in topological order."""
    if threshold <= 1.0:
        raise InputError(f"must be > 1 (a max/mean ratio), got {threshold}", field="threshold")
    vertices = tuple(analyze_vertex(snapshot, v, threshold=threshold, sql_job=sql_job,
                                    min_busy_time_ms_per_second=min_busy_time_ms_per_second)
                     for v in snapshot.topological_order())
    return SkewReport(snapshot.job_id, snapshot.job_name, snapshot.timestamp, threshold, vertices)


def analyze_vertex(snapshot: MetricsSnapshot, vertex: Vertex, *, threshold: float = DEFAULT_SKEW_THRESHOLD,
                   sql_job: bool = False,
                   min_busy_time_ms_per_second: float = DEFAULT_MIN_BUSY_MS_PER_SECOND) -> VertexSkew:
    """Skew of one vertex: observed ratio, its layout and hot-key factors, and the remedies."""
    metrics = vertex.metrics
    keyed = snapshot.is_keyed(vertex.id)
    notes: list[str] = []
    records = _complete([s.num_records_in_per_second for s in metrics.subtasks], vertex.parallelism)
    busy = _complete([s.busy_time_ms_per_second for s in metrics.subtasks], vertex.parallelism)
    records_ratio = max_over_mean(records) if records else None
    busy_ratio = max_over_mean(busy) if busy else None
    busy_max = max(busy) if busy else metrics.busy_time_ms_per_second_max
    if busy_ratio is None and metrics.busy_time_ms_per_second_max is not None \
            and metrics.busy_time_ms_per_second_avg:
        busy_ratio = metrics.busy_time_ms_per_second_max / metrics.busy_time_ms_per_second_avg
        notes.append("no per-subtask metrics: busy-time ratio from the vertex max and average")
    flink_skew = flink_skew_metric(records) if records else metrics.records_in_skew

    # Busy time is the better measure of load, but on a nearly idle vertex it is mostly fixed per-subtask work
    # (timers, checkpoints) that dilutes a real imbalance (measured: records 1.63x, busy time 1.25x at ~30 ms/s),
    # so below the busy floor the records decide.
    busy_is_informative = busy_max is None or busy_max >= min_busy_time_ms_per_second
    if busy_ratio is not None and (busy_is_informative or records_ratio is None):
        observed, basis = busy_ratio, "busy_time"
    elif records_ratio is not None:
        observed, basis = records_ratio, "records_in"
    else:
        observed, basis = None, "none"
        notes.append("no per-subtask records or busy time: skew unknown (collect with the per-subtask pass)")

    if (basis == "busy_time" and observed is not None and records_ratio is not None and records_ratio > observed
            and busy_max is not None and busy_max >= SATURATED_BUSY_MS_PER_SECOND):
        notes.append(f"the busiest subtask is saturated ({busy_max:.0f} ms/s): busy time, capped at 1,000 ms/s, "
                     f"understates the imbalance ({observed:.2f}x), so records in decide ({records_ratio:.2f}x)")
        observed, basis = records_ratio, "records_in"

    layout, layout_basis = _layout(snapshot, vertex, keyed)
    if layout_basis:
        notes.append(layout_basis)
    hot = None if observed is None else observed / layout
    share = None
    if observed is not None and observed > 1.0:
        share = min(1.0, max(0.0, math.log(layout) / math.log(observed)))
    skewed = observed is not None and observed >= threshold
    if skewed and basis == "busy_time" and records_ratio is not None and records_ratio < EVEN_RECORDS_MAX_OVER_MEAN:
        # Measured on a loaded 2-core machine: uniform keys, records 1.01x, busy time 1.59x. The subtasks got the
        # same work at different cost (CPU contention, GC, a noisy neighbour): moving keys would not even it.
        skewed = False
        notes.append(f"busy time is uneven ({observed:.2f}x) but records in are even ({records_ratio:.2f}x): "
                     "the subtasks get the same work at different cost (a busy host, GC), not a key skew")
    bottleneck = skewed and (busy_max is None or busy_max >= min_busy_time_ms_per_second)
    if skewed and not bottleneck:
        notes.append(f"skewed but its busiest subtask is only {busy_max:.0f} ms/s busy: not a bottleneck now")

    recommendations: list[SkewRecommendation] = []
    if skewed and observed is not None and hot is not None:
        if vertex.is_source or not snapshot.inputs_of(vertex.id):
            recommendations.extend(_source_remedies(vertex, observed, layout, hot, threshold))
        elif keyed:
            recommendations.extend(_keyed_remedies(vertex, observed, layout, hot, threshold, sql_job))
        else:
            recommendations.extend(_non_keyed_remedies(snapshot, vertex, observed))
    recommendations.sort(key=lambda r: -r.expected_gain)
    return VertexSkew(
        vertex_id=vertex.id, vertex_name=vertex.name, parallelism=vertex.parallelism,
        max_parallelism=vertex.max_parallelism, keyed=keyed, observed_max_over_mean=observed,
        observed_basis=basis, records_in_max_over_mean=records_ratio, busy_time_max_over_mean=busy_ratio,
        busy_time_ms_per_second_max=busy_max, flink_skew=flink_skew, layout_imbalance=layout,
        hot_key_imbalance=hot, layout_share=share, skewed=skewed, bottleneck=bottleneck,
        recommendations=tuple(recommendations), notes=tuple(notes))


def _complete(values: Iterable[float | None], parallelism: int) -> list[float]:
    """Per-subtask values when every subtask reported one, else [] (a partial vector would lie about the mean)."""
    known = [v for v in values if v is not None]
    return known if known and len(known) == parallelism else []


def _layout(snapshot: MetricsSnapshot, vertex: Vertex, keyed: bool) -> tuple[float, str]:
    if keyed:
        return layout_imbalance(vertex.max_parallelism, vertex.parallelism), ""
    if (vertex.is_source or not snapshot.inputs_of(vertex.id)) and vertex.partitions:
        readers = min(vertex.parallelism, vertex.partitions)
        # Partitions are assigned whole: the busiest reader owns ceil(N / readers) of them; mean over all p.
        busiest = -(-vertex.partitions // readers)
        return busiest * vertex.parallelism / vertex.partitions, \
            f"source layout: {vertex.partitions} partitions over {vertex.parallelism} subtasks"
    return 1.0, ""


def _gain(parallelism: int, ratio: float, new_parallelism: int, new_ratio: float) -> float:
    return (new_parallelism / new_ratio) / (parallelism / ratio)


def _keyed_remedies(vertex: Vertex, observed: float, layout: float, hot: float, threshold: float,
                    sql_job: bool) -> list[SkewRecommendation]:
    p, max_p = vertex.parallelism, vertex.max_parallelism
    remedies: list[SkewRecommendation] = []
    if layout > 1.0 + 1e-9:
        candidates = divisors(max_p)
        up = next((d for d in candidates if d >= p), None)
        down = max(d for d in candidates if d <= p)
        for target, direction in ((up, "up"), (down, "down")):
            if target is None or target == p:
                continue
            after = max(1.0, hot) * layout_imbalance(max_p, target)
            gain = _gain(p, observed, target, after)
            if direction == "down" and gain < 0.95:
                continue  # fewer slots only pays when throughput holds
            remedies.append(SkewRecommendation(
                action="align-parallelism", title=f"set parallelism {p} -> {target} (a divisor of max "
                                                  f"parallelism {max_p})",
                expected_max_over_mean=after, expected_gain=gain, parallelism=target, needs_restart=True,
                explanation=(f"layout = ceil(maxP/p) x p / maxP = ceil({max_p}/{p}) x {p} / {max_p} = {layout:.3f}; "
                             f"at p' = {target}: layout' = {layout_imbalance(max_p, target):.3f}, hot-key factor "
                             f"{hot:.3f} stays, r' = {after:.3f}; gain = (p'/r')/(p/r) = ({target}/{after:.3f})/"
                             f"({p}/{observed:.3f}) = {gain:.2f}"
                             + ("; same throughput with fewer slots" if direction == "down" else ""))))
        if max_p & (max_p - 1) == 0 and up is not None and up > 1.5 * p:
            better = [m for m in MAX_PARALLELISM_WITH_MANY_DIVISORS if m >= p]
            if better:
                remedies.append(SkewRecommendation(
                    action="max-parallelism-with-divisors",
                    title=f"for a NEW job (state cannot be restored across it): max parallelism {better[0]}",
                    expected_max_over_mean=max(1.0, hot) * layout_imbalance(better[0], min(p, better[0])),
                    expected_gain=_gain(p, observed, p, max(1.0, hot) * layout_imbalance(better[0], p)),
                    config={"pipeline.max-parallelism": str(better[0])}, needs_restart=True,
                    explanation=(f"max parallelism {max_p} is a power of two; {better[0]} has divisors "
                                 f"{divisors(better[0])}; changing it invalidates savepoint state")))
    if hot >= threshold:
        after = layout
        gain = _gain(p, observed, p, after)
        base = (f"hot-key factor = observed / layout = {observed:.3f} / {layout:.3f} = {hot:.3f}; pre-aggregating "
                f"spreads a hot key's records before the keyed exchange, r' ~ layout = {after:.3f}; "
                f"gain = r / r' = {gain:.2f}")
        if sql_job:
            remedies.append(SkewRecommendation(
                action="two-phase-aggregation", title="enable mini-batch two-phase (local-global) aggregation",
                expected_max_over_mean=after, expected_gain=gain, config=dict(SQL_TWO_PHASE_CONFIG),
                needs_restart=True,
                explanation=base + "; for COUNT DISTINCT also table.optimizer.distinct-agg.split.enabled=true"))
        salts = SALTS_PER_SUBTASK * p
        remedies.append(SkewRecommendation(
            action="salt-hot-keys",
            title=f"salt the key with {salts} salts and aggregate in two phases "
                  "(flinkscale.pipelines.salting.salted_aggregate)",
            expected_max_over_mean=after, expected_gain=gain, needs_restart=True,
            explanation=base + f"; salts = {SALTS_PER_SUBTASK} x p = {salts}: salted keys land on subtasks by "
                               "hash, so several salts per subtask are needed for a hot key to spread evenly "
                               "(r' ~ layout is the limit; Zipf(1.2) at p=4 measured 1.44 unsalted, 1.17 "
                               "with 4 salts, 1.07 with 32)"))
    return remedies


def _non_keyed_remedies(snapshot: MetricsSnapshot, vertex: Vertex, observed: float) -> list[SkewRecommendation]:
    strategies = {e.ship_strategy for e in snapshot.inputs_of(vertex.id)}
    gain = observed  # records can go anywhere: r' -> 1, gain = r / 1
    if strategies <= {ShipStrategy.REBALANCE}:
        return [SkewRecommendation(
            action="adaptive-partitioner",
            title="enable Flink 2.3's adaptive partitioner so less-loaded subtasks take more records",
            expected_max_over_mean=1.0, expected_gain=gain, config=dict(ADAPTIVE_PARTITIONER_CONFIG),
            needs_restart=True,
            explanation=(f"round-robin already spreads records evenly, so busy-time skew {observed:.3f} comes from "
                         f"uneven record cost or slow hosts; load-aware routing bounds r' -> 1, gain <= {gain:.2f}"))]
    named = ", ".join(sorted(s.value for s in strategies)) or "none"
    return [SkewRecommendation(
        action="rebalance", title="insert rebalance() before this operator (its input is not keyed)",
        expected_max_over_mean=1.0, expected_gain=gain, needs_restart=True,
        config=dict(ADAPTIVE_PARTITIONER_CONFIG),
        explanation=(f"input ship strategy {named} pins each upstream subtask's records to one downstream subtask; "
                     f"rebalance spreads them round-robin (r' -> 1, gain = r = {gain:.2f}); with the adaptive "
                     f"partitioner on, rebalance also follows load"))]


def _source_remedies(vertex: Vertex, observed: float, layout: float, hot: float,
                     threshold: float) -> list[SkewRecommendation]:
    remedies: list[SkewRecommendation] = []
    if vertex.partitions and layout > 1.0 + 1e-9:
        target = max(d for d in divisors(vertex.partitions) if d <= max(1, min(vertex.parallelism,
                                                                               vertex.partitions)))
        after = max(1.0, hot)
        remedies.append(SkewRecommendation(
            action="align-source-parallelism",
            title=f"set source parallelism {vertex.parallelism} -> {target} (divides {vertex.partitions} partitions)",
            expected_max_over_mean=after, expected_gain=_gain(vertex.parallelism, observed, target, after),
            parallelism=target, needs_restart=True,
            explanation=(f"busiest reader owns ceil({vertex.partitions}/{min(vertex.parallelism, vertex.partitions)})"
                         f" partitions: layout {layout:.3f}; with {target} readers every one owns "
                         f"{vertex.partitions // target}")))
    if hot >= threshold:
        remedies.append(SkewRecommendation(
            action="rebalance-partitions",
            title="uneven partitions: fix the producer's partitioner, and rebalance() right after the source",
            expected_max_over_mean=max(1.0, layout), expected_gain=1.0, needs_restart=True,
            config=dict(ADAPTIVE_PARTITIONER_CONFIG),
            explanation=(f"partition-level skew {hot:.3f} cannot be fixed by the source; rebalance() after it "
                         "protects downstream operators (the source itself keeps its skew)")))
    return remedies
