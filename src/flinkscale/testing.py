"""Testing helpers shipped with the package: drive the loop, the executor and the control step without a cluster.

Everything here implements the small interfaces in ``flinkscale.flink.protocols``, so a test (ours or a
user's, e.g. for a policy of their own) runs the real loop and executor code against fakes:

- ``FakeClock``: time that moves only when slept on (or by hand); pass ``clock`` and ``clock.sleep``.
- ``FakeJob``: one Flink job behind ``JobControl``: rescales in place after a few polls, stops with a
  savepoint (which may fail a given number of times), reports slots; every call is recorded in ``calls``.
- ``FakeSlots``: a cluster behind ``SlotProvider`` that starts and stops TaskManagers of a ``FakeJob``.
- ``ScriptedSampler``: a collector that returns scripted snapshots (``OUTAGE`` raises a REST error,
  ``None`` is a skipped sample).
- Snapshot builders: ``vertex``, ``snapshot`` and ``load_snapshots`` (JSONL, one ``MetricsSnapshot.to_dict()``
  per line, as the loop's run directory holds them).

For recorded REST conversations see ``flinkscale.flink.testing`` (``RecordingTransport``, ``ReplayTransport``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flinkscale.core.errors import EndpointError, RuntimeFailure
from flinkscale.core.snapshot import ClusterResources, Edge, MetricsSnapshot, ShipStrategy, Vertex, VertexMetrics
from flinkscale.flink.models import (
    CheckpointConfig,
    CheckpointStatistics,
    ClusterOverview,
    JobDetails,
    JobVertexInfo,
    RescaleConfig,
    RescaleHistoryEntry,
    TaskManagerInfo,
    VertexCounters,
)

if TYPE_CHECKING:
    from flinkscale.flink.protocols import JobControl, Sampler, SlotProvider

__all__ = [
    "FAKE_JOB_ID",
    "OUTAGE",
    "FakeClock",
    "FakeJob",
    "FakeSlots",
    "ScriptedSampler",
    "load_snapshots",
    "snapshot",
    "vertex",
]

FAKE_JOB_ID = "a" * 32
#: In a ``ScriptedSampler`` script (or ``FakeJob.states``): the REST API is unreachable for that call.
OUTAGE = "outage"


class FakeClock:
    """Seconds since the epoch that advance only through ``sleep`` (recorded) or ``advance``."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeJob:
    """One job on a fake cluster, behind ``JobControl``. A PUT of resource requirements takes effect after
    ``rescale_polls`` calls of ``job()``; each ``job()`` call advances the clock by 0.1 s."""

    clock: FakeClock
    parallelism: dict[str, int] = field(default_factory=lambda: {"src": 1, "agg": 1})
    scheduler: str = "adaptive"
    cooldown: str = "5 s"
    # States job() reports first, one per call (e.g. "RESTARTING"; OUTAGE raises a REST error).
    states: list[str] = field(default_factory=list)
    rescale_polls: int = 2
    savepoint_failures: int = 0
    tm_count: int = 2
    slots_per_task_manager: int = 1
    job_id: str = FAKE_JOB_ID
    max_parallelism: int = 120
    calls: list[tuple[str, Any]] = field(default_factory=list)
    checkpoints_completed: int = 10
    checkpoint_interval_ms: float | None = 5000.0
    # None: a cluster without Flink 2.3's /jobs/:jid/rescales/config (settings come from config()).
    rescale_settings: RescaleConfig | None = None
    _pending: dict[str, int] | None = None
    _polls_left: int = 0

    # --- reads ---
    def config(self) -> dict[str, str]:
        return {"jobmanager.scheduler": self.scheduler,
                "jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling": self.cooldown}

    def scheduler_type(self, job_id: str) -> str | None:
        return "Adaptive" if self.scheduler == "adaptive" else "Default"

    def job(self, job_id: str) -> JobDetails:
        self.calls.append(("job", job_id))
        self.clock.now += 0.1
        state = self.states.pop(0) if self.states else "RUNNING"
        if state == OUTAGE:
            raise EndpointError("cannot connect", endpoint="GET /jobs")
        if self._pending is not None:
            self._polls_left -= 1
            if self._polls_left <= 0:
                self.parallelism, self._pending = self._pending, None
        running = state == "RUNNING" and self._pending is None
        vertices = tuple(
            JobVertexInfo(vid, f"vertex {vid}", p, self.max_parallelism, state, VertexCounters(*(None,) * 7),
                          {"RUNNING": p} if running else {"DEPLOYING": p})
            for vid, p in self.parallelism.items())
        return JobDetails(self.job_id, "job", state, self.max_parallelism, vertices, (), 0, 0)

    def overview(self) -> ClusterOverview:
        used = max(self.parallelism.values())
        total = self.tm_count * self.slots_per_task_manager
        return ClusterOverview(self.tm_count, total, total - used, 1, "2.3.0")

    def task_managers(self) -> list[TaskManagerInfo]:
        """TaskManager i has data port 50000 + i; the first ``max(parallelism)`` hold a busy slot."""
        used = max(self.parallelism.values())
        return [TaskManagerInfo(f"localhost:{40000 + i}-x", 1, 0 if i < used else 1, 50000 + i, {})
                for i in range(self.tm_count)]

    def checkpoints(self, job_id: str) -> CheckpointStatistics:
        self.checkpoints_completed += 1
        return CheckpointStatistics(self.checkpoints_completed, 0, 0, 0, None, None, None, None, None, None)

    def checkpoint_config(self, job_id: str) -> CheckpointConfig:
        return CheckpointConfig("exactly_once", self.checkpoint_interval_ms, 600_000.0, "hashmap", False)

    def rescale_config(self, job_id: str) -> RescaleConfig | None:
        return self.rescale_settings

    def rescale_history(self, job_id: str) -> list[RescaleHistoryEntry] | None:
        return None if self.rescale_settings is None else []

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
        return "file:///savepoints/sp-1"

    def wait_job_state(self, job_id: str, states: Iterable[str]) -> str:
        return "FINISHED"

    def cancel(self, job_id: str) -> None:
        self.calls.append(("cancel", job_id))
        raise AssertionError("the executor must never cancel a job")


