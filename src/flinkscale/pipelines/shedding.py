"""In-job load shedding for PyFlink: a sampling stage, weighted window aggregates, and the control value.

Everything here is plain Python with no module-level pyflink import, so it runs inside a PyFlink
``map``/``flat_map``/``process`` function or a UDF and in unit tests alike. The maths (Horvitz-Thompson
estimates, their variance, the sample-rate bound) lives in ``flinkscale.core.shedding``; this module is
the part that touches records.

How a job uses it::

    control = ShedControl()                     # p = 1 until a control message arrives
    sampler = Sampler(control, mode="random")    # or mode="key_hash", key_of=lambda r: r["user"]
    # broadcast side (Kafka control topic as broadcast state): control.apply_message(raw_json)
    # data side (flat_map / process_element):  yield from sampler.sample(record)  -> (record, weight)
    # window side: acc = WeightedAccumulator(); acc.add(value, weight); acc.result(confidence=0.95)

Design points:

* Keep decisions by key hash use ``zlib.crc32`` of the key's UTF-8 text, never Python's ``hash()``,
  which is salted per process: two Python workers (or a restart) would disagree on which keys are kept.
  A key is kept when ``crc32(key) % 10000 < round(p x 10000)``, so raising p only adds keys (the kept sets
  are nested) and every worker agrees. The weight is 10000 / threshold, the exact inclusion probability.
* Random keep decisions use a ``random.Random`` the caller may seed; the weight is 1/p of the p in force
  when the record was seen, so a window that spans a change of p stays unbiased.
* The control value must survive rescales: the lead reads a Kafka control topic as broadcast state, which
  Flink replicates to every subtask, including new ones after a rescale. ``ShedControl`` is the value held
  in that state: it applies a message only when its ``seq`` is newer (replays after a restart are
  harmless) and round-trips through ``to_state``/``from_state``.
* In key-hash mode a per-key result is exact for every kept key; only totals across keys are estimates,
  and their variance is over keys (clusters), not records. ``WeightedAccumulator.add(..., cluster=key)``
  computes that variance; per-key results in key-hash mode should be read as exact (weight ignored).
"""

from __future__ import annotations

import json
import math
import random
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from flinkscale.core.errors import InputError
from flinkscale.core.shedding import DEFAULT_CONFIDENCE, Estimate, z_for_confidence

R = TypeVar("R")

#: Key-hash sampling resolution: rates are multiples of 1/10000.
HASH_BUCKETS = 10_000
SAMPLING_MODES = ("random", "key_hash")


def stable_hash(key: object) -> int:
    """A process-independent 32-bit hash: crc32 of the key's bytes (bytes as is, anything else as UTF-8 str)."""
    data = key if isinstance(key, (bytes, bytearray)) else str(key).encode("utf-8")
    return zlib.crc32(data) & 0xFFFFFFFF


def key_hash_threshold(keep_probability: float) -> int:
    """Buckets kept out of 10000 for rate p: round(p x 10000), at least 1 so no rate drops everything."""
    return max(1, min(HASH_BUCKETS, round(keep_probability * HASH_BUCKETS)))


def keep_by_key_hash(key: object, keep_probability: float) -> bool:
    """True when ``crc32(key) % 10000 < round(p x 10000)``."""
    return stable_hash(key) % HASH_BUCKETS < key_hash_threshold(keep_probability)


# --- the control value --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ControlMessage:
    """One message on the control topic: ``{"keep_probability": 0.5, "seq": 3, "per_key": {...}}``."""

    keep_probability: float
    seq: int
    per_key: Mapping[str, float]


def parse_control_message(raw: str | bytes | Mapping[str, Any]) -> ControlMessage:
    """Read and validate a control message; InputError names the bad field."""
    if isinstance(raw, (str, bytes, bytearray)):
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"not JSON: {exc}", field="control_message") from None
    else:
        data = raw
    if not isinstance(data, Mapping):
        raise InputError("must be a JSON object", field="control_message")
    if "keep_probability" not in data or "seq" not in data:
        raise InputError("needs keep_probability and seq", field="control_message")
    p = _probability(data["keep_probability"], "control_message.keep_probability")
    seq = data["seq"]
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise InputError(f"must be an integer, got {seq!r}", field="control_message.seq")
    per_key_raw = data.get("per_key") or {}
    if not isinstance(per_key_raw, Mapping):
        raise InputError("must be an object key -> probability", field="control_message.per_key")
    per_key = {str(k): _probability(v, f"control_message.per_key[{k!r}]") for k, v in per_key_raw.items()}
    return ControlMessage(p, seq, per_key)


