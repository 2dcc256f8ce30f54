"""A cluster start that fails after the JobManager started stops what it started: a TaskManager whose start
script failed (a size the JVM could not take) once left the JobManager running with nothing to stop it."""

from __future__ import annotations

from pathlib import Path

import pytest

from flinkscale.core.errors import RuntimeFailure
from flinkscale.flink.cluster import ClusterSpec, LocalCluster


@pytest.mark.parametrize("fails_at", ["jobmanager", "taskmanagers"])
def test_a_failed_start_stops_what_it_started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              fails_at: str) -> None:
    cluster = LocalCluster(tmp_path)
    started: list[str] = []
    stopped: list[bool] = []

    def run_script(script: str, *_: str) -> None:
        started.append(script)
        if fails_at == "jobmanager":
            raise RuntimeFailure("jobmanager.sh start failed")

    def start_task_managers(count: int) -> None:
        started.append(f"{count} taskmanager(s)")
        raise RuntimeFailure("taskmanager.sh start failed: [ERROR] The execution result is empty.")

    monkeypatch.setattr(cluster, "_run_script", run_script)
    monkeypatch.setattr(cluster, "start_task_managers", start_task_managers)
    monkeypatch.setattr(cluster, "down", lambda *_, **__: stopped.append(True) or [])
    with pytest.raises(RuntimeFailure, match="start failed"):
        cluster._start(ClusterSpec(task_managers=1, slots_per_task_manager=1), 18081, lambda _: None)
    assert started[0] == "jobmanager.sh"
    assert stopped == [True]
