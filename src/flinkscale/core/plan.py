"""A ``Plan``: the capacity model's answer plus the Flink configuration that carries it out.

``build_plan(spec)`` runs the capacity model (``flinkscale.core.capacity``) and turns its numbers into
Flink 2.x configuration (``flink_config``: option name -> value, Flink's own key names and syntax) and
per-vertex parallelism overrides. The renderers in ``flinkscale.report.plan`` only format a ``Plan``;
``Plan.to_dict`` is the JSON form, where every number carries its formula and inputs and the
TaskManager memory breakdown is keyed by Flink's option names, in bytes.

Per-vertex parallelism reaches Flink through ``pipeline.jobvertex-parallelism-overrides``, keyed by
JobVertexID. Flink derives the JobVertexID of a chain from the uid of its head operator:
``murmur3_128(seed 0)`` over the uid's UTF-8 bytes (``StreamGraphHasherV2``), printed as 32 hex digits in
Guava's byte order. ``job_vertex_id`` reproduces that, so a job that sets ``.uid(<operator id>)`` on each
operator receives exactly the planned parallelism (the unit tests hold IDs printed by Flink 2.3 itself).
Operators joined by a forward edge whose target has a single input chain into their upstream's vertex.
SQL jobs get generated ids instead: there a spec states ``vertex_id`` per operator, and a plan made from a
profile uses the measured job's own vertex ids, so the overrides hit the vertices that were profiled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flinkscale.core.capacity import Capacity, plan_capacity
from flinkscale.core.explained import Explained
from flinkscale.core.snapshot import ShipStrategy
from flinkscale.core.workload import WorkloadSpec

_MASK64 = 0xFFFFFFFFFFFFFFFF
_C1, _C2 = 0x87C37B91114253D5, 0x4CF5AD432745937F


def _rotl64(value: int, distance: int) -> int:
    return ((value << distance) | (value >> (64 - distance))) & _MASK64


def _fmix64(value: int) -> int:
    value ^= value >> 33
    value = (value * 0xFF51AFD7ED558CCD) & _MASK64
    value ^= value >> 33
    value = (value * 0xC4CEB9FE1A85EC53) & _MASK64
    value ^= value >> 33
    return value


def murmur3_x64_128(data: bytes, seed: int = 0) -> bytes:
    """MurmurHash3 x64 128-bit, as Guava's ``Hashing.murmur3_128(seed)`` returns it (16 bytes)."""
    h1 = h2 = seed & _MASK64
    full = len(data) - len(data) % 16
    for offset in range(0, full, 16):
        k1 = int.from_bytes(data[offset:offset + 8], "little")
        k2 = int.from_bytes(data[offset + 8:offset + 16], "little")
        h1 ^= _rotl64((k1 * _C1) & _MASK64, 31) * _C2 & _MASK64
        h1 = (_rotl64(h1, 27) + h2) & _MASK64
        h1 = (h1 * 5 + 0x52DCE729) & _MASK64
        h2 ^= _rotl64((k2 * _C2) & _MASK64, 33) * _C1 & _MASK64
        h2 = (_rotl64(h2, 31) + h1) & _MASK64
        h2 = (h2 * 5 + 0x38495AB5) & _MASK64
    tail = data[full:]
    if len(tail) > 8:
        k2 = int.from_bytes(tail[8:], "little")
        h2 ^= _rotl64((k2 * _C2) & _MASK64, 33) * _C1 & _MASK64
    if tail:
        k1 = int.from_bytes(tail[:8], "little")
        h1 ^= _rotl64((k1 * _C1) & _MASK64, 31) * _C2 & _MASK64
    h1 ^= len(data)
    h2 ^= len(data)
    h1 = (h1 + h2) & _MASK64
    h2 = (h2 + h1) & _MASK64
    h1, h2 = _fmix64(h1), _fmix64(h2)
    h1 = (h1 + h2) & _MASK64
    h2 = (h2 + h1) & _MASK64
    return h1.to_bytes(8, "little") + h2.to_bytes(8, "little")


def job_vertex_id(uid: str) -> str:
    """The JobVertexID Flink gives a chain whose head operator has ``uid`` (``StreamGraphHasherV2``)."""
    return murmur3_x64_128(uid.encode("utf-8")).hex()


