"""``MetricsSnapshot``: one job at one instant, the same type for a real and a simulated job.

The real collector (``flinkscale.flink.collector``) builds it from Flink's REST API, the simulator
(``flinkscale.core.sim``) builds it from its model, and recorded snapshots load from JSON. The planner,
the profiler analysis, the autoscaling policies and the reports only ever read this type, which is why
one policy can drive a real cluster, a simulated one and an offline replay alike.

Metric fields carry Flink's own metric names in snake case (``busy_time_ms_per_second`` is Flink's
``busyTimeMsPerSecond``). Per-vertex rates are sums over subtasks; time-per-second metrics come as the
max and the average over subtasks, because the busiest subtask bounds a vertex (skew) while the
average shows its cost. ``None`` means Flink did not report the metric (missing, or the string "NaN"),
which is different from a measured zero.

The JSON form (``to_dict``/``from_dict``) is versioned by ``SNAPSHOT_SCHEMA_VERSION`` and documented in
docs/snapshot-format.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from flinkscale.core.errors import InputError
from flinkscale.core.graph import topological_ids
from flinkscale.core.inputs import validate

SNAPSHOT_SCHEMA_VERSION = 1


class ShipStrategy(StrEnum):
    """How records cross an edge; Flink's names from the job plan (``ship_strategy``)."""

    FORWARD = "FORWARD"
    HASH = "HASH"
    REBALANCE = "REBALANCE"
    RESCALE = "RESCALE"
    BROADCAST = "BROADCAST"
    GLOBAL = "GLOBAL"
    CUSTOM = "CUSTOM"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def parse(cls, text: str) -> ShipStrategy:
        name = text.strip().upper()
        if name.startswith("HASH") or name == "KEYED":
            return cls.HASH
        if name in ("REBALANCE", "ROUND_ROBIN"):
            return cls.REBALANCE
        return cls.__members__.get(name, cls.UNKNOWN)

    @property
    def is_keyed(self) -> bool:
        return self is ShipStrategy.HASH


@dataclass(frozen=True)
class SubtaskMetrics:
    """One parallel subtask; filled only by an explicit per-subtask (skew) pass or the simulator."""

    index: int
    num_records_in_per_second: float | None = None
    num_records_out_per_second: float | None = None
    busy_time_ms_per_second: float | None = None
    back_pressured_time_ms_per_second: float | None = None
    idle_time_ms_per_second: float | None = None


@dataclass(frozen=True)
class VertexMetrics:
    """Per-vertex metrics over the sampling window, named after Flink's metrics."""

    num_records_in_per_second: float | None = None
    num_records_out_per_second: float | None = None
    num_bytes_in_per_second: float | None = None
    num_bytes_out_per_second: float | None = None
    busy_time_ms_per_second_max: float | None = None
    busy_time_ms_per_second_avg: float | None = None
    back_pressured_time_ms_per_second_max: float | None = None
    back_pressured_time_ms_per_second_avg: float | None = None
    idle_time_ms_per_second_avg: float | None = None
    # Sources only: Flink's ``pendingRecords`` summed over subtasks (= consumer lag), and its growth.
    pending_records: float | None = None
    pending_records_per_second: float | None = None
    # Flink's ``agg=skew`` value for numRecordsInPerSecond: min(mean abs deviation / mean x 100, 100).
    records_in_skew: float | None = None
    subtasks: tuple[SubtaskMetrics, ...] = ()

    @property
    def busy_ratio_max(self) -> float | None:
        return None if self.busy_time_ms_per_second_max is None else self.busy_time_ms_per_second_max / 1000


@dataclass(frozen=True)
class Vertex:
    """A Flink job vertex (a chain of operators) with its metrics."""

    id: str
    name: str
    parallelism: int
    max_parallelism: int
    is_source: bool = False
    is_sink: bool = False
    # Sources: the number of partitions (Kafka) or splits they read; caps useful source parallelism.
    partitions: int | None = None
    metrics: VertexMetrics = field(default_factory=VertexMetrics)


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    ship_strategy: ShipStrategy = ShipStrategy.UNKNOWN


