"""The capacity model: from a ``WorkloadSpec`` to rates, parallelism, cluster shape, state, checkpoints.

Every number comes out as an ``Explained`` (``core.explained``): the value, its unit, the formula and the
inputs behind it, so a plan can always say why. The steps, in order (each a small function):

1. Rates. average = volume / day; peak = average x peak factor. A latency budget L can smooth a peak of
   length D only a little: the capacity to provision is ``max(average, peak x D / (D + L))``, which for
   sub-second latency is the peak itself (1 TB/day of 1 kB events at peak factor 3.5 needs > 40,000 ev/s).
2. Per-operator input rates, propagated through the DAG by selectivity (records out per record in).
3. Required processing rate per operator (the Flink operator autoscaler's capacity formula without lag):
   ``required = rate / target_utilization + rate x RTO / catch_up``. The first term keeps the operator at
   the target utilization at peak; the second is the headroom to work off an outage of RTO within the
   catch-up time (c >= r x (1 + D/T), anchors section 3).
4. Parallelism = ceil(required / (10^6 / cost_us_per_record)); sinks also need enough connections; sources
   never exceed their partition count (extra readers idle); forward edges need equal parallelism.
5. Max parallelism: the smallest highly composite value (120, 180, 240, 360, 720, ...) at or above the
   largest parallelism x growth factor; keyed operators then take a divisor of it (even key groups).
6. Kafka partitions: enough per-partition throughput with room to grow, a multiple of the source parallelism.
7. State size (with and without TTL), state backend, managed memory fraction.
8. Cluster shape: slots = max parallelism over operators (one slot sharing group), cores from the CPU
   demand, TaskManagers from both, process memory from heap/managed/network needs; the memory breakdown is
   Flink's own (``flinkscale.core.memory``).
9. Network traffic per TaskManager against the NIC; network buffers; local disk for RocksDB.
10. Checkpointing from RPO (interval + duration <= RPO), recovery time against RTO, JobManager size.

Where the workload cannot be met under the stated limits (max TaskManagers, max cores, partitions, NIC,
RPO, RTO), the model does not raise: it records a ``Constraint`` that says what binds and by how much.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from flinkscale.core.errors import InputError
from flinkscale.core.explained import Explained
from flinkscale.core.keygroups import UPPER_BOUND_MAX_PARALLELISM, aligned_parallelism, default_max_parallelism
from flinkscale.core.memory import (
    JobManagerMemory,
    JobManagerMemoryOptions,
    TaskManagerMemory,
    TaskManagerMemoryOptions,
    job_manager_memory,
    task_manager_memory,
)
from flinkscale.core.rates import capacity_from_cost, required_capacity
from flinkscale.core.snapshot import ShipStrategy
from flinkscale.core.units import GiB, KiB, MiB, format_bytes, format_duration, format_rate
from flinkscale.core.workload import Delivery, Operator, Role, StateBackendChoice, WorkloadSpec

#: Max parallelism candidates with many divisors (even key groups for many parallelisms).
HIGHLY_COMPOSITE_MAX_PARALLELISM = (120, 180, 240, 360, 720, 1260, 2520, 5040, 10080, 20160)
NETWORK_SEGMENT_BYTES = 32 * KiB
EXCLUSIVE_BUFFERS_PER_CHANNEL = 2
FLOATING_BUFFERS_PER_GATE = 8
#: Heap objects of the hashmap backend cost about this many times the serialized state size.
HASHMAP_OBJECT_OVERHEAD = 2.5
#: Above this much projected state per TaskManager, the hashmap backend's heap and full checkpoints hurt.
HASHMAP_STATE_LIMIT_PER_TASK_MANAGER = 1 * GiB
WORKING_HEAP_PER_SLOT = 256 * MiB
ROCKSDB_MANAGED_PER_SLOT = 256 * MiB
MEMORY_PER_CORE_DEFAULT = 4 * GiB
LARGEST_AUTO_PROCESS_SIZE = 64 * GiB
DEFAULT_CORES_PER_TASK_MANAGER = 4
FAILURE_DETECTION_SECONDS = 10.0
RESTART_SECONDS = 15.0
KAFKA_DEFAULT_MAX_TRANSACTION_TIMEOUT_SECONDS = 900.0


@dataclass(frozen=True)
class Constraint:
    """A stated limit the workload does not fit under: what binds, what is needed, what is allowed."""

    name: str
    required: float
    available: float
    unit: str
    message: str

    @property
    def shortfall(self) -> float:
        """How far over the limit, as a fraction of the limit (0.4 = needs 40% more than allowed)."""
        return (self.required - self.available) / self.available if self.available > 0 else math.inf

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "required": self.required, "available": self.available, "unit": self.unit,
                "shortfall": self.shortfall if math.isfinite(self.shortfall) else None, "message": self.message}


@dataclass(frozen=True)
class Rates:
    average_events_per_second: Explained
    peak_events_per_second: Explained
    provisioned_events_per_second: Explained
    average_bytes_per_second: Explained
    peak_bytes_per_second: Explained


@dataclass(frozen=True)
class OperatorCapacity:
    operator: Operator
    input_records_per_second: Explained
    output_records_per_second: Explained
    input_event_bytes: float
    output_event_bytes: float
    required_records_per_second: Explained
    subtask_records_per_second: Explained
    parallelism_for_cpu: Explained
    parallelism: Explained
    keyed: bool
    utilization_at_peak: Explained
    core_demand: Explained


@dataclass(frozen=True)
class EdgeTraffic:
    source: str
    target: str
    ship_strategy: ShipStrategy
    records_per_second: float
    bytes_per_second: float
    # Bytes/s that cross between TaskManagers (the (n-1)/n share of a shuffle, x receivers for broadcast).
    network_bytes_per_second: Explained


@dataclass(frozen=True)
class KafkaTopicPlan:
    operator_id: str
    topic: str
    direction: str  # "consume" or "produce"
    bytes_per_second: float
    partitions_needed: Explained
    partitions: Explained
    existing_partitions: int | None


@dataclass(frozen=True)
class StatePlan:
    current_bytes: Explained
    projected_bytes_without_ttl: Explained
    projected_bytes: Explained
    per_task_manager_bytes: Explained
    backend: str
    backend_reason: str
    managed_fraction: Explained
    local_disk_per_task_manager: Explained


@dataclass(frozen=True)
class CheckpointPlan:
    interval_seconds: Explained
    duration_seconds: Explained
    size_per_task_manager_bytes: Explained
    timeout_seconds: Explained
    min_pause_seconds: Explained
    unaligned: bool
    unaligned_reason: str
    incremental: bool
    mode: str
    recovery_seconds: Explained
    replay_records: Explained
    kafka_transaction_timeout_seconds: Explained | None


@dataclass(frozen=True)
class ClusterPlan:
    slots: Explained
    cores_needed: Explained
    cores_per_task_manager: int
    slots_per_task_manager: int
    task_managers: Explained
    task_managers_unconstrained: int
    memory_options: TaskManagerMemoryOptions
    memory: TaskManagerMemory
    network_buffers_bytes: Explained
    network_in_bytes_per_second: Explained
    network_out_bytes_per_second: Explained
    job_manager_options: JobManagerMemoryOptions
    job_manager: JobManagerMemory
    job_manager_heap_needed: Explained
    job_manager_replicas: int
    high_availability: bool


@dataclass(frozen=True)
class Capacity:
    spec: WorkloadSpec
    rates: Rates
    operators: tuple[OperatorCapacity, ...]
    edges: tuple[EdgeTraffic, ...]
    max_parallelism: Explained
    kafka: tuple[KafkaTopicPlan, ...]
    state: StatePlan
    cluster: ClusterPlan
    checkpoints: CheckpointPlan
    constraints: tuple[Constraint, ...]
    # The share of the provisioned peak the planned (possibly constrained) cluster carries (1.0 = all of it).
    carried_fraction: Explained
    notes: tuple[str, ...]

    def operator(self, operator_id: str) -> OperatorCapacity:
        for op in self.operators:
            if op.operator.id == operator_id:
                return op
        raise KeyError(operator_id)


# --- 1. rates ------------------------------------------------------------------------------------

def workload_rates(spec: WorkloadSpec) -> Rates:
    volume, latency = spec.volume, spec.targets.latency_seconds
    average = volume.average_events_per_second
    peak = average * volume.peak_factor
    smoothed = peak * volume.peak_duration_seconds / (volume.peak_duration_seconds + latency)
    provisioned = max(average, smoothed)
    return Rates(
        average_events_per_second=Explained(average, "events/s", "volume per day / 86400 s (/ event size for bytes)",
                                            {"volume": volume.stated_as, "event_bytes": volume.event_bytes}),
        peak_events_per_second=Explained(peak, "events/s", "average x peak_factor",
                                         {"average": average, "peak_factor": volume.peak_factor}),
        provisioned_events_per_second=Explained(
            provisioned, "events/s",
            "max(average, peak x peak_duration / (peak_duration + latency)): a latency budget absorbs only "
            "latency x rate of a peak's backlog",
            {"average": average, "peak": peak, "peak_duration_s": volume.peak_duration_seconds,
             "latency_s": latency}),
        average_bytes_per_second=Explained(average * volume.event_bytes, "B/s", "average x event_bytes",
                                           {"average": average, "event_bytes": volume.event_bytes}),
        peak_bytes_per_second=Explained(provisioned * volume.event_bytes, "B/s", "provisioned x event_bytes",
                                        {"provisioned": provisioned, "event_bytes": volume.event_bytes}))


# --- 2-5. operators ------------------------------------------------------------------------------

def _forward_groups(spec: WorkloadSpec) -> dict[str, str]:
    """Operators joined by FORWARD edges must run at one parallelism: union-find to a group root."""
    parent = {op.id: op.id for op in spec.pipeline.operators}

    def root(node: str) -> str:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for edge in spec.pipeline.edges:
        if edge.ship_strategy is ShipStrategy.FORWARD:
            parent[root(edge.source)] = root(edge.target)
    return {node: root(node) for node in parent}


def choose_max_parallelism(largest_parallelism: int, growth_factor: float) -> Explained:
    """The smallest highly composite max parallelism >= largest parallelism x growth (Flink's rule above 20160)."""
    wanted = math.ceil(largest_parallelism * growth_factor)
    for candidate in HIGHLY_COMPOSITE_MAX_PARALLELISM:
        if candidate >= wanted:
            return Explained(candidate, "key groups",
                             "smallest of 120, 180, 240, 360, 720, 1260, 2520, ... >= max parallelism x growth",
                             {"largest_parallelism": largest_parallelism, "growth_factor": growth_factor})
    fallback = max(default_max_parallelism(wanted), min(wanted, UPPER_BOUND_MAX_PARALLELISM))
    return Explained(min(fallback, UPPER_BOUND_MAX_PARALLELISM), "key groups",
                     "Flink default min(max(roundUpToPowerOf2(1.5 x p), 128), 32768) beyond 20160",
                     {"wanted": wanted})


def _source_cap(op: Operator) -> int | None:
    return op.connector.partitions if op.role is Role.SOURCE and op.connector is not None else None


def _partition_aligned(parallelism: int, partitions: int) -> int:
    """The smallest divisor of the partition count at or above the need (a reader owns whole partitions)."""
    return next(d for d in range(min(parallelism, partitions), partitions + 1) if partitions % d == 0)


def _largest_divisor_at_most(number: int, limit: int) -> int:
    return max(d for d in range(1, min(number, limit) + 1) if number % d == 0)


@dataclass
class _Sizing:
    """Mutable scratch state of the operator pass (kept private; results are frozen)."""

    inputs: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, float] = field(default_factory=dict)
    in_bytes: dict[str, float] = field(default_factory=dict)
    out_bytes: dict[str, float] = field(default_factory=dict)
    broadcast_inputs: dict[str, float] = field(default_factory=dict)


