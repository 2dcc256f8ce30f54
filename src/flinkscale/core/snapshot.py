"""``MetricsSnapshot``: one job at one instant, the same type for a real and a simulated job.

The real collector (``flinkscale.flink.collector``) builds it from Flink's REST API, the simulator
(``flinkscale.core.sim``) builds it from its model, and recorded snapshots load from JSON. The planner,
the profiler analysis, the autoscaling policies and the reports only ever read this type, which is why
one policy can drive a real cluster, a simulated one and an offline replay alike.

Metric fields carry Flink's own metric names in snake case (``busy_time_ms_per_second`` is Flink's
``busyTimeMsPerSecond``). Per-vertex rates are sums over subtasks; time-per-second metrics come as the
max and the average over subtasks, because the busiest subtask bounds a vertex (skew) while the
average shows its cost. ``None`` means Flink did not report the metric (missing, the string "NaN", or a
counter Flink itself marks incomplete), which is different from a measured zero. A snapshot with such gaps,
or with ``tasks_running`` below ``tasks_total``, is *partial*: the control step holds on it.

The JSON form (``to_dict``/``from_dict``) is versioned by ``SNAPSHOT_SCHEMA_VERSION`` and documented in
docs/snapshot-format.md.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from enum import StrEnum
from functools import cached_property
from typing import Any, TypeVar

from flinkscale.core.errors import InputError
from flinkscale.core.graph import edges_by_end, topological_ids

SNAPSHOT_SCHEMA_VERSION = 1
_T = TypeVar("_T")


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
    """A job-graph edge, of a snapshot and of a workload spec's pipeline (``core.workload.Pipeline``) alike."""

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
    # Tasks (subtasks of all vertices) RUNNING throughout the window, of all; None when the producer does not
    # say. Fewer than all makes the snapshot partial: nothing is decided on it (``control.partial_metrics``).
    tasks_running: int | None = None
    tasks_total: int | None = None

    def __post_init__(self) -> None:
        global _last_checked
        ids = tuple([v.id for v in self.vertices])
        last = _last_checked
        if last is not None and last[1] is self.edges and last[0] == ids:
            # The same vertex ids with the same edges tuple as the last snapshot checked: valid too, and its ids
            # tuple is shared, so that comparing the ids of two such snapshots is one identity test.
            self.__dict__["vertex_ids"] = last[0]
            return
        # ``vertex_ids`` (a cached property) is this very tuple: set here, so it is built once per snapshot.
        self.__dict__["vertex_ids"] = ids
        if len(set(ids)) != len(ids):
            raise InputError("vertex ids must be unique", field="vertices")
        known = set(ids)
        for i, edge in enumerate(self.edges):
            if edge.source not in known or edge.target not in known:
                raise InputError(f"edge {edge.source}->{edge.target} names an unknown vertex", field=f"edges[{i}]")
        _last_checked = (ids, self.edges)

    # --- graph queries -------------------------------------------------------------------------
    # Lookups by id go through indexes built once per snapshot (a frozen value), so policies and reports that
    # ask per vertex stay linear in the graph: a 5,000-vertex job is decided in about a second.
    @cached_property
    def _by_id(self) -> dict[str, Vertex]:
        return {v.id: v for v in self.vertices}

    @cached_property
    def _graph(self) -> _GraphIndex:
        return _graph_index(self.edges)

    @cached_property
    def _edges_by_end(self) -> tuple[dict[str, tuple[Edge, ...]], dict[str, tuple[Edge, ...]]]:
        return self._graph.inputs, self._graph.outputs

    @cached_property
    def _sources(self) -> tuple[Vertex, ...]:
        return tuple(v for v in self.vertices if v.is_source or not self.inputs_of(v.id))

    @cached_property
    def graph_sources(self) -> tuple[Vertex, ...]:
        """The vertices without input edges (where records enter the graph), in vertex order."""
        vertices = self.vertices
        return tuple([vertices[i] for i in self.graph_derived("snapshot.graph_sources", _graph_source_indexes)])

    @cached_property
    def vertex_ids(self) -> tuple[str, ...]:
        return tuple(v.id for v in self.vertices)

    def graph_derived(self, key: str, compute: Callable[[MetricsSnapshot], _T]) -> _T:
        """Like ``derived``, for a value that depends only on the graph (vertex ids in order, edges), never on
        parallelism or metrics: snapshots that share their edges tuple and vertex ids (the simulator's, while
        the graph is unchanged) share it too, so it is computed once per graph, not once per snapshot."""
        return _shared(self._graph.derived, key, self.vertex_ids, compute, self)

    @cached_property
    def layout_key(self) -> tuple[tuple[Any, ...], ...]:
        """What the vertices are apart from their metrics, column by column in vertex order: ids, names,
        parallelism, max parallelism, source flags, sink flags, partitions (``layout_derived`` compares it)."""
        vertices = self.vertices
        return (self.vertex_ids, tuple([v.name for v in vertices]), self.parallelisms,
                tuple([v.max_parallelism for v in vertices]), tuple([v.is_source for v in vertices]),
                tuple([v.is_sink for v in vertices]), tuple([v.partitions for v in vertices]))

    def layout_derived(self, key: str, compute: Callable[[MetricsSnapshot], _T]) -> _T:
        """Like ``graph_derived``, for a value that depends on the graph and on what each vertex is apart from
        its metrics (``layout_key``: name, parallelism, max parallelism, flags, partitions), never on metrics or
        on anything else in the snapshot: snapshots that share their edges tuple and layout (the simulator's
        between two rescales) share it, so it is computed once per layout, not once per snapshot. One value is
        kept per key (the latest layout's)."""
        return _shared(self._graph.layout_derived, key, self.layout_key, compute, self)

    def derived(self, key: str, compute: Callable[[MetricsSnapshot], _T]) -> _T:
        """``compute(self)``, computed once per snapshot and kept with it under ``key``: what readers derive
        from the same snapshots at every decision (a policy's window over its history) is paid for once.
        ``key`` names the computation (one module's prefix, then its name); the value must not be modified."""
        memo: dict[str, Any] = self.__dict__.setdefault("_derived", {})
        if key not in memo:
            memo[key] = compute(self)
        value: _T = memo[key]
        return value

    def vertex(self, vertex_id: str) -> Vertex:
        return self._by_id[vertex_id]

    def has_vertex(self, vertex_id: str) -> bool:
        return vertex_id in self._by_id

    @cached_property
    def parallelisms(self) -> tuple[int, ...]:
        """Each vertex's parallelism, in vertex order (``vertex_ids``). Equal to the one built before it (a run's
        snapshots between two rescales), it is that very tuple: comparing the two is one identity test
        (``same_tuple``)."""
        global _last_parallelisms
        built = tuple([v.parallelism for v in self.vertices])
        if built == _last_parallelisms:
            return _last_parallelisms
        _last_parallelisms = built
        return built

    @cached_property
    def parallelism_by_id(self) -> dict[str, int]:
        """Vertex id -> parallelism, built once per snapshot (policies compare it across a whole history).
        Shared: read it, never modify it."""
        return {v.id: v.parallelism for v in self.vertices}

    def has_inputs(self, vertex_id: str) -> bool:
        """True when some edge leads into the vertex (``bool(inputs_of(vertex_id))``)."""
        return vertex_id in self._graph.inputs

    def inputs_of(self, vertex_id: str) -> tuple[Edge, ...]:
        return self._edges_by_end[0].get(vertex_id, ())

    def outputs_of(self, vertex_id: str) -> tuple[Edge, ...]:
        return self._edges_by_end[1].get(vertex_id, ())

    def sources(self) -> tuple[Vertex, ...]:
        return self._sources

    def is_keyed(self, vertex_id: str) -> bool:
        """True when any input edge hashes by key, so key groups decide the subtask."""
        return vertex_id in self._graph.keyed

    def topological_order(self) -> tuple[Vertex, ...]:
        """Vertices with every vertex after all of its inputs (sources first)."""
        return self._topological_order

    @cached_property
    def _topological_order(self) -> tuple[Vertex, ...]:  # sorted once per snapshot (policies ask per rule)
        order = self.graph_derived("snapshot.topological_order", _topological_ids)
        if order is None:
            raise InputError("the job graph has a cycle", field="edges")
        by_id = self._by_id
        return tuple(by_id[vid] for vid in order)

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
        cleaned: dict[str, Any] = json_finite(data)
        return cleaned

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricsSnapshot:
        # The pydantic boundary is imported on first use: importing flinkscale (and the CLI) stays light.
        from flinkscale.core._snapshot_json import snapshot_from_dict

        return snapshot_from_dict(data)


