"""Flink's memory model: components sum to the process size, Flink's rounding, invalid configs rejected."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from flinkscale.core.errors import InputError
from flinkscale.core.memory import (
    JobManagerMemoryOptions,
    TaskManagerMemoryOptions,
    fraction_of,
    job_manager_memory,
    task_manager_memory,
)
from flinkscale.core.units import GiB, MiB


@given(size=st.integers(min_value=1 * GiB, max_value=64 * GiB),
       managed=st.sampled_from([0.0, 0.1, 0.25, 0.4, 0.5]))
def test_task_manager_components_sum_to_process_size(size: int, managed: float) -> None:
    try:
        memory = task_manager_memory(TaskManagerMemoryOptions(process_size=size, managed_fraction=managed))
    except InputError:
        # Small TaskManagers with a large managed share leave no task heap; Flink rejects them too.
        assume(False)
        return
    assert sum(memory.components().values()) == size
    assert memory.jvm_heap == memory.framework_heap + memory.task_heap
    assert memory.jvm_direct == memory.framework_off_heap + memory.task_off_heap + memory.network
    assert 192 * MiB <= memory.jvm_overhead <= 1 * GiB
    assert memory.network >= 64 * MiB
    assert memory.task_heap >= 0


def test_task_manager_flink_options_are_the_dynamic_options_flink_reports() -> None:
    # The -D options of Flink's calculator (GET_TM_RESOURCE_PARAMS), in its order: network and JVM overhead are
    # ranged options, pinned at the resolved size; every other component is its own .size option.
    memory = task_manager_memory(TaskManagerMemoryOptions(process_size=4 * GiB))
    prefix = "taskmanager.memory."
    assert memory.flink_options() == {
        prefix + "process.size": 4 * GiB,
        prefix + "flink.size": memory.total_flink_memory,
        prefix + "framework.heap.size": memory.framework_heap,
        prefix + "task.heap.size": memory.task_heap,
        prefix + "managed.size": memory.managed,
        prefix + "framework.off-heap.size": memory.framework_off_heap,
        prefix + "task.off-heap.size": memory.task_off_heap,
        prefix + "network.min": memory.network,
        prefix + "network.max": memory.network,
        prefix + "jvm-metaspace.size": memory.jvm_metaspace,
        prefix + "jvm-overhead.min": memory.jvm_overhead,
        prefix + "jvm-overhead.max": memory.jvm_overhead,
    }
    assert list(memory.flink_options()) == [
        prefix + name for name in ("process.size", "flink.size", "framework.heap.size", "task.heap.size",
                                   "managed.size", "framework.off-heap.size", "task.off-heap.size", "network.min",
                                   "network.max", "jvm-metaspace.size", "jvm-overhead.min", "jvm-overhead.max")]


@given(size=st.integers(min_value=1 * GiB, max_value=64 * GiB))
def test_job_manager_components_sum_to_process_size(size: int) -> None:
    memory = job_manager_memory(JobManagerMemoryOptions(process_size=size))
    assert memory.heap + memory.off_heap + memory.jvm_metaspace + memory.jvm_overhead == size


@pytest.mark.parametrize(("num_bytes", "fraction", "flink_says"), [
    # Values printed by Flink 2.3's BashJavaUtils: 0.1 is the float 0.1f, and the product is truncated.
    (4 * GiB, 0.1, 429_496_736),
    (3_597_035_104, 0.4, 1_438_814_063),
    (3_597_035_104, 0.1, 359_703_515),
    (1600 * MiB, 0.1, 167_772_162),
])
def test_fraction_follows_flink_float_rounding(num_bytes: int, fraction: float, flink_says: int) -> None:
    assert fraction_of(num_bytes, fraction) == flink_says


def test_four_gib_task_manager_matches_flink_calculator() -> None:
    # The breakdown Flink 2.3 prints for taskmanager.memory.process.size: 4g.
    memory = task_manager_memory(TaskManagerMemoryOptions(process_size=4 * GiB))
    assert memory.flink_options()["taskmanager.memory.task.heap.size"] == 1_530_082_070
    assert memory.flink_options()["taskmanager.memory.managed.size"] == 1_438_814_063
    assert memory.jvm_args()["-XX:MaxDirectMemorySize"] == 493_921_243


@pytest.mark.parametrize(("options", "field"), [
    (TaskManagerMemoryOptions(process_size=1 * GiB, managed_fraction=0.7), "taskmanager.memory.process.size"),
    (TaskManagerMemoryOptions(process_size=400 * MiB), "taskmanager.memory.process.size"),
    (TaskManagerMemoryOptions(managed_fraction=1.2), "taskmanager.memory.managed.fraction"),
    (TaskManagerMemoryOptions(network_min=2 * GiB, network_max=1 * GiB), "taskmanager.memory.network"),
])
def test_invalid_task_manager_configs_are_rejected_with_the_option(options: TaskManagerMemoryOptions,
                                                                    field: str) -> None:
    with pytest.raises(InputError) as error:
        task_manager_memory(options)
    assert error.value.field == field


def test_network_min_raises_network_memory() -> None:
    plain = task_manager_memory(TaskManagerMemoryOptions(process_size=2 * GiB))
    raised = task_manager_memory(TaskManagerMemoryOptions(process_size=2 * GiB, network_min=512 * MiB))
    assert raised.network == 512 * MiB > plain.network
    assert sum(raised.components().values()) == 2 * GiB