def _propagate(spec: WorkloadSpec, provisioned: float) -> _Sizing:
    sizing = _Sizing()
    for op in spec.pipeline.topological_order():
        if op.role is Role.SOURCE:
            records = provisioned * op.share
            in_bytes = spec.volume.event_bytes
        else:
            records, weighted_bytes, broadcast = 0.0, 0.0, 0.0
            for edge in spec.pipeline.inputs_of(op.id):
                upstream = sizing.outputs[edge.source]
                if edge.ship_strategy is ShipStrategy.BROADCAST:
                    broadcast += upstream
                records += upstream
                weighted_bytes += upstream * sizing.out_bytes[edge.source]
            in_bytes = weighted_bytes / records if records > 0 else spec.volume.event_bytes
            sizing.broadcast_inputs[op.id] = broadcast
        sizing.inputs[op.id] = records
        sizing.in_bytes[op.id] = in_bytes
        sizing.outputs[op.id] = records * op.selectivity
        if not math.isfinite(sizing.outputs[op.id]):
            raise InputError(f"the rate out of {op.id} is too large to compute: the selectivities along its path "
                             "multiply beyond what a float holds", field=f"pipeline.operators.{op.id}.selectivity")
        sizing.out_bytes[op.id] = op.output_event_bytes if op.output_event_bytes is not None else in_bytes
    return sizing