@dataclass(frozen=True)
class ClusterResources:
    """What the cluster can give: used to never ask for slots that do not exist."""

    task_managers: int
    slots_total: int
    slots_available: int
    slots_per_task_manager: int
    # The most TaskManagers the cluster may grow to (None = unknown / fixed at task_managers).
    max_task_managers: int | None = None

    @property
    def slots_ceiling(self) -> int:
        tms = self.max_task_managers if self.max_task_managers is not None else self.task_managers
        return max(self.slots_total, tms * self.slots_per_task_manager)


@dataclass(frozen=True)
class CheckpointStats:
    completed: int = 0
    failed: int = 0
    in_progress: int = 0
    restored: int = 0
    last_duration_ms: float | None = None
    avg_duration_ms: float | None = None
    max_duration_ms: float | None = None
    last_size_bytes: int | None = None
    state_size_bytes: int | None = None
    avg_alignment_ms: float | None = None
    interval_ms: float | None = None


@dataclass(frozen=True)
class JvmPressure:
    """TaskManager JVM health, which blocks scaling when it is poor (the operator's GC/heap rule)."""

    heap_used_ratio_max: float | None = None
    gc_time_ms_per_second_max: float | None = None


@dataclass(frozen=True)
class MetricsSnapshot:
    """A Flink job at one instant: its graph and its per-vertex metrics."""

    timestamp: float
    job_id: str
    job_name: str
    vertices: tuple[Vertex, ...]
    edges: tuple[Edge, ...] = ()
    job_state: str = "RUNNING"
    # Seconds of data the metrics summarise (counter deltas over this window).
    window_seconds: float = 60.0
    cluster: ClusterResources | None = None
    checkpoints: CheckpointStats | None = None
    jvm: JvmPressure | None = None
    # Notes the producer wants readers to know ("vertex X reported NaN busy time", ...).
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        ids = [v.id for v in self.vertices]
        if len(set(ids)) != len(ids):
            raise InputError("vertex ids must be unique", field="vertices")
        known = set(ids)
        for i, edge in enumerate(self.edges):
            if edge.source not in known or edge.target not in known:
                raise InputError(f"edge {edge.source}->{edge.target} names an unknown vertex", field=f"edges[{i}]")

    # --- graph queries -------------------------------------------------------------------------
    # Lookups by id go through indexes built once per snapshot (a frozen value), so policies and reports that
    # ask per vertex stay linear in the graph: a 5,000-vertex job is decided in about a second.
    @cached_property
    def _by_id(self) -> dict[str, Vertex]:
        return {v.id: v for v in self.vertices}

    @cached_property
    def _edges_by_end(self) -> tuple[dict[str, tuple[Edge, ...]], dict[str, tuple[Edge, ...]]]:
        inputs: dict[str, list[Edge]] = {}
        outputs: dict[str, list[Edge]] = {}
        for e in self.edges:
            inputs.setdefault(e.target, []).append(e)
            outputs.setdefault(e.source, []).append(e)
        return ({k: tuple(v) for k, v in inputs.items()}, {k: tuple(v) for k, v in outputs.items()})

    @cached_property
    def _sources(self) -> tuple[Vertex, ...]:
        return tuple(v for v in self.vertices if v.is_source or not self.inputs_of(v.id))

    def vertex(self, vertex_id: str) -> Vertex:
        return self._by_id[vertex_id]

    def has_vertex(self, vertex_id: str) -> bool:
        return vertex_id in self._by_id

    @cached_property
    def parallelism_by_id(self) -> dict[str, int]:
        """Vertex id -> parallelism, built once per snapshot (policies compare it across a whole history).
        Shared: read it, never modify it."""
        return {v.id: v.parallelism for v in self.vertices}

    def inputs_of(self, vertex_id: str) -> tuple[Edge, ...]:
        return self._edges_by_end[0].get(vertex_id, ())

    def outputs_of(self, vertex_id: str) -> tuple[Edge, ...]:
        return self._edges_by_end[1].get(vertex_id, ())

    def sources(self) -> tuple[Vertex, ...]:
        return self._sources

    def is_keyed(self, vertex_id: str) -> bool:
        """True when any input edge hashes by key, so key groups decide the subtask."""
        return any(e.ship_strategy.is_keyed for e in self.inputs_of(vertex_id))

    def topological_order(self) -> tuple[Vertex, ...]:
        """Vertices with every vertex after all of its inputs (sources first)."""
        order = topological_ids([v.id for v in self.vertices], ((e.source, e.target) for e in self.edges))
        if order is None:
            raise InputError("the job graph has a cycle", field="edges")
        return tuple(self.vertex(vid) for vid in order)

    def total_parallelism(self) -> int:
        return sum(v.parallelism for v in self.vertices)

    def source_lag(self) -> float:
        """Total pending records over all sources (0 when no source reports lag)."""
        return sum(v.metrics.pending_records or 0.0 for v in self.sources())

    def with_parallelism(self, parallelism: Mapping[str, int]) -> MetricsSnapshot:
        return replace(self, vertices=tuple(
            replace(v, parallelism=parallelism.get(v.id, v.parallelism)) for v in self.vertices))

    def __iter__(self) -> Iterator[Vertex]:
        return iter(self.vertices)

    # --- JSON ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["schema_version"] = SNAPSHOT_SCHEMA_VERSION
        data["edges"] = [{**asdict(e), "ship_strategy": e.ship_strategy.value} for e in self.edges]
        cleaned: dict[str, Any] = _drop_nan(data)
        return cleaned

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricsSnapshot:
        return _snapshot_from_dict(data)


