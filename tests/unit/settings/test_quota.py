"""Quotas and --max-slots as one slot ceiling (core.quota): whole TaskManagers, exact decimals, the lowest binds."""

from __future__ import annotations

import pytest

from flinkscale.core.errors import InputError
from flinkscale.core.job_settings import AutoscaleConfig, Sourced, parse_config_text
from flinkscale.core.memory import DEFAULT_TASK_MANAGER_PROCESS_SIZE
from flinkscale.core.quota import SlotCeiling, TaskManagerSize, slot_ceiling, task_manager_size
from flinkscale.core.units import GiB, MiB

TM = TaskManagerSize(cpu=1.0, memory_bytes=4 * GiB, slots=2, source="test")


def test_a_cpu_quota_admits_whole_task_managers_times_their_slots() -> None:
    ceiling = slot_ceiling(task_manager=TM, quota_cpu=6, quota_cpu_source="job-config")
    assert ceiling.slots == 12  # 6 TaskManagers of 1 core, 2 slots each
    assert ceiling.explain() == ("ceiling 12 slots: quota.cpu 6 cores / 1 core per TaskManager of 2 slots "
                                 "(0.5 cores per slot) = 6 TaskManagers (from job-config)")


@pytest.mark.parametrize(("quota", "tm_cpu", "slots"), [
    (6.5, 1.0, 12),    # half a TaskManager is no TaskManager: rounded down
    (0.3, 0.1, 6),     # exact on the decimals written: 3 TaskManagers, not 2 (0.3 / 0.1 < 3 in binary floats)
    (0.7, 0.1, 14),
    (2.1, 0.7, 6),
    (0.9, 1.0, 0),     # under one TaskManager: nothing fits
    (1e-9, 4.0, 0),
    (1000.0, 0.25, 8000),
])
def test_rounding_of_the_cpu_quota(quota: float, tm_cpu: float, slots: int) -> None:
    tm = TaskManagerSize(cpu=tm_cpu, memory_bytes=GiB, slots=2)
    assert slot_ceiling(task_manager=tm, quota_cpu=quota).slots == slots


@pytest.mark.parametrize(("quota", "slots"), [
    (16 * GiB, 8),          # exactly 4 TaskManagers
    (16 * GiB - 1, 6),      # one byte short of the 4th
    (4 * GiB - 1, 0),
    (16 * 10**9, 6),        # 16 GB (decimal) is 14.9 GiB: 3 TaskManagers
])
def test_rounding_of_the_memory_quota(quota: int, slots: int) -> None:
    assert slot_ceiling(task_manager=TM, quota_memory_bytes=quota).slots == slots


def test_the_lowest_bound_binds_and_says_so() -> None:
    ceiling = slot_ceiling(task_manager=TM, max_slots=20, max_slots_source="cli", quota_cpu=64,
                           quota_cpu_source="file:a.yaml#cluster", quota_memory_bytes=40 * GiB,
                           quota_memory_source="file:a.yaml#cluster")
    assert [b.slots for b in ceiling.bounds] == [20, 128, 20]
    assert ceiling.slots == 20
    binding = ceiling.binding
    assert binding is not None and binding.name == "--max-slots"  # a tie keeps the first stated
    assert ceiling.explain() == "ceiling 20 slots: max-slots 20 (from cli)"
    memory = slot_ceiling(task_manager=TM, max_slots=40, quota_memory_bytes=40 * GiB, quota_memory_source="q")
    assert memory.slots == 20 and memory.binding is not None and memory.binding.name == "quota.memory"
    assert memory.explain() == ("ceiling 20 slots: quota.memory 40.00 GiB / 4.00 GiB per TaskManager of 2 slots "
                                "= 10 TaskManagers (from q)")


def test_nothing_configured_is_no_ceiling() -> None:
    ceiling = slot_ceiling(task_manager=TM)
    assert ceiling.slots is None and ceiling.binding is None
    assert ceiling.explain() == "no configured slot ceiling"