def _probability(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"must be a number, got {value!r}", field=field)
    number = float(value)
    if not 0.0 < number <= 1.0:
        raise InputError(f"must be in (0, 1], got {number}", field=field)
    return number


class ShedControl:
    """The keep probability in force, updated from control messages; lives in broadcast state.

    Mutable on purpose: one instance per subtask holds the value the broadcast side last applied. A
    message with a ``seq`` not newer than the current one is ignored, so replayed or reordered messages
    cannot roll p back. Invalid messages are counted and ignored (a bad control message must not fail
    the job); ``last_error`` says why.
    """

    def __init__(self, keep_probability: float = 1.0, seq: int = -1,
                 per_key: Mapping[str, float] | None = None) -> None:
        self.keep_probability = _probability(keep_probability, "keep_probability")
        self.seq = seq
        self.per_key: dict[str, float] = dict(per_key or {})
        self.rejected_messages = 0
        self.last_error: str | None = None

    def keep_probability_for(self, key: object | None = None) -> float:
        """The stratified rate of ``key`` when the controller set one, else the common rate."""
        if key is not None and self.per_key:
            return self.per_key.get(str(key), self.keep_probability)
        return self.keep_probability

    def apply(self, message: ControlMessage) -> bool:
        """Apply a parsed message; False (unchanged) when its seq is not newer."""
        if message.seq <= self.seq:
            return False
        self.keep_probability = message.keep_probability
        self.per_key = dict(message.per_key)
        self.seq = message.seq
        return True

    def apply_message(self, raw: str | bytes | Mapping[str, Any]) -> bool:
        """Parse and apply a raw control message (JSON text, bytes or a dict); never raises."""
        try:
            message = parse_control_message(raw)
        except InputError as exc:
            self.rejected_messages += 1
            self.last_error = str(exc)
            return False
        return self.apply(message)

    @property
    def shed_fraction(self) -> float:
        return 1.0 - self.keep_probability

    def to_state(self) -> str:
        """JSON for a broadcast ``MapState`` value (survives checkpoints and rescales)."""
        return json.dumps({"keep_probability": self.keep_probability, "seq": self.seq, "per_key": self.per_key})

    @classmethod
    def from_state(cls, text: str | None) -> ShedControl:
        if not text:
            return cls()
        message = parse_control_message(text)
        return cls(message.keep_probability, message.seq, message.per_key)


# --- the sampling stage -------------------------------------------------------------------------------


class Sampler(Generic[R]):
    """Keep each record with the probability ``control`` says, tagging it with weight 1/p.

    ``mode="random"`` keeps records independently (Bernoulli); ``mode="key_hash"`` keeps whole keys
    (``key_of`` is required). With per-key rates in the control (stratified shedding) ``key_of`` picks the
    stratum in both modes. The counters ``seen`` and ``kept`` feed the shed-fraction metric.
    """

    def __init__(self, control: ShedControl, mode: str = "random", key_of: Callable[[R], object] | None = None,
                 rng: random.Random | None = None) -> None:
        if mode not in SAMPLING_MODES:
            raise InputError(f"must be one of {SAMPLING_MODES}, got {mode!r}", field="mode")
        if mode == "key_hash" and key_of is None:
            raise InputError("key_hash sampling needs key_of (the key to hash)", field="key_of")
        self.control = control
        self.mode = mode
        self.key_of = key_of
        self.rng = rng if rng is not None else random.Random()
        self.seen = 0
        self.kept = 0

    def decide(self, record: R) -> float | None:
        """The record's weight when kept, None when shed."""
        self.seen += 1
        key = self.key_of(record) if self.key_of is not None else None
        p = self.control.keep_probability_for(key)
        if p >= 1.0:
            self.kept += 1
            return 1.0
        if self.mode == "key_hash":
            threshold = key_hash_threshold(p)
            if stable_hash(key) % HASH_BUCKETS >= threshold:
                return None
            weight = HASH_BUCKETS / threshold
        else:
            if self.rng.random() >= p:
                return None
            weight = 1.0 / p
        self.kept += 1
        return weight

    def sample(self, record: R) -> Iterator[tuple[R, float]]:
        """For a flat_map: yields ``(record, weight)`` when kept, nothing when shed."""
        weight = self.decide(record)
        if weight is not None:
            yield record, weight

    @property
    def observed_shed_fraction(self) -> float:
        return 0.0 if self.seen == 0 else 1.0 - self.kept / self.seen


