"""Typed views of Flink's REST responses: validated at the boundary, then plain frozen dataclasses.

Every answer from Flink goes through a pydantic *wire model* first (``OverviewWire``, ``JobDetailsWire``, ...),
strict about what flinkscale relies on: a parallelism is an integer in Flink's range (not the string ``"2"``,
not ``1e400``), an id is a string, a list is a list. Fields flinkscale does not read are ignored, so a newer
Flink with more fields still parses. ``validate_answer`` turns a pydantic error into one line naming the field
path (``vertices.0.parallelism: ...``); the REST client adds the endpoint.

What Flink legitimately reports that is not a number stays lenient: per-second metrics of legacy sources come
back as the *string* ``"NaN"``, a metric a vertex does not have is simply absent, and ``plan.nodes[].parallelism``
can be stale while ``vertices[].parallelism`` is current (flink-runtime.md, section 5). Metric values are
therefore taken as they come and turned into ``float | None`` by ``metric_value``.

The dataclasses (``JobDetails``, ``AggregatedMetric``, ...) are what the rest of flinkscale sees; nothing above
this module ever touches raw JSON. They are pure functions of the decoded JSON, tested against recorded real
responses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError

from flinkscale.core.errors import InputError
from flinkscale.core.snapshot import Edge, ShipStrategy

#: Flink's own bounds: a vertex's parallelism and max parallelism are at most 2^15.
MAX_PARALLELISM = 32768
_MAX_COUNT = 10**9  # TaskManagers, slots, jobs: anything beyond is not a real answer
_MAX_MILLIS = 2**63 - 1

Parallelism = Annotated[int, Field(ge=1, le=MAX_PARALLELISM)]
# Flink reports a max parallelism it has not fixed (a job without pipeline.max-parallelism) as -1.
MaxParallelism = Annotated[int, Field(ge=-1, le=MAX_PARALLELISM)]
Count = Annotated[int, Field(ge=0, le=_MAX_COUNT)]
Millis = Annotated[int, Field(ge=-1, le=_MAX_MILLIS)]
Port = Annotated[int, Field(ge=-1, le=65535)]
ShortText = Annotated[str, Field(max_length=100_000)]


class _Wire(BaseModel):
    """A JSON object from Flink: strict types for what is read, unknown fields ignored, immutable."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, populate_by_name=True)


_W = TypeVar("_W", bound=BaseModel)


def validate_answer(model: type[_W], data: Any) -> _W:
    """``data`` as ``model``; ``InputError`` naming the first bad field path (and how many more there are)."""
    if data is None:
        raise InputError("the answer is empty (or JSON null)")
    try:
        return model.model_validate(data, strict=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        path = ".".join(str(p) for p in first["loc"]) or "the answer"
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise InputError(f"{_problem(first['type'], first['msg'], first.get('input'))}{more}", field=path) from None
    except RecursionError:
        raise InputError("nested too deeply to be a Flink answer") from None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    return "an object" if isinstance(value, Mapping) else type(value).__name__


def _problem(kind: str, message: str, value: Any) -> str:
    """A pydantic error in JSON terms (no internal class names, never the offending value itself)."""
    if kind == "missing":
        return "missing"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"expected a JSON object, got {_json_type(value)}"
    if kind in ("list_type", "tuple_type"):
        return f"expected a JSON list, got {_json_type(value)}"
    if kind in ("int_type", "int_from_float", "int_parsing"):
        return f"expected an integer, got {_json_type(value)}"
    if kind in ("string_type",):
        return f"expected a string, got {_json_type(value)}"
    if kind in ("bool_type",):
        return f"expected true or false, got {_json_type(value)}"
    return message[:200]


def metric_value(raw: Any) -> float | None:
    """A metric value as a float; ``None`` for absent, ``"NaN"``, infinities and unparsable text."""
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, str) and len(raw) > 64:
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError, OverflowError):
        return None
    return value if math.isfinite(value) else None


