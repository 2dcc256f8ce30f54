"""A fake Flink REST client and clock for executor and loop tests: just enough state to rescale a job."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from flinkscale.core.errors import EndpointError, RuntimeFailure
from flinkscale.flink.models import (
    CheckpointStatistics,
    ClusterOverview,
    JobDetails,
    JobVertexInfo,
    TaskManagerInfo,
    VertexCounters,
)

JOB = "a" * 32
NEW_JOB = "b" * 32


class FakeClock:
    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class FakeFlink:
    """One job; a PUT of resource requirements takes effect after ``rescale_polls`` polls of ``job()``."""

    clock: FakeClock
    parallelism: dict[str, int] = field(default_factory=lambda: {"src": 1, "agg": 1})
    scheduler: str = "adaptive"
    cooldown: str = "5 s"
    states: list[str] = field(default_factory=list)  # states job() reports first (e.g. RESTARTING)
    rescale_polls: int = 2
    savepoint_failures: int = 0
    tm_count: int = 2
    slots_per_task_manager: int = 1
    job_id: str = JOB
    calls: list[tuple[str, Any]] = field(default_factory=list)
    _pending: dict[str, int] | None = None
    _polls_left: int = 0
    checkpoints_completed: int = 10

    # --- reads ---
    def _request(self, method: str, path: str, **_: Any) -> Any:
        return {"jid": self.job_id, "schedulerType": "Adaptive" if self.scheduler == "adaptive" else "Default"}

    def _job_path(self, job_id: str) -> str:
        return f"/jobs/{job_id}"

    def config(self) -> dict[str, str]:
        return {"jobmanager.scheduler": self.scheduler,
                "jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling": self.cooldown}

    def job(self, job_id: str) -> JobDetails:
        self.calls.append(("job", job_id))
        self.clock.now += 0.1
        if self.states:
            state = self.states.pop(0)
            if state == "OUTAGE":
                raise EndpointError("cannot connect", endpoint="GET /jobs")
        else:
            state = "RUNNING"
        if self._pending is not None:
            self._polls_left -= 1
            if self._polls_left <= 0:
                self.parallelism, self._pending = self._pending, None
        vertices = tuple(
            JobVertexInfo(vid, f"vertex {vid}", p, 120, state, VertexCounters(*(None,) * 7),
                          {"RUNNING": p} if state == "RUNNING" and self._pending is None else {"DEPLOYING": p})
            for vid, p in self.parallelism.items())
        return JobDetails(self.job_id, "job", state, 120, vertices, (), 0, 0)

    def overview(self) -> ClusterOverview:
        used = max(self.parallelism.values())
        total = self.tm_count * self.slots_per_task_manager
        return ClusterOverview(self.tm_count, total, total - used, 1, "2.3.0")

    def task_managers(self) -> list[TaskManagerInfo]:
        used = max(self.parallelism.values())
        return [TaskManagerInfo(f"localhost:{40000 + i}-x", 1, 0 if i < used else 1, 50000 + i, {})
                for i in range(self.tm_count)]

    def checkpoints(self, job_id: str) -> CheckpointStatistics:
        self.checkpoints_completed += 1
        return CheckpointStatistics(self.checkpoints_completed, 0, 0, 0, None, None, None, None, None, None)

    # --- writes ---
    def set_resource_requirements(self, job_id: str, bounds: Mapping[str, tuple[int, int]]) -> None:
        self.calls.append(("put", dict(bounds)))
        self._pending = {vid: hi for vid, (_, hi) in bounds.items()}
        self._polls_left = self.rescale_polls

    def trigger_stop_with_savepoint(self, job_id: str, target_directory: str | None = None,
                                    drain: bool = False) -> str:
        self.calls.append(("stop", job_id))
        return "req"

    def wait_savepoint(self, job_id: str, request_id: str) -> str:
        if self.savepoint_failures:
            self.savepoint_failures -= 1
            self.calls.append(("savepoint-failed", job_id))
            raise RuntimeFailure("savepoint failed: checkpoint declined")
        self.calls.append(("savepoint", job_id))
        self.state_after_stop = "FINISHED"
        return "file:///savepoints/sp-1"

    def wait_job_state(self, job_id: str, states: Any) -> str:
        return "FINISHED"

    def cancel(self, job_id: str) -> None:
        self.calls.append(("cancel", job_id))
        raise AssertionError("the executor must never cancel a job")


class FakeCluster:
    """A LocalCluster stand-in recording TaskManager count changes."""

    def __init__(self, flink: FakeFlink, supervised: int | None = None) -> None:
        self.flink = flink
        self.supervised = flink.tm_count if supervised is None else supervised
        self.counts: list[int] = []
        self.started: list[int] = []
        self.stopped: list[int] = []

    def info(self) -> object:
        return SimpleNamespace(task_managers=self.supervised)

    def set_task_manager_count(self, count: int) -> None:
        self.counts.append(count)
        self.supervised = count

    def start_task_managers(self, count: int) -> None:
        self.started.append(count)
        self.flink.tm_count += count

    def pids(self, daemon: str) -> list[int]:
        return [100 + i for i in range(self.flink.tm_count)]

    def stop_task_manager(self, pid: int) -> None:
        self.stopped.append(pid)
        self.flink.tm_count -= 1
