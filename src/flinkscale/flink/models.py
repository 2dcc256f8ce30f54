"""Typed views of Flink's REST responses, parsed defensively.

Flink's REST API returns what its metric store holds, which is not always a number: per-second metrics of
legacy sources come back as the *string* ``"NaN"``, a metric a vertex does not have is simply absent, and
``plan.nodes[].parallelism`` can be stale while ``vertices[].parallelism`` is current (flink-runtime.md, section 5).
These parsers turn all of that into ``float | None`` and plain frozen dataclasses, so nothing above this module
ever sees raw JSON. They are pure functions of the decoded JSON, tested against recorded real responses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flinkscale.core.snapshot import Edge, ShipStrategy


def metric_value(raw: Any) -> float | None:
    """A metric value as a float; ``None`` for absent, ``"NaN"``, infinities and unparsable text."""
    if raw is None or isinstance(raw, bool):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class ClusterOverview:
    task_managers: int
    slots_total: int
    slots_available: int
    jobs_running: int
    flink_version: str

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> ClusterOverview:
        return cls(int(data.get("taskmanagers", 0)), int(data.get("slots-total", 0)),
                   int(data.get("slots-available", 0)), int(data.get("jobs-running", 0)),
                   str(data.get("flink-version", "")))


@dataclass(frozen=True)
class TaskManagerInfo:
    id: str
    slots: int
    free_slots: int
    data_port: int | None
    # The resolved memory configuration in bytes, under Flink's REST names (e.g. "taskHeap", "managedMemory").
    memory: Mapping[str, int]

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> TaskManagerInfo:
        memory = {k: int(v) for k, v in (data.get("memoryConfiguration") or {}).items() if isinstance(v, int)}
        return cls(str(data["id"]), int(data.get("slotsNumber", 0)), int(data.get("freeSlots", 0)),
                   data.get("dataPort"), memory)


@dataclass(frozen=True)
class JobSummary:
    id: str
    name: str
    state: str
    start_time_ms: int

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> JobSummary:
        return cls(str(data["jid"]), str(data.get("name", "")), str(data.get("state", "")),
                   int(data.get("start-time", 0)))


@dataclass(frozen=True)
class VertexCounters:
    """Cumulative counters from ``GET /jobs/:jid`` (``vertices[].metrics``): deltas of these are exact rates."""

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
            value = metric_value(data.get(name))
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

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> JobDetails:
        vertices = tuple(
            JobVertexInfo(
                id=str(v["id"]), name=str(v.get("name", v["id"])), parallelism=int(v.get("parallelism", 1)),
                max_parallelism=int(v.get("maxParallelism", data.get("maxParallelism", 128))),
                status=str(v.get("status", "")), counters=VertexCounters.parse(v.get("metrics") or {}),
                tasks={k: int(n) for k, n in (v.get("tasks") or {}).items()})
            for v in data.get("vertices", ()))
        return cls(str(data["jid"]), str(data.get("name", "")), str(data.get("state", "")),
                   data.get("maxParallelism"), vertices, parse_plan_edges(data.get("plan") or {}),
                   int(data.get("start-time", 0)), int(data.get("now", 0)))

    def vertex(self, vertex_id: str) -> JobVertexInfo:
        for v in self.vertices:
            if v.id == vertex_id:
                return v
        raise KeyError(vertex_id)

    @property
    def all_running(self) -> bool:
        return self.state == "RUNNING" and all(v.all_running for v in self.vertices)


def parse_plan_edges(plan: Mapping[str, Any]) -> tuple[Edge, ...]:
    """Edges from the job plan: each node lists its inputs with the ship strategy (HASH, FORWARD, ...)."""
    edges = []
    for node in plan.get("nodes", ()):
        for inp in node.get("inputs", ()) or ():
            edges.append(Edge(str(inp["id"]), str(node["id"]),
                              ShipStrategy.parse(str(inp.get("ship_strategy", "UNKNOWN")))))
    return tuple(edges)


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
    def parse(cls, data: Mapping[str, Any]) -> AggregatedMetric:
        return cls(str(data["id"]), *(metric_value(data.get(k)) for k in ("min", "max", "avg", "sum", "skew")))


def parse_aggregated(data: Sequence[Mapping[str, Any]]) -> dict[str, AggregatedMetric]:
    return {m.id: m for m in (AggregatedMetric.parse(d) for d in data)}


def parse_metric_values(data: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """``[{"id": ..., "value": ...}]`` (per-subtask, TaskManager or JobManager metrics) as a dict."""
    return {str(d["id"]): metric_value(d.get("value")) for d in data}


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
    def parse(cls, data: Mapping[str, Any]) -> CheckpointInfo:
        def size(name: str) -> int | None:
            value = metric_value(data.get(name))
            return None if value is None else int(value)

        return cls(int(data.get("id", 0)), str(data.get("status", "")), metric_value(data.get("end_to_end_duration")),
                   size("checkpointed_size"), size("state_size"), size("alignment_buffered"),
                   data.get("external_path"), bool(data.get("is_savepoint", False)))


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
    def parse(cls, data: Mapping[str, Any]) -> CheckpointStatistics:
        counts = data.get("counts") or {}
        summary = data.get("summary") or {}
        latest = data.get("latest") or {}

        def stat(name: str, key: str) -> float | None:
            return metric_value((summary.get(name) or {}).get(key))

        completed = latest.get("completed")
        restored = latest.get("restored")
        return cls(int(counts.get("completed", 0)), int(counts.get("failed", 0)), int(counts.get("in_progress", 0)),
                   int(counts.get("restored", 0)), stat("end_to_end_duration", "avg"),
                   stat("end_to_end_duration", "max"), stat("checkpointed_size", "avg"), stat("state_size", "avg"),
                   CheckpointInfo.parse(completed) if completed else None,
                   int(restored["id"]) if restored else None)


@dataclass(frozen=True)
class CheckpointConfig:
    mode: str
    interval_ms: float | None
    timeout_ms: float | None
    state_backend: str
    unaligned: bool

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> CheckpointConfig:
        return cls(str(data.get("mode", "")), metric_value(data.get("interval")), metric_value(data.get("timeout")),
                   str(data.get("state_backend", "")), bool(data.get("unaligned_checkpoints", False)))


def parse_resource_requirements(data: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """``{vertex_id: (lowerBound, upperBound)}`` from ``GET /jobs/:jid/resource-requirements``."""
    return {vid: (int(req["parallelism"]["lowerBound"]), int(req["parallelism"]["upperBound"]))
            for vid, req in data.items()}


def resource_requirements_body(bounds: Mapping[str, tuple[int, int]]) -> dict[str, Any]:
    return {vid: {"parallelism": {"lowerBound": lo, "upperBound": hi}} for vid, (lo, hi) in bounds.items()}
