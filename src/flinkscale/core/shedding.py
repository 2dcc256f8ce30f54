"""Load shedding with a stated accuracy bound: the estimators, the sample-rate bound and the controller.

Flink has no load shedding; under a peak it backpressures and lag grows. When a peak exceeds what the
cluster can scale to, a job can instead keep each record with probability ``p`` and scale what it
aggregates (Horvitz-Thompson): a kept record stands for ``1/p`` records, so ``count = kept / p`` and
``sum = sum(kept values) / p`` are unbiased. The price is variance, and this module states it:

* Bernoulli sampling of N records at rate p: Var(count) = N (1-p) / p, so the relative error at
  confidence z (1.96 for 95%) is ``z * sqrt((1-p) / (p N))``. Solving for ``eps`` gives the bound
  ``p >= 1 / (1 + N eps^2 / z^2)`` (N = 10^6 -> 0.95%, 10^5 -> 8.8%, 10^4 -> 49% at eps 2%, z 1.96).
* Sums of values with coefficient of variation CV behave like counts over ``N / (1 + CV^2)`` records,
  because sum(y^2) = N mu^2 (1 + CV^2).
* With a weight ``w = 1/p`` per kept record (rates may differ per record, e.g. per stratum), the unbiased
  variance estimate is ``sum over kept of w (w - 1) y^2`` (Poisson sampling); the in-job aggregates in
  ``flinkscale.pipelines.shedding`` accumulate exactly these sums.

The bound depends on N, the records per group per window, so small groups need a higher rate than big
ones: ``stratified_keep_probabilities`` gives each group the larger of its own bound and one common level
chosen so the total kept fits the capacity (water-filling). ``choose_keep_probability`` is the controller:
it sheds only the overload (p = sustainable / offered), never goes below the bound, and says so when the
target cannot be met at the current capacity. Everything it returns explains itself (formula + inputs).

Sampling cannot estimate COUNT DISTINCT (use HyperLogLog), MIN/MAX (the extreme record is likely dropped)
or joins (the match rate falls with p^2); ``check_sheddable`` refuses those.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from statistics import NormalDist

from flinkscale.core.errors import InputError
from flinkscale.core.rates import sustainable_rate
from flinkscale.core.snapshot import MetricsSnapshot

#: "98% accuracy at 95% confidence": the default target.
DEFAULT_TARGET_ERROR = 0.02
DEFAULT_CONFIDENCE = 0.95


def z_for_confidence(confidence: float) -> float:
    """The two-sided standard-normal quantile: 0.95 -> 1.96, 0.99 -> 2.576."""
    if not 0.0 < confidence < 1.0:
        raise InputError(f"must be in (0, 1), got {confidence}", field="confidence")
    return NormalDist().inv_cdf((1.0 + confidence) / 2.0)


# --- estimators ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """A Horvitz-Thompson estimate with its variance and its relative error at ``confidence``.

    ``relative_error`` = z x standard_error / |value|: with probability ``confidence`` the true value lies
    within ``value x (1 +- relative_error)`` (normal approximation). It is 0 when nothing was shed and
    infinite when the estimate is 0 but the variance is not.
    """

    value: float
    variance: float
    confidence: float
    kept_records: int

    @property
    def standard_error(self) -> float:
        return math.sqrt(max(self.variance, 0.0))

    @property
    def z(self) -> float:
        return z_for_confidence(self.confidence)

    @property
    def relative_error(self) -> float:
        if self.variance <= 0.0:
            return 0.0
        if self.value == 0.0:
            return math.inf
        return self.z * self.standard_error / abs(self.value)

    @property
    def interval(self) -> tuple[float, float]:
        half = self.z * self.standard_error
        return (self.value - half, self.value + half)


def _check_probability(keep_probability: float, name: str = "keep_probability") -> None:
    if not 0.0 < keep_probability <= 1.0 or math.isnan(keep_probability):
        raise InputError(f"must be in (0, 1], got {keep_probability}", field=name)


def estimate_count(kept_records: int, keep_probability: float, confidence: float = DEFAULT_CONFIDENCE) -> Estimate:
    """count = kept / p; Var estimate = kept (1-p) / p^2 (so relative error = z sqrt((1-p)/kept))."""
    _check_probability(keep_probability)
    if kept_records < 0:
        raise InputError(f"must be >= 0, got {kept_records}", field="kept_records")
    p = keep_probability
    return Estimate(kept_records / p, kept_records * (1.0 - p) / (p * p), confidence, kept_records)


def estimate_sum(kept_values: Iterable[float], keep_probability: float,
                 confidence: float = DEFAULT_CONFIDENCE) -> Estimate:
    """sum = sum(kept) / p; Var estimate = (1-p) / p^2 x sum(kept^2)."""
    _check_probability(keep_probability)
    total = 0.0
    total_squares = 0.0
    kept = 0
    for value in kept_values:
        total += value
        total_squares += value * value
        kept += 1
    p = keep_probability
    return Estimate(total / p, (1.0 - p) / (p * p) * total_squares, confidence, kept)


def estimate_weighted(weighted_values: Iterable[tuple[float, float]],
                      confidence: float = DEFAULT_CONFIDENCE) -> Estimate:
    """Sum of ``value x weight`` over kept records, each kept with its own probability 1/weight.

    Var estimate = sum of w (w - 1) y^2 (Poisson sampling); a count is this with every value 1.
    """
    total = 0.0
    variance = 0.0
    kept = 0
    for value, weight in weighted_values:
        if weight < 1.0:
            raise InputError(f"must be >= 1 (weight = 1/p), got {weight}", field="weight")
        total += weight * value
        variance += weight * (weight - 1.0) * value * value
        kept += 1
    return Estimate(total, variance, confidence, kept)


def count_variance(population: float, keep_probability: float) -> float:
    """The true variance of the HT count of ``population`` records: N (1-p) / p."""
    _check_probability(keep_probability)
    return population * (1.0 - keep_probability) / keep_probability


def expected_relative_error(population: float, keep_probability: float, confidence: float = DEFAULT_CONFIDENCE,
                            coefficient_of_variation: float = 0.0) -> float:
    """z sqrt((1-p)(1+CV^2) / (p N)): the error a group of N records will have at rate p."""
    _check_probability(keep_probability)
    if population <= 0:
        return 0.0 if keep_probability == 1.0 else math.inf
    z = z_for_confidence(confidence)
    spread = 1.0 + coefficient_of_variation**2
    return z * math.sqrt((1.0 - keep_probability) * spread / (keep_probability * population))


def required_keep_probability(population: float, target_error: float, confidence: float = DEFAULT_CONFIDENCE,
                              coefficient_of_variation: float = 0.0) -> float:
    """The smallest p with relative error <= eps: p = 1 / (1 + N_eff eps^2 / z^2), N_eff = N / (1 + CV^2).

    N is the number of records the estimate covers (one group in one window). CV = 0 is the count
    bound; sums pass the coefficient of variation of the summed values.
    """
    if not 0.0 < target_error < 1.0:
        raise InputError(f"must be in (0, 1), got {target_error}", field="target_error")
    if population < 0 or math.isnan(population):
        raise InputError(f"must be >= 0, got {population}", field="population")
    if coefficient_of_variation < 0:
        raise InputError(f"must be >= 0, got {coefficient_of_variation}", field="coefficient_of_variation")
    z = z_for_confidence(confidence)
    effective = population / (1.0 + coefficient_of_variation**2)
    return 1.0 / (1.0 + effective * target_error**2 / z**2)


# --- stratification -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StratifiedRates:
    """Per-group keep probabilities: each group's max(own bound, common level)."""

    per_group: Mapping[str, float]
    common_level: float
    kept_records: float
    offered_records: float
    bound_records: float

    @property
    def overall_keep_fraction(self) -> float:
        return self.kept_records / self.offered_records if self.offered_records > 0 else 1.0