def _drop_nan(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _drop_nan(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_drop_nan(v) for v in value]
    return value


# --- the JSON boundary: pydantic models with strict types, finite numbers and ranges -----------------
# The dataclasses above are what the rest of the package reads; these models only check a JSON document
# (a recorded snapshot, a profile, a line of a history) before it becomes one. Strict: "2" is not an
# integer and "750" is not a number; floats are finite; every range below is physical (a busy time is at
# most 1000 ms per second, with room for sampling jitter), so a corrupt file cannot overflow later maths.

_MAX_RATE = 1e15  # records or bytes per second: far above any job, far below float overflow
_MAX_COUNT = 10**15
_MAX_PARALLELISM = 32768  # Flink's upper bound for max parallelism
_Rate = Annotated[float, Field(ge=0, le=_MAX_RATE, allow_inf_nan=False)]
_SignedRate = Annotated[float, Field(ge=-_MAX_RATE, le=_MAX_RATE, allow_inf_nan=False)]
_MsPerSecond = Annotated[float, Field(ge=0, le=2000, allow_inf_nan=False)]
_Millis = Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)]
_Count = Annotated[int, Field(ge=0, le=_MAX_COUNT)]


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True)


class _SubtaskIn(_Model):
    index: Annotated[int, Field(ge=0, le=_MAX_PARALLELISM)]
    num_records_in_per_second: _Rate | None = None
    num_records_out_per_second: _Rate | None = None
    busy_time_ms_per_second: _MsPerSecond | None = None
    back_pressured_time_ms_per_second: _MsPerSecond | None = None
    idle_time_ms_per_second: _MsPerSecond | None = None


class _MetricsIn(_Model):
    num_records_in_per_second: _Rate | None = None
    num_records_out_per_second: _Rate | None = None
    num_bytes_in_per_second: _Rate | None = None
    num_bytes_out_per_second: _Rate | None = None
    busy_time_ms_per_second_max: _MsPerSecond | None = None
    busy_time_ms_per_second_avg: _MsPerSecond | None = None
    back_pressured_time_ms_per_second_max: _MsPerSecond | None = None
    back_pressured_time_ms_per_second_avg: _MsPerSecond | None = None
    idle_time_ms_per_second_avg: _MsPerSecond | None = None
    pending_records: Annotated[float, Field(ge=0, le=1e18, allow_inf_nan=False)] | None = None
    pending_records_per_second: _SignedRate | None = None
    records_in_skew: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)] | None = None
    subtasks: list[_SubtaskIn] | None = None


class _VertexIn(_Model):
    id: Annotated[str, Field(min_length=1, max_length=1000)]
    name: str | None = None
    parallelism: Annotated[int, Field(ge=1, le=_MAX_PARALLELISM)]
    max_parallelism: Annotated[int, Field(ge=1, le=_MAX_PARALLELISM)] = 128
    is_source: bool = False
    is_sink: bool = False
    partitions: Annotated[int, Field(ge=1, le=10**7)] | None = None
    metrics: _MetricsIn | None = None


