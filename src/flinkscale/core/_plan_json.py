"""Reading a plan back from its JSON (``plan_to_dict``): the deployed shape, checked field by field.

Kept apart from ``core.plan`` so that importing the planner does not build pydantic models;
``planned_deployment_from_json`` imports this module on first use. Only the fields the deployment is made of
are read (a plan's JSON carries much more: memory, network, notes); they are strict (``"4"`` is not an
integer), finite and in Flink's ranges, and every error names the file and the field path.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from flinkscale.core.errors import InputError
from flinkscale.core.inputs import validate
from flinkscale.core.plan import PlannedDeployment, VertexOverride

_MAX_PARALLELISM = 32768  # Flink's upper bound for max parallelism
_Id = Annotated[str, Field(min_length=1, max_length=1000)]


class _Model(BaseModel):
    # extra="ignore": a plan's JSON holds far more than its deployed shape; the rest is not read.
    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False, frozen=True)


class _Count(_Model):
    value: Annotated[int, Field(ge=1, le=10**6)]


class _Seconds(_Model):
    value: Annotated[float, Field(gt=0, le=10 * 365 * 86400.0)]


class _Bytes(_Model):
    value: Annotated[float, Field(ge=0, le=1e18)]


class _VertexIn(_Model):
    head: _Id
    operators: Annotated[list[_Id], Field(min_length=1, max_length=100_000)]
    uid: str | None = None
    job_vertex_id: str | None = None
    parallelism: Annotated[int, Field(ge=1, le=_MAX_PARALLELISM)]
    job_vertex_id_source: str | None = None


class _KafkaIn(_Model):
    operator: _Id
    direction: Literal["consume", "produce"]
    partitions: _Count


class _ClusterIn(_Model):
    task_managers: _Count
    slots_per_task_manager: Annotated[int, Field(ge=1, le=10**4)]


class _CheckpointsIn(_Model):
    interval_seconds: _Seconds


class _StateIn(_Model):
    projected_bytes: _Bytes


class _PlanIn(_Model):
    name: _Id
    vertices: Annotated[list[_VertexIn], Field(min_length=1, max_length=100_000)]
    max_parallelism: _Count
    kafka: list[_KafkaIn] = Field(default_factory=list)
    cluster: _ClusterIn
    checkpoints: _CheckpointsIn
    state: _StateIn


def deployment_from_json(data: Any, source: str) -> PlannedDeployment:
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise InputError(f"a plan must be the JSON object `flinkscale plan --format json` writes, not {kind}",
                         field=source)
    plan = validate(_PlanIn, data, source)
    max_parallelism = plan.max_parallelism.value
    if max_parallelism > _MAX_PARALLELISM:
        raise InputError(f"must be at most {_MAX_PARALLELISM}, got {max_parallelism}",
                         field=f"{source}: max_parallelism.value")
    slots = plan.cluster.task_managers.value * plan.cluster.slots_per_task_manager
    seen: set[str] = set()
    for i, vertex in enumerate(plan.vertices):
        if vertex.parallelism > max_parallelism:
            raise InputError(f"must be at most max_parallelism {max_parallelism}, got {vertex.parallelism}",
                             field=f"{source}: vertices[{i}].parallelism")
        if vertex.parallelism > slots:  # one slot sharing group: the job needs its highest parallelism in slots
            raise InputError(f"must be at most the plan's {slots} slots (cluster.task_managers x "
                             f"slots_per_task_manager), got {vertex.parallelism}",
                             field=f"{source}: vertices[{i}].parallelism")
        if vertex.head not in vertex.operators:
            raise InputError(f"the head {vertex.head!r} is not one of the vertex's operators",
                             field=f"{source}: vertices[{i}].head")
        for op in vertex.operators:
            if op in seen:
                raise InputError(f"operator {op!r} is in more than one vertex", field=f"{source}: vertices[{i}]")
            seen.add(op)
    return PlannedDeployment(
        workload=plan.name,
        vertices=tuple(VertexOverride(head=v.head, operators=tuple(v.operators), uid=v.uid,
                                      job_vertex_id=v.job_vertex_id, parallelism=v.parallelism,
                                      job_vertex_id_source=v.job_vertex_id_source) for v in plan.vertices),
        max_parallelism=max_parallelism,
        source_partitions={k.operator: k.partitions.value for k in plan.kafka if k.direction == "consume"},
        task_managers=plan.cluster.task_managers.value, slots_per_task_manager=plan.cluster.slots_per_task_manager,
        checkpoint_interval_seconds=plan.checkpoints.interval_seconds.value,
        state_bytes=plan.state.projected_bytes.value)