def stratified_keep_probabilities(records_per_group: Mapping[str, float], capacity_records: float,
                                  target_error: float, confidence: float = DEFAULT_CONFIDENCE,
                                  coefficient_of_variation: float = 0.0) -> StratifiedRates:
    """Rates per group that keep every group within the bound and fit ``capacity_records`` when possible.

    Each group g of N_g records gets p_g = max(bound(N_g), L). The level L is the largest in [0, 1] with
    sum(p_g N_g) <= capacity (water-filling: shed the big groups, whose bound is low, first). When even
    the bounds alone exceed the capacity, L = 0 and every group sits at its bound: the target holds, but
    the job keeps more than it can process (the caller reports the target cannot be met at this capacity).
    """
    if capacity_records < 0:
        raise InputError(f"must be >= 0, got {capacity_records}", field="capacity_records")
    bounds: dict[str, float] = {}
    for group, population in records_per_group.items():
        if population < 0:
            raise InputError(f"must be >= 0, got {population}", field=f"records_per_group[{group!r}]")
        bounds[group] = required_keep_probability(population, target_error, confidence, coefficient_of_variation)
    offered = float(sum(records_per_group.values()))
    bound_records = sum(bounds[g] * n for g, n in records_per_group.items())

    def kept_at(level: float) -> float:
        return sum(max(bounds[g], level) * n for g, n in records_per_group.items())

    if kept_at(1.0) <= capacity_records:
        level = 1.0
    elif bound_records >= capacity_records:
        level = 0.0
    else:
        # kept_at is continuous and non-decreasing in the level: bisection to float precision.
        low, high = 0.0, 1.0
        for _ in range(100):
            middle = (low + high) / 2
            if kept_at(middle) <= capacity_records:
                low = middle
            else:
                high = middle
        level = low
    per_group = {g: max(bounds[g], level) for g in records_per_group}
    return StratifiedRates(per_group, level, kept_at(level), offered, bound_records)


