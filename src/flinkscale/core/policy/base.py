"""The contract every autoscaling policy meets, whether it drives a real job or the simulator.

A policy is a pure function of the current ``MetricsSnapshot`` and a ``History`` (earlier snapshots,
earlier decisions and the rescales that were carried out, with how long each took). It returns one
``Decision``: per-vertex new parallelism, each with a human reason and the numbers behind it, so that
a decision can always explain itself. Policies keep no hidden state: anything they need to remember
lives in the history the caller hands back, which is what makes a recorded run replayable offline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from flinkscale.core.snapshot import MetricsSnapshot


@dataclass(frozen=True)
class VertexDecision:
    vertex_id: str
    vertex_name: str
    current_parallelism: int
    new_parallelism: int
    reason: str
    # The inputs and intermediate values behind the decision (true_processing_rate, target_rate, ...).
    numbers: Mapping[str, float] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return self.new_parallelism != self.current_parallelism

    def to_dict(self) -> dict[str, Any]:
        return {"vertex_id": self.vertex_id, "vertex_name": self.vertex_name,
                "current_parallelism": self.current_parallelism, "new_parallelism": self.new_parallelism,
                "changed": self.changed, "reason": self.reason,
                "numbers": {k: _number_to_json(v) for k, v in self.numbers.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VertexDecision:
        return cls(str(data["vertex_id"]), str(data.get("vertex_name", data["vertex_id"])),
                   int(data["current_parallelism"]), int(data["new_parallelism"]), str(data.get("reason", "")),
                   {str(k): float(v) if v is not None else math.nan for k, v in (data.get("numbers") or {}).items()})


@dataclass(frozen=True)
class Decision:
    timestamp: float
    policy: str
    vertices: tuple[VertexDecision, ...]
    # Why nothing was changed although some vertex wanted to (cooldown, backlog, GC pressure, ...).
    blocked_reason: str | None = None
    # Fraction of source records to shed (0 = none); policies that do not shed leave it at 0.
    shed_fraction: float = 0.0

    @property
    def rescale(self) -> bool:
        return self.blocked_reason is None and any(v.changed for v in self.vertices)

    def parallelism(self) -> dict[str, int]:
        return {v.vertex_id: v.new_parallelism for v in self.vertices}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; non-finite numbers are spelled "inf", "-inf" or null (NaN), as JSON has none."""
        return {"timestamp": self.timestamp, "policy": self.policy, "rescale": self.rescale,
                "blocked_reason": self.blocked_reason, "shed_fraction": self.shed_fraction,
                "vertices": [v.to_dict() for v in self.vertices]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        return cls(float(data["timestamp"]), str(data["policy"]),
                   tuple(VertexDecision.from_dict(v) for v in data.get("vertices") or ()),
                   data.get("blocked_reason"), float(data.get("shed_fraction", 0.0)))


def _number_to_json(value: float) -> float | str | None:
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


@dataclass(frozen=True)
class RescaleRecord:
    """A rescale that was carried out: when it was asked for and how long until the job ran again."""

    requested_at: float
    completed_at: float
    old_parallelism: Mapping[str, int]
    new_parallelism: Mapping[str, int]

    @property
    def duration_seconds(self) -> float:
        return self.completed_at - self.requested_at


#: How far back a history reaches unless a policy needs more (``required_history_seconds``).
DEFAULT_HISTORY_SECONDS = 7200.0
#: At most this many snapshots and decisions, whatever their age (a 1 s interval over 6 h is 21,600).
MAX_HISTORY_ITEMS = 50_000
#: The most recent rescales kept: policies learn the restart cost from them, and a few hundred say enough.
MAX_HISTORY_RESCALES = 256

# The load series a policy learns daily and weekly shapes from: one sample a minute at most, kept 15 days.
LOAD_SAMPLE_SECONDS = 60.0
LOAD_KEEP_SECONDS = 15 * 86400.0


def offered_load(snapshot: MetricsSnapshot) -> float | None:
    """Records/s arriving at the job's sources: what they read plus the growth of their lag (``None`` when
    no source reports a rate). The one number a load forecast is about."""
    total, known = 0.0, False
    for vertex in snapshot.graph_sources:
        metrics = vertex.metrics
        rate = metrics.num_records_in_per_second
        if not rate and metrics.num_records_out_per_second is not None:
            rate = metrics.num_records_out_per_second
        if rate is None:
            continue
        known = True
        total += max(0.0, rate + (metrics.pending_records_per_second or 0.0))
    return total if known else None


@dataclass(frozen=True)
class History:
    """What a policy may look back on, bounded so that a long-running loop does not grow without end:
    snapshots and decisions within ``keep_seconds`` of the newest one (at most ``MAX_HISTORY_ITEMS`` each),
    and the last ``MAX_HISTORY_RESCALES`` rescales."""

    snapshots: tuple[MetricsSnapshot, ...] = ()
    decisions: tuple[Decision, ...] = ()
    rescales: tuple[RescaleRecord, ...] = ()
    # (timestamp, offered records/s) of the RUNNING job, at most one a LOAD_SAMPLE_SECONDS, kept much longer
    # than snapshots (a state store persists it across restarts of the controller; the simulator can start
    # a run with the load of the days before it).
    load: tuple[tuple[float, float], ...] = ()

    def append(self, snapshot: MetricsSnapshot | None = None, decision: Decision | None = None,
               rescale: RescaleRecord | None = None, keep_seconds: float = DEFAULT_HISTORY_SECONDS) -> History:
        """A new history with the items added and what is older than ``keep_seconds`` (or over the caps)
        dropped."""
        snapshots = self.snapshots + ((snapshot,) if snapshot else ())
        decisions = self.decisions + ((decision,) if decision else ())
        newest = max((item.timestamp for item in (snapshots[-1:] + decisions[-1:])), default=None)
        if newest is not None:
            horizon = newest - keep_seconds
            snapshots = tuple(s for s in snapshots if s.timestamp >= horizon)
            decisions = tuple(d for d in decisions if d.timestamp >= horizon)
        rescales = self.rescales + ((rescale,) if rescale else ())
        load = self.load
        if snapshot is not None and snapshot.job_state == "RUNNING" and snapshot.window_seconds > 0:
            rate = offered_load(snapshot)
            if rate is not None and (not load or snapshot.timestamp - load[-1][0] >= LOAD_SAMPLE_SECONDS - 1e-9):
                load = (*load, (snapshot.timestamp, rate))
                if snapshot.timestamp - load[0][0] > LOAD_KEEP_SECONDS:
                    horizon = snapshot.timestamp - LOAD_KEEP_SECONDS
                    load = tuple(item for item in load if item[0] >= horizon)
        return History(snapshots[-MAX_HISTORY_ITEMS:], decisions[-MAX_HISTORY_ITEMS:],
                       rescales[-MAX_HISTORY_RESCALES:], load)


class Policy(Protocol):
    """An autoscaling policy. ``name`` is what ``--policy`` accepts."""

    name: str

    def decide(self, snapshot: MetricsSnapshot, history: History) -> Decision: ...