# --- weighted aggregates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class WindowEstimate:
    """One window's estimated count and sum with their relative errors at ``confidence``."""

    count: float
    total: float
    count_relative_error: float
    sum_relative_error: float
    confidence: float
    kept_records: int

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan

    def to_dict(self) -> dict[str, float | None]:
        def finite(value: float) -> float | None:  # JSON has no inf
            return value if math.isfinite(value) else None

        return {"count": self.count, "sum": self.total, "count_relative_error": finite(self.count_relative_error),
                "sum_relative_error": finite(self.sum_relative_error), "confidence": self.confidence,
                "kept_records": self.kept_records}


class WeightedAccumulator:
    """Accumulates weighted records for one window (and key); mergeable, so it fits an AggregateFunction.

    Keeps the sufficient statistics of the Horvitz-Thompson estimator: sum w, sum w y, and the variance
    estimates sum w(w-1) and sum w(w-1) y^2. With ``cluster`` (key-hash mode, totals across keys) it
    keeps per-cluster totals, because whole keys are the sampling units and the variance is over them.
    """

    __slots__ = ("clusters", "count", "count_variance", "kept_records", "sum_variance", "total")

    def __init__(self) -> None:
        self.count = 0.0
        self.total = 0.0
        self.count_variance = 0.0
        self.sum_variance = 0.0
        self.kept_records = 0
        self.clusters: dict[str, list[float]] = {}  # cluster -> [weight, count, sum]

    def add(self, value: float, weight: float, cluster: object | None = None) -> WeightedAccumulator:
        if weight < 1.0:
            raise InputError(f"must be >= 1 (weight = 1/p), got {weight}", field="weight")
        self.kept_records += 1
        self.count += weight
        self.total += weight * value
        if cluster is None:
            self.count_variance += weight * (weight - 1.0)
            self.sum_variance += weight * (weight - 1.0) * value * value
        else:
            entry = self.clusters.setdefault(str(cluster), [weight, 0.0, 0.0])
            entry[1] += 1.0
            entry[2] += value
        return self

    def merge(self, other: WeightedAccumulator) -> WeightedAccumulator:
        self.count += other.count
        self.total += other.total
        self.count_variance += other.count_variance
        self.sum_variance += other.sum_variance
        self.kept_records += other.kept_records
        for cluster, (weight, count, total) in other.clusters.items():
            entry = self.clusters.setdefault(cluster, [weight, 0.0, 0.0])
            entry[1] += count
            entry[2] += total
        return self

    def estimates(self, confidence: float = DEFAULT_CONFIDENCE) -> tuple[Estimate, Estimate]:
        count_variance = self.count_variance
        sum_variance = self.sum_variance
        for weight, count, total in self.clusters.values():
            count_variance += weight * (weight - 1.0) * count * count
            sum_variance += weight * (weight - 1.0) * total * total
        return (Estimate(self.count, count_variance, confidence, self.kept_records),
                Estimate(self.total, sum_variance, confidence, self.kept_records))

    def result(self, confidence: float = DEFAULT_CONFIDENCE) -> WindowEstimate:
        z_for_confidence(confidence)  # validates
        count, total = self.estimates(confidence)
        return WindowEstimate(count.value, total.value, count.relative_error, total.relative_error, confidence,
                              self.kept_records)