# --- what sampling can serve --------------------------------------------------------------------------


class Sheddability(StrEnum):
    SHEDDABLE = "sheddable"
    WARN = "warn"
    REFUSE = "refuse"


_AGGREGATE_RULES: dict[str, tuple[Sheddability, str]] = {
    "count": (Sheddability.SHEDDABLE, "count = kept / p (Horvitz-Thompson), unbiased"),
    "sum": (Sheddability.SHEDDABLE, "sum = sum(kept) / p (Horvitz-Thompson), unbiased"),
    "avg": (Sheddability.SHEDDABLE, "avg = HT sum / HT count (ratio estimator, consistent)"),
    "mean": (Sheddability.SHEDDABLE, "mean = HT sum / HT count (ratio estimator, consistent)"),
    "rate": (Sheddability.SHEDDABLE, "a rate is a count per time: count = kept / p"),
    "percentile": (Sheddability.WARN, "quantiles of a uniform sample are consistent but carry no bound here"),
    "median": (Sheddability.WARN, "quantiles of a uniform sample are consistent but carry no bound here"),
    "top_n": (Sheddability.WARN, "top-N by count is stable only for heavy hitters; use key-hash sampling "
                                 "or leave it unshed"),
    "count_distinct": (Sheddability.REFUSE, "distinct counts do not scale by 1/p; use HyperLogLog "
                                            "(APPROX_COUNT_DISTINCT) instead of shedding"),
    "distinct": (Sheddability.REFUSE, "distinct counts do not scale by 1/p; use HyperLogLog instead"),
    "min": (Sheddability.REFUSE, "the minimum record is dropped with probability 1-p; no estimator exists"),
    "max": (Sheddability.REFUSE, "the maximum record is dropped with probability 1-p; no estimator exists"),
    "join": (Sheddability.REFUSE, "both sides sampled keep only p^2 of the matches and the error is unbounded; "
                                  "shed after the join, not before"),
}
_ALIASES = {"count distinct": "count_distinct", "countdistinct": "count_distinct",
            "approx_count_distinct": "count_distinct", "average": "avg", "topn": "top_n", "top-n": "top_n",
            "minimum": "min", "maximum": "max", "first": "min", "last": "max"}


@dataclass(frozen=True)
class AggregateCheck:
    aggregate: str
    verdict: Sheddability
    reason: str


def classify_aggregate(name: str) -> AggregateCheck:
    """Whether an aggregate can run on a shed (sampled) stream; unknown names are refused, to be safe."""
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, _ALIASES.get(name.strip().lower(), key))
    verdict, reason = _AGGREGATE_RULES.get(
        key, (Sheddability.REFUSE, "no known unbiased estimator from a sample; not sheddable"))
    return AggregateCheck(name, verdict, reason)


def check_sheddable(aggregates: Iterable[str]) -> tuple[AggregateCheck, ...]:
    """Classify every aggregate; raise InputError naming each one that sampling cannot serve.

    Returns the checks (SHEDDABLE and WARN ones) so the caller can print the warnings.
    """
    checks = tuple(classify_aggregate(a) for a in aggregates)
    refused = [c for c in checks if c.verdict is Sheddability.REFUSE]
    if refused:
        detail = "; ".join(f"{c.aggregate}: {c.reason}" for c in refused)
        raise InputError(f"cannot shed load for these aggregates: {detail}", field="aggregates")
    return checks