def size_operators(spec: WorkloadSpec, provisioned: float, ceiling: int | None = None) -> tuple[
        tuple[OperatorCapacity, ...], Explained, list[Constraint], list[str]]:
    """Per-operator rates and parallelism, the max parallelism, and the constraints that bind."""
    targets = spec.targets
    utilization = targets.utilization
    sizing = _propagate(spec, provisioned)
    constraints: list[Constraint] = []
    notes: list[str] = []
    keyed = {op.id: op.keyed_state or any(e.ship_strategy.is_keyed for e in spec.pipeline.inputs_of(op.id))
             for op in spec.pipeline.operators}
    cpu_parallelism: dict[str, int] = {}
    required: dict[str, float] = {}
    per_subtask: dict[str, float] = {}
    for op in spec.pipeline.operators:
        rate = sizing.inputs[op.id] - sizing.broadcast_inputs.get(op.id, 0.0)
        required[op.id] = required_capacity(rate, utilization, targets.rto_seconds, targets.catch_up_seconds)
        per_subtask[op.id] = capacity_from_cost(op.cost_us_per_record)
        p = max(1, math.ceil(required[op.id] / per_subtask[op.id]))
        connection = op.connector.connection_records_per_second if op.connector else None
        if op.role is Role.SINK and connection:
            p = max(p, math.ceil(required[op.id] / connection))
        broadcast = sizing.broadcast_inputs.get(op.id, 0.0)
        needed = required_capacity(broadcast, utilization, targets.rto_seconds, targets.catch_up_seconds)
        if broadcast and needed > per_subtask[op.id]:
            constraints.append(Constraint(
                "broadcast_input", needed, per_subtask[op.id], "records/s per subtask",
                f"{op.id}: every subtask receives the full broadcast stream ({format_rate(broadcast)}); no "
                "parallelism can carry it at the target utilization: make the broadcast side smaller or cheaper"))
        cpu_parallelism[op.id] = p
        if p > UPPER_BOUND_MAX_PARALLELISM:
            constraints.append(Constraint(
                "flink_parallelism", p, UPPER_BOUND_MAX_PARALLELISM, "subtasks",
                f"{op.id} needs parallelism {p:,}, but Flink runs an operator at most "
                f"{UPPER_BOUND_MAX_PARALLELISM:,} subtasks wide: make it cheaper or split the job"))
    parallelism = {op_id: min(p, UPPER_BOUND_MAX_PARALLELISM) for op_id, p in cpu_parallelism.items()}
    groups = _forward_groups(spec)
    members: dict[str, list[str]] = {}
    for node, group in groups.items():
        members.setdefault(group, []).append(node)

    def cap_of(node: str) -> int | None:
        return _source_cap(spec.pipeline.operator(node))

    def equalise() -> None:
        for group_members in members.values():
            top = max(parallelism[m] for m in group_members)
            caps = [c for m in group_members if (c := cap_of(m)) is not None]
            if caps:
                top = _partition_aligned(top, min(caps))
            for m in group_members:
                parallelism[m] = top

    # Sources never above their partitions.
    for op in spec.pipeline.sources():
        cap = _source_cap(op)
        if cap is not None and parallelism[op.id] > cap:
            parallelism[op.id] = cap
    equalise()
    source_ids = {s.id for s in spec.pipeline.sources()}
    for node, group in groups.items():
        cap = min((c for m in members[group] if (c := cap_of(m)) is not None), default=None)
        if cap is not None and cpu_parallelism[node] > cap:
            constraints.append(Constraint(
                "source_partitions", cpu_parallelism[node], cap, "subtasks",
                f"{node} needs parallelism {cpu_parallelism[node]} but is capped at the {cap} partitions of its "
                "source topic" + ("" if node in source_ids else " (forward-chained to the source: use rebalance)")
                + "; add partitions"))
    largest = max(parallelism.values())
    max_parallelism = choose_max_parallelism(largest, targets.growth_factor)
    max_p = int(max_parallelism.value)
    for _ in range(3):  # alignment and forward equality settle in two passes
        for op in spec.pipeline.operators:
            cap = cap_of(op.id)
            if cap is not None:
                parallelism[op.id] = _partition_aligned(parallelism[op.id], cap)
            elif keyed[op.id]:
                parallelism[op.id] = aligned_parallelism(min(parallelism[op.id], max_p), max_p)
        equalise()
    if ceiling is not None and max(parallelism.values()) > ceiling:
        # A binding cluster limit: no operator may ask for more subtasks than there are slots.
        for op in spec.pipeline.operators:
            if parallelism[op.id] > ceiling:
                cap = cap_of(op.id)
                parallelism[op.id] = (_largest_divisor_at_most(cap, ceiling) if cap is not None else
                                      _largest_divisor_at_most(max_p, ceiling) if keyed[op.id] else ceiling)
        for group_members in members.values():
            low = min(parallelism[m] for m in group_members)
            for m in group_members:
                parallelism[m] = low
        notes.append(f"parallelism capped at {ceiling} slots because a cluster limit binds")
    results = []
    for op in spec.pipeline.operators:
        p = parallelism[op.id]
        rate_in = sizing.inputs[op.id]
        busy_rate = rate_in - sizing.broadcast_inputs.get(op.id, 0.0)
        # At the provisioned rate: the peak that the latency budget cannot smooth away.
        utilization_at_peak = (busy_rate / p + sizing.broadcast_inputs.get(op.id, 0.0)) * op.cost_us_per_record / 1e6
        reasons = [f"cpu: ceil(required / per_subtask) = {cpu_parallelism[op.id]}"]
        if keyed[op.id]:
            reasons.append(f"keyed: aligned to a divisor of max parallelism {max_p}")
        if _source_cap(op) is not None:
            reasons.append(f"source: at most and preferably a divisor of {_source_cap(op)} partitions")
        if ceiling is not None and p < cpu_parallelism[op.id]:
            reasons.append(f"capped at {ceiling} slots by a cluster limit")
        if len(members[groups[op.id]]) > 1:
            reasons.append("forward edges: equal to " + ", ".join(sorted(m for m in members[groups[op.id]]
                                                                          if m != op.id)))
        results.append(OperatorCapacity(
            operator=op,
            input_records_per_second=Explained(rate_in, "records/s", "sum of upstream outputs (sources: provisioned"
                                               " x share)", {"share": op.share} if op.role is Role.SOURCE else {}),
            output_records_per_second=Explained(sizing.outputs[op.id], "records/s", "input x selectivity",
                                                {"input": rate_in, "selectivity": op.selectivity}),
            input_event_bytes=sizing.in_bytes[op.id], output_event_bytes=sizing.out_bytes[op.id],
            required_records_per_second=Explained(
                required[op.id], "records/s", "rate / target_utilization + rate x RTO / catch_up",
                {"rate": busy_rate, "target_utilization": utilization, "rto_s": targets.rto_seconds,
                 "catch_up_s": targets.catch_up_seconds}),
            subtask_records_per_second=Explained(per_subtask[op.id], "records/s", "10^6 / cost_us_per_record",
                                                 {"cost_us_per_record": op.cost_us_per_record,
                                                  "cost_origin": op.cost_origin}),
            parallelism_for_cpu=Explained(cpu_parallelism[op.id], "subtasks", "ceil(required / per_subtask)",
                                          {"required": required[op.id], "per_subtask": per_subtask[op.id]}),
            parallelism=Explained(p, "subtasks", "; ".join(reasons), {"cpu": cpu_parallelism[op.id]}),
            keyed=keyed[op.id],
            utilization_at_peak=Explained(utilization_at_peak, "busy fraction",
                                          "(rate / parallelism) x cost_us_per_record / 10^6",
                                          {"rate": busy_rate, "parallelism": p,
                                           "cost_us_per_record": op.cost_us_per_record}),
            core_demand=Explained(required[op.id] * op.cost_us_per_record / 1e6, "cores",
                                  "required x cost_us_per_record / 10^6",
                                  {"required": required[op.id], "cost_us_per_record": op.cost_us_per_record})))
    return tuple(results), max_parallelism, constraints, notes


