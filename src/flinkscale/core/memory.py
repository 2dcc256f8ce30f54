"""Flink 2.x TaskManager and JobManager memory, computed exactly as Flink computes it, to the byte.

Flink derives every memory component from one number, the total process size
(``taskmanager.memory.process.size`` / ``jobmanager.memory.process.size``), with the rules of
``ProcessMemoryUtils``, ``TaskExecutorFlinkMemoryUtils`` and ``JobManagerFlinkMemoryUtils``:

TaskManager, process size P::

    jvm_overhead  = clamp(P x overhead_fraction, overhead_min, overhead_max)     (0.1, 192m, 1g)
    flink_memory  = P - jvm_metaspace - jvm_overhead                              (metaspace 256m)
    managed       = flink_memory x managed_fraction                               (0.4; 0 for hashmap)
    network       = clamp(flink_memory x network_fraction, network_min, network_max)  (0.1, 64m, unbounded)
    task_heap     = flink_memory - framework_heap - framework_off_heap - task_off_heap - managed - network
    -Xmx = -Xms   = framework_heap + task_heap;  -XX:MaxDirectMemorySize = framework_off_heap + task_off_heap + network

JobManager, process size P: the same overhead and metaspace, then ``heap = flink_memory - off_heap`` (128m).

Two details make "close" into "exact". Flink declares the fractions as ``float`` options, so 0.1 is really
``(double) 0.1f = 0.10000000149011612``; and ``MemorySize.multiply`` multiplies in ``BigDecimal`` (built from
``Double.toString`` of the factor) and truncates toward zero. ``fraction_of`` reproduces both, which is why a
4 GiB TaskManager has 429,496,736 bytes of JVM overhead and not 429,496,729. The integration test
``tests/integration/test_memory_oracle.py`` compares these functions with Flink's own calculator
(``BashJavaUtils GET_TM_RESOURCE_PARAMS`` / ``GET_JM_RESOURCE_PARAMS``) over a range of sizes and fractions.

Pure functions over frozen dataclasses; a configuration Flink would reject raises ``InputError``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from fractions import Fraction

from flinkscale.core.errors import InputError
from flinkscale.core.units import MiB, flink_memory

#: Flink's ``MemorySize.MAX_VALUE`` (Long.MAX_VALUE bytes): the default, unbounded network max since 1.17.
MAX_MEMORY_SIZE = 2**63 - 1

DEFAULT_TASK_MANAGER_PROCESS_SIZE = 1728 * MiB
DEFAULT_JOB_MANAGER_PROCESS_SIZE = 1600 * MiB


def float_option(value: float) -> float:
    """A fraction as Flink holds it: a Java ``float`` widened to ``double`` (0.1 -> 0.10000000149011612)."""
    widened: float = struct.unpack("f", struct.pack("f", value))[0]
    return widened


def fraction_of(num_bytes: int, fraction: float) -> int:
    """``MemorySize.multiply(fraction)`` for a float option: exact decimal product, truncated toward zero."""
    # BigDecimal.valueOf(double) reads the shortest decimal string of the double, as Python's repr does.
    return int(num_bytes * Fraction(repr(float_option(fraction))))


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


@dataclass(frozen=True)
class TaskManagerMemoryOptions:
    """The inputs of Flink's TaskManager memory model, named after the options, sizes in bytes."""

    process_size: int = DEFAULT_TASK_MANAGER_PROCESS_SIZE
    managed_fraction: float = 0.4
    network_fraction: float = 0.1
    network_min: int = 64 * MiB
    network_max: int = MAX_MEMORY_SIZE
    framework_heap: int = 128 * MiB
    framework_off_heap: int = 128 * MiB
    task_off_heap: int = 0
    jvm_metaspace: int = 256 * MiB
    jvm_overhead_fraction: float = 0.1
    jvm_overhead_min: int = 192 * MiB
    jvm_overhead_max: int = 1024 * MiB

    def flink_options(self) -> dict[str, str]:
        """The options that reproduce this input in a Flink ``config.yaml`` (Flink's memory syntax)."""
        options = {
            "taskmanager.memory.process.size": flink_memory(self.process_size),
            "taskmanager.memory.managed.fraction": _fraction_text(self.managed_fraction),
        }
        defaults = TaskManagerMemoryOptions()
        extra = {
            "taskmanager.memory.network.fraction": (self.network_fraction, defaults.network_fraction),
            "taskmanager.memory.network.min": (self.network_min, defaults.network_min),
            "taskmanager.memory.network.max": (self.network_max, defaults.network_max),
            "taskmanager.memory.framework.heap.size": (self.framework_heap, defaults.framework_heap),
            "taskmanager.memory.framework.off-heap.size": (self.framework_off_heap, defaults.framework_off_heap),
            "taskmanager.memory.task.off-heap.size": (self.task_off_heap, defaults.task_off_heap),
            "taskmanager.memory.jvm-metaspace.size": (self.jvm_metaspace, defaults.jvm_metaspace),
            "taskmanager.memory.jvm-overhead.fraction": (self.jvm_overhead_fraction, defaults.jvm_overhead_fraction),
            "taskmanager.memory.jvm-overhead.min": (self.jvm_overhead_min, defaults.jvm_overhead_min),
            "taskmanager.memory.jvm-overhead.max": (self.jvm_overhead_max, defaults.jvm_overhead_max),
        }
        for key, (value, default) in extra.items():
            if value != default:
                options[key] = _fraction_text(value) if isinstance(value, float) else flink_memory(value)
        return options