#: The cumulative IO counters of ``GET /jobs/:jid`` (``vertices[].metrics``) and ``GET /jobs/:jid/vertices/:vid``
#: (``subtasks[].metrics``) that Flink flags with a ``<name>-complete`` boolean.
IO_COUNTERS = ("read-records", "write-records", "read-bytes", "write-bytes")


def io_counter(metrics: Mapping[str, Any], name: str) -> float | None:
    """An IO counter (``read-records``, ...) as a float; ``None`` when absent or when Flink marks it incomplete.

    Flink sums a counter over the subtasks whose metrics its metric store holds and sets ``<name>-complete`` to
    false when some are missing (a subtask just deployed, a TaskManager whose metrics were not fetched yet): the
    value is then a partial sum, often 0. Read as a count it makes a busy vertex look idle (and a counter that
    "went back"), a known cause of wrong scale-downs, so it is unknown here, never zero."""
    if metrics.get(f"{name}-complete") is False:
        return None
    return metric_value(metrics.get(name))


def incomplete_io_counters(metrics: Mapping[str, Any]) -> tuple[str, ...]:
    """The IO counters ``metrics`` flags as incomplete (``<name>-complete: false``), in ``IO_COUNTERS`` order."""
    return tuple(name for name in IO_COUNTERS if metrics.get(f"{name}-complete") is False)


# --- wire models (what Flink sends) ---------------------------------------------------------------------
class OverviewWire(_Wire):
    taskmanagers: Count
    slots_total: Count = Field(alias="slots-total")
    slots_available: Count = Field(alias="slots-available")
    jobs_running: Count = Field(0, alias="jobs-running")
    flink_version: ShortText = Field(alias="flink-version")


class ConfigEntryWire(_Wire):
    key: ShortText
    value: ShortText


class ConfigWire(RootModel[list[ConfigEntryWire]]):
    model_config = ConfigDict(strict=True, frozen=True)


class TaskManagerWire(_Wire):
    id: ShortText
    slots_number: Count = Field(alias="slotsNumber")
    free_slots: Count = Field(alias="freeSlots")
    data_port: Port | None = Field(None, alias="dataPort")
    memory_configuration: dict[str, Any] = Field(default_factory=dict, alias="memoryConfiguration")


class TaskManagersWire(_Wire):
    taskmanagers: list[TaskManagerWire]


class AggregatedMetricWire(_Wire):
    id: ShortText
    min: Any = None
    max: Any = None
    avg: Any = None
    sum: Any = None
    skew: Any = None


class AggregatedMetricsWire(RootModel[list[AggregatedMetricWire]]):
    model_config = ConfigDict(strict=True, frozen=True)


class MetricValueWire(_Wire):
    id: ShortText
    value: Any = None


class MetricValuesWire(RootModel[list[MetricValueWire]]):
    """``[{"id": ..., "value": ...}]``; also the metric *names* list, where ``value`` is absent."""

    model_config = ConfigDict(strict=True, frozen=True)


class JobSummaryWire(_Wire):
    jid: ShortText
    name: ShortText = ""
    state: ShortText
    start_time: Millis = Field(0, alias="start-time")


class JobsOverviewWire(_Wire):
    jobs: list[JobSummaryWire]


class PlanInputWire(_Wire):
    id: ShortText
    ship_strategy: ShortText = "UNKNOWN"


class PlanNodeWire(_Wire):
    id: ShortText
    inputs: list[PlanInputWire] = Field(default_factory=list)


class PlanWire(_Wire):
    nodes: list[PlanNodeWire] = Field(default_factory=list)


class JobVertexWire(_Wire):
    id: ShortText
    name: ShortText | None = None
    parallelism: Parallelism
    max_parallelism: MaxParallelism | None = Field(None, alias="maxParallelism")
    status: ShortText = ""
    metrics: dict[str, Any] = Field(default_factory=dict)
    tasks: dict[str, Count] = Field(default_factory=dict)