# --- 6. kafka ------------------------------------------------------------------------------------

def kafka_topics(spec: WorkloadSpec, operators: tuple[OperatorCapacity, ...]) -> tuple[
        tuple[KafkaTopicPlan, ...], list[Constraint]]:
    plans: list[KafkaTopicPlan] = []
    constraints: list[Constraint] = []
    headroom = 1 + spec.targets.rto_seconds / spec.targets.catch_up_seconds
    for cap in operators:
        op = cap.operator
        if op.connector is None or op.connector.type != "kafka" or op.role is Role.OPERATOR:
            continue
        consume = op.role is Role.SOURCE
        record_rate = cap.output_records_per_second.value
        event_bytes = cap.output_event_bytes
        # Sources must read the catch-up rate too; a sink topic receives the same catch-up burst.
        bytes_per_second = record_rate * event_bytes * headroom
        needed = max(1, math.ceil(bytes_per_second / op.connector.partition_bytes_per_second))
        p = int(cap.parallelism.value)
        existing = op.connector.partitions
        if existing is not None:
            chosen = existing
            formula = "existing partitions (stated)"
            if existing < needed:
                constraints.append(Constraint(
                    "partition_throughput", needed, existing, "partitions",
                    f"topic of {op.id}: {format_bytes(bytes_per_second)}/s needs {needed} partitions at "
                    f"{format_bytes(op.connector.partition_bytes_per_second)}/s each, it has {existing}"))
        else:
            grown = max(math.ceil(needed * spec.targets.growth_factor), p)
            chosen = math.ceil(grown / p) * p
            formula = "smallest multiple of the operator parallelism >= max(needed x growth, parallelism)"
        plans.append(KafkaTopicPlan(
            operator_id=op.id, topic=op.connector.topic or f"{op.id}-topic",
            direction="consume" if consume else "produce", bytes_per_second=bytes_per_second,
            partitions_needed=Explained(needed, "partitions",
                                        "ceil(rate x event_bytes x (1 + RTO/catch_up) / per_partition_throughput)",
                                        {"records_per_second": record_rate, "event_bytes": event_bytes,
                                         "headroom": headroom,
                                         "per_partition_bytes_per_second": op.connector.partition_bytes_per_second}),
            partitions=Explained(chosen, "partitions", formula,
                                 {"needed": needed, "growth_factor": spec.targets.growth_factor, "parallelism": p}),
            existing_partitions=existing))
    return tuple(plans), constraints