def aggregate_window(weighted_values: Iterator[tuple[float, float]] | list[tuple[float, float]],
                     confidence: float = DEFAULT_CONFIDENCE) -> WindowEstimate:
    """For a ProcessWindowFunction: the estimate over ``(value, weight)`` pairs of one window."""
    accumulator = WeightedAccumulator()
    for value, weight in weighted_values:
        accumulator.add(value, weight)
    return accumulator.result(confidence)


class WeightedAggregate:
    """The four AggregateFunction methods over ``(value, weight)`` inputs, pyflink-free.

    A PyFlink job subclasses ``pyflink.datastream.functions.AggregateFunction`` and delegates, or calls
    ``make_pyflink_aggregate_function`` which does exactly that.
    """

    def __init__(self, confidence: float = DEFAULT_CONFIDENCE) -> None:
        z_for_confidence(confidence)
        self.confidence = confidence

    def create_accumulator(self) -> WeightedAccumulator:
        return WeightedAccumulator()

    def add(self, value: tuple[float, float], accumulator: WeightedAccumulator) -> WeightedAccumulator:
        return accumulator.add(value[0], value[1])

    def get_result(self, accumulator: WeightedAccumulator) -> dict[str, float | None]:
        return accumulator.result(self.confidence).to_dict()

    def merge(self, a: WeightedAccumulator, b: WeightedAccumulator) -> WeightedAccumulator:
        return a.merge(b)


class ShedMetrics:
    """Shed fraction and estimated error as Flink metrics (gauges), for dashboards and the autoscaler.

    PyFlink gauges return integers, so ratios are exported in basis points (1/10000):
    ``shedKeepProbabilityBasisPoints``, ``shedFractionBasisPoints`` (observed by the sampler) and
    ``shedEstimatedRelativeErrorBasisPoints`` (of the latest window result, set with ``observe``); plus
    the counts ``shedRecordsSeen`` and ``shedRecordsKept``. ``register`` takes the operator's metric group
    (``runtime_context.get_metrics_group()``) and may be called from ``open()``.
    """

    def __init__(self, sampler: Sampler[Any] | None = None) -> None:
        self.sampler = sampler
        self.latest_relative_error = 0.0

    def observe(self, estimate: WindowEstimate) -> None:
        self.latest_relative_error = max(estimate.count_relative_error, estimate.sum_relative_error)

    def values(self) -> dict[str, int]:
        def basis_points(ratio: float) -> int:
            return round(ratio * HASH_BUCKETS) if math.isfinite(ratio) else 2**31 - 1

        values = {"shedEstimatedRelativeErrorBasisPoints": basis_points(self.latest_relative_error)}
        if self.sampler is not None:
            values.update({
                "shedKeepProbabilityBasisPoints": basis_points(self.sampler.control.keep_probability),
                "shedFractionBasisPoints": basis_points(self.sampler.observed_shed_fraction),
                "shedRecordsSeen": self.sampler.seen,
                "shedRecordsKept": self.sampler.kept,
            })
        return values

    def register(self, metric_group: Any) -> None:
        for name in self.values():
            metric_group.gauge(name, lambda name=name: self.values()[name])


def make_pyflink_aggregate_function(confidence: float = DEFAULT_CONFIDENCE) -> Any:
    """A ``pyflink`` AggregateFunction wrapping ``WeightedAggregate`` (imports pyflink only when called)."""
    from pyflink.datastream.functions import AggregateFunction

    class _WeightedAggregateFunction(AggregateFunction):  # type: ignore[misc]
        def __init__(self) -> None:
            self._inner = WeightedAggregate(confidence)

        def create_accumulator(self) -> WeightedAccumulator:
            return self._inner.create_accumulator()

        def add(self, value: tuple[float, float], accumulator: WeightedAccumulator) -> WeightedAccumulator:
            return self._inner.add(value, accumulator)

        def get_result(self, accumulator: WeightedAccumulator) -> dict[str, float | None]:
            return self._inner.get_result(accumulator)

        def merge(self, a: WeightedAccumulator, b: WeightedAccumulator) -> WeightedAccumulator:
            return self._inner.merge(a, b)

    return _WeightedAggregateFunction()


#: Name and key of the broadcast MapState that holds the control value (JSON of ``ShedControl.to_state``).
CONTROL_STATE_NAME = "flinkscale-shed-control"
CONTROL_STATE_KEY = "control"