# --- the controller -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShedDecision:
    """What to keep, whether the accuracy target holds, why, and the numbers behind it.

    ``keep_probability`` is the rate for every record (or, with per-group input, for groups above their
    own bound); ``per_group`` holds stratified rates when the caller gave records per group.
    ``numbers`` names every input and intermediate (``offered_rate``, ``capacity_keep_probability``,
    ``bound_keep_probability``, ``expected_relative_error``, ...) and ``formula`` says how they combine.
    """

    keep_probability: float
    achievable: bool
    reason: str
    numbers: Mapping[str, float]
    formula: str = ""
    per_group: Mapping[str, float] = field(default_factory=dict)

    @property
    def shed_fraction(self) -> float:
        return 1.0 - self.keep_probability

    @property
    def shedding(self) -> bool:
        return self.keep_probability < 1.0 or any(p < 1.0 for p in self.per_group.values())

    def to_control_message(self, seq: int) -> dict[str, object]:
        """The JSON body for the control topic read by ``flinkscale.pipelines.shedding.ShedControl``."""
        message: dict[str, object] = {"keep_probability": self.keep_probability, "seq": seq}
        if self.per_group:
            message["per_key"] = dict(self.per_group)
        return message


def choose_keep_probability(offered_rate: float, sustainable_rate: float,
                            expected_records_per_window_per_group: float | Mapping[str, float],
                            target_error: float = DEFAULT_TARGET_ERROR, confidence: float = DEFAULT_CONFIDENCE,
                            *, coefficient_of_variation: float = 0.0, backlog_drain_rate: float = 0.0,
                            ) -> ShedDecision:
    """Choose the keep probability for the current overload and accuracy target.

    * No overload (offered <= sustainable - drain): p = 1, nothing is shed.
    * Overload: the capacity rate p_cap = (sustainable - drain) / offered sheds exactly the excess.
    * The bound p_min = 1 / (1 + N eps^2 / z^2) (N = the expected records per window of the smallest group
      given, at the offered rate) is a floor: p = max(p_cap, p_min). When p_min > p_cap the target cannot
      be met at this capacity: p stays at p_min (accuracy kept, lag keeps growing) and ``achievable`` is
      False with the reason.

    ``expected_records_per_window_per_group`` is either one number (the smallest group that must meet the
    target) or a mapping group -> records, which switches on stratified per-group rates.
    ``backlog_drain_rate`` reserves capacity (records/s) to drain existing lag.
    """
    for name, value in (("offered_rate", offered_rate), ("sustainable_rate", sustainable_rate),
                        ("backlog_drain_rate", backlog_drain_rate)):
        if value < 0 or math.isnan(value):
            raise InputError(f"must be >= 0, got {value}", field=name)
    if sustainable_rate <= 0:
        raise InputError("must be > 0 (records/s the job sustains)", field="sustainable_rate")
    z = z_for_confidence(confidence)
    usable_rate = max(sustainable_rate - backlog_drain_rate, 0.0)
    numbers: dict[str, float] = {
        "offered_rate": offered_rate, "sustainable_rate": sustainable_rate,
        "backlog_drain_rate": backlog_drain_rate, "usable_rate": usable_rate,
        "target_error": target_error, "confidence": confidence, "z": z,
        "coefficient_of_variation": coefficient_of_variation,
    }
    capacity_p = 1.0 if offered_rate <= usable_rate else usable_rate / offered_rate
    numbers["capacity_keep_probability"] = capacity_p

    if isinstance(expected_records_per_window_per_group, Mapping):
        return _choose_stratified(expected_records_per_window_per_group, capacity_p, numbers, target_error,
                                  confidence, coefficient_of_variation)

    population = float(expected_records_per_window_per_group)
    bound_p = required_keep_probability(population, target_error, confidence, coefficient_of_variation)
    numbers["records_per_window_per_group"] = population
    numbers["bound_keep_probability"] = bound_p
    keep = min(1.0, max(capacity_p, bound_p))
    numbers["keep_probability"] = keep
    numbers["expected_relative_error"] = expected_relative_error(population, keep, confidence,
                                                                 coefficient_of_variation)
    formula = ("p = max(p_cap, p_min); p_cap = min(1, (sustainable_rate - backlog_drain_rate) / offered_rate); "
               "p_min = 1 / (1 + N/(1+CV^2) x eps^2 / z^2)")
    if capacity_p >= 1.0:
        return ShedDecision(1.0, True, "no overload: the job sustains the offered rate, nothing is shed",
                            numbers, formula)
    if bound_p > capacity_p * (1 + 1e-9):  # a rounding-level overload is no reason to miss the target
        reason = (f"target {target_error:.1%} at {confidence * 100:g}% confidence needs p >= {bound_p:.4f} for "
                  f"{population:.0f} records per group per window, but capacity allows only p = {capacity_p:.4f}; "
                  f"keeping p = {keep:.4f} (error within target, lag keeps growing): scale out or accept a "
                  f"larger error")
        return ShedDecision(keep, False, reason, numbers, formula)
    reason = (f"overload {offered_rate / usable_rate:.2f}x: keep {keep:.2%} of records; expected error "
              f"{numbers['expected_relative_error']:.2%} <= target {target_error:.1%} at {confidence * 100:g}%")
    return ShedDecision(keep, True, reason, numbers, formula)