@dataclass(frozen=True)
class VertexOverride:
    """One job vertex (a chain) and the parallelism the plan gives it."""

    head: str
    operators: tuple[str, ...]
    uid: str | None
    job_vertex_id: str | None
    parallelism: int
    # Where the JobVertexID comes from: "uid" (hashed like Flink), "stated" (spec) or "profile" (measured job).
    job_vertex_id_source: str | None = None


@dataclass(frozen=True)
class PlannedDeployment:
    """The deployed shape of a plan: what runs, at which parallelism, on how many slots.

    What the simulator needs to run a planned deployment (``flinkscale.core.sim.planned``), taken either from
    a ``Plan`` (``Plan.deployment``) or from the JSON a plan was written to (``planned_deployment_from_json``),
    so a plan file that was reviewed, or edited, is simulated as it stands.
    """

    workload: str
    # The job vertices (chains of operators) with their parallelism.
    vertices: tuple[VertexOverride, ...]
    max_parallelism: int
    # Source operator id -> partitions of the topic it reads.
    source_partitions: Mapping[str, int]
    task_managers: int
    slots_per_task_manager: int
    checkpoint_interval_seconds: float
    # The projected state of the job (TTL applied), bytes.
    state_bytes: float

    @property
    def slots(self) -> int:
        return self.task_managers * self.slots_per_task_manager

    def parallelism(self) -> dict[str, int]:
        """Operator id -> parallelism (every operator of a chain runs at the chain's)."""
        return {op: v.parallelism for v in self.vertices for op in v.operators}


@dataclass(frozen=True)
class Plan:
    capacity: Capacity
    vertices: tuple[VertexOverride, ...]
    flink_config: dict[str, str]

    def deployment(self) -> PlannedDeployment:
        capacity = self.capacity
        return PlannedDeployment(
            workload=self.spec.name, vertices=self.vertices, max_parallelism=int(capacity.max_parallelism.value),
            source_partitions={k.operator_id: int(k.partitions.value) for k in capacity.kafka
                               if k.direction == "consume"},
            task_managers=int(capacity.cluster.task_managers.value),
            slots_per_task_manager=capacity.cluster.slots_per_task_manager,
            checkpoint_interval_seconds=capacity.checkpoints.interval_seconds.value,
            state_bytes=capacity.state.projected_bytes.value)

    @property
    def spec(self) -> WorkloadSpec:
        return self.capacity.spec

    @property
    def feasible(self) -> bool:
        return not self.capacity.constraints

    def parallelism_overrides(self) -> str:
        """``pipeline.jobvertex-parallelism-overrides`` value: ``<JobVertexID>:<parallelism>,...``."""
        return ",".join(f"{v.job_vertex_id}:{v.parallelism}" for v in self.vertices if v.job_vertex_id)

    def to_dict(self) -> dict[str, Any]:
        return plan_to_dict(self)


def _chains(capacity: Capacity) -> tuple[VertexOverride, ...]:
    spec = capacity.spec
    parallelism = {c.operator.id: int(c.parallelism.value) for c in capacity.operators}
    head: dict[str, str] = {}
    for op in spec.pipeline.topological_order():
        inputs = spec.pipeline.inputs_of(op.id)
        # An operator with a known JobVertexID is a vertex of its own (the profiled job did not chain it).
        if (len(inputs) == 1 and inputs[0].ship_strategy is ShipStrategy.FORWARD and op.job_vertex_id is None
                and parallelism[inputs[0].source] == parallelism[op.id]):
            head[op.id] = head[inputs[0].source]
        else:
            head[op.id] = op.id
    members_of: dict[str, list[str]] = {}
    for o in spec.pipeline.operators:  # one pass: a chain's members in pipeline order (linear in operators)
        members_of.setdefault(head[o.id], []).append(o.id)
    vertices = []
    for op in spec.pipeline.operators:
        if head[op.id] != op.id:
            continue
        members = tuple(members_of[op.id])
        if op.job_vertex_id is not None:
            vertex_id, source = op.job_vertex_id, "profile" if op.cost_origin == "measured" else "stated"
        elif op.uid:
            vertex_id, source = job_vertex_id(op.uid), "uid"
        else:
            vertex_id, source = None, None
        vertices.append(VertexOverride(head=op.id, operators=members, uid=op.uid, job_vertex_id=vertex_id,
                                       parallelism=parallelism[op.id], job_vertex_id_source=source))
    return tuple(vertices)


def _duration(seconds: float) -> str:
    """Flink duration syntax in whole milliseconds."""
    return f"{max(1, math.ceil(seconds * 1000))} ms"