class JobDetailsWire(_Wire):
    jid: ShortText
    name: ShortText = ""
    state: ShortText
    max_parallelism: MaxParallelism | None = Field(None, alias="maxParallelism")
    scheduler_type: ShortText | None = Field(None, alias="schedulerType")
    vertices: list[JobVertexWire]
    plan: PlanWire | None = None
    start_time: Millis = Field(0, alias="start-time")
    now: Millis = 0


class SubtaskWire(_Wire):
    subtask: Annotated[int, Field(ge=0, le=MAX_PARALLELISM)]
    attempt: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    start_time: Millis = Field(-1, alias="start-time")
    metrics: dict[str, Any] = Field(default_factory=dict)


class VertexDetailWire(_Wire):
    """``GET /jobs/:jid/vertices/:vid``: per-subtask cumulative counters."""

    subtasks: list[SubtaskWire]


class ExceptionEntryWire(_Wire):
    exception_name: ShortText = Field("", alias="exceptionName")
    stacktrace: Annotated[str, Field(max_length=10_000_000)] = ""


class ExceptionHistoryWire(_Wire):
    entries: list[ExceptionEntryWire] = Field(default_factory=list)


class JobExceptionsWire(_Wire):
    exception_history: ExceptionHistoryWire = Field(default_factory=ExceptionHistoryWire, alias="exceptionHistory")


class CheckpointCountsWire(_Wire):
    completed: Count = 0
    failed: Count = 0
    in_progress: Count = 0
    restored: Count = 0


class CheckpointInfoWire(_Wire):
    id: Annotated[int, Field(ge=0, le=_MAX_MILLIS)]
    status: ShortText = ""
    end_to_end_duration: Any = None
    checkpointed_size: Any = None
    state_size: Any = None
    alignment_buffered: Any = None
    external_path: ShortText | None = None
    is_savepoint: bool = False


class RestoredCheckpointWire(_Wire):
    id: Annotated[int, Field(ge=0, le=_MAX_MILLIS)]


class LatestCheckpointsWire(_Wire):
    completed: CheckpointInfoWire | None = None
    restored: RestoredCheckpointWire | None = None


class CheckpointStatisticsWire(_Wire):
    counts: CheckpointCountsWire
    summary: dict[str, dict[str, Any] | None] = Field(default_factory=dict)
    latest: LatestCheckpointsWire | None = None


class CheckpointConfigWire(_Wire):
    mode: ShortText = ""
    interval: Any = None
    timeout: Any = None
    state_backend: ShortText = ""
    unaligned_checkpoints: bool = False


class RescaleConfigWire(_Wire):
    """``GET /jobs/:jid/rescales/config`` (Flink 2.3): the adaptive scheduler's settings in force for the job."""

    rescale_history_max: Any = Field(None, alias="rescaleHistoryMax")
    cooldown_ms: Any = Field(None, alias="executingCooldownTimeoutInMillis")
    resource_stabilization_ms: Any = Field(None, alias="executingResourceStabilizationTimeoutInMillis")
    trigger_max_delay_ms: Any = Field(None, alias="maximumDelayForTriggeringRescaleInMillis")
    max_checkpoint_failures: Any = Field(None, alias="rescaleOnFailedCheckpointCount")


class RescaleHistoryEntryWire(_Wire):
    rescale_uuid: ShortText = Field(alias="rescaleUuid")
    start_ms: Any = Field(None, alias="startTimestampInMillis")
    end_ms: Any = Field(None, alias="endTimestampInMillis")
    terminal_state: ShortText | None = Field(None, alias="terminalState")
    trigger_cause: ShortText | None = Field(None, alias="triggerCause")


class RescaleHistoryWire(RootModel[list[RescaleHistoryEntryWire]]):
    """``GET /jobs/:jid/rescales/history`` (Flink 2.3): the job's rescales, newest first."""

    model_config = ConfigDict(strict=True, frozen=True)