class FakeSlots:
    """A cluster behind ``SlotProvider`` whose TaskManagers are ``job``'s: TaskManager i runs as pid 100 + i.

    ``identifiable=False`` makes every TaskManager's process unknown (nothing may then be stopped)."""

    def __init__(self, job: FakeJob, supervised: int | None = None, *, identifiable: bool = True) -> None:
        self.job = job
        self.supervised = job.tm_count if supervised is None else supervised
        self.identifiable = identifiable
        self.counts: list[int] = []
        self.started: list[int] = []
        self.stopped: list[int] = []

    def supervised_task_managers(self) -> int | None:
        return self.supervised

    def set_task_manager_count(self, count: int) -> None:
        self.counts.append(count)
        self.supervised = count

    def start_task_managers(self, count: int) -> None:
        self.started.append(count)
        self.job.tm_count += count

    def task_manager_pid(self, task_manager: TaskManagerInfo) -> int | None:
        if not self.identifiable or task_manager.data_port is None:
            return None
        return 100 + task_manager.data_port - 50000

    def stop_task_manager(self, pid: int) -> None:
        self.stopped.append(pid)
        self.job.tm_count -= 1


class ScriptedSampler:
    """A collector that returns its script in order: a snapshot, ``None`` (a skipped sample, with a reason
    in ``skipped``) or ``OUTAGE`` (raises ``EndpointError``); ``None`` once the script is used up."""

    def __init__(self, script: Iterable[MetricsSnapshot | str | None], *, started_at: float | None = None) -> None:
        self.script = list(script)
        self.skipped: list[str] = []
        # The job's start-time, as a collector reports it (None: unknown, the control step's rule 5 is off).
        self.started_at = started_at

    def sample(self) -> MetricsSnapshot | None:
        if not self.script:
            return None
        item = self.script.pop(0)
        if item == OUTAGE:
            raise EndpointError("cannot connect", endpoint="GET /jobs/x")
        if item is None:
            self.skipped.append("vertex v was rescaled during the sample; sample discarded")
            return None
        if not isinstance(item, MetricsSnapshot):
            raise TypeError(f"a script holds snapshots, None or OUTAGE, not {item!r}")
        return item


def vertex(vertex_id: str, parallelism: int = 1, *, rate: float | None = 1000.0, busy_ms: float | None = 500.0,
           busy_avg_ms: float | None = None, back_pressured_ms: float | None = 0.0, lag: float | None = None,
           lag_growth: float | None = None, source: bool = False, sink: bool = False, partitions: int | None = None,
           max_parallelism: int = 128, name: str | None = None) -> Vertex:
    """A vertex with the metrics the policies read: ``rate`` records/s in (and out), busy time of the busiest
    subtask (``busy_ms``) and on average (``busy_avg_ms``, default the same), backpressure, and for a source
    its lag and lag growth."""
    metrics = VertexMetrics(
        num_records_in_per_second=rate, num_records_out_per_second=rate,
        busy_time_ms_per_second_max=busy_ms,
        busy_time_ms_per_second_avg=busy_avg_ms if busy_avg_ms is not None else busy_ms,
        back_pressured_time_ms_per_second_max=back_pressured_ms,
        back_pressured_time_ms_per_second_avg=back_pressured_ms,
        pending_records=lag, pending_records_per_second=lag_growth)
    return Vertex(vertex_id, name or vertex_id, parallelism, max_parallelism, is_source=source, is_sink=sink,
                  partitions=partitions, metrics=metrics)


def snapshot(vertices: Sequence[Vertex], *, timestamp: float = 1_000.0, edges: Sequence[tuple[str, str]] = (),
             ship: ShipStrategy = ShipStrategy.REBALANCE, job_id: str = FAKE_JOB_ID, window_seconds: float = 60.0,
             job_state: str = "RUNNING", max_slots: int | None = None, slots_per_task_manager: int = 1
             ) -> MetricsSnapshot:
    """A snapshot of ``vertices`` joined by ``edges`` (source id, target id). ``max_slots`` sets a cluster
    ceiling (TaskManagers of ``slots_per_task_manager`` slots) with the job using the slots it needs."""
    cluster = None
    if max_slots is not None:
        used = max((v.parallelism for v in vertices), default=0)
        task_managers = max(1, -(-used // slots_per_task_manager))
        total = task_managers * slots_per_task_manager
        cluster = ClusterResources(task_managers, total, total - used, slots_per_task_manager,
                                   max_slots // slots_per_task_manager)
    return MetricsSnapshot(timestamp=timestamp, job_id=job_id, job_name="job", vertices=tuple(vertices),
                           edges=tuple(Edge(a, b, ship) for a, b in edges), job_state=job_state,
                           window_seconds=window_seconds, cluster=cluster)


def load_snapshots(path: Path) -> list[MetricsSnapshot]:
    """Snapshots from a JSONL file (one ``MetricsSnapshot.to_dict()`` per line; blank lines skipped)."""
    return [MetricsSnapshot.from_dict(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


if TYPE_CHECKING:  # mypy proves that the fakes implement the protocols the executor and the loop are written to

    def _implements(job: FakeJob, slots: FakeSlots, sampler: ScriptedSampler
                    ) -> tuple[JobControl, SlotProvider, Sampler]:
        return job, slots, sampler