def _fraction_text(value: float) -> str:
    return repr(float(value))


#: The components Flink sizes from a fraction within a ``.min``/``.max`` range (not with one ``.size`` option).
_RANGED_COMPONENTS = ("network", "jvm-overhead")


def _calculator_options(prefix: str, process_size: int, flink_size: int,
                        components: dict[str, int]) -> dict[str, int]:
    """The resolved sizes as Flink's calculator reports them (its ``-D`` dynamic options), in bytes: the process
    and Flink memory sizes under ``prefix``, then the ``components``, each of the ranged ones (network and JVM
    overhead) as its ``.min`` and ``.max`` option, both set to the resolved size."""
    options = {f"{prefix}.process.size": process_size, f"{prefix}.flink.size": flink_size}
    for name, size in components.items():
        if name.removeprefix(f"{prefix}.") in _RANGED_COMPONENTS:
            options[f"{name}.min"] = options[f"{name}.max"] = size
        else:
            options[name] = size
    return options


def _jvm_args(heap: int, metaspace: int, direct: int | None = None) -> dict[str, int]:
    """The JVM flags Flink starts a process with, flag -> bytes (``ProcessMemoryUtils``): the heap both ways,
    the direct memory limit where the process has one, and the metaspace."""
    args = {"-Xmx": heap, "-Xms": heap}
    if direct is not None:
        args["-XX:MaxDirectMemorySize"] = direct
    args["-XX:MaxMetaspaceSize"] = metaspace
    return args


@dataclass(frozen=True)
class TaskManagerMemory:
    """Every component of a TaskManager's memory in bytes; the components sum to ``process_size``."""

    process_size: int
    framework_heap: int
    task_heap: int
    managed: int
    framework_off_heap: int
    task_off_heap: int
    network: int
    jvm_metaspace: int
    jvm_overhead: int

    @property
    def total_flink_memory(self) -> int:
        return self.process_size - self.jvm_metaspace - self.jvm_overhead

    @property
    def jvm_heap(self) -> int:
        return self.framework_heap + self.task_heap

    @property
    def jvm_direct(self) -> int:
        return self.framework_off_heap + self.task_off_heap + self.network

    def components(self) -> dict[str, int]:
        """The eight parts whose sum is the process size, under Flink's own option names."""
        return {
            "taskmanager.memory.framework.heap.size": self.framework_heap,
            "taskmanager.memory.task.heap.size": self.task_heap,
            "taskmanager.memory.managed.size": self.managed,
            "taskmanager.memory.framework.off-heap.size": self.framework_off_heap,
            "taskmanager.memory.task.off-heap.size": self.task_off_heap,
            "taskmanager.memory.network": self.network,
            "taskmanager.memory.jvm-metaspace.size": self.jvm_metaspace,
            "taskmanager.memory.jvm-overhead": self.jvm_overhead,
        }

    def flink_options(self) -> dict[str, int]:
        """The resolved sizes as Flink's calculator reports them (``_calculator_options``)."""
        return _calculator_options("taskmanager.memory", self.process_size, self.total_flink_memory,
                                   self.components())

    def jvm_args(self) -> dict[str, int]:
        """The JVM flags Flink starts the TaskManager with, flag -> bytes."""
        return _jvm_args(self.jvm_heap, self.jvm_metaspace, direct=self.jvm_direct)


def _overhead_and_flink_memory(process_size: int, fraction: float, low: int, high: int, metaspace: int,
                               prefix: str) -> tuple[int, int]:
    if low > high:
        raise InputError(f"jvm-overhead.min ({low}) is above jvm-overhead.max ({high})", field=f"{prefix}.jvm-overhead")
    if not 0 <= fraction < 1:
        raise InputError(f"must be in [0, 1), got {fraction}", field=f"{prefix}.jvm-overhead.fraction")
    overhead = _clamp(fraction_of(process_size, fraction), low, high)
    flink_size = process_size - metaspace - overhead
    if flink_size <= 0:
        raise InputError(
            f"process size {flink_memory(process_size)} is not above JVM metaspace {flink_memory(metaspace)} "
            f"+ JVM overhead {flink_memory(overhead)}", field=f"{prefix}.process.size")
    return overhead, flink_size