class ParallelismBoundsWire(_Wire):
    lower_bound: Parallelism = Field(alias="lowerBound")
    upper_bound: Parallelism = Field(alias="upperBound")


class VertexRequirementWire(_Wire):
    parallelism: ParallelismBoundsWire


class ResourceRequirementsWire(RootModel[dict[str, VertexRequirementWire]]):
    model_config = ConfigDict(strict=True, frozen=True)


class TriggerWire(_Wire):
    request_id: ShortText = Field(alias="request-id")


class StatusIdWire(_Wire):
    id: ShortText


class SavepointOperationWire(_Wire):
    location: ShortText | None = None
    failure_cause: Any = Field(None, alias="failure-cause")


class SavepointStatusWire(_Wire):
    status: StatusIdWire
    operation: SavepointOperationWire | None = None


class JarUploadWire(_Wire):
    filename: ShortText


class JarRunWire(_Wire):
    jobid: ShortText


# --- what the rest of flinkscale sees ---------------------------------------------------------------------
@dataclass(frozen=True)
class ClusterOverview:
    task_managers: int
    slots_total: int
    slots_available: int
    jobs_running: int
    flink_version: str

    @classmethod
    def from_wire(cls, wire: OverviewWire) -> ClusterOverview:
        return cls(wire.taskmanagers, wire.slots_total, wire.slots_available, wire.jobs_running, wire.flink_version)


@dataclass(frozen=True)
class TaskManagerInfo:
    id: str
    slots: int
    free_slots: int
    data_port: int | None
    # The resolved memory configuration in bytes, under Flink's REST names (e.g. "taskHeap", "managedMemory").
    memory: Mapping[str, int]

    @classmethod
    def from_wire(cls, wire: TaskManagerWire) -> TaskManagerInfo:
        memory = {str(k): v for k, v in wire.memory_configuration.items()
                  if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63}
        return cls(wire.id, wire.slots_number, wire.free_slots, wire.data_port, memory)


@dataclass(frozen=True)
class JobSummary:
    id: str
    name: str
    state: str
    start_time_ms: int

    @classmethod
    def from_wire(cls, wire: JobSummaryWire) -> JobSummary:
        return cls(wire.jid, wire.name, wire.state, wire.start_time)


@dataclass(frozen=True)
class VertexCounters:
    """Cumulative counters from ``GET /jobs/:jid`` (``vertices[].metrics``): deltas of these are exact rates.
    A counter Flink marks incomplete (``read-records-complete: false``, ...) is None (``io_counter``)."""

    read_records: int | None
    write_records: int | None
    read_bytes: int | None
    write_bytes: int | None
    accumulated_busy_time_ms: float | None
    accumulated_backpressured_time_ms: float | None
    accumulated_idle_time_ms: float | None

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> VertexCounters:
        def count(name: str) -> int | None:
            value = io_counter(data, name)
            return None if value is None else int(value)

        return cls(count("read-records"), count("write-records"), count("read-bytes"), count("write-bytes"),
                   metric_value(data.get("accumulated-busy-time")),
                   metric_value(data.get("accumulated-backpressured-time")),
                   metric_value(data.get("accumulated-idle-time")))


@dataclass(frozen=True)
class JobVertexInfo:
    id: str
    name: str
    parallelism: int
    max_parallelism: int
    status: str
    counters: VertexCounters
    # Per-state task counts, e.g. {"RUNNING": 2}.
    tasks: Mapping[str, int]

    @property
    def all_running(self) -> bool:
        return self.tasks.get("RUNNING", 0) == self.parallelism