class _GraphIndex:
    """What follows from a graph's edges alone: input and output edges per vertex id (edge order kept), the
    vertices a HASH edge feeds, and values derived from the graph (``MetricsSnapshot.graph_derived``)."""

    def __init__(self, edges: tuple[Edge, ...]) -> None:
        self.edges = edges
        self.inputs, self.outputs = edges_by_end(edges)
        self.keyed = frozenset(e.target for e in edges if e.ship_strategy.is_keyed)
        # graph_derived's values (kept with the vertex ids they were computed for) and layout_derived's (with the
        # layout_key): see _shared.
        self.derived: dict[str, tuple[Any, Any]] = {}
        self.layout_derived: dict[str, tuple[Any, Any]] = {}


# The vertex ids and edges tuple of the last snapshot checked in ``MetricsSnapshot.__post_init__`` (valid).
_last_checked: tuple[tuple[str, ...], tuple[Edge, ...]] | None = None

# The last ``MetricsSnapshot.parallelisms`` built, shared by the snapshots after it that have the same.
_last_parallelisms: tuple[int, ...] = ()


def same_tuple(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """``a == b`` for two snapshots' ``vertex_ids``, ``parallelisms`` or layout keys: one identity test when shared
    (a tuple's ``==`` compares item by item even with itself)."""
    return a is b or a == b


# The last edges tuple indexed. A producer that hands every snapshot of a job the same edges tuple (the
# simulator does, for as long as the graph is unchanged) has it indexed once, not once per snapshot.
_last_graph: _GraphIndex | None = None


def _graph_index(edges: tuple[Edge, ...]) -> _GraphIndex:
    global _last_graph
    last = _last_graph
    if last is not None and last.edges is edges:
        return last
    index = _GraphIndex(edges)
    _last_graph = index
    return index


def _shared(store: dict[str, tuple[Any, Any]], key: str, token: tuple[Any, ...],
            compute: Callable[[MetricsSnapshot], _T], snapshot: MetricsSnapshot) -> _T:
    """``store[key]``'s value while it was computed for ``token`` (what the value depends on), else
    ``compute(snapshot)``, kept in ``store`` for the next snapshot with that token (one value per key)."""
    found = store.get(key)
    if found is not None and same_tuple(found[0], token):
        value: _T = found[1]
        return value
    computed = compute(snapshot)
    store[key] = (token, computed)
    return computed


def _graph_source_indexes(snapshot: MetricsSnapshot) -> tuple[int, ...]:
    inputs = snapshot._graph.inputs
    return tuple(i for i, vertex_id in enumerate(snapshot.vertex_ids) if vertex_id not in inputs)


def _topological_ids(snapshot: MetricsSnapshot) -> tuple[str, ...] | None:
    order = topological_ids(snapshot.vertex_ids, ((e.source, e.target) for e in snapshot.edges))
    return None if order is None else tuple(order)


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def frozen_instances(cls: type[_T], columns: Mapping[str, Sequence[Any]], same: Mapping[str, Any] | None = None,
                     *, leading: Sequence[Mapping[str, Any]] | None = None) -> list[_T]:
    """``[cls(**row) for each row]`` for a frozen dataclass without ``__post_init__``, the rows given column by
    column: ``columns`` one sequence per field (all of the same length, at least one), ``same`` the fields every
    row has the same value for, and ``leading`` (optional) the first fields of each row, one mapping per row with
    the same keys in field order (what a caller prepared once for many calls); together they name every field
    exactly once.

    The instances are the ones the constructor builds (every field set, in field order: equal, with the same
    repr and hash), each set by straight-line stores into its ``__dict__`` (``_row_builder``) instead of one
    ``object.__setattr__`` per field: for the simulator and the policies, which build one per vertex at every
    decision."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        if hasattr(cls, "__post_init__"):
            raise TypeError(f"{cls.__name__} has a __post_init__: build it with its constructor")
        names = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
        _FIELD_NAMES[cls] = names
    first = tuple(leading[0]) if leading else ()
    rest = names[len(first):]
    same = same or {}
    given = [*columns, *same]
    if first != names[:len(first)] or len(given) != len(rest) or set(given) != set(rest):
        raise TypeError(f"{cls.__name__}: give every field once, got {[*first, *sorted(given)]}")
    if not columns:
        raise TypeError(f"{cls.__name__}: at least one field must come as a column")
    count = len(next(iter(columns.values())))
    ordered = [columns[name] if name in columns else itertools.repeat(same[name], count) for name in rest]
    rows = zip(*ordered, strict=True)
    built: list[_T]
    if leading is None:
        built = _row_builder(rest, False)(cls, rows)
    else:
        built = _row_builder(rest, True)(cls, zip(leading, rows, strict=True))
    return built


_ROW_BUILDERS: dict[tuple[tuple[str, ...], bool], Callable[[type, Iterator[Any]], list[Any]]] = {}


def _row_builder(names: tuple[str, ...], leading: bool) -> Callable[[type, Iterator[Any]], list[Any]]:
    """``build(cls, rows)`` for ``frozen_instances``: one new ``cls`` per row, its ``__dict__`` given ``base``
    (with ``leading``: rows are ``(base, values)`` pairs) and then ``names[i]: values[i]`` in order. Straight-line
    code made once per field names, as ``dataclasses`` makes an ``__init__``: twice as fast as a dict update from
    a zip of names and values."""
    builder = _ROW_BUILDERS.get((names, leading))
    if builder is None:
        values = "".join(f"_{i}, " for i in range(len(names)))
        sets = "".join(f"        values[{name!r}] = _{i}\n" for i, name in enumerate(names))
        source = ("def build(cls, rows):\n    new = object.__new__\n    built = []\n    append = built.append\n"
                  + (f"    for base, ({values}) in rows:\n" if leading else f"    for {values} in rows:\n")
                  + "        instance = new(cls)\n        values = instance.__dict__\n"
                  + ("        values.update(base)\n" if leading else "")
                  + sets + "        append(instance)\n    return built\n")
        namespace: dict[str, Any] = {}
        exec(source, namespace)  # the names are a dataclass's field names: identifiers
        builder = _ROW_BUILDERS[(names, leading)] = namespace["build"]
    return builder


def json_finite(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None, recursively (JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_finite(v) for v in value]
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list"}.get(
        type(value), type(value).__name__)
