"""State advice from a profile: which backend, incremental checkpoints, TTL and cleanup, managed memory.

Input is what a running job shows (``MetricsSnapshot.checkpoints``: the state size of the latest completed
checkpoint and the checkpoint durations; ``cluster``: how many TaskManagers share it) plus what the caller
knows about the job's configuration (all optional: unknown settings are advised as if unset, and say so).
Every advice carries the Flink config keys to set and an explanation with the formula and its inputs.

The rules, in the order they are returned:

* **Backend** from the state per TaskManager ``S = state_size_bytes / task_managers``:
  ``hashmap`` while ``S <= HASHMAP_STATE_LIMIT_PER_TASK_MANAGER`` (1 GiB; heap objects cost about
  ``HASHMAP_OBJECT_OVERHEAD`` = 2.5x the serialized size, and every checkpoint is full) and, when the heap is
  known, ``2.5 S <= heap / 2``; ``rocksdb`` above that (state on local disk, incremental checkpoints);
  ``forst`` only when ``S`` exceeds ``FORST_STATE_PER_TASK_MANAGER`` (local disk becomes the limit; ForSt keeps
  state on remote storage, and is experimental in Flink 2.x, so it is advised with that warning).
* **Incremental checkpoints** for rocksdb/forst (``execution.checkpointing.incremental``): a full checkpoint
  uploads all of ``S`` each interval; incremental uploads the changed SST files only.
* **Checkpoint duration** against the interval: a max duration above half the interval means checkpoints
  queue up; the advice is incremental checkpoints, unaligned checkpoints when alignment dominates, and a
  longer interval (replayed data after a failure ~ rate x (interval + duration)).
* **TTL**: state that grows between two snapshots without a TTL grows forever: ``table.exec.state.ttl`` for
  SQL, ``StateTtlConfig`` with the backend's cleanup (RocksDB compaction filter, hashmap incremental cleanup).
* **Managed memory fraction**: 0.4 for rocksdb/forst (block cache and write buffers; anchors.md section 2),
  0 for hashmap (managed memory would sit unused while the heap holds the state).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from flinkscale.core.capacity import (
    HASHMAP_OBJECT_OVERHEAD,
    HASHMAP_STATE_LIMIT_PER_TASK_MANAGER,
)
from flinkscale.core.errors import InputError
from flinkscale.core.snapshot import MetricsSnapshot
from flinkscale.core.units import GiB, format_bytes, format_duration

#: Above this much state per TaskManager the local disk (and its recovery download) limits RocksDB.
FORST_STATE_PER_TASK_MANAGER = 200 * GiB
#: Incremental checkpoints pay off above this much state per TaskManager.
INCREMENTAL_MIN_STATE_PER_TASK_MANAGER = 64 * 1024 * 1024
ROCKSDB_MANAGED_FRACTION = 0.4
#: A checkpoint taking more than this fraction of the interval is a problem.
CHECKPOINT_DURATION_SHARE_LIMIT = 0.5
BACKENDS = ("hashmap", "rocksdb", "forst")


class Severity(StrEnum):
    INFO = "info"  # the current setting is right; said so that the report is complete
    RECOMMEND = "recommend"  # a change that helps
    WARN = "warn"  # something that will break (unbounded state, queued checkpoints)


@dataclass(frozen=True)
class StateAdvice:
    topic: str  # "backend" | "incremental-checkpoints" | "checkpoint-duration" | "ttl" | "managed-memory"
    title: str
    severity: Severity
    explanation: str
    config: Mapping[str, str] = field(default_factory=dict)
    needs_restart: bool = False


@dataclass(frozen=True)
class StateSettings:
    """What is known of the job's configuration; None = unknown (advised as if unset)."""

    backend: str | None = None
    incremental: bool | None = None
    ttl_configured: bool | None = None
    managed_fraction: float | None = None
    task_manager_heap_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.backend is not None and self.backend not in BACKENDS:
            raise InputError(f"must be one of {BACKENDS}, got {self.backend!r}", field="backend")
        if self.managed_fraction is not None and not 0 <= self.managed_fraction < 1:
            raise InputError(f"must be in [0, 1), got {self.managed_fraction}", field="managed_fraction")
        if self.task_manager_heap_bytes is not None and self.task_manager_heap_bytes <= 0:
            raise InputError("must be > 0", field="task_manager_heap_bytes")


