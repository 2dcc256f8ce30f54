"""The planner's memory breakdown equals Flink 2.3's own calculator, to the byte.

Flink's start scripts size a TaskManager/JobManager JVM by calling ``BashJavaUtils GET_TM_RESOURCE_PARAMS``
(or ``GET_JM_RESOURCE_PARAMS``) from ``bin/bash-java-utils.jar``; it prints two result lines, the JVM flags
and the resolved memory options as ``-D key=<bytes>b``. That is the oracle: no cluster is started, only Java.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from flinkscale.core.errors import InputError
from flinkscale.core.memory import (
    JobManagerMemoryOptions,
    TaskManagerMemoryOptions,
    job_manager_memory,
    task_manager_memory,
)
from flinkscale.core.units import GiB, MiB
from flinkscale.flink.home import flink_home, java_home

pytestmark = pytest.mark.integration

_RESULT_PREFIX = "BASH_JAVA_UTILS_EXEC_RESULT:"


def _flink_calculator(command: str, options: dict[str, str], config_dir: Path) -> tuple[dict[str, int], dict[str, int]]:
    home = flink_home()
    dist = sorted((home / "lib").glob("flink-dist-*.jar"))[0]
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "config.yaml").write_text("".join(f"{k}: {v}\n" for k, v in options.items()))
    completed = subprocess.run(
        [str(java_home() / "bin" / "java"), "-cp", f"{home / 'bin' / 'bash-java-utils.jar'}:{dist}",
         "org.apache.flink.runtime.util.bash.BashJavaUtils", command, "--configDir", str(config_dir)],
        capture_output=True, text=True, timeout=120, check=True)
    results = [line[len(_RESULT_PREFIX):] for line in completed.stdout.splitlines() if line.startswith(_RESULT_PREFIX)]
    assert len(results) == 2, completed.stdout + completed.stderr
    jvm: dict[str, int] = {}
    for flag in results[0].split():
        name, _, value = flag.partition("=") if flag.startswith("-XX:") else (flag[:4], "", flag[4:])
        jvm[name] = int(value)
    dynamic: dict[str, int] = {}
    for item in results[1].split("-D ")[1:]:
        key, _, value = item.strip().partition("=")
        if value.endswith("b") and value[:-1].isdigit():
            dynamic[key] = int(value[:-1])
    return jvm, dynamic


_SIZES = [1 * GiB, 1536 * MiB, 1728 * MiB, 2 * GiB, 3 * GiB, 4 * GiB, 6 * GiB, 8 * GiB, 12 * GiB, 16 * GiB,
          24 * GiB, 32 * GiB, 48 * GiB, 64 * GiB, 5 * GiB + 123 * MiB + 7]


@pytest.mark.parametrize("process_size", _SIZES)
@pytest.mark.parametrize("managed_fraction", [0.4, 0.0, 0.25, 0.7])
def test_task_manager_breakdown_equals_flink(process_size: int, managed_fraction: float, tmp_path: Path) -> None:
    options = TaskManagerMemoryOptions(process_size=process_size, managed_fraction=managed_fraction)
    flink_options = {**options.flink_options(), "taskmanager.memory.process.size": f"{process_size}b"}
    try:
        ours = task_manager_memory(options)
    except InputError:
        # We reject it (no task heap left): Flink must reject it too.
        with pytest.raises(subprocess.CalledProcessError):
            _flink_calculator("GET_TM_RESOURCE_PARAMS", flink_options, tmp_path)
        return
    jvm, dynamic = _flink_calculator("GET_TM_RESOURCE_PARAMS", flink_options, tmp_path)
    expected = {k: v for k, v in ours.flink_options().items() if k in dynamic}
    assert len(expected) == 10
    assert {k: dynamic[k] for k in expected} == expected
    assert jvm == ours.jvm_args()


@pytest.mark.parametrize("overrides", [
    {"network_min": 256 * MiB, "network_fraction": 0.05},
    {"task_off_heap": 512 * MiB, "network_fraction": 0.15},
    {"jvm_overhead_fraction": 0.2, "jvm_metaspace": 384 * MiB},
])
def test_task_manager_breakdown_with_tuned_options_equals_flink(overrides: dict[str, float], tmp_path: Path) -> None:
    options = TaskManagerMemoryOptions(process_size=8 * GiB, **overrides)  # type: ignore[arg-type]
    ours = task_manager_memory(options)
    jvm, dynamic = _flink_calculator("GET_TM_RESOURCE_PARAMS", options.flink_options(), tmp_path)
    assert {k: dynamic[k] for k in ours.flink_options() if k in dynamic} == {
        k: v for k, v in ours.flink_options().items() if k in dynamic}
    assert jvm == ours.jvm_args()


@pytest.mark.parametrize("process_size", [1 * GiB, 1600 * MiB, 2 * GiB, 3 * GiB, 4 * GiB, 8 * GiB, 10 * GiB + 3,
                                          16 * GiB, 32 * GiB, 64 * GiB])
def test_job_manager_breakdown_equals_flink(process_size: int, tmp_path: Path) -> None:
    ours = job_manager_memory(JobManagerMemoryOptions(process_size=process_size))
    jvm, dynamic = _flink_calculator("GET_JM_RESOURCE_PARAMS", {"jobmanager.memory.process.size": f"{process_size}b"},
                                     tmp_path)
    expected = {k: v for k, v in ours.flink_options().items() if k in dynamic}
    assert len(expected) == 5
    assert {k: dynamic[k] for k in expected} == expected
    assert jvm == ours.jvm_args()


_EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workloads"


@pytest.mark.parametrize("example", sorted(p.stem for p in _EXAMPLES.glob("*.yaml")))
def test_emitted_config_yaml_loads_in_flink_and_gives_the_planned_memory(example: str, tmp_path: Path) -> None:
    """The whole emitted config.yaml goes through Flink's own YAML loader and memory calculator."""
    from flinkscale.core.plan import build_plan
    from flinkscale.core.workload import parse_workload_text
    from flinkscale.report.plan import flink_config_yaml

    plan = build_plan(parse_workload_text((_EXAMPLES / f"{example}.yaml").read_text()))
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "config.yaml").write_text(flink_config_yaml(plan))
    home = flink_home()
    dist = sorted((home / "lib").glob("flink-dist-*.jar"))[0]
    completed = subprocess.run(
        [str(java_home() / "bin" / "java"), "-cp", f"{home / 'bin' / 'bash-java-utils.jar'}:{dist}",
         "org.apache.flink.runtime.util.bash.BashJavaUtils", "GET_TM_RESOURCE_PARAMS", "--configDir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=True)
    results = [line for line in completed.stdout.splitlines() if line.startswith(_RESULT_PREFIX)]
    memory = plan.capacity.cluster.memory
    assert results[0] == _RESULT_PREFIX + " ".join(f"{flag}{'=' if flag.startswith('-XX') else ''}{value}"
                                                   for flag, value in memory.jvm_args().items())
    assert f"-D taskmanager.memory.managed.size={memory.managed}b" in results[1]
    assert f"-D taskmanager.numberOfTaskSlots={plan.capacity.cluster.slots_per_task_manager}" in results[1]