class _EdgeIn(_Model):
    source: str
    target: str
    ship_strategy: str = "UNKNOWN"


class _ClusterIn(_Model):
    task_managers: Annotated[int, Field(ge=0, le=10**6)]
    slots_total: Annotated[int, Field(ge=0, le=10**7)]
    slots_available: Annotated[int, Field(ge=0, le=10**7)]
    slots_per_task_manager: Annotated[int, Field(ge=0, le=10**5)]
    max_task_managers: Annotated[int, Field(ge=0, le=10**6)] | None = None


class _CheckpointsIn(_Model):
    completed: _Count = 0
    failed: _Count = 0
    in_progress: _Count = 0
    restored: _Count = 0
    last_duration_ms: _Millis | None = None
    avg_duration_ms: _Millis | None = None
    max_duration_ms: _Millis | None = None
    last_size_bytes: Annotated[int, Field(ge=0, le=10**18)] | None = None
    state_size_bytes: Annotated[int, Field(ge=0, le=10**18)] | None = None
    avg_alignment_ms: _Millis | None = None
    interval_ms: _Millis | None = None


class _JvmIn(_Model):
    heap_used_ratio_max: Annotated[float, Field(ge=0, le=10, allow_inf_nan=False)] | None = None
    gc_time_ms_per_second_max: _MsPerSecond | None = None


class _SnapshotIn(_Model):
    schema_version: Literal[1] = 1
    timestamp: Annotated[float, Field(ge=0, le=1e11, allow_inf_nan=False)]
    job_id: Annotated[str, Field(min_length=1, max_length=1000)]
    job_name: str | None = None
    job_state: str = "RUNNING"
    window_seconds: Annotated[float, Field(gt=0, le=1e9, allow_inf_nan=False)] = 60.0
    vertices: list[_VertexIn]
    edges: list[_EdgeIn] | None = None
    cluster: _ClusterIn | None = None
    checkpoints: _CheckpointsIn | None = None
    jvm: _JvmIn | None = None
    notes: list[str] | None = None


def _fields(model: BaseModel, *skip: str) -> dict[str, Any]:
    return {k: getattr(model, k) for k in type(model).model_fields if k not in skip}


def _snapshot_from_dict(data: Mapping[str, Any]) -> MetricsSnapshot:
    if not isinstance(data, Mapping):
        raise InputError(f"a snapshot must be a JSON object, got {_json_type(data)}", field="snapshot")
    version = data.get("schema_version", SNAPSHOT_SCHEMA_VERSION)
    if version != SNAPSHOT_SCHEMA_VERSION or isinstance(version, bool):
        raise InputError(f"unsupported schema_version {version!r:.40} (expected {SNAPSHOT_SCHEMA_VERSION})",
                         field="schema_version")
    raw = validate(_SnapshotIn, data)
    vertices = []
    for i, v in enumerate(raw.vertices):
        if v.max_parallelism < v.parallelism:
            raise InputError("need 1 <= parallelism <= max_parallelism", field=f"vertices[{i}].parallelism")
        m = v.metrics or _MetricsIn()
        metrics = VertexMetrics(**_fields(m, "subtasks"), subtasks=tuple(
            SubtaskMetrics(**_fields(s)) for s in m.subtasks or ()))
        vertices.append(Vertex(**{**_fields(v, "metrics", "name"), "name": v.name if v.name is not None else v.id},
                               metrics=metrics))
    edges = tuple(Edge(e.source, e.target, ShipStrategy.parse(e.ship_strategy)) for e in raw.edges or ())
    return MetricsSnapshot(
        timestamp=raw.timestamp, job_id=raw.job_id,
        job_name=raw.job_name if raw.job_name is not None else raw.job_id, vertices=tuple(vertices), edges=edges,
        job_state=raw.job_state, window_seconds=raw.window_seconds,
        cluster=ClusterResources(**_fields(raw.cluster)) if raw.cluster else None,
        checkpoints=CheckpointStats(**_fields(raw.checkpoints)) if raw.checkpoints else None,
        jvm=JvmPressure(**_fields(raw.jvm)) if raw.jvm else None, notes=tuple(raw.notes or ()))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list"}.get(
        type(value), type(value).__name__)