def recommended_backend(state_per_task_manager: float, heap_bytes: int | None = None) -> tuple[str, str]:
    """(backend, explanation with the inputs) for this much state per TaskManager."""
    size = format_bytes(state_per_task_manager, binary=True)
    heap_ok = heap_bytes is None or HASHMAP_OBJECT_OVERHEAD * state_per_task_manager <= heap_bytes / 2
    if state_per_task_manager <= HASHMAP_STATE_LIMIT_PER_TASK_MANAGER and heap_ok:
        heap = "" if heap_bytes is None else (f" and {HASHMAP_OBJECT_OVERHEAD} x S = "
                                              f"{format_bytes(HASHMAP_OBJECT_OVERHEAD * state_per_task_manager, True)}"
                                              f" <= heap / 2 = {format_bytes(heap_bytes / 2, True)}")
        return "hashmap", (f"S = {size} per TaskManager <= {format_bytes(HASHMAP_STATE_LIMIT_PER_TASK_MANAGER, True)}"
                           f"{heap}: heap state is fastest (no serialization per access)")
    if state_per_task_manager > FORST_STATE_PER_TASK_MANAGER:
        return "forst", (f"S = {size} per TaskManager > {format_bytes(FORST_STATE_PER_TASK_MANAGER, True)}: local "
                         "disk and the recovery download limit RocksDB; ForSt keeps state on remote storage "
                         "(experimental in Flink 2.x: test recovery before relying on it)")
    heap = format_bytes(heap_bytes or 0, True)
    why = (f"S = {size} per TaskManager > {format_bytes(HASHMAP_STATE_LIMIT_PER_TASK_MANAGER, True)}"
           if heap_ok else f"{HASHMAP_OBJECT_OVERHEAD} x S exceeds half the heap ({heap})")
    return "rocksdb", f"{why}: RocksDB keeps state off-heap on local disk with incremental checkpoints"


def advise_state(snapshot: MetricsSnapshot, settings: StateSettings | None = None, *,
                 previous: MetricsSnapshot | None = None) -> tuple[StateAdvice, ...]:
    """Advice for the job's state; ``previous`` (an earlier snapshot of the same job) enables the TTL rule."""
    settings = settings or StateSettings()
    checkpoints = snapshot.checkpoints
    if checkpoints is None or checkpoints.state_size_bytes is None:
        return (StateAdvice("backend", "no completed checkpoint yet: state size unknown", Severity.INFO,
                            "advice needs the state size of a completed checkpoint "
                            "(CheckpointStats.state_size_bytes); enable checkpointing and profile again"),)
    task_managers = max(1, snapshot.cluster.task_managers if snapshot.cluster else 1)
    state = float(checkpoints.state_size_bytes)
    per_tm = state / task_managers
    advice: list[StateAdvice] = []

    backend, why = recommended_backend(per_tm, settings.task_manager_heap_bytes)
    inputs = f"state_size_bytes {format_bytes(state, True)} / {task_managers} TaskManager(s); {why}"
    if settings.backend == backend:
        advice.append(StateAdvice("backend", f"keep state.backend.type {backend}", Severity.INFO, inputs))
    else:
        current = settings.backend or "unknown"
        advice.append(StateAdvice("backend", f"state.backend.type: {current} -> {backend}", Severity.RECOMMEND,
                                  inputs + "; changing the backend needs a savepoint (canonical format) and restart",
                                  {"state.backend.type": backend}, needs_restart=True))

    on_disk = backend in ("rocksdb", "forst") or settings.backend in ("rocksdb", "forst")
    if on_disk and settings.incremental is not True and per_tm >= INCREMENTAL_MIN_STATE_PER_TASK_MANAGER:
        advice.append(StateAdvice(
            "incremental-checkpoints", "enable incremental checkpoints", Severity.RECOMMEND,
            f"a full checkpoint uploads all S = {format_bytes(per_tm, True)} per TaskManager every interval; "
            "incremental uploads only the SST files written since the last one",
            {"execution.checkpointing.incremental": "true"}, needs_restart=True))

    advice.extend(_checkpoint_duration(checkpoints.max_duration_ms, checkpoints.avg_duration_ms,
                                       checkpoints.interval_ms, checkpoints.avg_alignment_ms, backend, settings))
    advice.extend(_ttl(snapshot, previous, settings, backend))

    fraction = ROCKSDB_MANAGED_FRACTION if backend in ("rocksdb", "forst") else 0.0
    if settings.managed_fraction is None or abs(settings.managed_fraction - fraction) > 1e-9:
        current = "unknown (Flink default 0.4)" if settings.managed_fraction is None else f"{settings.managed_fraction}"
        if not (settings.managed_fraction is None and fraction == ROCKSDB_MANAGED_FRACTION):
            why = ("RocksDB/ForSt use managed memory for block cache and write buffers"
                   if fraction else "the hashmap backend keeps state on the heap: managed memory would sit unused")
            advice.append(StateAdvice("managed-memory", f"taskmanager.memory.managed.fraction: {current} -> {fraction}",
                                      Severity.RECOMMEND, f"{why} (backend {backend})",
                                      {"taskmanager.memory.managed.fraction": str(fraction)}, needs_restart=True))
    return tuple(advice)