class ControlStateReader:
    """Turns the broadcast state's JSON into a ``ShedControl``, re-parsing only when the text changes.

    Broadcast state is the source of truth (checkpointed, and copied to every subtask on rescale); this
    object only caches its parsed form, so a subtask that starts after a rescale reads the same p.
    """

    def __init__(self) -> None:
        self._text: str | None = None
        self.control = ShedControl()

    def refresh(self, text: str | None) -> ShedControl:
        if text != self._text:
            self._text = text
            self.control = ShedControl.from_state(text) if text else ShedControl()
        return self.control


def apply_control_text(current_state: str | None, message: str | bytes | Mapping[str, Any]) -> str | None:
    """The broadcast side: the new state text after ``message``, or None when it changes nothing."""
    control = ShedControl.from_state(current_state) if current_state else ShedControl()
    return control.to_state() if control.apply_message(message) else None


def shed_stream(stream: Any, control_stream: Any, *, mode: str = "random",
                key_of: Callable[[Any], object] | None = None, uid: str = "flinkscale-shed",
                output_type: Any = None) -> Any:
    """Wire the sampling stage into a PyFlink job: ``stream`` records out as ``(record, weight)``.

    ``control_stream`` carries control messages (JSON text, e.g. a Kafka control topic read with a
    string deserializer). It is broadcast into a ``MapState`` named ``CONTROL_STATE_NAME``, which Flink
    checkpoints and hands to every subtask after a rescale, so the keep probability survives rescales and
    restarts. Imports pyflink only when called.
    """
    from pyflink.common import Types
    from pyflink.datastream.functions import BroadcastProcessFunction
    from pyflink.datastream.state import MapStateDescriptor

    if mode not in SAMPLING_MODES:
        raise InputError(f"must be one of {SAMPLING_MODES}, got {mode!r}", field="mode")
    if mode == "key_hash" and key_of is None:
        raise InputError("key_hash sampling needs key_of (the key to hash)", field="key_of")
    # Broadcast state has no TTL (Flink does not support it there); it holds one small value.
    descriptor = MapStateDescriptor(  # flinkscale: ignore[FSL002]
        CONTROL_STATE_NAME, Types.STRING(), Types.STRING())

    class _Shed(BroadcastProcessFunction):  # type: ignore[misc]
        def open(self, runtime_context: Any) -> None:
            self.reader = ControlStateReader()
            self.sampler: Sampler[Any] = Sampler(self.reader.control, mode, key_of)
            self.metrics = ShedMetrics(self.sampler)
            self.metrics.register(runtime_context.get_metrics_group())

        def process_element(self, value: Any, ctx: Any) -> Any:
            control = self.reader.refresh(ctx.get_broadcast_state(descriptor).get(CONTROL_STATE_KEY))
            self.sampler.control = control  # flinkscale: ignore[FSL001] (a view of broadcast state)
            yield from self.sampler.sample(value)

        def process_broadcast_element(self, value: Any, ctx: Any) -> None:
            state = ctx.get_broadcast_state(descriptor)
            updated = apply_control_text(state.get(CONTROL_STATE_KEY), value)
            if updated is not None:
                state.put(CONTROL_STATE_KEY, updated)

    broadcast = control_stream.broadcast(descriptor)
    kwargs = {} if output_type is None else {"output_type": output_type}
    return stream.connect(broadcast).process(_Shed(), **kwargs).uid(uid).name("flinkscale: shed (keep with p)")