def flink_configuration(capacity: Capacity, vertices: tuple[VertexOverride, ...]) -> dict[str, str]:
    """Flink 2.x options (config.yaml) for the planned cluster and job."""
    cluster, checkpoints, state = capacity.cluster, capacity.checkpoints, capacity.state
    spec = capacity.spec
    config: dict[str, str] = {}
    config.update(cluster.memory_options.flink_options())
    config["taskmanager.numberOfTaskSlots"] = str(cluster.slots_per_task_manager)
    # Spread slots evenly over TaskManagers: the TaskManager count is sized for CPU as well as slots, and
    # packing the used slots onto the first TaskManagers would overload their cores.
    config["taskmanager.load-balance.mode"] = "SLOTS"
    config.update(cluster.job_manager_options.flink_options())
    config["parallelism.default"] = str(int(cluster.slots.value))
    config["pipeline.max-parallelism"] = str(int(capacity.max_parallelism.value))
    overrides = ",".join(f"{v.job_vertex_id}:{v.parallelism}" for v in vertices if v.job_vertex_id)
    if overrides:
        config["pipeline.jobvertex-parallelism-overrides"] = overrides
    config["state.backend.type"] = state.backend
    config["execution.checkpointing.incremental"] = str(checkpoints.incremental).lower()
    config["execution.checkpointing.dir"] = spec.storage.checkpoint_dir
    config["execution.checkpointing.savepoint-dir"] = spec.storage.savepoint_dir
    config["execution.checkpointing.interval"] = _duration(checkpoints.interval_seconds.value)
    config["execution.checkpointing.timeout"] = _duration(checkpoints.timeout_seconds.value)
    config["execution.checkpointing.min-pause"] = _duration(checkpoints.min_pause_seconds.value)
    config["execution.checkpointing.mode"] = checkpoints.mode
    config["execution.checkpointing.unaligned.enabled"] = str(checkpoints.unaligned).lower()
    config["execution.checkpointing.externalized-checkpoint-retention"] = "RETAIN_ON_CANCELLATION"
    config["restart-strategy.type"] = "exponential-delay"
    config["restart-strategy.exponential-delay.initial-backoff"] = "1 s"
    config["restart-strategy.exponential-delay.max-backoff"] = _duration(
        min(60.0, max(2.0, spec.targets.rto_seconds / 4)))
    config["restart-strategy.exponential-delay.backoff-multiplier"] = "2.0"
    config["restart-strategy.exponential-delay.jitter-factor"] = "0.1"
    if spec.state.ttl_seconds is not None:
        config["table.exec.state.ttl"] = _duration(spec.state.ttl_seconds)
    return config


def build_plan(spec: WorkloadSpec) -> Plan:
    """Plan a workload: capacity model, chains, Flink configuration."""
    capacity = plan_capacity(spec)
    vertices = _chains(capacity)
    return Plan(capacity=capacity, vertices=vertices, flink_config=flink_configuration(capacity, vertices))


def planned_deployment_from_json(data: Any, source: str = "plan") -> PlannedDeployment:
    """The deployed shape of a plan written by ``plan_to_dict`` (``flinkscale plan --format json`` or
    ``--emit``); only the fields it reads are checked, each error names ``source`` and the field path."""
    from flinkscale.core._plan_json import deployment_from_json

    return deployment_from_json(data, source)