def task_manager_memory(options: TaskManagerMemoryOptions) -> TaskManagerMemory:
    """Flink's TaskManager memory breakdown derived from the total process size (Flink 2.x rules)."""
    if not 0 <= options.managed_fraction < 1:
        raise InputError(f"must be in [0, 1), got {options.managed_fraction}",
                         field="taskmanager.memory.managed.fraction")
    if not 0 <= options.network_fraction < 1:
        raise InputError(f"must be in [0, 1), got {options.network_fraction}",
                         field="taskmanager.memory.network.fraction")
    if options.network_min > options.network_max:
        raise InputError("network.min is above network.max", field="taskmanager.memory.network")
    overhead, flink_size = _overhead_and_flink_memory(
        options.process_size, options.jvm_overhead_fraction, options.jvm_overhead_min, options.jvm_overhead_max,
        options.jvm_metaspace, "taskmanager.memory")
    managed = fraction_of(flink_size, options.managed_fraction)
    network = _clamp(fraction_of(flink_size, options.network_fraction), options.network_min, options.network_max)
    task_heap = (flink_size - options.framework_heap - options.framework_off_heap - options.task_off_heap
                 - managed - network)
    if task_heap < 0:
        raise InputError(
            f"process size {flink_memory(options.process_size)} leaves no task heap: framework heap, framework and "
            f"task off-heap, managed ({managed} B) and network ({network} B) exceed Flink memory ({flink_size} B)",
            field="taskmanager.memory.process.size")
    return TaskManagerMemory(
        process_size=options.process_size, framework_heap=options.framework_heap, task_heap=task_heap,
        managed=managed, framework_off_heap=options.framework_off_heap, task_off_heap=options.task_off_heap,
        network=network, jvm_metaspace=options.jvm_metaspace, jvm_overhead=overhead)


@dataclass(frozen=True)
class JobManagerMemoryOptions:
    process_size: int = DEFAULT_JOB_MANAGER_PROCESS_SIZE
    off_heap: int = 128 * MiB
    jvm_metaspace: int = 256 * MiB
    jvm_overhead_fraction: float = 0.1
    jvm_overhead_min: int = 192 * MiB
    jvm_overhead_max: int = 1024 * MiB

    def flink_options(self) -> dict[str, str]:
        options = {"jobmanager.memory.process.size": flink_memory(self.process_size)}
        if self.off_heap != JobManagerMemoryOptions.off_heap:
            options["jobmanager.memory.off-heap.size"] = flink_memory(self.off_heap)
        return options


@dataclass(frozen=True)
class JobManagerMemory:
    """Every component of a JobManager's memory in bytes; the components sum to ``process_size``."""

    process_size: int
    heap: int
    off_heap: int
    jvm_metaspace: int
    jvm_overhead: int

    @property
    def total_flink_memory(self) -> int:
        return self.heap + self.off_heap

    def flink_options(self) -> dict[str, int]:
        """The resolved sizes as Flink's calculator reports them (``_calculator_options``)."""
        return _calculator_options("jobmanager.memory", self.process_size, self.total_flink_memory, {
            "jobmanager.memory.heap.size": self.heap,
            "jobmanager.memory.off-heap.size": self.off_heap,
            "jobmanager.memory.jvm-metaspace.size": self.jvm_metaspace,
            "jobmanager.memory.jvm-overhead": self.jvm_overhead,
        })

    def jvm_args(self) -> dict[str, int]:
        """The JVM flags Flink starts the JobManager with, flag -> bytes (no direct memory limit by default)."""
        return _jvm_args(self.heap, self.jvm_metaspace)


def job_manager_memory(options: JobManagerMemoryOptions) -> JobManagerMemory:
    """Flink's JobManager memory breakdown derived from the total process size."""
    overhead, flink_size = _overhead_and_flink_memory(
        options.process_size, options.jvm_overhead_fraction, options.jvm_overhead_min, options.jvm_overhead_max,
        options.jvm_metaspace, "jobmanager.memory")
    heap = flink_size - options.off_heap
    if heap <= 0:
        raise InputError(f"process size {flink_memory(options.process_size)} leaves no JVM heap after off-heap "
                         f"{flink_memory(options.off_heap)}", field="jobmanager.memory.process.size")
    return JobManagerMemory(process_size=options.process_size, heap=heap, off_heap=options.off_heap,
                            jvm_metaspace=options.jvm_metaspace, jvm_overhead=overhead)
