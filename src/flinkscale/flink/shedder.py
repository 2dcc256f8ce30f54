"""The load-shedding controller: from a job's metrics to a keep probability on the control topic.

One ``step(snapshot)`` per collector sample (``flinkscale.flink.collector.Collector``):

1. **Offered rate** of the sources: what Kafka received, not what the job read. Best from the topic's end
   offsets (``step(snapshot, arrival_rate=...)``, ``flinkscale.kafka.control.ArrivalRate``); otherwise
   ``offered = consumed + d(lag)/dt``, with ``consumed`` the sources' records-in rate and ``d(lag)/dt``
   their ``pendingRecords`` growth (noisy over short intervals: Flink refreshes that gauge every few s).
2. **Sustainable rate** in fully processed records per second: the profile's number when given
   (``ShedSettings.sustainable_rate``), else the sources' observed true processing rate times the keep
   probability in force, ``consumed / (busy_avg / 1000) x p``: the busy source reads ``consumed / busy``
   records per busy second of which it processes a fraction p fully. Repeating ``p' = sustainable / offered``
   converges to the p that keeps the source exactly busy, which is why the controller scales it by
   ``headroom``. The estimate used is the median of the last ``estimate_samples`` (3) intervals' estimates,
   so that one interval with a checkpoint or a backlog burst does not move p. Below
   ``min_busy_ms_per_second`` of busy time the estimate is noise and is not used (an almost idle source is
   not overloaded).
3. **Backlog**: existing lag is drained over ``drain_seconds`` by reserving ``lag / drain_seconds``
   records/s of the capacity (at most half of it), so lag comes down instead of merely not growing.
4. ``flinkscale.core.shedding.choose_keep_probability`` with the accuracy target: p = max(capacity, bound);
   the bound uses ``records_per_group`` (default: offered x window length, i.e. per-window totals).
5. Publish only when p moved by at least ``min_change`` or shedding turns on or off (p reaches 1), so the
   topic carries decisions, not noise. Once the job sustains the offered rate again p returns to 1 and
   shedding stops.

The controller holds no I/O of its own beyond the ``publish`` callable (``ControlChannel.publish`` in
production, a list in tests), so the whole loop is testable from recorded snapshots.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from flinkscale.core.errors import InputError
from flinkscale.core.shedding import (
    DEFAULT_CONFIDENCE,
    DEFAULT_TARGET_ERROR,
    ShedDecision,
    choose_keep_probability,
)
from flinkscale.core.snapshot import MetricsSnapshot

#: A published value: (keep probability, seq) -> anything (the channel's receipt).
Publish = Callable[[float, int], object]


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
        return self.consumed_rate / (busy / 1000.0) * keep_probability


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
    """One controller step: the inputs, the decision, and whether (and what) it published."""

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

    def describe(self) -> str:
        load = self.load
        action = f"published p={self.decision.keep_probability:.4f} (seq {self.published_seq})" if self.published \
            else f"p stays {self.keep_probability_before:.4f}"
        return (f"offered {load.offered_rate:,.0f}/s (read {load.consumed_rate:,.0f}/s + lag growth "
                f"{load.lag_growth_rate:+,.0f}/s), lag {load.lag:,.0f}, sustainable {self.sustainable_rate:,.0f}/s "
                f"({self.sustainable_basis}): {action}; {self.decision.reason}")


class ShedController:
    """Turns snapshots into keep probabilities and publishes the changes."""

    def __init__(self, publish: Publish, settings: ShedSettings | None = None, *, keep_probability: float = 1.0,
                 next_seq: int = 0) -> None:
        if not 0 < keep_probability <= 1:
            raise InputError(f"must be in (0, 1], got {keep_probability}", field="keep_probability")
        self.publish = publish
        self.settings = settings or ShedSettings()
        self.keep_probability = keep_probability
        self.next_seq = next_seq
        self.last_sustainable_rate: float | None = self.settings.sustainable_rate
        self._estimates: deque[float] = deque(maxlen=self.settings.estimate_samples)
        self.steps: list[ShedStep] = []

    @classmethod
    def resuming(cls, publish: Publish, settings: ShedSettings, latest: tuple[float, int] | None) -> ShedController:
        """A controller that continues from the control topic's latest (keep probability, seq), if any, so a
        restarted controller neither re-publishes p nor reuses a sequence number."""
        if latest is None:
            return cls(publish, settings)
        return cls(publish, settings, keep_probability=latest[0], next_seq=latest[1] + 1)

    def _sustainable(self, load: SourceLoad) -> tuple[float, str]:
        s = self.settings
        if s.sustainable_rate is not None:
            return s.sustainable_rate, "from the profile"
        estimate = load.sustainable_rate(self.keep_probability, s.min_busy_ms_per_second)
        if estimate is not None:
            # One interval's read/busy ratio swings with checkpoints and backlog bursts: the median of the last
            # few keeps p from chasing that noise.
            self._estimates.append(estimate)
            median = statistics.median(self._estimates)
            self.last_sustainable_rate = median
            busy = load.busy_time_ms_per_second_avg or 0.0
            return median, (f"median of the last {len(self._estimates)} of read / busy x p, now "
                            f"{load.consumed_rate:,.0f}/s / {busy:.0f} ms/s x {self.keep_probability:.4f}")
        if self.last_sustainable_rate is not None:
            return self.last_sustainable_rate, "last estimate (source nearly idle now)"
        # Never measured and nearly idle: whatever it reads now is clearly within capacity.
        return max(load.offered_rate, load.consumed_rate, 1.0), "source nearly idle: offered rate"

    def step(self, snapshot: MetricsSnapshot, arrival_rate: float | None = None) -> ShedStep:
        """One decision. ``arrival_rate`` (records/s reaching the topic, e.g. ``kafka.control.ArrivalRate``)
        replaces read rate + lag growth as the offered rate when given: Flink refreshes ``pendingRecords``
        in its REST metric store only every few seconds, so lag growth over one short interval is noisy."""
        s = self.settings
        load = source_load(snapshot)
        if arrival_rate is not None:
            load = replace(load, lag_growth_rate=arrival_rate - load.consumed_rate)
        sustainable, basis = self._sustainable(load)
        usable = sustainable * s.headroom
        drain = min(load.lag / s.drain_seconds, 0.5 * usable)
        population = s.records_per_group if s.records_per_group is not None \
            else max(load.offered_rate * s.window_seconds, 1.0)
        decision = choose_keep_probability(load.offered_rate, usable, population, s.target_error, s.confidence,
                                           coefficient_of_variation=s.value_cv, backlog_drain_rate=drain)
        new = decision.keep_probability
        old = self.keep_probability
        changed = (abs(new - old) >= s.min_change) or (new >= 1.0) != (old >= 1.0)
        seq = None
        if changed and not math.isclose(new, old):
            seq = self.next_seq
            self.publish(new, seq)
            self.next_seq += 1
            self.keep_probability = new
        step = ShedStep(snapshot.timestamp, load, sustainable, basis, decision, old, seq,
                        {"headroom": s.headroom, "usable_rate": usable, "backlog_drain_rate": drain,
                         "records_per_group": population})
        self.steps.append(step)
        return step