def _choose_stratified(records_per_group: Mapping[str, float], capacity_p: float, numbers: dict[str, float],
                       target_error: float, confidence: float, coefficient_of_variation: float) -> ShedDecision:
    offered = float(sum(records_per_group.values()))
    capacity_records = capacity_p * offered
    rates = stratified_keep_probabilities(records_per_group, capacity_records, target_error, confidence,
                                          coefficient_of_variation)
    numbers.update({
        "records_per_window": offered, "capacity_records_per_window": capacity_records,
        "bound_records_per_window": rates.bound_records, "kept_records_per_window": rates.kept_records,
        "common_level": rates.common_level, "overall_keep_fraction": rates.overall_keep_fraction,
    })
    worst = max((expected_relative_error(n, rates.per_group[g], confidence, coefficient_of_variation)
                 for g, n in records_per_group.items()), default=0.0)
    numbers["worst_group_expected_relative_error"] = worst
    formula = ("p_g = max(p_min(N_g), L), L = the largest level with sum(p_g N_g) <= p_cap x sum(N_g); "
               "p_min(N) = 1 / (1 + N/(1+CV^2) x eps^2 / z^2)")
    # Groups not named in the mapping (new keys) get the common level, or the bound-only level when at 0.
    keep = rates.common_level if rates.common_level > 0 else min(rates.per_group.values(), default=1.0)
    numbers["keep_probability"] = keep
    if capacity_p >= 1.0:
        return ShedDecision(1.0, True, "no overload: the job sustains the offered rate, nothing is shed",
                            numbers, formula, {g: 1.0 for g in records_per_group})
    if rates.kept_records > capacity_records * (1 + 1e-9):
        reason = (f"target {target_error:.1%} at {confidence * 100:g}% confidence needs {rates.bound_records:.0f} "
                  f"kept records per window but capacity allows {capacity_records:.0f}; every group stays at "
                  f"its bound (lag keeps growing): scale out or accept a larger error")
        return ShedDecision(keep, False, reason, numbers, formula, rates.per_group)
    reason = (f"overload: keep {rates.overall_keep_fraction:.2%} overall, small groups at their bound; worst "
              f"group error {worst:.2%} <= target {target_error:.1%} at {confidence * 100:g}%")
    return ShedDecision(keep, True, reason, numbers, formula, rates.per_group)


