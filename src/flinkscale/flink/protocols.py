"""The small interfaces the loop and the executor are written against, so that anything with these
methods can stand behind them: the REST client and the local cluster in production, the fakes in
``flinkscale.testing`` in tests, another cluster manager tomorrow.

- ``Sampler``: a snapshot of the interval just ended (``collector.Collector``).
- ``Applier``: carries a decision out and says how long it took (``executor.Executor``).
- ``JobControl``: what the executor reads and asks of Flink's REST API for one job: its state, the
  cluster's slots, rescaling in place, stop-with-savepoint (``rest.FlinkRestClient``). Like the operator
  autoscaler's ``ScalingRealizer``: the decision is made elsewhere, this only realises it.
- ``SlotProvider``: a cluster that can grow and shrink by TaskManagers (``cluster.LocalCluster``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from flinkscale.core.policy.base import Decision, RescaleRecord
from flinkscale.core.snapshot import MetricsSnapshot
from flinkscale.flink.models import (
    CheckpointConfig,
    CheckpointStatistics,
    ClusterOverview,
    JobDetails,
    RescaleConfig,
    RescaleHistoryEntry,
    TaskManagerInfo,
)


class Sampler(Protocol):
    """What the loop needs of a collector: a snapshot per call (None while priming or after a restart),
    and the reasons it skipped samples."""

    skipped: list[str]

    def sample(self) -> MetricsSnapshot | None: ...


class Applier(Protocol):
    """What the loop needs of an executor."""

    @property
    def job_id(self) -> str: ...

    def apply(self, decision: Decision) -> RescaleRecord | None: ...


class JobControl(Protocol):
    """What the executor needs of Flink's REST API."""

    def config(self) -> dict[str, str]: ...

    def scheduler_type(self, job_id: str) -> str | None: ...

    def job(self, job_id: str) -> JobDetails: ...

    def overview(self) -> ClusterOverview: ...

    def task_managers(self) -> list[TaskManagerInfo]: ...

    def checkpoints(self, job_id: str) -> CheckpointStatistics: ...

    def checkpoint_config(self, job_id: str) -> CheckpointConfig: ...

    def rescale_config(self, job_id: str) -> RescaleConfig | None:
        """Flink 2.3's ``/jobs/:jid/rescales/config``; None where the cluster does not have it."""
        ...

    def rescale_history(self, job_id: str) -> list[RescaleHistoryEntry] | None:
        """Flink 2.3's ``/jobs/:jid/rescales/history`` (newest first); None where the cluster does not have it."""
        ...

    def set_resource_requirements(self, job_id: str, bounds: Mapping[str, tuple[int, int]]) -> None: ...

    def trigger_stop_with_savepoint(self, job_id: str, target_directory: str | None = None,
                                    drain: bool = False) -> str: ...

    def wait_savepoint(self, job_id: str, request_id: str) -> str: ...

    def wait_job_state(self, job_id: str, states: Iterable[str]) -> str: ...


class SlotProvider(Protocol):
    """A cluster the executor may grow (more slots for a scale-up) and shrink (idle TaskManagers after a
    scale-down)."""

    def supervised_task_managers(self) -> int | None:
        """TaskManagers the cluster keeps alive; None when it is not running."""
        ...

    def start_task_managers(self, count: int) -> None: ...

    def set_task_manager_count(self, count: int) -> None:
        """The count the cluster keeps alive from now on (lowered before stopping, raised after starting)."""
        ...

    def task_manager_pid(self, task_manager: TaskManagerInfo) -> int | None:
        """The process of a registered TaskManager; None unless it is certain (no match, no stop)."""
        ...

    def stop_task_manager(self, pid: int) -> None: ...
