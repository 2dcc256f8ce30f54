"""Slot ceilings for elastic clusters: ``--max-slots`` and the quotas (``quota.cpu``, ``quota.memory``) as one
number of slots, with the bound that binds.

A cluster that adds TaskManagers on demand (Kubernetes, YARN, an operator-managed deployment) has no observed
ceiling: what it may grow to is configured. Three bounds are configured, per cluster and per job (the per-job
ones under the Flink operator's names ``job.autoscaler.quota.cpu`` / ``job.autoscaler.quota.memory``):

- ``--max-slots`` (or the config file's ``cluster.max-slots``): slots, as they are;
- ``quota.cpu``: cores. TaskManagers are whole, so the quota admits ``floor(quota.cpu / cpu per TaskManager)``
  TaskManagers, each with ``taskmanager.numberOfTaskSlots`` slots (the operator sizes a scaled job the same
  way: its TaskManagers are ``ceil(slots / slots per TaskManager)``, and their cores must stay within the quota);
- ``quota.memory``: bytes, against the TaskManager's ``taskmanager.memory.process.size`` (what a container or a
  pod is given), ``floor(quota.memory / process size)`` TaskManagers.

The lowest wins; ``SlotCeiling.explain()`` says which (``ceiling 12 slots: quota.cpu 6 cores / 1 core per
TaskManager of 2 slots``). The division is exact on the decimal values as written (``0.3`` cores over ``0.1``
per TaskManager admits 3, not 2), so a binary float never costs a TaskManager.

The TaskManager size comes from, in order: what the config file's ``cluster`` section states, the Flink
configuration the job runs with (``GET /jobs/:jid/jobmanager/config``: ``taskmanager.numberOfTaskSlots``,
``kubernetes.taskmanager.cpu`` / ``yarn.containers.vcores`` / ``taskmanager.cpu.cores``,
``taskmanager.memory.process.size``), then Flink's defaults (1 slot, 1728m; on Kubernetes 1 core, elsewhere one
core per slot, as ``taskmanager.cpu.cores`` defaults). The process size is checked against Flink's memory model
(``core.memory``): a size Flink would refuse to start is an error naming its key.

Pure: the caller hands in the configuration it read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from flinkscale.core.errors import InputError
from flinkscale.core.memory import DEFAULT_TASK_MANAGER_PROCESS_SIZE, TaskManagerMemoryOptions, task_manager_memory
from flinkscale.core.units import format_bytes, parse_size

SLOTS_KEY = "taskmanager.numberOfTaskSlots"
MEMORY_KEY = "taskmanager.memory.process.size"
CPU_KEYS = ("kubernetes.taskmanager.cpu", "yarn.containers.vcores", "taskmanager.cpu.cores")
DEFAULT_SOURCE = "Flink's default"


@dataclass(frozen=True)
class TaskManagerSize:
    """One TaskManager: cores, process memory (bytes) and slots; ``source`` says where they were read."""

    cpu: float
    memory_bytes: int
    slots: int
    source: str = DEFAULT_SOURCE

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cpu) and self.cpu > 0):
            raise InputError(f"must be > 0 cores, got {self.cpu!r}", field="taskmanager cpu")
        if self.memory_bytes <= 0:
            raise InputError(f"must be > 0, got {self.memory_bytes}", field=MEMORY_KEY)
        if self.slots < 1:
            raise InputError(f"must be >= 1, got {self.slots}", field=SLOTS_KEY)

    @property
    def cpu_per_slot(self) -> float:
        return self.cpu / self.slots

    def describe(self) -> str:
        return (f"{_number(self.cpu)} {_cores(self.cpu)}, {format_bytes(self.memory_bytes, binary=True)} and "
                f"{self.slots} {'slot' if self.slots == 1 else 'slots'} per TaskManager ({self.source})")


@dataclass(frozen=True)
class SlotBound:
    """One configured bound as slots: its name (``--max-slots``, ``quota.cpu``, ``quota.memory``), where it was
    set, and the arithmetic behind it."""

    name: str
    slots: int
    source: str
    arithmetic: str


@dataclass(frozen=True)
class SlotCeiling:
    """The lowest of the configured bounds (``slots`` None: nothing configured) and the one that binds."""

    bounds: tuple[SlotBound, ...] = ()

    @property
    def binding(self) -> SlotBound | None:
        return min(self.bounds, key=lambda b: b.slots) if self.bounds else None  # min keeps the first of a tie

    @property
    def slots(self) -> int | None:
        binding = self.binding
        return None if binding is None else binding.slots

    def explain(self) -> str:
        binding = self.binding
        if binding is None:
            return "no configured slot ceiling"
        return f"ceiling {_slots(binding.slots)}: {binding.arithmetic} (from {binding.source})"

    def lower(self, other: SlotCeiling) -> SlotCeiling:
        """Both sets of bounds: the lowest of all binds (a job's own quota against the cluster's)."""
        return SlotCeiling(self.bounds + other.bounds)


def slot_ceiling(*, task_manager: TaskManagerSize, max_slots: int | None = None, max_slots_source: str = "cli",
                 quota_cpu: float | None = None, quota_cpu_source: str = "default",
                 quota_memory_bytes: int | None = None, quota_memory_source: str = "default") -> SlotCeiling:
    """The slot ceiling ``--max-slots`` and the quotas imply for TaskManagers of ``task_manager``'s size.

    Whole TaskManagers: ``floor(quota / per-TaskManager amount) x slots per TaskManager``; a quota below one
    TaskManager admits 0 slots. Invalid quota values raise ``InputError`` naming the key."""
    bounds: list[SlotBound] = []
    if max_slots is not None:
        if max_slots < 1:
            raise InputError(f"must be >= 1, got {max_slots}", field="max-slots")
        bounds.append(SlotBound("--max-slots", max_slots, max_slots_source, f"max-slots {max_slots}"))
    tm = task_manager
    per_tm = f"TaskManager of {_slots(tm.slots)}" if tm.slots > 1 else "TaskManager (1 slot)"
    if quota_cpu is not None:
        if not (math.isfinite(quota_cpu) and quota_cpu > 0):
            raise InputError(f"must be > 0 cores, got {quota_cpu!r}", field="quota.cpu")
        whole = math.floor(_exact(quota_cpu) / _exact(tm.cpu))
        if tm.slots == 1:
            arithmetic = (f"quota.cpu {_number(quota_cpu)} {_cores(quota_cpu)} / {_number(tm.cpu)} "
                          f"{_cores(tm.cpu)} per slot")
        else:
            arithmetic = (f"quota.cpu {_number(quota_cpu)} {_cores(quota_cpu)} / {_number(tm.cpu)} "
                          f"{_cores(tm.cpu)} per {per_tm} ({_number(tm.cpu_per_slot)} {_cores(tm.cpu_per_slot)} "
                          "per slot)")
        bounds.append(SlotBound("quota.cpu", whole * tm.slots, quota_cpu_source,
                                arithmetic + f" = {_task_managers(whole)}"))
    if quota_memory_bytes is not None:
        if quota_memory_bytes <= 0:
            raise InputError(f"must be > 0, got {quota_memory_bytes}", field="quota.memory")
        whole = quota_memory_bytes // tm.memory_bytes
        arithmetic = (f"quota.memory {format_bytes(quota_memory_bytes, binary=True)} / "
                      f"{format_bytes(tm.memory_bytes, binary=True)} per {per_tm} = {_task_managers(whole)}")
        bounds.append(SlotBound("quota.memory", whole * tm.slots, quota_memory_source, arithmetic))
    return SlotCeiling(tuple(bounds))


def task_manager_size(flink_config: Mapping[str, str], *, cpu: float | None = None, memory_bytes: int | None = None,
                      slots: int | None = None, configured_source: str = "configured") -> TaskManagerSize:
    """The TaskManager size: each of ``cpu``, ``memory_bytes`` and ``slots`` given here (configured) wins over
    the job's Flink configuration ``flink_config`` (key -> value as Flink returns it), which wins over Flink's
    defaults. A value Flink would refuse raises ``InputError`` naming its key."""
    sources: list[str] = []

    def note(source: str) -> None:
        if source not in sources:
            sources.append(source)

    if slots is None and SLOTS_KEY in flink_config:
        text = str(flink_config[SLOTS_KEY]).strip()
        if not text.isdigit() or int(text) < 1:
            raise InputError(f"expected a whole number >= 1, got {text!r}", field=SLOTS_KEY)
        slots = int(text)
        note("job config")
    elif slots is not None:
        note(configured_source)
    slots = slots if slots is not None else 1

    if cpu is None:
        for key in CPU_KEYS:
            if key in flink_config:
                text = str(flink_config[key]).strip()
                try:
                    cpu = float(text)
                except ValueError:
                    raise InputError(f"expected a number of cores, got {text!r}", field=key) from None
                if not (math.isfinite(cpu) and cpu > 0):
                    raise InputError(f"must be > 0 cores, got {text!r}", field=key)
                note("job config")
                break
    else:
        note(configured_source)
    if cpu is None:  # Flink's defaults: kubernetes.taskmanager.cpu 1.0, else taskmanager.cpu.cores = the slots
        on_kubernetes = str(flink_config.get("execution.target", "")).startswith("kubernetes")
        cpu = 1.0 if on_kubernetes else float(slots)

    if memory_bytes is None and MEMORY_KEY in flink_config:
        memory_bytes = parse_size(str(flink_config[MEMORY_KEY]), field=MEMORY_KEY)
        note("job config")
    elif memory_bytes is not None:
        note(configured_source)
    memory_bytes = memory_bytes if memory_bytes is not None else DEFAULT_TASK_MANAGER_PROCESS_SIZE
    task_manager_memory(TaskManagerMemoryOptions(process_size=memory_bytes))  # Flink's own rules, or its error
    return TaskManagerSize(cpu, memory_bytes, slots, " + ".join(sources) or DEFAULT_SOURCE)


def _exact(value: float) -> Fraction:
    """The decimal a user wrote (``0.1`` -> 1/10), not the binary float nearest to it."""
    return Fraction(repr(float(value)))


def _number(value: float) -> str:
    return f"{value:g}"


def _cores(value: float) -> str:
    return "core" if value == 1 else "cores"


def _task_managers(count: int) -> str:
    return f"{count} TaskManager" if count == 1 else f"{count} TaskManagers"


def _slots(count: int) -> str:
    return f"{count} slot" if count == 1 else f"{count} slots"