# --- the feedback controller: from a job's metrics to a keep probability ---------------------------------
#
# One ``shed_step(snapshot, state, settings)`` per metrics sample, pure: the state it needs between samples
# (the keep probability in force, the next sequence number, the recent capacity estimates) comes in as a
# ``ShedState`` and a new one goes out. ``flinkscale.core.control.step`` runs it within the autoscaling
# rules; the I/O edge only publishes what it decides.
#
# 1. Offered rate of the sources: what Kafka received, not what the job read. Best from the topic's end
#    offsets (``arrival_rate``); otherwise ``offered = consumed + d(lag)/dt`` with ``consumed`` the sources'
#    records-in rate and ``d(lag)/dt`` their ``pendingRecords`` growth (noisy over short intervals: Flink
#    refreshes that gauge every few seconds).
# 2. Sustainable rate in fully processed records per second: the profile's number when given
#    (``ShedSettings.sustainable_rate``), else the sources' true processing rate times the keep probability
#    in force, ``consumed / (busy_avg / 1000) x p`` (``rates.sustainable_rate``): the busy source reads
#    ``consumed / busy`` records per busy second, of which it processes a fraction p fully. Repeating
#    ``p' = sustainable / offered`` converges to the p that keeps the source exactly busy, which is why it is
#    scaled by ``headroom``. The median of the last ``estimate_samples`` estimates is used, so that one
#    interval with a checkpoint or a backlog burst does not move p; below ``min_busy_ms_per_second`` of busy
#    time the estimate is noise and is not used (an almost idle source is not overloaded).
# 3. Backlog: existing lag is drained over ``drain_seconds`` by reserving ``lag / drain_seconds`` records/s
#    of the capacity (at most half of it), so lag comes down instead of merely not growing.
# 4. ``choose_keep_probability`` with the accuracy target: p = max(capacity share, bound); the bound uses
#    ``records_per_group`` (default: offered x window length, i.e. per-window totals).
# 5. A new p is to be published only when it moved by at least ``min_change`` or shedding turns on or off
#    (p reaches 1), so the control topic carries decisions, not noise.


@dataclass(frozen=True)
class ShedSettings:
    target_error: float = DEFAULT_TARGET_ERROR
    confidence: float = DEFAULT_CONFIDENCE
    window_seconds: float = 10.0
    # Records per group per window that must meet the target; None = offered x window_seconds (totals).
    records_per_group: float | None = None
    # Fully processed records/s the job sustains (from a profile); None = estimate from the source's busy time.
    sustainable_rate: float | None = None
    headroom: float = 0.9
    drain_seconds: float = 60.0
    min_change: float = 0.02
    min_busy_ms_per_second: float = 100.0
    # The sustainable rate is the median of this many recent estimates (1 = the latest alone).
    estimate_samples: int = 3
    # Coefficient of variation of the values summed per group (e.g. event sizes); 0 = counts only. A sum of
    # sampled values errs by sqrt(1 + CV^2) more than a count, so its bound needs a higher p.
    value_cv: float = 0.0

    def __post_init__(self) -> None:
        checks = (("target_error", 0 < self.target_error < 1), ("confidence", 0 < self.confidence < 1),
                  ("window_seconds", self.window_seconds > 0), ("headroom", 0 < self.headroom <= 1),
                  ("drain_seconds", self.drain_seconds > 0), ("min_change", 0 <= self.min_change < 1),
                  ("records_per_group", self.records_per_group is None or self.records_per_group > 0),
                  ("sustainable_rate", self.sustainable_rate is None or self.sustainable_rate > 0),
                  ("estimate_samples", self.estimate_samples >= 1), ("value_cv", self.value_cv >= 0))
        for name, ok in checks:
            if not ok:
                raise InputError(f"out of range: {getattr(self, name)!r}", field=name)


@dataclass(frozen=True)
class ShedState:
    """What the controller remembers between samples: the keep probability in force, the sequence number
    the next published value gets, and the recent capacity estimates (newest last)."""

    keep_probability: float = 1.0
    next_seq: int = 0
    estimates: tuple[float, ...] = ()
    last_sustainable_rate: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.keep_probability <= 1:
            raise InputError(f"must be in (0, 1], got {self.keep_probability}", field="keep_probability")



@dataclass(frozen=True)
class SourceLoad:
    """What the sources saw over one snapshot interval, and the capacity estimate behind it."""

    consumed_rate: float
    lag: float
    lag_growth_rate: float
    busy_time_ms_per_second_avg: float | None

    @property
    def offered_rate(self) -> float:
        return max(0.0, self.consumed_rate + self.lag_growth_rate)

    def sustainable_rate(self, keep_probability: float, min_busy_ms_per_second: float) -> float | None:
        """consumed / (busy / 1000) x p, or None when the source is too idle for the ratio to mean much."""
        busy = self.busy_time_ms_per_second_avg
        if busy is None or busy < min_busy_ms_per_second or self.consumed_rate <= 0:
            return None
        return sustainable_rate(self.consumed_rate, busy, keep_probability)


def source_load(snapshot: MetricsSnapshot) -> SourceLoad:
    """Sum over the source vertices: records read, lag, lag growth; the busy time of the busiest source."""
    sources = snapshot.sources()
    if not sources:
        raise InputError("the snapshot has no source vertex", field="snapshot.vertices")
    consumed = sum(v.metrics.num_records_in_per_second or 0.0 for v in sources)
    lag = sum(v.metrics.pending_records or 0.0 for v in sources)
    growth = sum(v.metrics.pending_records_per_second or 0.0 for v in sources)
    busy = [v.metrics.busy_time_ms_per_second_avg for v in sources if v.metrics.busy_time_ms_per_second_avg
            is not None]
    return SourceLoad(consumed, lag, growth, max(busy) if busy else None)


