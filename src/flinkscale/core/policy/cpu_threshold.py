"""``cpu-threshold``: the managed-service rule (AWS Managed Service for Apache Flink's autoscaling).

Double every vertex's parallelism when utilization has stayed at or above ``scale-up.threshold`` (75%)
for ``scale-up.duration`` (15 min); halve it when utilization has stayed under ``scale-down.threshold``
(10%) for ``scale-down.duration`` (6 h). Utilization is the busy ratio (``busyTimeMsPerSecond / 1000``,
the mean over subtasks, which is what a CPU gauge on the container would average), aggregated over
the vertices by ``utilization.aggregate``: ``max`` (the busiest vertex, the default and the kinder
reading of the rule) or ``mean`` (weighted by parallelism, like container CPU).

"Stayed" means: the job has run at its current parallelism for the whole duration (per the history)
and every snapshot in that time agrees. With no history nothing is known to have lasted, so nothing
changes. It knows no rates, lag, key groups or partitions beyond the caps every policy respects (max
parallelism, a source's partitions, the job's slots), which is what makes it a useful baseline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from flinkscale.core.policy import _evaluate as ev
from flinkscale.core.policy._frame import SettingsPolicy
from flinkscale.core.policy._settings import Setting, parse_settings
from flinkscale.core.policy.base import Decision, History, VertexDecision
from flinkscale.core.snapshot import MetricsSnapshot

NAME = "cpu-threshold"

SETTINGS: tuple[Setting, ...] = (
    Setting("scale-up.threshold", "fraction", "0.75", "utilization at or above which to double"),
    Setting("scale-up.duration", "duration", "15m", "how long it must last"),
    Setting("scale-down.threshold", "fraction", "0.10", "utilization under which to halve"),
    Setting("scale-down.duration", "duration", "6h", "how long it must last"),
    Setting("utilization.aggregate", "choice", "max", "max (busiest vertex) or mean (parallelism-weighted)",
            ("max", "mean")),
    Setting("parallelism.min", "int", "1", "lowest parallelism"),
    Setting("parallelism.max", "int", "200", "highest parallelism"),
)


@dataclass(frozen=True)
class CpuThresholdSettings:
    """The rule's thresholds; durations in seconds; built by ``from_mapping``."""

    scale_up_threshold: float
    scale_up_duration: float
    scale_down_threshold: float
    scale_down_duration: float
    utilization_aggregate: str
    parallelism_min: int
    parallelism_max: int

    @classmethod
    def from_mapping(cls, given: Mapping[str, str] | None) -> CpuThresholdSettings:
        v = parse_settings(NAME, SETTINGS, given, ordered=(("parallelism.min", "parallelism.max"),))
        return cls(v.number("scale-up.threshold"), v.number("scale-up.duration"), v.number("scale-down.threshold"),
                   v.number("scale-down.duration"), v.text("utilization.aggregate"), v.integer("parallelism.min"),
                   v.integer("parallelism.max"))


def job_utilization(snapshot: MetricsSnapshot, aggregate: str) -> float | None:
    """Busy ratio of the job: the busiest vertex's mean over subtasks, or the parallelism-weighted mean."""
    weighted: list[tuple[float, int]] = []
    for vertex in snapshot.vertices:
        busy = vertex.metrics.busy_time_ms_per_second_avg
        if busy is None:
            busy = vertex.metrics.busy_time_ms_per_second_max
        if busy is not None:
            weighted.append((busy / 1000.0, vertex.parallelism))
    if not weighted:
        return None
    if aggregate == "mean":
        return sum(u * p for u, p in weighted) / sum(p for _, p in weighted)
    return max(u for u, _ in weighted)


class CpuThresholdPolicy(SettingsPolicy[CpuThresholdSettings]):
    name = NAME
    default_settings = CpuThresholdSettings

    @property
    def history_seconds(self) -> float:
        """The longest rule looks back this far (plus one sample)."""
        return max(self.settings.scale_up_duration, self.settings.scale_down_duration) + ev.HISTORY_SLACK_SECONDS

    def _sustained(self, snapshot: MetricsSnapshot, history: History, since: float, duration: float,
                   above: float | None = None, below: float | None = None) -> bool:
        now = snapshot.timestamp
        if now - since < duration:
            return False
        current = ev.parallelism_of(snapshot)
        span = [s for s in history.snapshots
                if now - duration <= s.timestamp < now and ev.parallelism_of(s) == current] + [snapshot]
        for s in span:
            utilization = job_utilization(s, self.settings.utilization_aggregate)
            if utilization is None:
                return False
            if above is not None and utilization < above:
                return False
            if below is not None and utilization >= below:
                return False
        return True

    def decide_running(self, snapshot: MetricsSnapshot, history: History) -> Decision:
        s = self.settings
        utilization = job_utilization(snapshot, s.utilization_aggregate)
        numbers = {"utilization": utilization if utilization is not None else math.nan}
        since = ev.last_change_time(snapshot, history)
        if since is None or utilization is None:
            why = "no history: a threshold must hold for a duration" if since is None else "no busy time"
            return ev.hold_decision(snapshot, NAME, why, numbers={v.id: numbers for v in snapshot.vertices})
        if self._sustained(snapshot, history, since, s.scale_up_duration, above=s.scale_up_threshold):
            factor, why = 2.0, (f"utilization {utilization:.2f} >= {s.scale_up_threshold} for "
                                f"{s.scale_up_duration:.0f}s: double")
        elif self._sustained(snapshot, history, since, s.scale_down_duration, below=s.scale_down_threshold):
            factor, why = 0.5, (f"utilization {utilization:.2f} < {s.scale_down_threshold} for "
                                f"{s.scale_down_duration:.0f}s: halve")
        else:
            why = (f"utilization {utilization:.2f}: no threshold held long enough "
                   f"(up >= {s.scale_up_threshold} for {s.scale_up_duration:.0f}s, "
                   f"down < {s.scale_down_threshold} for {s.scale_down_duration:.0f}s)")
            return ev.hold_decision(snapshot, NAME, why, numbers={v.id: numbers for v in snapshot.vertices})
        ceiling = ev.job_slot_ceiling(snapshot)
        decisions = []
        for vertex in snapshot.vertices:
            lower, upper = ev.parallelism_bounds(snapshot, vertex, s.parallelism_min, s.parallelism_max, ceiling)
            p = vertex.parallelism
            wanted = p * 2 if factor > 1 else math.ceil(p / 2)
            new_p = max(lower, min(wanted, upper))
            reason = why if new_p == wanted else f"{why}; limited to {new_p} (max parallelism, partitions or slots)"
            decisions.append(VertexDecision(vertex.id, vertex.name, p, new_p, reason,
                                            {**numbers, "scale_factor": factor, "new_parallelism": float(new_p)}))
        return Decision(snapshot.timestamp, NAME, tuple(decisions))