def _checkpoint_duration(max_ms: float | None, avg_ms: float | None, interval_ms: float | None,
                         alignment_ms: float | None, backend: str, settings: StateSettings) -> list[StateAdvice]:
    if max_ms is None or not interval_ms:
        return []
    share = max_ms / interval_ms
    if share <= CHECKPOINT_DURATION_SHARE_LIMIT:
        return []
    inputs = (f"max checkpoint duration {format_duration(max_ms / 1000)} = {share:.0%} of the interval "
              f"{format_duration(interval_ms / 1000)} (limit {CHECKPOINT_DURATION_SHARE_LIMIT:.0%})"
              + ("" if avg_ms is None else f", average {format_duration(avg_ms / 1000)}"))
    config: dict[str, str] = {"execution.checkpointing.interval": format_duration(2 * max_ms / 1000)}
    steps = [f"interval >= 2 x max duration = {format_duration(2 * max_ms / 1000)} (replayed data after a failure "
             "grows with it: ~ rate x (interval + duration))"]
    if settings.incremental is not True and backend in ("rocksdb", "forst"):
        config["execution.checkpointing.incremental"] = "true"
        steps.insert(0, "incremental checkpoints")
    if alignment_ms is not None and alignment_ms > 0.5 * max_ms:
        config["execution.checkpointing.unaligned.enabled"] = "true"
        steps.insert(0, f"unaligned checkpoints (alignment {format_duration(alignment_ms / 1000)} dominates: "
                        "backpressure holds the barriers)")
    return [StateAdvice("checkpoint-duration", "checkpoints take too long for their interval", Severity.WARN,
                        inputs + "; fix: " + "; ".join(steps), config, needs_restart=True)]


def _ttl(snapshot: MetricsSnapshot, previous: MetricsSnapshot | None, settings: StateSettings,
         backend: str) -> list[StateAdvice]:
    if settings.ttl_configured:
        return []
    cleanup = ("StateTtlConfig.cleanupInRocksdbCompactFilter(1000): RocksDB drops expired entries while compacting"
               if backend in ("rocksdb", "forst") else
               "StateTtlConfig.cleanupIncrementally(10, false): the hashmap backend checks entries on access")
    config = {"table.exec.state.ttl": "<longest idle time a key may come back after>"}
    old = previous.checkpoints.state_size_bytes if previous and previous.checkpoints else None
    new = snapshot.checkpoints.state_size_bytes if snapshot.checkpoints else None
    if old is not None and new is not None and previous is not None and snapshot.timestamp > previous.timestamp:
        hours = (snapshot.timestamp - previous.timestamp) / 3600
        growth = (new - old) / hours
        if growth > 0:
            known = "no TTL is configured" if settings.ttl_configured is False else "no TTL is known"
            return [StateAdvice(
                "ttl", "state grows and has no TTL: it will grow without bound", Severity.WARN,
                f"state {format_bytes(old, True)} -> {format_bytes(new, True)} in {format_duration(hours * 3600)} "
                f"= {format_bytes(growth, True)}/h and {known}; SQL jobs: table.exec.state.ttl; DataStream jobs: "
                f"{cleanup}", config, needs_restart=True)]
        return []
    if settings.ttl_configured is False:
        return [StateAdvice("ttl", "no state TTL: keyed state lives forever", Severity.RECOMMEND,
                            f"keys that never return keep their state; SQL jobs: table.exec.state.ttl; DataStream "
                            f"jobs: {cleanup} (window state is cleared by the window and needs none)", config,
                            needs_restart=True)]
    return []