def _explained(value: Explained) -> dict[str, object]:
    return value.to_dict()


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    capacity = plan.capacity
    cluster, state, checkpoints = capacity.cluster, capacity.state, capacity.checkpoints
    memory = cluster.memory
    return {
        "name": plan.spec.name,
        "feasible": plan.feasible,
        "units": "bytes are SI where named B/s (1 TB = 10^12 B); memory sizes are bytes",
        "rates": {
            "average_events_per_second": _explained(capacity.rates.average_events_per_second),
            "peak_events_per_second": _explained(capacity.rates.peak_events_per_second),
            "provisioned_events_per_second": _explained(capacity.rates.provisioned_events_per_second),
            "average_bytes_per_second": _explained(capacity.rates.average_bytes_per_second),
            "peak_bytes_per_second": _explained(capacity.rates.peak_bytes_per_second),
        },
        "operators": [{
            "id": c.operator.id, "name": c.operator.name, "role": c.operator.role.value, "keyed": c.keyed,
            "cost_origin": c.operator.cost_origin,
            "input_records_per_second": _explained(c.input_records_per_second),
            "output_records_per_second": _explained(c.output_records_per_second),
            "output_event_bytes": c.output_event_bytes,
            "required_records_per_second": _explained(c.required_records_per_second),
            "subtask_records_per_second": _explained(c.subtask_records_per_second),
            "parallelism_for_cpu": _explained(c.parallelism_for_cpu),
            "parallelism": _explained(c.parallelism),
            "utilization_at_peak": _explained(c.utilization_at_peak),
            "core_demand": _explained(c.core_demand),
        } for c in capacity.operators],
        "edges": [{
            "source": e.source, "target": e.target, "ship_strategy": e.ship_strategy.value,
            "records_per_second": e.records_per_second, "bytes_per_second": e.bytes_per_second,
            "network_bytes_per_second": _explained(e.network_bytes_per_second),
        } for e in capacity.edges],
        "vertices": [{
            "head": v.head, "operators": list(v.operators), "uid": v.uid, "job_vertex_id": v.job_vertex_id,
            "parallelism": v.parallelism, "job_vertex_id_source": v.job_vertex_id_source,
        } for v in plan.vertices],
        "max_parallelism": _explained(capacity.max_parallelism),
        "kafka": [{
            "operator": k.operator_id, "topic": k.topic, "direction": k.direction,
            "bytes_per_second": k.bytes_per_second, "existing_partitions": k.existing_partitions,
            "partitions_needed": _explained(k.partitions_needed), "partitions": _explained(k.partitions),
        } for k in capacity.kafka],
        "cluster": {
            "slots": _explained(cluster.slots),
            "cores_needed": _explained(cluster.cores_needed),
            "task_managers": _explained(cluster.task_managers),
            "task_managers_unconstrained": cluster.task_managers_unconstrained,
            "cores_per_task_manager": cluster.cores_per_task_manager,
            "slots_per_task_manager": cluster.slots_per_task_manager,
            "taskmanager_memory": memory.flink_options(),
            "taskmanager_memory_components": memory.components(),
            "taskmanager_jvm": memory.jvm_args(),
            "network_buffers_bytes": _explained(cluster.network_buffers_bytes),
            "network_in_bytes_per_second": _explained(cluster.network_in_bytes_per_second),
            "network_out_bytes_per_second": _explained(cluster.network_out_bytes_per_second),
            "nic_bytes_per_second": plan.spec.cluster.nic_bytes_per_second,
            "jobmanager_memory": cluster.job_manager.flink_options(),
            "jobmanager_heap_needed": _explained(cluster.job_manager_heap_needed),
            "jobmanager_replicas": cluster.job_manager_replicas,
            "high_availability": cluster.high_availability,
        },
        "state": {
            "backend": state.backend, "backend_reason": state.backend_reason,
            "current_bytes": _explained(state.current_bytes),
            "projected_bytes_without_ttl": _explained(state.projected_bytes_without_ttl),
            "projected_bytes": _explained(state.projected_bytes),
            "per_task_manager_bytes": _explained(state.per_task_manager_bytes),
            "managed_fraction": _explained(state.managed_fraction),
            "local_disk_per_task_manager": _explained(state.local_disk_per_task_manager),
        },
        "checkpoints": {
            "interval_seconds": _explained(checkpoints.interval_seconds),
            "duration_seconds": _explained(checkpoints.duration_seconds),
            "size_per_task_manager_bytes": _explained(checkpoints.size_per_task_manager_bytes),
            "timeout_seconds": _explained(checkpoints.timeout_seconds),
            "min_pause_seconds": _explained(checkpoints.min_pause_seconds),
            "unaligned": checkpoints.unaligned, "unaligned_reason": checkpoints.unaligned_reason,
            "incremental": checkpoints.incremental, "mode": checkpoints.mode,
            "recovery_seconds": _explained(checkpoints.recovery_seconds),
            "replay_records": _explained(checkpoints.replay_records),
            "kafka_transaction_timeout_seconds": _explained(checkpoints.kafka_transaction_timeout_seconds)
            if checkpoints.kafka_transaction_timeout_seconds else None,
        },
        "constraints": [c.to_dict() for c in capacity.constraints],
        "carried_fraction": _explained(capacity.carried_fraction),
        "flink_config": dict(plan.flink_config),
        "notes": list(capacity.notes),
    }