def test_a_jobs_quota_and_the_clusters_combine_and_the_lower_wins() -> None:
    job = slot_ceiling(task_manager=TM, quota_cpu=3, quota_cpu_source="job-config")
    cluster = slot_ceiling(task_manager=TM, max_slots=40)
    combined = cluster.lower(job)
    assert combined.slots == 6 and combined.binding is not None and combined.binding.name == "quota.cpu"
    assert SlotCeiling().lower(cluster).slots == 40


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"quota_cpu": 0.0}, "quota.cpu"),
    ({"quota_cpu": -2.0}, "quota.cpu"),
    ({"quota_cpu": float("nan")}, "quota.cpu"),
    ({"quota_cpu": float("inf")}, "quota.cpu"),
    ({"quota_memory_bytes": 0}, "quota.memory"),
    ({"max_slots": 0}, "max-slots"),
])
def test_invalid_bounds_name_their_key(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(InputError) as raised:
        slot_ceiling(task_manager=TM, **kwargs)  # type: ignore[arg-type]
    assert raised.value.field == field


# --- the TaskManager size ------------------------------------------------------------------------------------

def test_the_task_manager_size_from_the_jobs_flink_configuration() -> None:
    tm = task_manager_size({"taskmanager.numberOfTaskSlots": "4", "kubernetes.taskmanager.cpu": "2.0",
                            "taskmanager.memory.process.size": "8192m", "execution.target": "kubernetes-session"})
    assert (tm.cpu, tm.memory_bytes, tm.slots, tm.source) == (2.0, 8192 * MiB, 4, "job config")
    assert tm.cpu_per_slot == 0.5


def test_flinks_defaults_one_core_per_slot_standalone_one_core_on_kubernetes() -> None:
    standalone = task_manager_size({"taskmanager.numberOfTaskSlots": "4"})
    assert standalone.cpu == 4.0 and standalone.memory_bytes == DEFAULT_TASK_MANAGER_PROCESS_SIZE
    kubernetes = task_manager_size({"taskmanager.numberOfTaskSlots": "4", "execution.target": "kubernetes-application"})
    assert kubernetes.cpu == 1.0
    assert task_manager_size({}) == TaskManagerSize(1.0, DEFAULT_TASK_MANAGER_PROCESS_SIZE, 1, "Flink's default")


def test_a_configured_size_wins_over_the_jobs_configuration() -> None:
    tm = task_manager_size({"taskmanager.numberOfTaskSlots": "4", "taskmanager.memory.process.size": "8g"},
                           cpu=3.0, slots=6, configured_source="file:a.yaml#cluster")
    assert (tm.cpu, tm.slots, tm.memory_bytes) == (3.0, 6, 8 * GiB)
    assert tm.source == "file:a.yaml#cluster + job config"


@pytest.mark.parametrize(("config", "field"), [
    ({"taskmanager.numberOfTaskSlots": "0"}, "taskmanager.numberOfTaskSlots"),
    ({"taskmanager.numberOfTaskSlots": "two"}, "taskmanager.numberOfTaskSlots"),
    ({"kubernetes.taskmanager.cpu": "lots"}, "kubernetes.taskmanager.cpu"),
    ({"yarn.containers.vcores": "-1"}, "yarn.containers.vcores"),
    ({"taskmanager.memory.process.size": "a lot"}, "taskmanager.memory.process.size"),
    # Flink's memory model refuses a TaskManager this small (metaspace + overhead exceed it)
    ({"taskmanager.memory.process.size": "300m"}, "taskmanager.memory.process.size"),
])
def test_a_bad_task_manager_size_names_its_key(config: dict[str, str], field: str) -> None:
    with pytest.raises(InputError) as raised:
        task_manager_size(config)
    assert raised.value.field == field


# --- where the cluster's bounds are configured ------------------------------------------------------------------

def test_the_config_files_cluster_section_states_quotas_and_the_task_manager_size() -> None:
    config = parse_config_text("cluster:\n  quota.cpu: 16\n  quota.memory: 64GiB\n  taskmanager.cpu: 2\n"
                               "  taskmanager.memory.process.size: 8g\n  taskmanager.numberOfTaskSlots: 4\n", "a.yaml")
    cluster = config.cluster
    assert cluster.quota_cpu == Sourced(16.0, "file:a.yaml#cluster")
    assert cluster.quota_memory_bytes.value == 64 * GiB
    assert (cluster.task_manager_cpu, cluster.task_manager_memory_bytes, cluster.task_manager_slots) == (2, 8 * GiB, 4)
    overridden = cluster.with_quotas("10", "32GiB")
    assert overridden.quota_cpu == Sourced(10.0, "cli") and overridden.quota_memory_bytes == Sourced(32 * GiB, "cli")
    assert cluster.with_quotas(None, None) == cluster
    tm = task_manager_size({}, cpu=cluster.task_manager_cpu, memory_bytes=cluster.task_manager_memory_bytes,
                           slots=cluster.task_manager_slots)
    # cpu: 16 / 2 = 8 TaskManagers; memory: 64 / 8 = 8 TaskManagers; 4 slots each
    assert slot_ceiling(task_manager=tm, quota_cpu=16, quota_memory_bytes=64 * GiB).slots == 32


@pytest.mark.parametrize(("text", "expected"), [
    ("cluster:\n  quota.cpu: 0\n", "a.yaml: cluster.quota.cpu: "),
    ("cluster:\n  quota.cpu: .nan\n", "a.yaml: cluster.quota.cpu: "),
    ("cluster:\n  quota.memory: 0\n", "a.yaml: cluster.quota.memory: must be > 0"),
    ("cluster:\n  taskmanager.numberOfTaskSlots: 0\n", "a.yaml: cluster.taskmanager.numberOfTaskSlots: "),
    ("cluster:\n  taskmanager.memory.process.size: 200m\n", "a.yaml: cluster.taskmanager.memory.process.size: "),
    ("cluster:\n  taskmanager.cores: 2\n", "a.yaml: cluster.taskmanager.cores: unknown key"),
])
def test_a_bad_cluster_value_is_one_line_naming_the_file_and_key(text: str, expected: str) -> None:
    with pytest.raises(InputError) as raised:
        parse_config_text(text, "a.yaml")
    assert str(raised.value).startswith(expected) and "\n" not in str(raised.value)


@pytest.mark.parametrize(("cpu", "memory", "field"), [
    ("x", None, "--quota-cpu"), ("-1", None, "--quota-cpu"), ("inf", None, "--quota-cpu"),
    (None, "0", "--quota-memory"), (None, "lots", "--quota-memory")])
def test_bad_quota_flags_name_the_flag(cpu: str | None, memory: str | None, field: str) -> None:
    with pytest.raises(InputError) as raised:
        AutoscaleConfig().cluster.with_quotas(cpu, memory)
    assert raised.value.field == field


def test_the_example_configs_cluster_ceiling_is_as_its_comments_say() -> None:
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "examples" / "autoscale" / "autoscale.yaml"
    cluster = parse_config_text(path.read_text(encoding="utf-8"), str(path)).cluster
    tm = task_manager_size({}, cpu=cluster.task_manager_cpu, memory_bytes=cluster.task_manager_memory_bytes,
                           slots=cluster.task_manager_slots)
    ceiling = slot_ceiling(task_manager=tm, max_slots=cluster.max_slots.value, quota_cpu=cluster.quota_cpu.value,
                           quota_memory_bytes=cluster.quota_memory_bytes.value)
    assert [b.slots for b in ceiling.bounds] == [120, 512, 464]
    assert ceiling.slots == 120 and ceiling.binding is not None and ceiling.binding.name == "--max-slots"