@dataclass(frozen=True)
class JobDetails:
    id: str
    name: str
    state: str
    max_parallelism: int | None
    vertices: tuple[JobVertexInfo, ...]
    edges: tuple[Edge, ...]
    start_time_ms: int
    now_ms: int
    scheduler_type: str | None = None

    @classmethod
    def from_wire(cls, wire: JobDetailsWire) -> JobDetails:
        vertices = tuple(
            JobVertexInfo(
                id=v.id, name=v.name if v.name is not None else v.id, parallelism=v.parallelism,
                max_parallelism=_fixed(v.max_parallelism) or _fixed(wire.max_parallelism) or 128, status=v.status,
                counters=VertexCounters.parse(v.metrics), tasks=dict(v.tasks))
            for v in wire.vertices)
        known = {v.id for v in vertices}
        if len(known) != len(vertices):
            raise InputError("two vertices share an id", field="vertices")
        edges = _plan_edges(wire.plan or PlanWire())
        for edge in edges:
            for end in (edge.source, edge.target):
                if end not in known:
                    raise InputError(f"the plan names vertex {end[:64]!r}, which the job does not have",
                                     field="plan.nodes")
        return cls(wire.jid, wire.name, wire.state, _fixed(wire.max_parallelism), vertices, edges, wire.start_time,
                   wire.now, wire.scheduler_type)

    def vertex(self, vertex_id: str) -> JobVertexInfo:
        for v in self.vertices:
            if v.id == vertex_id:
                return v
        raise KeyError(vertex_id)

    @property
    def all_running(self) -> bool:
        return self.state == "RUNNING" and all(v.all_running for v in self.vertices)


def _fixed(max_parallelism: int | None) -> int | None:
    """A max parallelism Flink has fixed, or None for its "not set" (-1) and absent."""
    return max_parallelism if max_parallelism is not None and max_parallelism > 0 else None


def _plan_edges(plan: PlanWire) -> tuple[Edge, ...]:
    return tuple(Edge(inp.id, node.id, ShipStrategy.parse(inp.ship_strategy))
                 for node in plan.nodes for inp in node.inputs)


@dataclass(frozen=True)
class AggregatedMetric:
    """One metric aggregated over a vertex's subtasks (``agg=min,max,avg,sum,skew``)."""

    id: str
    min: float | None
    max: float | None
    avg: float | None
    sum: float | None
    skew: float | None

    @classmethod
    def from_wire(cls, wire: AggregatedMetricWire) -> AggregatedMetric:
        return cls(wire.id, *(metric_value(v) for v in (wire.min, wire.max, wire.avg, wire.sum, wire.skew)))


def aggregated_from_wire(wire: AggregatedMetricsWire) -> dict[str, AggregatedMetric]:
    return {m.id: m for m in (AggregatedMetric.from_wire(d) for d in wire.root)}


@dataclass(frozen=True)
class SubtaskDetail:
    """One subtask of ``GET /jobs/:jid/vertices/:vid``: its index, which run of it this is (``attempt`` and
    ``start-time``, -1 when Flink has none) and its raw cumulative counters."""

    index: int
    metrics: Mapping[str, Any]
    attempt: int = 0
    start_time_ms: int = -1


@dataclass(frozen=True)
class CheckpointInfo:
    id: int
    status: str
    end_to_end_duration_ms: float | None
    checkpointed_size: int | None
    state_size: int | None
    alignment_buffered: int | None
    external_path: str | None
    is_savepoint: bool

    @classmethod
    def from_wire(cls, wire: CheckpointInfoWire) -> CheckpointInfo:
        def size(raw: Any) -> int | None:
            value = metric_value(raw)
            return None if value is None else int(value)

        return cls(wire.id, wire.status, metric_value(wire.end_to_end_duration), size(wire.checkpointed_size),
                   size(wire.state_size), size(wire.alignment_buffered), wire.external_path, wire.is_savepoint)