# --- 7. state ------------------------------------------------------------------------------------

def _state_size(spec: WorkloadSpec) -> tuple[Explained, Explained, Explained]:
    state = spec.state
    current = state.keys * state.bytes_per_key
    grown_without_ttl = current + state.new_keys_per_day * state.horizon_days * state.bytes_per_key
    current_x = Explained(current, "B", "keys x bytes_per_key", {"keys": state.keys,
                                                                   "bytes_per_key": state.bytes_per_key})
    without = Explained(grown_without_ttl, "B", "current + new_keys_per_day x horizon_days x bytes_per_key",
                        {"current": current, "new_keys_per_day": state.new_keys_per_day,
                         "horizon_days": state.horizon_days})
    if state.ttl_seconds is None:
        return current_x, without, Explained(grown_without_ttl, "B", "no TTL: grows for the whole horizon",
                                             {"horizon_days": state.horizon_days})
    ttl_days = state.ttl_seconds / 86400
    bounded = current + state.new_keys_per_day * min(ttl_days, state.horizon_days) * state.bytes_per_key
    return current_x, without, Explained(
        bounded, "B", "current + new_keys_per_day x min(ttl, horizon) x bytes_per_key: TTL expires keys idle "
        "longer than the TTL", {"current": current, "ttl_days": ttl_days})


# --- 8-10. cluster, memory, network, checkpoints -------------------------------------------------

def _network_buffer_bytes(spec: WorkloadSpec, operators: Mapping[str, int], task_managers: int) -> int:
    """Buffers one TaskManager needs: per input gate 2 x channels + 8 floating, per output partition channels + 1."""
    buffers = 0
    for edge in spec.pipeline.edges:
        if edge.ship_strategy is ShipStrategy.FORWARD:
            continue
        up, down = operators[edge.source], operators[edge.target]
        receivers_here = math.ceil(down / task_managers)
        senders_here = math.ceil(up / task_managers)
        buffers += receivers_here * (EXCLUSIVE_BUFFERS_PER_CHANNEL * up + FLOATING_BUFFERS_PER_GATE)
        buffers += senders_here * (down + 1)
    return buffers * NETWORK_SEGMENT_BYTES


def _round_up(value: float, step: int) -> int:
    return max(step, math.ceil(value / step) * step)