def sql_estimate_columns(keep_probability: float, confidence: float = DEFAULT_CONFIDENCE,
                         value_column: str | None = None, prefix: str = "") -> dict[str, str]:
    """SQL select expressions (Flink SQL) for a shed window: HT estimates and their relative errors.

    For a GROUP BY over records kept with probability p (uniform per record):
    ``count = COUNT(*) / p``, its error ``z SQRT((1-p) / COUNT(*))``; with ``value_column`` also
    ``sum = SUM(v) / p`` and its error ``z SQRT((1-p) SUM(v^2)) / |SUM(v)|``. Keys are column aliases
    (``{prefix}count``, ``{prefix}count_relative_error``, ...). A window with no kept records has no row.
    """
    p = _probability(keep_probability, "keep_probability")
    z = z_for_confidence(confidence)
    names = {"count": f"{prefix}count", "count_error": f"{prefix}count_relative_error",
             "sum": f"{prefix}sum", "sum_error": f"{prefix}sum_relative_error"}
    columns = {
        names["count"]: f"CAST(COUNT(*) AS DOUBLE) / {p!r}",
        names["count_error"]: f"{z!r} * SQRT((1 - {p!r}) / CAST(COUNT(*) AS DOUBLE))",
    }
    if value_column is not None:
        value = f"CAST({value_column} AS DOUBLE)"
        columns[names["sum"]] = f"SUM({value}) / {p!r}"
        columns[names["sum_error"]] = (f"CASE WHEN SUM({value}) = 0 THEN NULL ELSE {z!r} * SQRT((1 - {p!r}) * "
                                       f"SUM({value} * {value})) / ABS(SUM({value})) END")
    return columns


def sql_weighted_window_columns(z: float, mode: str = "random", *, shedding: bool = True,
                                weight: str = "weight", size: str = "CAST(size_bytes AS DOUBLE)") -> str:
    """Per-group window columns over records carrying their HT weight (0 < p varies while the window is open).

    ``clicks``/``total_bytes`` (rounded estimates), ``sampled`` (kept records), ``keep_probability`` (kept /
    estimated), the estimates ``SUM(w)`` and ``SUM(size w)``, their Poisson-sampling variance estimates
    ``SUM(w(w-1))`` and ``SUM(w(w-1) size^2)`` and the relative errors ``z sqrt(var) / estimate``. In
    ``key_hash`` mode whole groups are the sampling units: Var = w(w-1) T^2 with T the group's true total, i.e.
    ``SUM(w) (SUM(w) - COUNT(*))`` for counts. Without shedding: exact values, zero variance, same columns.
    This is the SQL text of the PyFlink reference pipeline's window (``clickstream.window_columns``; a unit
    test holds the two equal) for SQL jobs built in Python.
    """
    if mode not in SAMPLING_MODES:
        raise InputError(f"must be one of {SAMPLING_MODES}, got {mode!r}", field="mode")
    if not shedding:
        return """COUNT(*) AS clicks, CAST(SUM(size_bytes) AS BIGINT) AS total_bytes, COUNT(*) AS sampled,
               CAST(1.0 AS DOUBLE) AS keep_probability,
               CAST(COUNT(*) AS DOUBLE) AS clicks_estimate, CAST(SUM(size_bytes) AS DOUBLE) AS total_bytes_estimate,
               CAST(0.0 AS DOUBLE) AS clicks_variance, CAST(0.0 AS DOUBLE) AS total_bytes_variance,
               CAST(0.0 AS DOUBLE) AS clicks_relative_error, CAST(0.0 AS DOUBLE) AS total_bytes_relative_error"""
    if mode == "key_hash":
        count_var = f"SUM({weight}) * (SUM({weight}) - COUNT(*))"
        bytes_var = (f"SUM({size} * {weight}) * SUM({size} * {weight}) * (SUM({weight}) - COUNT(*)) "
                     f"/ SUM({weight})")
    else:
        count_var = f"SUM({weight} * ({weight} - 1))"
        bytes_var = f"SUM({weight} * ({weight} - 1) * {size} * {size})"
    return (f"CAST(ROUND(SUM({weight})) AS BIGINT) AS clicks, "
            f"CAST(ROUND(SUM({size} * {weight})) AS BIGINT) AS total_bytes,\n") + f"""\
               COUNT(*) AS sampled, CAST(COUNT(*) AS DOUBLE) / SUM({weight}) AS keep_probability,
               SUM({weight}) AS clicks_estimate, SUM({size} * {weight}) AS total_bytes_estimate,
               {count_var} AS clicks_variance, {bytes_var} AS total_bytes_variance,
               {z!r} * SQRT({count_var}) / SUM({weight}) AS clicks_relative_error,
               {z!r} * SQRT({bytes_var}) / SUM({size} * {weight}) AS total_bytes_relative_error"""