@dataclass(frozen=True)
class ShedStep:
    """One controller step: the inputs, the decision, and whether (and under which seq) p is to be published."""

    timestamp: float
    load: SourceLoad
    sustainable_rate: float
    sustainable_basis: str
    decision: ShedDecision
    keep_probability_before: float
    published_seq: int | None
    numbers: Mapping[str, float] = field(default_factory=dict)

    @property
    def published(self) -> bool:
        return self.published_seq is not None

    @property
    def keep_probability(self) -> float:
        """The keep probability in force after this step."""
        return self.decision.keep_probability if self.published else self.keep_probability_before

    def describe(self) -> str:
        load = self.load
        action = f"published p={self.decision.keep_probability:.4f} (seq {self.published_seq})" if self.published \
            else f"p stays {self.keep_probability_before:.4f}"
        return (f"offered {load.offered_rate:,.0f}/s (read {load.consumed_rate:,.0f}/s + lag growth "
                f"{load.lag_growth_rate:+,.0f}/s), lag {load.lag:,.0f}, sustainable {self.sustainable_rate:,.0f}/s "
                f"({self.sustainable_basis}): {action}; {self.decision.reason}")


def _sustainable(load: SourceLoad, state: ShedState, s: ShedSettings) -> tuple[float, str, ShedState]:
    if s.sustainable_rate is not None:
        return s.sustainable_rate, "from the profile", state
    estimate = load.sustainable_rate(state.keep_probability, s.min_busy_ms_per_second)
    if estimate is not None:
        # One interval's read/busy ratio swings with checkpoints and backlog bursts: the median of the last
        # few keeps p from chasing that noise.
        estimates = (*state.estimates, estimate)[-s.estimate_samples:]
        median = statistics.median(estimates)
        busy = load.busy_time_ms_per_second_avg or 0.0
        return median, (f"median of the last {len(estimates)} of read / busy x p, now "
                        f"{load.consumed_rate:,.0f}/s / {busy:.0f} ms/s x {state.keep_probability:.4f}"), \
            replace(state, estimates=estimates, last_sustainable_rate=median)
    if state.last_sustainable_rate is not None:
        return state.last_sustainable_rate, "last estimate (source nearly idle now)", state
    # Never measured and nearly idle: whatever it reads now is clearly within capacity.
    return max(load.offered_rate, load.consumed_rate, 1.0), "source nearly idle: offered rate", state


def shed_step(snapshot: MetricsSnapshot, state: ShedState, settings: ShedSettings,
              arrival_rate: float | None = None) -> tuple[ShedStep, ShedState]:
    """One controller decision and the state after it. ``arrival_rate`` (records/s reaching the topic)
    replaces read rate + lag growth as the offered rate when given. When the step is ``published``, the
    caller publishes ``step.keep_probability`` under ``step.published_seq``."""
    s = settings
    load = source_load(snapshot)
    if arrival_rate is not None:
        load = replace(load, lag_growth_rate=arrival_rate - load.consumed_rate)
    sustainable, basis, state = _sustainable(load, state, s)
    usable = sustainable * s.headroom
    drain = min(load.lag / s.drain_seconds, 0.5 * usable)
    population = s.records_per_group if s.records_per_group is not None \
        else max(load.offered_rate * s.window_seconds, 1.0)
    decision = choose_keep_probability(load.offered_rate, usable, population, s.target_error, s.confidence,
                                       coefficient_of_variation=s.value_cv, backlog_drain_rate=drain)
    new = decision.keep_probability
    old = state.keep_probability
    changed = (abs(new - old) >= s.min_change) or (new >= 1.0) != (old >= 1.0)
    seq = None
    if changed and not math.isclose(new, old):
        seq = state.next_seq
        state = replace(state, keep_probability=new, next_seq=seq + 1)
    step = ShedStep(snapshot.timestamp, load, sustainable, basis, decision, old, seq,
                    {"headroom": s.headroom, "usable_rate": usable, "backlog_drain_rate": drain,
                     "records_per_group": population})
    return step, state
