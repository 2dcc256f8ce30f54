"""The workload spec: what a pipeline must carry, how fast, how safely, and on what cluster shape.

A spec is YAML (documented in docs/workload-spec.md) with six sections: ``volume`` (how much data, how
peaky), ``targets`` (latency, delivery guarantee, RPO/RTO, catch-up time, target utilization), ``state``
(keys, bytes per key, TTL), ``pipeline`` (operators in a DAG with per-record cost and selectivity),
``cluster`` (TaskManager shape and limits) and ``storage`` (checkpoint location, Kubernetes image).

Two roads lead to the same ``WorkloadSpec``: ``parse_workload`` reads a spec whose per-operator costs
are estimates, and ``workload_from_profile`` builds the pipeline from a measured ``MetricsSnapshot``
(cost per record from busy time, selectivity from records out/in, record sizes from bytes out), keeping
targets, state and cluster from an optional spec. The capacity model only ever sees a ``WorkloadSpec``,
so an estimated and a measured plan differ only in their numbers, never in their maths.

Validation happens once, here, and every error names the field path a user has to fix, for example
``pipeline.operators[2].selectivity: must be > 0``. After parsing, every value is in base units: bytes,
records, seconds, records per second, microseconds per record.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import cached_property
from typing import Any

from flinkscale.core.deployment import LEGACY_STORAGE_KEYS, Deployment, parse_deployment
from flinkscale.core.errors import InputError, float_of, text_of
from flinkscale.core.graph import edges_by_end, topological_ids
from flinkscale.core.inputs import load_yaml
from flinkscale.core.rates import cost_us_per_record
from flinkscale.core.snapshot import Edge, MetricsSnapshot, ShipStrategy
from flinkscale.core.units import MB, SECONDS_PER_DAY, Rate, parse_duration, parse_rate, parse_size

# Magnitudes no real spec reaches; beyond them the capacity maths would overflow or lose all precision, so a
# typo such as 1e308 is an error naming its field instead of an infinity three formulas later.
MAX_NUMBER = 1e12
MAX_INTEGER = 10**6
MAX_BYTES = 10**18  # 1 EB
MAX_SECONDS = 100 * 365 * SECONDS_PER_DAY
MAX_RECORDS_PER_SECOND = 1e12
MAX_BYTES_PER_SECOND = 1e16
MAX_COST_US_PER_RECORD = 1e9  # 1000 s of CPU per record
MIN_SELECTIVITY, MAX_SELECTIVITY = 1e-12, 1e6


class Delivery(StrEnum):
    EXACTLY_ONCE = "exactly-once"
    AT_LEAST_ONCE = "at-least-once"


class Role(StrEnum):
    SOURCE = "source"
    OPERATOR = "operator"
    SINK = "sink"


class StateBackendChoice(StrEnum):
    AUTO = "auto"
    HASHMAP = "hashmap"
    ROCKSDB = "rocksdb"
    FORST = "forst"


@dataclass(frozen=True)
class Volume:
    """How much arrives: the daily average and how peaky it is."""

    average_events_per_second: float
    event_bytes: float
    # Peak rate / average rate; from ``peak_factor`` or from the busiest hour of ``hourly_profile``.
    peak_factor: float = 1.0
    # How long the peak lasts; a latency budget can only smooth a peak much shorter than this.
    peak_duration_seconds: float = 3600.0
    # What the user wrote, for the report ("1TB/day").
    stated_as: str = ""
    hourly_profile: tuple[float, ...] = ()

    @property
    def average_bytes_per_second(self) -> float:
        return self.average_events_per_second * self.event_bytes


@dataclass(frozen=True)
class Targets:
    latency_seconds: float = 1.0
    delivery: Delivery = Delivery.EXACTLY_ONCE
    # Max data to replay after a failure, as seconds of input (a size in the spec becomes seconds at peak).
    rpo_seconds: float = 60.0
    rpo_stated_as: str = "1m"
    # Max time from failure to running again (detection + restart + restore); also the outage to catch up from.
    rto_seconds: float = 300.0
    # Time to work off the backlog of an outage of length RTO (the operator's catch-up.duration).
    catch_up_seconds: float = 1800.0
    utilization: float = 0.7
    # Room to grow without a new max parallelism or a new partition count.
    growth_factor: float = 2.0


@dataclass(frozen=True)
class StateSpec:
    keys: float = 0.0
    bytes_per_key: float = 0.0
    ttl_seconds: float | None = None
    new_keys_per_day: float = 0.0
    backend: StateBackendChoice = StateBackendChoice.AUTO
    # The horizon over which state without TTL keeps growing before someone acts.
    horizon_days: float = 365.0


@dataclass(frozen=True)
class Connector:
    """An external system at a source or sink."""

    type: str = "kafka"
    topic: str | None = None
    # Existing partitions (Kafka); None = choose for me.
    partitions: int | None = None
    # Bytes/s one partition sustains for produce and for consume.
    partition_bytes_per_second: float = 10 * MB
    # Non-Kafka sinks: records/s one connection (one sink subtask) sustains.
    connection_records_per_second: float | None = None


@dataclass(frozen=True)
class Operator:
    """One job vertex (a chain of operators) of the pipeline."""

    id: str
    name: str
    role: Role = Role.OPERATOR
    # CPU time one record costs on one subtask (busy time, not wall time).
    cost_us_per_record: float = 10.0
    # Records out per record in.
    selectivity: float = 1.0
    # Bytes of one output record; None = the same as its input records.
    output_event_bytes: float | None = None
    keyed_state: bool = False
    # Sources: the share of the workload volume entering here (shares sum to 1).
    share: float = 1.0
    connector: Connector | None = None
    # Where the numbers came from: "estimate" (spec) or "measured" (profile).
    cost_origin: str = "estimate"
    # Operator uid set in the job (``.uid(...)``); it fixes the JobVertexID Flink derives for the chain head.
    uid: str | None = None
    # A known JobVertexID (32 hex digits: from a profile, or stated for SQL jobs whose ids Flink generates).
    job_vertex_id: str | None = None


@dataclass(frozen=True)
class Pipeline:
    operators: tuple[Operator, ...]
    edges: tuple[Edge, ...] = ()

    # Lookups by id go through indexes built once per pipeline, so planning a 10k-operator graph stays linear.
    @cached_property
    def _by_id(self) -> dict[str, Operator]:
        return {op.id: op for op in self.operators}

    @cached_property
    def _edges_by_end(self) -> tuple[dict[str, tuple[Edge, ...]], dict[str, tuple[Edge, ...]]]:
        return edges_by_end(self.edges)

    def operator(self, operator_id: str) -> Operator:
        return self._by_id[operator_id]

    def inputs_of(self, operator_id: str) -> tuple[Edge, ...]:
        return self._edges_by_end[0].get(operator_id, ())

    def outputs_of(self, operator_id: str) -> tuple[Edge, ...]:
        return self._edges_by_end[1].get(operator_id, ())

    def sources(self) -> tuple[Operator, ...]:
        return tuple(op for op in self.operators if op.role is Role.SOURCE)

    def topological_order(self) -> tuple[Operator, ...]:
        order = topological_ids([op.id for op in self.operators], ((e.source, e.target) for e in self.edges))
        if order is None:
            raise InputError("the operators form a cycle", field="pipeline.operators")
        return tuple(self.operator(i) for i in order)


@dataclass(frozen=True)
class ClusterShape:
    # None = choose for me.
    cores_per_task_manager: int | None = None
    process_memory_per_task_manager: int | None = None
    slots_per_task_manager: int | None = None
    max_task_managers: int | None = None
    max_total_cores: int | None = None
    nic_bytes_per_second: float = 1.25e9  # 10 Gbit/s
    local_disk_bytes_per_task_manager: int | None = None
    # Upload bandwidth of one TaskManager to checkpoint storage.
    checkpoint_bytes_per_second: float = 200 * MB
    # None = follow the state backend (0.4 for rocksdb/forst, 0 for hashmap); PyFlink UDFs need some.
    managed_fraction: float | None = None


@dataclass(frozen=True)
class Storage:
    checkpoint_dir: str = "file:///tmp/flinkscale/checkpoints"
    savepoint_dir: str = "file:///tmp/flinkscale/savepoints"


@dataclass(frozen=True)
class WorkloadSpec:
    name: str
    volume: Volume
    pipeline: Pipeline
    targets: Targets = field(default_factory=Targets)
    state: StateSpec = field(default_factory=StateSpec)
    cluster: ClusterShape = field(default_factory=ClusterShape)
    storage: Storage = field(default_factory=Storage)
    notes: tuple[str, ...] = ()
    # Where it runs (kubernetes, standalone, yarn) and how: flinkscale.core.deployment.
    deployment: Deployment = field(default_factory=Deployment)


# --- reading YAML with field paths ---------------------------------------------------------------

class _Section:
    """A mapping being read at a field path: every error names the path, unknown keys are rejected."""

    def __init__(self, data: Any, path: str, allowed: Sequence[str]) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise InputError("must be a mapping", field=path)
        unknown = sorted(set(map(str, data)) - set(allowed))
        if unknown:
            raise InputError(f"unknown field(s) {unknown}; known: {sorted(allowed)}", field=path)
        self.data = data
        self.path = path

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def number(self, key: str, default: float, *, minimum: float | None = None, above: float | None = None,
               maximum: float | None = None) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise InputError("must be a number", field=self.at(key))
        try:
            number = float_of(value, self.at(key))
        except ValueError:
            raise InputError(f"must be a number, got {value!r}", field=self.at(key)) from None
        if math.isnan(number) or math.isinf(number):
            raise InputError("must be a finite number", field=self.at(key))
        maximum = MAX_NUMBER if maximum is None else maximum
        if above is not None and number <= above:
            raise InputError(f"must be > {above:g}", field=self.at(key))
        if minimum is not None and number < minimum:
            raise InputError(f"must be >= {minimum:g}", field=self.at(key))
        if maximum is not None and number > maximum:
            raise InputError(f"must be <= {maximum:g}", field=self.at(key))
        return number

    def integer(self, key: str, *, minimum: int = 1) -> int | None:
        value = self.data.get(key)
        if value is None or value == "auto":
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_INTEGER:
            raise InputError(f"must be an integer from {minimum} to {MAX_INTEGER:,} (or auto)", field=self.at(key))
        return value

    def size(self, key: str, default: int | None = None) -> int | None:
        value = self.data.get(key)
        if value is None or value == "auto":
            return default
        size = parse_size(value, field=self.at(key))
        if size > MAX_BYTES:
            raise InputError(f"must be at most {MAX_BYTES:.0e} bytes (1 EB)", field=self.at(key))
        return size

    def duration(self, key: str, default: float) -> float:
        seconds = parse_duration(self.data.get(key, default), field=self.at(key))
        if seconds > MAX_SECONDS:
            raise InputError("must be at most 100 years", field=self.at(key))
        return seconds

    def text(self, key: str, default: str) -> str:
        return text_of(self.data.get(key, default), self.at(key))

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise InputError("must be true or false", field=self.at(key))
        return value

    def choice(self, key: str, default: str, choices: Sequence[str]) -> str:
        value = self.text(key, default).strip().lower().replace("_", "-")
        if value not in choices:
            raise InputError(f"must be one of {list(choices)}, got {value!r}", field=self.at(key))
        return value


def parse_workload_text(text: str, source_name: str = "spec") -> WorkloadSpec:
    """Parse a YAML workload spec handed in as text; ``source_name`` (the file) is named when it is not a spec."""
    data = load_yaml(text, source_name)
    if not isinstance(data, Mapping):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise InputError(f"a workload spec must be a YAML mapping (name, volume, pipeline, ...), not {kind}",
                         field=source_name)
    return parse_workload(data)


def parse_workload(data: Any) -> WorkloadSpec:
    """Validate a spec mapping and turn it into a ``WorkloadSpec`` in base units."""
    root = _Section(data, "", ["name", "volume", "targets", "state", "pipeline", "cluster", "storage", "deployment"])
    if not root.has("pipeline"):
        raise InputError("is required", field="pipeline")
    if not root.has("volume"):
        raise InputError("is required", field="volume")
    volume = _parse_volume(root.raw("volume"))
    targets = _parse_targets(root.raw("targets"), volume)
    pipeline = _parse_pipeline(root.raw("pipeline"))
    return WorkloadSpec(
        name=root.text("name", "workload"), volume=volume, pipeline=pipeline, targets=targets,
        state=_parse_state(root.raw("state")), cluster=_parse_cluster(root.raw("cluster")),
        storage=_parse_storage(root.raw("storage")),
        deployment=parse_deployment(root.raw("deployment"), root.raw("storage")))


def _parse_volume(data: Any) -> Volume:
    section = _Section(data, "volume", ["rate", "bytes_per_day", "events_per_day", "events_per_second",
                                        "event_size", "peak_factor", "hourly_profile", "peak_duration"])
    given = [k for k in ("rate", "bytes_per_day", "events_per_day", "events_per_second") if section.has(k)]
    if len(given) != 1:
        raise InputError("state exactly one of rate, bytes_per_day, events_per_day, events_per_second"
                         f" (got {given or 'none'})", field="volume")
    key = given[0]
    raw = section.raw(key)
    rate: Rate
    if key == "rate":
        rate = parse_rate(raw, field=section.at(key))
    elif key == "bytes_per_day":
        rate = Rate(parse_size(raw, field=section.at(key)) / SECONDS_PER_DAY, is_bytes=True)
    elif key == "events_per_day":
        rate = Rate(section.number(key, 0, minimum=0) / SECONDS_PER_DAY, is_bytes=False)
    else:
        rate = Rate(section.number(key, 0, minimum=0), is_bytes=False)
    if rate.per_second <= 0:
        raise InputError("must be > 0", field=section.at(key))
    if rate.per_second > (MAX_BYTES_PER_SECOND if rate.is_bytes else MAX_RECORDS_PER_SECOND):
        raise InputError(f"must be at most {'1e16 bytes' if rate.is_bytes else '1e12 records'} per second",
                         field=section.at(key))
    if not section.has("event_size"):
        raise InputError("is required (bytes of one event, e.g. 1KB)", field="volume.event_size")
    event_bytes = float(section.size("event_size") or 0)
    if event_bytes <= 0:
        raise InputError("must be > 0", field="volume.event_size")
    profile: tuple[float, ...] = ()
    if section.has("hourly_profile"):
        if section.has("peak_factor"):
            raise InputError("state either peak_factor or hourly_profile, not both", field="volume")
        raw_profile = section.raw("hourly_profile")
        if not isinstance(raw_profile, list) or len(raw_profile) != 24:
            raise InputError("must be a list of 24 relative hourly volumes", field="volume.hourly_profile")
        profile = tuple(_Section({"v": v}, f"volume.hourly_profile[{i}]", ["v"]).number("v", 0, minimum=0)
                        for i, v in enumerate(raw_profile))
        if sum(profile) <= 0:
            raise InputError("must not be all zero", field="volume.hourly_profile")
        peak_factor = max(profile) / (sum(profile) / 24)
    else:
        peak_factor = section.number("peak_factor", 1.0, minimum=1.0, maximum=1e4)
    return Volume(
        average_events_per_second=rate.records_per_second(event_bytes), event_bytes=event_bytes,
        peak_factor=peak_factor, peak_duration_seconds=section.duration("peak_duration", 3600.0),
        stated_as=f"{raw} ({key})", hourly_profile=profile)


def _parse_targets(data: Any, volume: Volume) -> Targets:
    section = _Section(data, "targets", ["latency", "delivery", "rpo", "rto", "catch_up", "utilization",
                                         "growth_factor"])
    rpo_raw = section.raw("rpo") if section.has("rpo") else "1m"
    rpo_seconds: float
    try:
        rpo_seconds = parse_duration(rpo_raw, field="targets.rpo")
    except InputError:
        # A size: the most data to replay; at peak that many bytes arrive in this many seconds.
        rpo_bytes = parse_size(rpo_raw, field="targets.rpo")
        rpo_seconds = rpo_bytes / (volume.average_bytes_per_second * volume.peak_factor)
    if not 0 < rpo_seconds <= MAX_SECONDS:
        raise InputError("must be > 0 and at most 100 years of input", field="targets.rpo")
    latency = section.duration("latency", 1.0)
    if latency <= 0:
        raise InputError("must be > 0", field="targets.latency")
    catch_up = section.duration("catch_up", 1800.0)
    if catch_up <= 0:
        raise InputError("must be > 0", field="targets.catch_up")
    return Targets(
        latency_seconds=latency,
        delivery=Delivery(section.choice("delivery", "exactly-once", [d.value for d in Delivery])),
        rpo_seconds=rpo_seconds, rpo_stated_as=str(rpo_raw), rto_seconds=section.duration("rto", 300.0),
        catch_up_seconds=catch_up, utilization=section.number("utilization", 0.7, above=0, maximum=1),
        growth_factor=section.number("growth_factor", 2.0, minimum=1, maximum=1e4))


def _parse_state(data: Any) -> StateSpec:
    section = _Section(data, "state", ["keys", "bytes_per_key", "ttl", "new_keys_per_day", "backend",
                                       "horizon"])
    ttl = section.duration("ttl", 0) if section.has("ttl") else None
    if ttl is not None and ttl <= 0:
        raise InputError("must be > 0 (leave it out for no TTL)", field="state.ttl")
    return StateSpec(
        keys=section.number("keys", 0, minimum=0), bytes_per_key=float(section.size("bytes_per_key", 0) or 0),
        ttl_seconds=ttl, new_keys_per_day=section.number("new_keys_per_day", 0, minimum=0),
        backend=StateBackendChoice(section.choice("backend", "auto", [b.value for b in StateBackendChoice])),
        horizon_days=section.duration("horizon", 365 * SECONDS_PER_DAY) / SECONDS_PER_DAY)


def _parse_cluster(data: Any) -> ClusterShape:
    section = _Section(data, "cluster", ["cores_per_task_manager", "memory_per_task_manager",
                                         "slots_per_task_manager", "max_task_managers", "max_total_cores",
                                         "nic_bandwidth", "local_disk_per_task_manager", "checkpoint_bandwidth",
                                         "managed_fraction"])
    memory = section.size("memory_per_task_manager")
    if memory is not None and memory <= 0:
        raise InputError("must be > 0", field="cluster.memory_per_task_manager")
    nic = parse_rate(section.raw("nic_bandwidth") or "1.25GB/s", field="cluster.nic_bandwidth")
    checkpoint = parse_rate(section.raw("checkpoint_bandwidth") or "200MB/s", field="cluster.checkpoint_bandwidth")
    for key, rate in (("nic_bandwidth", nic), ("checkpoint_bandwidth", checkpoint)):
        if not rate.is_bytes or rate.per_second <= 0:
            raise InputError("must be a positive byte rate such as 1.25GB/s", field=f"cluster.{key}")
    return ClusterShape(
        cores_per_task_manager=section.integer("cores_per_task_manager"),
        process_memory_per_task_manager=memory,
        slots_per_task_manager=section.integer("slots_per_task_manager"),
        max_task_managers=section.integer("max_task_managers"),
        max_total_cores=section.integer("max_total_cores"),
        nic_bytes_per_second=nic.per_second,
        local_disk_bytes_per_task_manager=section.size("local_disk_per_task_manager"),
        checkpoint_bytes_per_second=checkpoint.per_second,
        managed_fraction=section.number("managed_fraction", 0, minimum=0, maximum=0.9)
        if section.has("managed_fraction") else None)


def _parse_storage(data: Any) -> Storage:
    """The section; its older deployment keys are only checked here (``parse_deployment`` reads them)."""
    section = _Section(data, "storage", ["checkpoint_dir", "savepoint_dir", *LEGACY_STORAGE_KEYS, "kubernetes_ha"])
    defaults = Storage()
    storage = Storage(checkpoint_dir=section.text("checkpoint_dir", defaults.checkpoint_dir),
                      savepoint_dir=section.text("savepoint_dir", defaults.savepoint_dir))
    for key in ("checkpoint_dir", "savepoint_dir"):  # written into the Flink config as given
        value = getattr(storage, key)
        if not value.strip() or any(c in value for c in "\r\n\0"):
            raise InputError(f"must be a directory URI such as s3://bucket/flink/{key.split('_')[0]}s, got "
                             f"{value[:80]!r}", field=f"storage.{key}")
    for key in LEGACY_STORAGE_KEYS:
        section.text(key, "")
    section.flag("kubernetes_ha", True)
    return storage


_JOB_VERTEX_ID = re.compile(r"[0-9a-f]{32}")
_SHIP_STRATEGIES = {"forward": ShipStrategy.FORWARD, "hash": ShipStrategy.HASH, "keyby": ShipStrategy.HASH,
                    "rebalance": ShipStrategy.REBALANCE, "rescale": ShipStrategy.RESCALE,
                    "broadcast": ShipStrategy.BROADCAST}


def _parse_pipeline(data: Any) -> Pipeline:
    section = _Section(data, "pipeline", ["operators"])
    raw_operators = section.raw("operators")
    if not isinstance(raw_operators, list) or not raw_operators:
        raise InputError("must be a non-empty list", field="pipeline.operators")
    operators: list[Operator] = []
    edges: list[Edge] = []
    seen: set[str] = set()
    uids: dict[str, str] = {}  # uid -> the operator that has it
    vertex_ids: dict[str, str] = {}  # JobVertexID -> the operator that has it
    for index, raw in enumerate(raw_operators):
        path = f"pipeline.operators[{index}]"
        op = _Section(raw, path, ["id", "name", "role", "inputs", "cost_us_per_record", "selectivity",
                                  "output_event_size", "keyed_state", "share", "connector", "uid",
                                  "vertex_id"])
        if not op.has("id"):
            raise InputError("is required", field=f"{path}.id")
        op_id = op.text("id", "")
        if not op_id or op_id in seen:
            raise InputError(f"must be a unique, non-empty id (got {op_id!r})", field=f"{path}.id")
        seen.add(op_id)
        role = Role(op.choice("role", "operator", [r.value for r in Role]))
        inputs = op.raw("inputs") or []
        if not isinstance(inputs, list):
            raise InputError("must be a list of operator ids or {from, ship}", field=f"{path}.inputs")
        if role is Role.SOURCE and inputs:
            raise InputError("a source has no inputs", field=f"{path}.inputs")
        if role is not Role.SOURCE and not inputs:
            raise InputError("is required for a non-source operator", field=f"{path}.inputs")
        for j, item in enumerate(inputs):
            where = f"{path}.inputs[{j}]"
            if isinstance(item, str):
                item = {"from": item}
            edge = _Section(item, where, ["from", "ship"])
            upstream = edge.text("from", "")
            if upstream not in seen or upstream == op_id:
                raise InputError(f"names {upstream!r}, which is not an operator listed before this one",
                                 field=f"{where}.from")
            strategy = _SHIP_STRATEGIES.get(edge.choice("ship", "forward", list(_SHIP_STRATEGIES)))
            assert strategy is not None
            edges.append(Edge(upstream, op_id, strategy))
        connector = None
        if op.has("connector"):
            connector = _parse_connector(op.raw("connector"), f"{path}.connector")
        elif role is Role.SOURCE:
            connector = Connector()
        vertex_id = op.text("vertex_id", "").lower() or None
        if vertex_id is not None and not _JOB_VERTEX_ID.fullmatch(vertex_id):
            raise InputError("must be a JobVertexID of 32 hex digits", field=f"{path}.vertex_id")
        if vertex_id is not None and vertex_id in vertex_ids:
            raise InputError(f"already given to operator {vertex_ids[vertex_id]!r} (each operator is a job vertex)",
                             field=f"{path}.vertex_id")
        output_size = op.size("output_event_size")
        if output_size is not None and output_size <= 0:
            raise InputError("must be > 0", field=f"{path}.output_event_size")
        uid = op.text("uid", op_id)
        if uid in uids:  # Flink refuses a job whose operators share a uid
            raise InputError(f"uid {uid!r} is already an earlier operator's (an operator's uid is its id unless "
                             "given)", field=f"{path}.uid")
        uids[uid] = op_id
        if vertex_id is not None:
            vertex_ids[vertex_id] = op_id
        operators.append(Operator(
            id=op_id, name=op.text("name", op_id), role=role,
            cost_us_per_record=op.number("cost_us_per_record", 10.0, minimum=0, maximum=MAX_COST_US_PER_RECORD),
            selectivity=op.number("selectivity", 1.0, above=0, minimum=MIN_SELECTIVITY, maximum=MAX_SELECTIVITY),
            output_event_bytes=float(output_size) if output_size is not None else None,
            keyed_state=op.flag("keyed_state", False), share=op.number("share", 1.0, above=0, maximum=1),
            connector=connector, uid=uid, job_vertex_id=vertex_id))
    sources = [op for op in operators if op.role is Role.SOURCE]
    if not sources:
        raise InputError("needs at least one operator with role: source", field="pipeline.operators")
    if len(sources) > 1 and all(op.share == 1.0 for op in sources):
        share = 1.0 / len(sources)
        operators = [replace(op, share=share) if op.role is Role.SOURCE else op for op in operators]
    elif abs(sum(op.share for op in sources) - 1.0) > 1e-6:
        raise InputError(f"source shares must sum to 1 (got {sum(op.share for op in sources):g})",
                         field="pipeline.operators")
    return Pipeline(tuple(operators), tuple(edges))


def _parse_connector(data: Any, path: str) -> Connector:
    section = _Section(data, path, ["type", "topic", "partitions", "partition_throughput",
                                    "connection_throughput"])
    partition_rate = parse_rate(section.raw("partition_throughput") or "10MB/s", field=f"{path}.partition_throughput")
    if not partition_rate.is_bytes or partition_rate.per_second <= 0:
        raise InputError("must be a positive byte rate such as 10MB/s", field=f"{path}.partition_throughput")
    connection = None
    if section.has("connection_throughput"):
        connection_rate = parse_rate(section.raw("connection_throughput"), field=f"{path}.connection_throughput")
        if connection_rate.is_bytes or connection_rate.per_second <= 0:
            raise InputError("must be a positive record rate such as 5k/s", field=f"{path}.connection_throughput")
        connection = connection_rate.per_second
    return Connector(
        type=section.choice("type", "kafka", ["kafka", "other"]), topic=section.text("topic", "") or None,
        partitions=section.integer("partitions"), partition_bytes_per_second=partition_rate.per_second,
        connection_records_per_second=connection)


# --- the measured road: a profile (MetricsSnapshot) becomes the pipeline ---------------------------

def pipeline_from_snapshot(snapshot: MetricsSnapshot) -> tuple[Pipeline, float, tuple[str, ...]]:
    """Per-operator cost, selectivity and record sizes measured by a profile, plus the source event size.

    cost_us_per_record = busy_time_ms_per_second_avg x parallelism x 1000 / records_in_per_second,
    selectivity = records_out / records_in, output bytes = bytes_out / records_out. A source vertex's records in
    are the records it read (the collector's counter; its records out are what its operator chain emits, 0 when a
    sink is chained to it), with records out as the fallback for snapshots that only have those. The event size is
    bytes in / records in at the sources, else bytes out / records out; 0 when neither is known.
    """
    notes: list[str] = []
    operators: list[Operator] = []
    source_ids = {v.id for v in snapshot.sources()}
    source_records = {v.id: v.metrics.num_records_in_per_second or v.metrics.num_records_out_per_second or 0.0
                      for v in snapshot.vertices if v.id in source_ids}
    total_source_records = sum(source_records.values())
    if total_source_records <= 0:
        raise InputError("the profile's sources report no records; profile the job while it has traffic",
                         field="snapshot.vertices")
    source_bytes = 0.0
    for index, vertex in enumerate(snapshot.vertices):
        path = f"snapshot.vertices[{index}].metrics"
        metrics = vertex.metrics
        is_source = vertex.id in source_ids
        is_sink = vertex.is_sink or not snapshot.outputs_of(vertex.id)
        records_in = source_records[vertex.id] if is_source else metrics.num_records_in_per_second
        busy = metrics.busy_time_ms_per_second_avg
        if busy is None:
            raise InputError("busy_time_ms_per_second_avg is missing; cannot derive a cost per record", field=path)
        if not records_in:
            raise InputError("no input records measured; cannot derive a cost per record", field=path)
        cost = cost_us_per_record(records_in, busy, vertex.parallelism)
        records_out = metrics.num_records_out_per_second
        selectivity = 1.0 if is_sink or not records_out else records_out / records_in
        output_bytes = None
        if metrics.num_bytes_out_per_second and records_out:
            output_bytes = metrics.num_bytes_out_per_second / records_out
        if is_source:
            event_bytes = (metrics.num_bytes_in_per_second / records_in if metrics.num_bytes_in_per_second
                           else output_bytes)
            if event_bytes is None:
                notes.append(f"{vertex.name}: no bytes measured at the source; the event size must come from a spec")
                event_bytes = 0.0
            source_bytes += event_bytes * source_records[vertex.id]
        role = Role.SOURCE if is_source else Role.SINK if is_sink else Role.OPERATOR
        connector = None
        if is_source:
            connector = Connector(partitions=vertex.partitions)
        operators.append(Operator(
            id=vertex.id, name=vertex.name, role=role, cost_us_per_record=cost, selectivity=selectivity,
            output_event_bytes=None if is_source else output_bytes, keyed_state=snapshot.is_keyed(vertex.id),
            share=source_records[vertex.id] / total_source_records if is_source else 1.0,
            connector=connector, cost_origin="measured", uid=None,
            job_vertex_id=vertex.id.lower() if _JOB_VERTEX_ID.fullmatch(vertex.id.lower()) else None))
    edges = tuple(Edge(e.source, e.target, e.ship_strategy if e.ship_strategy is not ShipStrategy.UNKNOWN
                       else ShipStrategy.FORWARD) for e in snapshot.edges)
    notes.append(f"per-operator costs measured in job {snapshot.job_name!r} ({snapshot.job_id}) over "
                 f"{snapshot.window_seconds:g}s")
    return Pipeline(tuple(operators), edges), source_bytes / total_source_records, tuple(notes)


def workload_from_profile(snapshot: MetricsSnapshot, target: Rate, base: WorkloadSpec | None = None,
                          name: str | None = None) -> WorkloadSpec:
    """A spec whose pipeline is measured: the profile gives costs, ``target`` the volume, ``base`` the rest."""
    pipeline, event_bytes, notes = pipeline_from_snapshot(snapshot)
    if target.per_second <= 0:
        raise InputError("must be > 0", field="--target")
    if target.per_second > (MAX_BYTES_PER_SECOND if target.is_bytes else MAX_RECORDS_PER_SECOND):
        raise InputError(f"must be at most {'1e16 bytes' if target.is_bytes else '1e12 records'} per second",
                         field="--target")
    base_volume = base.volume if base is not None else None
    if event_bytes <= 0 and (base_volume is None or base_volume.event_bytes <= 0):
        raise InputError("the profile measured no event size; give a spec that states volume.event_size",
                         field="snapshot.vertices")
    if base_volume is not None and base_volume.event_bytes > 0:
        # A source vertex's output bytes measure what its operator chain emits (pre-aggregated rows when a local
        # aggregate is chained to it), not the events it reads, so an event size the spec states wins.
        notes += (f"event size {base_volume.event_bytes:g} B from the spec (the profile measured "
                  f"{event_bytes:.0f} B per record leaving the source chain)",)
        event_bytes = base_volume.event_bytes
    volume = Volume(
        average_events_per_second=target.records_per_second(event_bytes), event_bytes=event_bytes,
        peak_factor=base_volume.peak_factor if base_volume else 1.0,
        peak_duration_seconds=base_volume.peak_duration_seconds if base_volume else 3600.0,
        stated_as=f"{'bytes' if target.is_bytes else 'records'} {target.per_second:g}/s (target)",
        hourly_profile=base_volume.hourly_profile if base_volume else ())
    if base_volume is None:
        notes += ("no spec given: peak factor 1 (the target is treated as the peak) and default targets",)
    return WorkloadSpec(
        name=name or (base.name if base else snapshot.job_name), volume=volume, pipeline=pipeline,
        targets=base.targets if base else Targets(), state=base.state if base else StateSpec(),
        cluster=base.cluster if base else ClusterShape(), storage=base.storage if base else Storage(),
        notes=notes, deployment=base.deployment if base else Deployment())


def profile_snapshot(data: Any) -> MetricsSnapshot:
    """The snapshot inside a profile JSON: the snapshot itself, or the value under ``snapshot``."""
    if isinstance(data, Mapping) and "snapshot" in data and "vertices" not in data:
        data = data["snapshot"]
    return MetricsSnapshot.from_dict(data)
