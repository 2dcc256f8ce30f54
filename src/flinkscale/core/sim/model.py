"""What the simulator simulates: a Flink job graph, its cluster, and what rescales and checkpoints cost.

These are plain frozen dataclasses, validated on construction, so a ``SimPipeline`` built from YAML
(``scenario.parse_scenario``), from a profile (per-vertex capacities) or by hand in a test is equally
trustworthy. The engine (``engine.JobModel``) turns them into flat numpy arrays once per parallelism.

Vocabulary, kept to Flink's:

- A ``SimVertex`` is a job vertex (a chain of operators). ``capacity`` is what ONE subtask processes per
  second at 100% busy (``true_processing_rate / parallelism`` in the operator autoscaler's terms).
- A ``SimEdge`` carries records with a ship strategy (``HASH`` = keyed, spread by key groups of its
  ``key_distribution``; ``REBALANCE``/``RESCALE``/others = evenly; ``FORWARD`` = subtask i to subtask i when
  both sides have the same parallelism, else evenly, as Flink falls back to rebalance; ``BROADCAST`` = every
  record to every subtask; ``GLOBAL`` = all to subtask 0) and a ``selectivity`` (records emitted on this edge
  per record processed by the upstream vertex: 0.3 for a filter keeping 30%, 2.0 for a flatMap doubling).
- ``state_bytes`` is the vertex's total keyed/operator state: restoring it after a rescale takes
  ``state / restore_bandwidth``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from flinkscale.core.errors import InputError
from flinkscale.core.graph import edges_by_end, topological_ids
from flinkscale.core.sim.keyload import KeyDistribution
from flinkscale.core.snapshot import ShipStrategy


@dataclass(frozen=True)
class SimVertex:
    id: str
    parallelism: int
    # Records/s ONE subtask processes at 100% busy.
    capacity: float
    name: str = ""
    max_parallelism: int = 128
    is_source: bool = False
    # Sources: partitions (Kafka) or splits read; readers beyond this many sit idle.
    partitions: int | None = None
    state_bytes: float = 0.0
    where: str = "vertex"

    def subtasks_for(self, rate: float, utilization: float) -> int:
        """The fewest evenly loaded subtasks that carry ``rate`` at ``utilization`` (at least 1, no upper cap):
        ``ceil(rate / (capacity x utilization))``. A capacity so small that the ratio overflows names its field."""
        needed = rate / (self.capacity * utilization)
        if not math.isfinite(needed):
            raise InputError(f"{self.capacity:g} records/s per subtask cannot carry {rate:g} records/s at any "
                             "parallelism", field=f"{self.where}.capacity")
        return max(1, math.ceil(needed))

    def __post_init__(self) -> None:
        if not self.id:
            raise InputError("must not be empty", field=f"{self.where}.id")
        if not 1 <= self.max_parallelism <= 32768:
            raise InputError(f"must be in [1, 32768], got {self.max_parallelism}",
                             field=f"{self.where}.max_parallelism")
        if not 1 <= self.parallelism <= self.max_parallelism:
            raise InputError(f"must be in [1, max_parallelism={self.max_parallelism}], got {self.parallelism}",
                             field=f"{self.where}.parallelism")
        if not (math.isfinite(self.capacity) and self.capacity > 0):
            raise InputError(f"must be > 0 records/s per subtask, got {self.capacity}", field=f"{self.where}.capacity")
        if self.partitions is not None and self.partitions < 1:
            raise InputError(f"must be >= 1, got {self.partitions}", field=f"{self.where}.partitions")
        if self.state_bytes < 0:
            raise InputError(f"must be >= 0, got {self.state_bytes}", field=f"{self.where}.state")

    @property
    def label(self) -> str:
        return self.name or self.id


@dataclass(frozen=True)
class SimEdge:
    source: str
    target: str
    ship_strategy: ShipStrategy = ShipStrategy.REBALANCE
    selectivity: float = 1.0
    key_distribution: KeyDistribution = field(default_factory=KeyDistribution)
    where: str = "edge"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.selectivity) and self.selectivity > 0):
            raise InputError(f"must be > 0, got {self.selectivity}", field=f"{self.where}.selectivity")


@dataclass(frozen=True)
class SimPipeline:
    """A job graph to simulate; vertices in any order, sources are the vertices without inputs."""

    vertices: tuple[SimVertex, ...]
    edges: tuple[SimEdge, ...] = ()
    name: str = "simulated-job"

    def __post_init__(self) -> None:
        if not self.vertices:
            raise InputError("needs at least one vertex", field="pipeline.vertices")
        ids = [v.id for v in self.vertices]
        seen: set[str] = set()  # a set, not ids[:i]: rebuilt on every rescale, this must stay linear
        for i, vid in enumerate(ids):
            if vid in seen:
                raise InputError(f"duplicate vertex id {vid!r}", field=f"pipeline.vertices[{i}].id")
            seen.add(vid)
        known = set(ids)
        for i, edge in enumerate(self.edges):
            for end in (edge.source, edge.target):
                if end not in known:
                    raise InputError(f"unknown vertex {end!r}", field=f"pipeline.edges[{i}]")
            if edge.source == edge.target:
                raise InputError("an edge cannot loop on one vertex", field=f"pipeline.edges[{i}]")
        targets = {e.target for e in self.edges}
        for i, v in enumerate(self.vertices):
            if v.is_source and v.id in targets:
                raise InputError("a source cannot have inputs", field=f"pipeline.vertices[{i}].source")
        self.topological_order()  # raises on a cycle

    @cached_property
    def _by_id(self) -> dict[str, SimVertex]:  # built once: lookups stay O(1) on a 1k-vertex graph
        return {v.id: v for v in self.vertices}

    def vertex(self, vertex_id: str) -> SimVertex:
        return self._by_id[vertex_id]

    def sources(self) -> tuple[SimVertex, ...]:
        targets = {e.target for e in self.edges}
        return tuple(v for v in self.vertices if v.id not in targets)

    def sinks(self) -> tuple[SimVertex, ...]:
        origins = {e.source for e in self.edges}
        return tuple(v for v in self.vertices if v.id not in origins)

    def topological_order(self) -> tuple[SimVertex, ...]:
        return self._topological_order

    @cached_property
    def _topological_order(self) -> tuple[SimVertex, ...]:  # a frozen value: sorted once
        order = topological_ids([v.id for v in self.vertices], ((e.source, e.target) for e in self.edges))
        if order is None:
            raise InputError("the job graph has a cycle", field="pipeline.edges")
        return tuple(self.vertex(vid) for vid in order)

    def parallelism(self) -> dict[str, int]:
        return {v.id: v.parallelism for v in self.vertices}

    def state_bytes(self) -> float:
        return sum(v.state_bytes for v in self.vertices)

    def vertex_rate_factors(self) -> dict[str, float]:
        """Records/s each vertex receives per record/s offered at the sources (products of selectivities).

        With several sources, each source is assumed to get an equal share of the offered rate.
        """
        factor = {v.id: 0.0 for v in self.vertices}
        sources = self.sources()
        for s in sources:
            factor[s.id] = 1.0 / len(sources)
        outputs = edges_by_end(self.edges)[1]
        for v in self.topological_order():
            for e in outputs.get(v.id, ()):
                fan_out = 1.0
                if e.ship_strategy is ShipStrategy.BROADCAST:
                    fan_out = float(self.vertex(e.target).parallelism)
                factor[e.target] += factor[v.id] * e.selectivity * fan_out
        return factor

    def parallelism_for_rate(self, rate: float, utilization: float = 1.0) -> dict[str, int]:
        """The smallest parallelism per vertex that keeps every vertex at or under ``utilization`` at ``rate``.

        Evenly loaded subtasks are assumed (``ceil(rate x factor / (capacity x utilization))``); skew and
        unaligned layouts need more, which is what the simulator then shows.
        """
        if not 0 < utilization <= 1:
            raise InputError(f"must be in (0, 1], got {utilization}", field="utilization")
        factors = self.vertex_rate_factors()
        return {v.id: min(v.max_parallelism, v.subtasks_for(rate * factors[v.id], utilization)) for v in self.vertices}

    def with_parallelism(self, parallelism: Mapping[str, int]) -> SimPipeline:
        vertices = tuple(
            SimVertex(id=v.id, parallelism=parallelism.get(v.id, v.parallelism), capacity=v.capacity, name=v.name,
                      max_parallelism=v.max_parallelism, is_source=v.is_source, partitions=v.partitions,
                      state_bytes=v.state_bytes, where=v.where)
            for v in self.vertices)
        return SimPipeline(vertices, self.edges, self.name)


@dataclass(frozen=True)
class ClusterSpec:
    """The cluster ceiling and how slots are counted.

    ``slot_sharing=False`` (default) counts one slot per subtask: per-subtask capacities are per core, so a
    subtask at 100% busy needs a core of its own. ``True`` counts Flink's slot-sharing slots (the largest
    vertex parallelism), which is right when capacities were profiled with slots shared.
    """

    max_slots: int = 10_000
    slots_per_task_manager: int = 4
    slot_sharing: bool = False

    def __post_init__(self) -> None:
        if self.max_slots < 1:
            raise InputError(f"must be >= 1, got {self.max_slots}", field="cluster.max_slots")
        if self.slots_per_task_manager < 1:
            raise InputError(f"must be >= 1, got {self.slots_per_task_manager}",
                             field="cluster.slots_per_task_manager")

    def slots_for(self, parallelism: Mapping[str, int]) -> int:
        if not parallelism:
            return 0
        return max(parallelism.values()) if self.slot_sharing else sum(parallelism.values())


RESCALE_MODES = ("savepoint", "checkpoint")


@dataclass(frozen=True)
class RescaleSpec:
    """What a rescale costs: downtime = restart_seconds + total state bytes / restore_bytes_per_second.

    ``mode``: ``savepoint`` (stop-with-savepoint, then restore: nothing lost or repeated) or ``checkpoint``
    (restart from the last completed checkpoint, as the adaptive scheduler does: in-flight records are lost and
    the sources re-read everything since that checkpoint, so the backlog grows by up to one checkpoint interval
    of input on top of the downtime).
    """

    restart_seconds: float = 30.0
    restore_bytes_per_second: float = 200e6
    mode: str = "savepoint"

    def __post_init__(self) -> None:
        if self.mode not in RESCALE_MODES:
            raise InputError(f"must be one of {', '.join(RESCALE_MODES)}, got {self.mode!r}", field="rescale.mode")
        if self.restart_seconds < 0:
            raise InputError(f"must be >= 0, got {self.restart_seconds}", field="rescale.restart_time")
        if not self.restore_bytes_per_second > 0:
            raise InputError(f"must be > 0, got {self.restore_bytes_per_second}",
                             field="rescale.restore_bandwidth")

    def downtime_seconds(self, state_bytes: float) -> float:
        return self.restart_seconds + state_bytes / self.restore_bytes_per_second


@dataclass(frozen=True)
class CheckpointSpec:
    """Periodic checkpoints; ``pause_seconds`` of stopped processing per checkpoint (0 = negligible cost)."""

    interval_seconds: float = 180.0
    pause_seconds: float = 0.0

    def __post_init__(self) -> None:
        if not self.interval_seconds > 0:
            raise InputError(f"must be > 0, got {self.interval_seconds}", field="checkpoints.interval")
        if not 0 <= self.pause_seconds < self.interval_seconds:
            raise InputError(f"must be in [0, interval), got {self.pause_seconds}", field="checkpoints.pause")
