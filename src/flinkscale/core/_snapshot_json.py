"""The JSON boundary of ``MetricsSnapshot``: pydantic models with strict types, finite numbers and ranges.

Kept apart from ``core.snapshot`` so that importing the package (and starting the CLI) does not build these
models; ``MetricsSnapshot.from_dict`` imports this module on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from flinkscale.core.errors import InputError
from flinkscale.core.inputs import validate
from flinkscale.core.snapshot import (
    SNAPSHOT_SCHEMA_VERSION,
    CheckpointStats,
    ClusterResources,
    Edge,
    JvmPressure,
    MetricsSnapshot,
    ShipStrategy,
    SubtaskMetrics,
    Vertex,
    VertexMetrics,
    _json_type,
)

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
    tasks_running: _Count | None = None
    tasks_total: _Count | None = None


def _fields(model: BaseModel, *skip: str) -> dict[str, Any]:
    return {k: getattr(model, k) for k in type(model).model_fields if k not in skip}


def snapshot_from_dict(data: Mapping[str, Any]) -> MetricsSnapshot:
    if not isinstance(data, Mapping):
        raise InputError(f"a snapshot must be a JSON object, got {_json_type(data)}", field="snapshot")
    version = data.get("schema_version", SNAPSHOT_SCHEMA_VERSION)
    if version != SNAPSHOT_SCHEMA_VERSION or isinstance(version, bool):
        raise InputError(f"unsupported schema_version {version!r:.40} (expected {SNAPSHOT_SCHEMA_VERSION})",
                         field="schema_version")
    raw = validate(_SnapshotIn, data)
    if raw.cluster is not None and raw.cluster.slots_available > raw.cluster.slots_total:
        raise InputError(f"{raw.cluster.slots_available} slots available of {raw.cluster.slots_total} in all: "
                         "need slots_available <= slots_total", field="cluster.slots_available")
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
        jvm=JvmPressure(**_fields(raw.jvm)) if raw.jvm else None, notes=tuple(raw.notes or ()),
        tasks_running=raw.tasks_running, tasks_total=raw.tasks_total)