def plan_capacity(spec: WorkloadSpec) -> Capacity:
    """Run the whole capacity model over a validated spec."""
    targets = spec.targets
    notes: list[str] = list(spec.notes)
    rates = workload_rates(spec)
    operators, max_parallelism, constraints, op_notes = size_operators(spec, rates.provisioned_events_per_second.value)
    notes += op_notes
    parallelism = {c.operator.id: int(c.parallelism.value) for c in operators}

    # Cluster: slots and cores.
    shape = spec.cluster
    slots_needed = max(parallelism.values())
    core_demand = sum(c.core_demand.value for c in operators)
    cores_needed = max(1, math.ceil(core_demand - 1e-9))
    cores_per_tm = shape.cores_per_task_manager or min(DEFAULT_CORES_PER_TASK_MANAGER, max(cores_needed, 1))
    slots_per_tm = shape.slots_per_task_manager or cores_per_tm
    tms_for_slots = math.ceil(slots_needed / slots_per_tm)
    tms_for_cores = math.ceil(cores_needed / cores_per_tm)

    # State and backend.
    current, without_ttl, projected = _state_size(spec)
    tms = max(1, tms_for_slots, tms_for_cores)
    state_per_tm = projected.value / tms
    backend, backend_reason = _state_backend(spec, state_per_tm)
    managed_fraction = shape.managed_fraction if shape.managed_fraction is not None else (
        0.0 if backend == "hashmap" else 0.4)

    # Memory: grow the TaskManager (auto) or the TaskManager count until heap, managed and network fit.
    memory_options, memory, tms, memory_note = _fit_memory(spec, parallelism, tms, slots_per_tm, cores_per_tm,
                                                           projected.value, backend, managed_fraction, constraints)
    if memory_note:
        notes.append(memory_note)
    tms_unconstrained = tms
    carried = 1.0
    limit_reasons: dict[str, float | str] = {}
    if shape.max_task_managers is not None and tms > shape.max_task_managers:
        constraints.append(Constraint(
            "max_task_managers", tms, shape.max_task_managers, "TaskManagers",
            f"needs {tms} TaskManagers, at most {shape.max_task_managers} allowed: short by "
            f"{tms - shape.max_task_managers} ({(tms / shape.max_task_managers - 1) * 100:.0f}% over the limit)"))
        carried = min(carried, shape.max_task_managers / tms)
        limit_reasons["max_task_managers"] = shape.max_task_managers
        tms = shape.max_task_managers
    if shape.max_total_cores is not None and tms * cores_per_tm > shape.max_total_cores:
        allowed_tms = max(1, shape.max_total_cores // cores_per_tm)
        constraints.append(Constraint(
            "max_total_cores", tms * cores_per_tm, shape.max_total_cores, "cores",
            f"needs {tms * cores_per_tm} cores ({tms} x {cores_per_tm}), at most {shape.max_total_cores} allowed"))
        carried = min(carried, allowed_tms / tms)
        limit_reasons["max_total_cores"] = shape.max_total_cores
        tms = allowed_tms
    if tms * slots_per_tm < slots_needed:
        operators, _, _, capped_notes = size_operators(spec, rates.provisioned_events_per_second.value,
                                                       ceiling=tms * slots_per_tm)
        notes += capped_notes
        parallelism = {c.operator.id: int(c.parallelism.value) for c in operators}
        slots_needed = max(parallelism.values())
    kafka, kafka_constraints = kafka_topics(spec, operators)
    constraints += kafka_constraints
    for constraint in constraints:
        if constraint.name in ("source_partitions", "partition_throughput", "flink_parallelism") and \
                constraint.required > 0:
            carried = min(carried, constraint.available / constraint.required)

    if spec.state.ttl_seconds is not None and projected.value > 0:
        cleanup = ("cleanupInRocksdbCompactFilter(1000): RocksDB drops expired entries while compacting"
                   if backend in ("rocksdb", "forst") else
                   "cleanupIncrementally(10, false): the heap backend checks 10 entries per state access")
        notes.append(f"state TTL {format_duration(spec.state.ttl_seconds)}: SQL jobs get table.exec.state.ttl; "
                     f"DataStream jobs set StateTtlConfig with {cleanup}")
    # State per TaskManager, local disk.
    state_per_tm = projected.value / tms
    disk_needed = state_per_tm * 2 if backend in ("rocksdb", "forst") else 0.0
    if shape.local_disk_bytes_per_task_manager is not None and disk_needed > shape.local_disk_bytes_per_task_manager:
        constraints.append(Constraint(
            "local_disk", disk_needed, shape.local_disk_bytes_per_task_manager, "B",
            f"RocksDB needs {format_bytes(disk_needed)} of local disk per TaskManager (state x 2 for compaction "
            f"and checkpoint staging), {format_bytes(shape.local_disk_bytes_per_task_manager)} stated"))

    # Edges and network.
    by_id = {c.operator.id: c for c in operators}
    edges = []
    shuffle_bytes = 0.0
    for edge in spec.pipeline.edges:
        upstream = by_id[edge.source]
        records = upstream.output_records_per_second.value
        bytes_per_second = records * upstream.output_event_bytes
        remote = (tms - 1) / tms
        if edge.ship_strategy is ShipStrategy.FORWARD or edge.ship_strategy is ShipStrategy.RESCALE:
            factor, formula = 0.0, "forward/rescale edges stay on the TaskManager"
        elif edge.ship_strategy is ShipStrategy.BROADCAST:
            factor, formula = parallelism[edge.target] * remote, "bytes x receivers x (n-1)/n"
        else:
            factor, formula = remote, "bytes x (n-1)/n: a shuffle sends all but the local share across the network"
        shuffle_bytes += bytes_per_second * factor
        edges.append(EdgeTraffic(edge.source, edge.target, edge.ship_strategy, records, bytes_per_second,
                                 Explained(bytes_per_second * factor, "B/s", formula,
                                           {"bytes_per_second": bytes_per_second, "task_managers": tms})))
    source_bytes = sum(by_id[s.id].input_records_per_second.value * spec.volume.event_bytes
                       for s in spec.pipeline.sources())
    sink_bytes = sum(c.output_records_per_second.value * c.output_event_bytes for c in operators
                     if c.operator.role is Role.SINK)

    checkpoints = _checkpointing(spec, rates, operators, backend, state_per_tm, tms, constraints)
    checkpoint_traffic = checkpoints.size_per_task_manager_bytes.value / checkpoints.interval_seconds.value
    transaction_timeout = checkpoints.kafka_transaction_timeout_seconds
    if transaction_timeout is not None and transaction_timeout.value > KAFKA_DEFAULT_MAX_TRANSACTION_TIMEOUT_SECONDS:
        notes.append(f"exactly-once Kafka sink: set transaction.timeout.ms={int(transaction_timeout.value * 1000)} "
                     "and raise the brokers' transaction.max.timeout.ms (default 900000) to at least that")
    network_in = source_bytes / tms + shuffle_bytes / tms
    network_out = shuffle_bytes / tms + sink_bytes / tms + checkpoint_traffic
    nic_budget = shape.nic_bytes_per_second * targets.utilization
    for direction, value in (("in", network_in), ("out", network_out)):
        if value > nic_budget:
            constraints.append(Constraint(
                f"nic_{direction}", value, nic_budget, "B/s",
                f"network {direction} per TaskManager {format_bytes(value)}/s exceeds the NIC at target "
                f"utilization ({format_bytes(nic_budget)}/s): use more, smaller TaskManagers or a faster NIC"))
    network_buffers = _network_buffer_bytes(spec, parallelism, tms)

    # JobManager.
    total_subtasks = sum(parallelism.values())
    handles_per_subtask = 50 if backend in ("rocksdb", "forst") else 1
    metadata = total_subtasks * handles_per_subtask * 4 * KiB
    jm_heap_needed = 512 * MiB + total_subtasks * 1 * MiB + 3 * metadata
    jm_options = _fit_job_manager(jm_heap_needed)
    ha = True
    # A standby JobManager: always on Kubernetes (the operator's HA takes over in seconds), elsewhere when RTO is tight.
    jm_replicas = 2 if targets.rto_seconds < 120 or spec.deployment.target == "kubernetes" else 1

    cluster = ClusterPlan(
        slots=Explained(slots_needed, "slots", "max parallelism over operators (one slot sharing group)",
                        dict(parallelism)),
        cores_needed=Explained(cores_needed, "cores", "ceil(sum over operators of required x cost / 10^6)",
                               {"core_demand": core_demand}),
        cores_per_task_manager=cores_per_tm, slots_per_task_manager=slots_per_tm,
        task_managers=Explained(tms, "TaskManagers",
                                "max(ceil(slots / slots_per_tm), ceil(cores / cores_per_tm), memory fit), capped by "
                                "the stated limits",
                                {"for_slots": tms_for_slots, "for_cores": tms_for_cores,
                                 "unconstrained": tms_unconstrained, **limit_reasons}),
        task_managers_unconstrained=tms_unconstrained,
        memory_options=memory_options, memory=memory,
        network_buffers_bytes=Explained(network_buffers, "B",
                                        "32 KiB x sum over shuffle edges of receivers x (2 x channels + 8) + "
                                        "senders x (channels + 1), per TaskManager", {"task_managers": tms}),
        network_in_bytes_per_second=Explained(network_in, "B/s", "source / n + shuffle x (n-1)/n / n",
                                              {"source": source_bytes, "shuffle": shuffle_bytes, "n": tms}),
        network_out_bytes_per_second=Explained(
            network_out, "B/s", "shuffle x (n-1)/n / n + sink / n + checkpoint size per TM / interval",
            {"shuffle": shuffle_bytes, "sink": sink_bytes, "checkpoint": checkpoint_traffic, "n": tms}),
        job_manager_options=jm_options, job_manager=job_manager_memory(jm_options),
        job_manager_heap_needed=Explained(jm_heap_needed, "B",
                                          "512 MiB + 1 MiB x subtasks + 3 retained x checkpoint metadata",
                                          {"subtasks": total_subtasks, "checkpoint_metadata": metadata}),
        job_manager_replicas=jm_replicas, high_availability=ha)
    state_plan = StatePlan(
        current_bytes=current, projected_bytes_without_ttl=without_ttl, projected_bytes=projected,
        per_task_manager_bytes=Explained(state_per_tm, "B", "projected / task_managers",
                                         {"projected": projected.value, "task_managers": tms}),
        backend=backend, backend_reason=backend_reason,
        managed_fraction=Explained(managed_fraction, "fraction",
                                   "stated" if shape.managed_fraction is not None else
                                   "0.4 for rocksdb/forst (block cache, write buffers), 0 for hashmap",
                                   {"backend": backend}),
        local_disk_per_task_manager=Explained(disk_needed, "B", "rocksdb: state per TM x 2 (compaction, staging)",
                                              {"state_per_task_manager": state_per_tm}))
    return Capacity(
        spec=spec, rates=rates, operators=operators, edges=tuple(edges), max_parallelism=max_parallelism,
        kafka=kafka, state=state_plan, cluster=cluster, checkpoints=checkpoints, constraints=tuple(constraints),
        carried_fraction=Explained(carried, "fraction of provisioned peak",
                                   "min over binding limits of allowed / required", dict(limit_reasons)),
        notes=tuple(notes))


def _state_backend(spec: WorkloadSpec, state_per_tm: float) -> tuple[str, str]:
    if spec.state.backend is not StateBackendChoice.AUTO:
        return spec.state.backend.value, "stated in the spec"
    if state_per_tm <= HASHMAP_STATE_LIMIT_PER_TASK_MANAGER:
        return "hashmap", (f"projected state per TaskManager {format_bytes(state_per_tm, binary=True)} <= "
                           f"{format_bytes(HASHMAP_STATE_LIMIT_PER_TASK_MANAGER, binary=True)}: heap state is fastest")
    return "rocksdb", (f"projected state per TaskManager {format_bytes(state_per_tm, binary=True)} > "
                       f"{format_bytes(HASHMAP_STATE_LIMIT_PER_TASK_MANAGER, binary=True)}: RocksDB keeps it on "
                       "local disk with incremental checkpoints")


def _fit_memory(spec: WorkloadSpec, parallelism: Mapping[str, int], tms: int, slots_per_tm: int, cores_per_tm: int,
                projected_state: float, backend: str, managed_fraction: float,
                constraints: list[Constraint]) -> tuple[TaskManagerMemoryOptions, TaskManagerMemory, int, str]:
    stated = spec.cluster.process_memory_per_task_manager
    for attempt_tms in _task_manager_counts(tms, tms * 64 if stated else tms * 8 + 1):
        state_per_tm = projected_state / attempt_tms
        heap_needed = slots_per_tm * WORKING_HEAP_PER_SLOT + (
            state_per_tm * HASHMAP_OBJECT_OVERHEAD if backend == "hashmap" else 0)
        managed_needed = slots_per_tm * ROCKSDB_MANAGED_PER_SLOT if backend in ("rocksdb", "forst") else 0
        network_needed = _round_up(_network_buffer_bytes(spec, parallelism, attempt_tms), MiB)
        sizes = [stated] if stated else list(range(max(2 * GiB, cores_per_tm * MEMORY_PER_CORE_DEFAULT),
                                                   LARGEST_AUTO_PROCESS_SIZE + 1, GiB))
        for size in sizes:
            options = TaskManagerMemoryOptions(process_size=size, managed_fraction=managed_fraction,
                                               network_min=max(64 * MiB, network_needed))
            try:
                memory = task_manager_memory(options)
            except InputError:
                continue
            if memory.task_heap >= heap_needed and memory.managed >= managed_needed:
                note = "" if attempt_tms == tms else (
                    f"TaskManagers raised from {tms} to {attempt_tms} so that state fits in TaskManager memory")
                return options, memory, attempt_tms, note
    # Nothing fits: keep the largest size and say so.
    size = stated or LARGEST_AUTO_PROCESS_SIZE
    options = TaskManagerMemoryOptions(process_size=size, managed_fraction=managed_fraction)
    try:
        memory = task_manager_memory(options)
    except InputError as exc:
        raise InputError(str(exc), field="cluster.memory_per_task_manager") from None
    constraints.append(Constraint(
        "task_manager_memory", projected_state / tms, memory.task_heap, "B",
        f"state does not fit {format_bytes(size, binary=True)} TaskManagers: use rocksdb or larger TaskManagers"))
    return options, memory, tms, ""


def _task_manager_counts(first: int, last: int) -> Iterator[int]:
    """TaskManager counts to try, from ``first`` to ``last``: every count for the first 64, then steps of 5%.

    The smallest count that fits is exact up to 64 more TaskManagers than the CPU needs, within 5% beyond; a
    plan of thousands of TaskManagers whose state does not fit tries ~150 counts, not thousands."""
    count = first
    while count <= last:
        yield count
        count = count + 1 if count < first + 64 else max(count + 1, math.ceil(count * 1.05))


def _fit_job_manager(heap_needed: float) -> JobManagerMemoryOptions:
    size = 1600 * MiB
    while True:
        options = JobManagerMemoryOptions(process_size=size)
        if job_manager_memory(options).heap >= heap_needed or size >= 64 * GiB:
            return options
        size += 256 * MiB


def _checkpointing(spec: WorkloadSpec, rates: Rates, operators: tuple[OperatorCapacity, ...], backend: str,
                   state_per_tm: float, tms: int, constraints: list[Constraint]) -> CheckpointPlan:
    targets, shape, state = spec.targets, spec.cluster, spec.state
    incremental = backend in ("rocksdb", "forst")
    keyed_records = sum(c.input_records_per_second.value for c in operators if c.operator.keyed_state)
    interval = max(1.0, targets.rpo_seconds / 2)
    size = duration = 0.0
    for _ in range(4):  # interval depends on duration, duration on the size written in one interval
        written = keyed_records / tms * interval * state.bytes_per_key
        size = min(state_per_tm, written) if incremental else state_per_tm
        duration = 1.0 + size / shape.checkpoint_bytes_per_second
        interval = targets.rpo_seconds - duration
        if interval < 1.0:
            break
    if interval < 1.0:
        constraints.append(Constraint(
            "rpo", duration + 1.0, targets.rpo_seconds, "s",
            f"a checkpoint takes ~{format_duration(duration)}, so data replayed after a failure cannot stay under "
            f"the RPO of {format_duration(targets.rpo_seconds)}: raise checkpoint bandwidth or the RPO"))
        interval = 1.0
    timeout = max(120.0, 10 * duration)
    min_pause = min(interval / 2, max(duration, 1.0))
    shuffles = any(e.ship_strategy is not ShipStrategy.FORWARD for e in spec.pipeline.edges)
    exactly_once = targets.delivery is Delivery.EXACTLY_ONCE
    unaligned = exactly_once and shuffles and targets.latency_seconds <= 10
    unaligned_reason = ("exactly-once with shuffles and a latency target <= 10s: barriers must not wait behind "
                        "backpressured buffers" if unaligned else
                        "not needed: " + ("at-least-once" if not exactly_once else
                                          "no shuffle edges" if not shuffles else "latency target > 10s"))
    restore = state_per_tm / shape.checkpoint_bytes_per_second
    recovery = FAILURE_DETECTION_SECONDS + RESTART_SECONDS + restore
    if recovery > targets.rto_seconds:
        constraints.append(Constraint(
            "rto", recovery, targets.rto_seconds, "s",
            f"recovery (detection {FAILURE_DETECTION_SECONDS:g}s + restart {RESTART_SECONDS:g}s + restore "
            f"{format_duration(restore)}) exceeds the RTO: spread state over more TaskManagers or use local recovery"))
    provisioned = rates.provisioned_events_per_second.value
    has_kafka_sink = any(c.operator.role is Role.SINK and c.operator.connector is not None
                         and c.operator.connector.type == "kafka" for c in operators)
    transaction_timeout = None
    if exactly_once and has_kafka_sink:
        tx = 2 * (interval + timeout + targets.rto_seconds)
        transaction_timeout = Explained(
            tx, "s", "2 x (checkpoint interval + checkpoint timeout + RTO); the broker's transaction.max.timeout.ms "
            "(default 15 min) must be at least this", {"interval": interval, "timeout": timeout,
                                                      "rto": targets.rto_seconds})
    return CheckpointPlan(
        interval_seconds=Explained(interval, "s", "RPO - checkpoint duration (replayed data ~ rate x (interval + "
                                   "duration) <= rate x RPO)", {"rpo_s": targets.rpo_seconds,
                                                                "duration_s": duration}),
        duration_seconds=Explained(duration, "s", "1 s (barrier + sync phase) + size per TM / upload bandwidth",
                                   {"size_per_tm": size, "bandwidth": shape.checkpoint_bytes_per_second}),
        size_per_task_manager_bytes=Explained(
            size, "B", "incremental: min(state per TM, keyed records per TM x interval x bytes_per_key)"
            if incremental else "full snapshot: state per TM", {"state_per_tm": state_per_tm}),
        timeout_seconds=Explained(timeout, "s", "max(120 s, 10 x duration)", {"duration_s": duration}),
        min_pause_seconds=Explained(min_pause, "s", "min(interval / 2, max(duration, 1 s))",
                                    {"interval_s": interval, "duration_s": duration}),
        unaligned=unaligned, unaligned_reason=unaligned_reason, incremental=incremental,
        mode="EXACTLY_ONCE" if exactly_once else "AT_LEAST_ONCE",
        recovery_seconds=Explained(recovery, "s", "detection + restart + state per TM / bandwidth",
                                   {"detection_s": FAILURE_DETECTION_SECONDS, "restart_s": RESTART_SECONDS,
                                    "restore_s": restore}),
        replay_records=Explained(provisioned * (interval + duration), "records",
                                 "provisioned rate x (interval + duration)",
                                 {"provisioned": provisioned, "interval": interval, "duration": duration}),
        kafka_transaction_timeout_seconds=transaction_timeout)