@dataclass(frozen=True)
class CheckpointStatistics:
    completed: int
    failed: int
    in_progress: int
    restored: int
    duration_avg_ms: float | None
    duration_max_ms: float | None
    checkpointed_size_avg: float | None
    state_size_avg: float | None
    latest_completed: CheckpointInfo | None
    latest_restored_id: int | None

    @classmethod
    def from_wire(cls, wire: CheckpointStatisticsWire) -> CheckpointStatistics:
        def stat(name: str, key: str) -> float | None:
            return metric_value((wire.summary.get(name) or {}).get(key))

        latest = wire.latest or LatestCheckpointsWire()
        counts = wire.counts
        return cls(counts.completed, counts.failed, counts.in_progress, counts.restored,
                   stat("end_to_end_duration", "avg"), stat("end_to_end_duration", "max"),
                   stat("checkpointed_size", "avg"), stat("state_size", "avg"),
                   CheckpointInfo.from_wire(latest.completed) if latest.completed else None,
                   latest.restored.id if latest.restored else None)


@dataclass(frozen=True)
class CheckpointConfig:
    mode: str
    interval_ms: float | None
    timeout_ms: float | None
    state_backend: str
    unaligned: bool

    @classmethod
    def from_wire(cls, wire: CheckpointConfigWire) -> CheckpointConfig:
        return cls(wire.mode, metric_value(wire.interval), metric_value(wire.timeout), wire.state_backend,
                   wire.unaligned_checkpoints)


#: Flink writes "no checkpointing" as a checkpoint interval of Long.MAX_VALUE ms (recorded on 2.3).
_NO_CHECKPOINTS_MS = 2**62


def checkpoint_interval_seconds(config: CheckpointConfig) -> float | None:
    """The job's checkpoint interval in seconds; None when it does not checkpoint (absent, <= 0, Long.MAX)."""
    ms = config.interval_ms
    return None if ms is None or ms <= 0 or ms >= _NO_CHECKPOINTS_MS else ms / 1000.0


@dataclass(frozen=True)
class RescaleConfig:
    """The adaptive scheduler's settings for one job, as ``GET /jobs/:jid/rescales/config`` reports them
    (Flink 2.3); None where it leaves a field out. ``history_max`` 0: the rescale history is off."""

    history_max: int
    cooldown_seconds: float | None
    resource_stabilization_seconds: float | None
    trigger_max_delay_seconds: float | None
    max_checkpoint_failures: int | None

    @classmethod
    def from_wire(cls, wire: RescaleConfigWire) -> RescaleConfig:
        def seconds(raw: Any) -> float | None:
            value = metric_value(raw)
            return None if value is None or value < 0 else value / 1000.0

        def count(raw: Any) -> int | None:
            value = metric_value(raw)
            return None if value is None or value < 0 else int(value)

        return cls(count(wire.rescale_history_max) or 0, seconds(wire.cooldown_ms),
                   seconds(wire.resource_stabilization_ms), seconds(wire.trigger_max_delay_ms),
                   count(wire.max_checkpoint_failures))


@dataclass(frozen=True)
class RescaleHistoryEntry:
    """One rescale in Flink 2.3's rescale history: from the scheduler taking it up to the job running again
    (``terminal_state`` COMPLETED), or FAILED / IGNORED; None while in progress."""

    uuid: str
    start_ms: float | None
    end_ms: float | None
    terminal_state: str | None
    trigger_cause: str | None

    @property
    def duration_seconds(self) -> float | None:
        if self.start_ms is None or self.end_ms is None or self.end_ms < self.start_ms or self.start_ms <= 0:
            return None
        return (self.end_ms - self.start_ms) / 1000.0

    @classmethod
    def from_wire(cls, wire: RescaleHistoryEntryWire) -> RescaleHistoryEntry:
        return cls(wire.rescale_uuid, metric_value(wire.start_ms), metric_value(wire.end_ms), wire.terminal_state,
                   wire.trigger_cause)


def resource_requirements_body(bounds: Mapping[str, tuple[int, int]]) -> dict[str, Any]:
    return {vid: {"parallelism": {"lowerBound": lo, "upperBound": hi}} for vid, (lo, hi) in bounds.items()}


def first_line(text: str, limit: int = 300) -> str:
    """The first non-empty line of a (Java) error text, shortened: what a one-line message can carry."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""

