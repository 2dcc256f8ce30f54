"""The executor: carries a policy's ``Decision`` out on a real Flink job, safely, and measures how long it took.

Two ways to change a running job's parallelism, chosen by the scheduler the job runs under:

* **In place** (adaptive scheduler, ``jobmanager.scheduler: adaptive`` or the job's ``schedulerType``):
  ``PUT /jobs/:jid/resource-requirements`` with ``(1, p)`` for *every* vertex. The scheduler takes a
  checkpoint-consistent restart by itself; no savepoint or resubmission is involved.
* **Savepoint and resubmit** (any other scheduler, and ``rebalance`` whose config changes need a restart):
  stop-with-savepoint, then the caller's ``resubmit(savepoint_path) -> job_id``. The reference pipeline is
  resubmitted at its *original* base parallelism (a different ``-p`` changes the SQL job's chaining and with
  it the generated operator ids, so the savepoint would not map) and, when its scheduler is adaptive, reaches
  the per-vertex target with an in-place PUT afterwards.

Safety rules users rely on: the executor never cancels a job, and only stops one through
stop-with-savepoint whose savepoint *completed* (a failed savepoint leaves the job running and is retried
after the next completed checkpoint). Before acting it waits out a job that is RESTARTING or not fully
RUNNING, and the adaptive scheduler's ``cooldown-after-rescaling`` since the last rescale (a PUT inside it
would be deferred silently, making the measured duration meaningless). After acting it waits until every
vertex runs at its target parallelism and returns a ``RescaleRecord`` with the measured duration.

How long it waits is the job's own, not a constant: ``core.rescale_wait`` adds up the cooldown, the resource
stabilization, the wait for the checkpoint the scheduler rescales on (Flink 2.x) and a restart allowance, from
the job's checkpoint interval (``GET /jobs/:jid/checkpoints/config``) and the scheduler's settings for the job
(``GET /jobs/:jid/rescales/config`` on Flink 2.3, else the JobManager's configuration); the ``rescale-wait``
event says how it came about. ``ExecutorConfig.ready_timeout_seconds`` overrides it.

When the cluster keeps Flink 2.3's rescale history (``web.adaptive-scheduler.rescale-history.size`` > 0), the
rescale's duration is Flink's own (``GET /jobs/:jid/rescales/history``: from the scheduler taking the new
requirements to the job running again), else the executor's measurement (from the PUT until every task runs
at the target, polled every ``poll_seconds``).

It is written against two small protocols (``flinkscale.flink.protocols``): ``JobControl`` for the job
(``FlinkRestClient``) and ``SlotProvider`` for a cluster that can change size. With a slot provider (the
embedded ``LocalCluster``) it grows the TaskManager count when the job needs more
slots than exist (capped at ``max_task_managers``) and, after a scale-down, stops TaskManagers whose slots
are all free. Slot need is the largest vertex parallelism, not the sum: all vertices share the default slot
sharing group, so one slot runs one subtask of every vertex.

For Kubernetes (``k8s_patch_dir``) nothing is applied: a FlinkDeployment merge patch setting
``pipeline.jobvertex-parallelism-overrides`` is written for the operator to roll out.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from flinkscale.core.errors import EndpointError, InputError, RuntimeFailure, require_at_least
from flinkscale.core.manifest import OVERRIDES_KEY, format_overrides
from flinkscale.core.policy.base import Decision, RescaleRecord
from flinkscale.core.rescale_wait import (
    COOLDOWN_KEY,
    COOLDOWN_KEY_1X,
    DEFAULT_COOLDOWN_SECONDS,
    DEFAULT_MAX_CHECKPOINT_FAILURES,
    DEFAULT_STABILIZATION_SECONDS,
    MAX_DELAY_KEY,
    MAX_FAILURES_KEY,
    STABILIZATION_KEY,
    STABILIZATION_KEY_1X,
    RescaleWait,
    SchedulerTimings,
    rescale_wait,
    wait_for_parallelism,
)
from flinkscale.core.units import parse_flink_duration
from flinkscale.flink.models import JobDetails, RescaleConfig, checkpoint_interval_seconds
from flinkscale.flink.protocols import JobControl, SlotProvider

DEFAULT_MAX_TASK_MANAGERS = 4

Resubmit = Callable[[str], str]
EventLog = Callable[[str, str], None]


@dataclass(frozen=True)
class ExecutorConfig:
    max_task_managers: int = DEFAULT_MAX_TASK_MANAGERS
    # None: read it from the JobManager's config (COOLDOWN_KEY).
    cooldown_seconds: float | None = None
    # None: the job's own rescale wait (``core.rescale_wait``, from its checkpoint interval and scheduler settings).
    ready_timeout_seconds: float | None = None
    poll_seconds: float = 1.0
    savepoint_attempts: int = 3
    savepoint_dir: str | None = None
    k8s_patch_dir: Path | None = None
    k8s_deployment_name: str = "flink-job"

    def __post_init__(self) -> None:
        require_at_least(self.max_task_managers, 1, "--max-task-managers")
        require_at_least(self.savepoint_attempts, 1, "savepoint_attempts")


@dataclass
class ExecutorState:
    """What the executor remembers between rescales (mutable: the job id changes on resubmission)."""

    job_id: str
    last_rescale_completed_at: float | None = None
    records: list[RescaleRecord] = field(default_factory=list)


def _ignore_event(_kind: str, _message: str) -> None:
    pass


class Executor:
    """Applies decisions to one job; ``job_id`` follows the job across savepoint resubmissions."""

    def __init__(self, client: JobControl, job_id: str, *, cluster: SlotProvider | None = None,
                 resubmit: Resubmit | None = None, config: ExecutorConfig | None = None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 event: EventLog = _ignore_event) -> None:
        self.client = client
        self.cluster = cluster
        self.resubmit = resubmit
        self.config = config or ExecutorConfig()
        self.clock = clock
        self.sleep = sleep
        self.event = event
        self.state = ExecutorState(job_id)
        self._adaptive: bool | None = None
        self._timings: SchedulerTimings | None = None
        self._rescale_config: RescaleConfig | None = None
        self._wait: RescaleWait | None = None
        self._task_manager_floor: int | None = None
        if cluster is not None:
            self._floor()

    @property
    def job_id(self) -> str:
        return self.state.job_id

    # --- scheduler facts ----------------------------------------------------------------------------
    def scheduler_is_adaptive(self) -> bool:
        """Adaptive when the job says so (``schedulerType``) or, failing that, the cluster's config does."""
        if self._adaptive is None:
            scheduler = self._job_scheduler_type()
            if scheduler is None:
                scheduler = self.client.config().get("jobmanager.scheduler", "default")
            self._adaptive = scheduler.strip().lower() == "adaptive"
        return self._adaptive

    def _job_scheduler_type(self) -> str | None:
        return self.client.scheduler_type(self.job_id)

    def timings(self) -> SchedulerTimings:
        """The job's checkpoint interval and scheduler settings (read once per job id)."""
        if self._timings is None:
            self._rescale_config = self.client.rescale_config(self.job_id)
            self._timings = scheduler_timings(self.client, self.job_id, self._rescale_config)
        return self._timings

    def cooldown_seconds(self) -> float:
        if self.config.cooldown_seconds is not None:
            return self.config.cooldown_seconds
        return self.timings().cooldown_seconds

    def rescale_wait(self) -> RescaleWait:
        """The longest this job's rescale may take (``core.rescale_wait``), from its settings and the rescales
        this executor measured."""
        durations = [r.duration_seconds for r in self.state.records]
        return rescale_wait(self.timings(), sum(durations) / len(durations) if durations else None)

    def _timeout(self) -> float:
        """Seconds any one wait may take: the configured override, else the job's rescale wait."""
        if self.config.ready_timeout_seconds is not None:
            return self.config.ready_timeout_seconds
        if self._wait is None:
            self._wait = self.rescale_wait()
        return self._wait.seconds

    def _announce_wait(self) -> None:
        """Work out the rescale wait for the rescale about to start, and say how it came about."""
        self._wait = self.rescale_wait()
        if self.config.ready_timeout_seconds is None:
            self.event("rescale-wait", self._wait.describe())

    # --- entry points -------------------------------------------------------------------------------
    def apply(self, decision: Decision) -> RescaleRecord | None:
        """Carry out ``decision``; ``None`` when it asks for nothing (or is blocked, or went to a k8s patch)."""
        if not decision.rescale:
            return None
        target = decision.parallelism()
        if self.config.k8s_patch_dir is not None:
            path = self.write_k8s_patch(target)
            self.event("k8s-patch", f"wrote {path}; not applied")
            return None
        if self.scheduler_is_adaptive():
            return self.rescale_in_place(target)
        return self.restart_with_savepoint(target)

    def rescale_in_place(self, target: Mapping[str, int]) -> RescaleRecord:
        self._announce_wait()
        job = self.wait_ready()
        self.wait_cooldown()
        old = {v.id: v.parallelism for v in job.vertices}
        full = _complete_target(job, target)
        self._ensure_slots(job, full)
        requested = self.clock()
        self.event("rescale", f"in place {old} -> {full}")
        known = self._flink_rescales()
        self.client.set_resource_requirements(self.job_id, {vid: (1, p) for vid, p in full.items()})
        self.wait_parallelism(full)
        return self._record(requested, old, full, known)

    def _flink_rescales(self) -> set[str] | None:
        """The ids of the rescales Flink's history holds now; None when the cluster keeps none (no endpoint, a
        404, or ``rescaleHistoryMax`` 0): the executor's own measurement stands then."""
        self.timings()
        if self._rescale_config is None or self._rescale_config.history_max <= 0:
            return None
        try:
            history = self.client.rescale_history(self.job_id)
        except EndpointError:
            return None
        return None if history is None else {entry.uuid for entry in history}

    def _flink_duration(self, known: set[str]) -> float | None:
        """The duration Flink's rescale history gives the rescale just carried out: its newest COMPLETED entry
        that was not there before the request (None when there is none, or the history is unreadable)."""
        try:
            history = self.client.rescale_history(self.job_id) or []
        except EndpointError:
            return None
        new = [e for e in history if e.uuid not in known and e.terminal_state == "COMPLETED"
               and e.duration_seconds is not None]
        if not new:
            return None
        return max(new, key=lambda e: e.end_ms or 0.0).duration_seconds

    def restart_with_savepoint(self, target: Mapping[str, int], *, reason: str = "rescale") -> RescaleRecord:
        """Stop with a completed savepoint, resubmit through the callback, reach ``target`` and verify it."""
        if self.resubmit is None:
            raise RuntimeFailure(f"job {self.job_id}: the scheduler is not adaptive, so a rescale needs a savepoint "
                                 "and a resubmission, and no resubmit function was given; nothing was stopped")
        self._announce_wait()
        job = self.wait_ready()
        self.wait_cooldown()
        old = {v.id: v.parallelism for v in job.vertices}
        by_name = {v.name: p for v in job.vertices if (p := _complete_target(job, target).get(v.id)) is not None}
        self._ensure_slots(job, _complete_target(job, target))
        requested = self.clock()
        location = self._stop_with_savepoint()
        self.event(reason, f"job {self.job_id} stopped with savepoint {location}; resubmitting")
        new_job_id = self.resubmit(location)
        self.state.job_id = new_job_id
        self._adaptive = self._timings = None
        new_job = self.wait_ready()
        # Vertex ids may differ in the new job graph; the vertex names (operator chains) do not.
        full = {v.id: by_name.get(v.name, v.parallelism) for v in new_job.vertices}
        if any(v.parallelism != full[v.id] for v in new_job.vertices):
            if not self.scheduler_is_adaptive():
                raise RuntimeFailure(f"job {new_job_id} was resubmitted but runs at "
                                     f"{ {v.id: v.parallelism for v in new_job.vertices} }, not {full}, and its "
                                     "scheduler cannot rescale in place")
            self.client.set_resource_requirements(new_job_id, {vid: (1, p) for vid, p in full.items()})
        self.wait_parallelism(full)
        return self._record(requested, old, full)

    # --- waiting ------------------------------------------------------------------------------------
    def wait_ready(self) -> JobDetails:
        """Wait until the job is RUNNING with every task RUNNING (restarts and REST outages are waited out)."""
        deadline = self.clock() + self._timeout()
        last = "unknown"
        while True:
            try:
                job = self.client.job(self.job_id)
                if job.all_running:
                    return job
                if job.state in ("FAILED", "CANCELED", "FINISHED"):
                    raise RuntimeFailure(f"job {self.job_id} is {job.state}; nothing to rescale")
                last = job.state
            except EndpointError as exc:
                if exc.status == 404:
                    raise
                last = f"REST unreachable ({exc})"
            if self.clock() >= deadline:
                raise RuntimeFailure(f"job {self.job_id} not fully RUNNING within "
                                     f"{self._timeout():.0f}s (last: {last})")
            self.sleep(self.config.poll_seconds)

    def wait_cooldown(self) -> None:
        last = self.state.last_rescale_completed_at
        if last is None or not self.scheduler_is_adaptive():
            return
        remaining = last + self.cooldown_seconds() - self.clock()
        if remaining > 0:
            self.event("cooldown", f"waiting {remaining:.1f}s for the scheduler's cooldown after rescaling")
            self.sleep(remaining)

    def wait_parallelism(self, target: Mapping[str, int]) -> JobDetails:
        timeout = self._timeout()
        return wait_for_parallelism(
            lambda: self.client.job(self.job_id), target, timeout_seconds=timeout,
            poll_seconds=self.config.poll_seconds, clock=self.clock, sleep=self.sleep,
            timed_out=lambda seen: f"job {self.job_id} did not reach {dict(target)} within {timeout:.0f}s "
                                   f"(runs at {seen})")

    def _stop_with_savepoint(self) -> str:
        """A completed savepoint's location; the job is stopped only by that savepoint. Never cancels."""
        failure = ""
        for attempt in range(self.config.savepoint_attempts):
            if attempt:
                self._wait_next_checkpoint()
            request = self.client.trigger_stop_with_savepoint(self.job_id, self.config.savepoint_dir, drain=False)
            try:
                location = self.client.wait_savepoint(self.job_id, request)
            except RuntimeFailure as exc:
                failure = str(exc)
                self.event("savepoint-failed", f"attempt {attempt + 1}: {failure}; the job keeps running")
                self.wait_ready()
                continue
            self.client.wait_job_state(self.job_id, ["FINISHED"])
            return location
        raise RuntimeFailure(f"no savepoint of job {self.job_id} completed in {self.config.savepoint_attempts} "
                             f"attempts ({failure}); the job was left running, unchanged")

    def _wait_next_checkpoint(self) -> None:
        """Failing checkpoints are waited out: the next savepoint is tried after one checkpoint completes."""
        start = self.client.checkpoints(self.job_id).completed
        deadline = self.clock() + self._timeout()
        while self.clock() < deadline:
            if self.client.checkpoints(self.job_id).completed > start:
                return
            self.sleep(self.config.poll_seconds)

    def _record(self, requested: float, old: Mapping[str, int], new: Mapping[str, int],
                known: set[str] | None = None) -> RescaleRecord:
        completed = self.clock()
        flink = self._flink_duration(known) if known is not None else None
        if flink is not None:
            # Flink's own duration, on our clock: the record ends when we saw every task run at the target.
            self.event("rescale-history", f"Flink's rescale history: {flink:.1f}s from the scheduler taking the "
                       f"new requirements to the job running again (measured here from the request: "
                       f"{completed - requested:.1f}s)")
            requested = completed - flink
        record = RescaleRecord(requested, completed, dict(old), dict(new))
        self.state.last_rescale_completed_at = completed
        self.state.records.append(record)
        self.event("rescaled", f"{dict(old)} -> {dict(new)} in {record.duration_seconds:.1f}s")
        self.release_idle_task_managers()
        return record

    # --- TaskManagers (embedded cluster) --------------------------------------------------------------
    def _ensure_slots(self, job: JobDetails, target: Mapping[str, int]) -> None:
        if self.cluster is None:
            return
        overview = self.client.overview()
        used_by_job = max((v.parallelism for v in job.vertices), default=0)
        need = max(target.values(), default=0)
        short = need - (overview.slots_available + used_by_job)
        if short <= 0:
            return
        per_tm = max(overview.slots_total // max(overview.task_managers, 1), 1)
        wanted = overview.task_managers + math.ceil(short / per_tm)
        count = min(wanted, self.config.max_task_managers)
        if count <= overview.task_managers:
            self.event("slots", f"need {need} slots, {overview.slots_available + used_by_job} usable, and "
                       f"already at max {self.config.max_task_managers} TaskManagers")
            return
        self.event("scale-cluster", f"TaskManagers {overview.task_managers} -> {count} for {need} slots")
        self._floor()  # remember the starting count before changing it
        # Start first, then raise the supervised count: the other order lets the supervisor start them too.
        self.cluster.start_task_managers(count - overview.task_managers)
        self.cluster.set_task_manager_count(count)
        self._wait_task_managers(count)

    def _floor(self) -> int:
        if self._task_manager_floor is None:
            supervised = self.cluster.supervised_task_managers() if self.cluster is not None else None
            self._task_manager_floor = supervised if supervised is not None else 1
        return self._task_manager_floor

    def _wait_task_managers(self, count: int) -> None:
        deadline = self.clock() + self._timeout()
        while self.clock() < deadline:
            try:
                if self.client.overview().task_managers >= count:
                    return
            except EndpointError:
                pass
            self.sleep(self.config.poll_seconds)
        raise RuntimeFailure(f"{count} TaskManagers did not register within {self._timeout():.0f}s")

    def release_idle_task_managers(self) -> list[int]:
        """Stop TaskManagers whose slots are all free (``freeSlots == slotsNumber``), never going below the
        count the cluster had when this executor started: it gives back what it added, not what the operator
        of the cluster provisioned (other jobs may be about to use it).

        The supervised count is lowered first, or the supervisor would restart what is stopped here."""
        if self.cluster is None or self.cluster.supervised_task_managers() is None:
            return []
        floor = self._floor()
        task_managers = self.client.task_managers()
        idle = [tm for tm in task_managers if tm.free_slots == tm.slots]
        removable = min(len(idle), len(task_managers) - max(floor, 1))
        if removable <= 0:
            return []
        pids: list[int] = []
        for tm in idle[:removable]:
            pid = self.cluster.task_manager_pid(tm)
            if pid is not None:
                pids.append(pid)
        if not pids:
            return []
        self.cluster.set_task_manager_count(len(task_managers) - len(pids))
        for pid in pids:
            self.cluster.stop_task_manager(pid)
        self.event("scale-cluster", f"stopped {len(pids)} idle TaskManager(s): pids {pids}")
        return pids

    # --- Kubernetes -----------------------------------------------------------------------------------
    def write_k8s_patch(self, target: Mapping[str, int]) -> Path:
        directory = self.config.k8s_patch_dir
        assert directory is not None
        directory.mkdir(parents=True, exist_ok=True)
        patch = k8s_patch(self.config.k8s_deployment_name, target)
        path = directory / f"{self.config.k8s_deployment_name}-{int(self.clock())}.json"
        path.write_text(json.dumps(patch, indent=2) + "\n")
        return path


def scheduler_timings(client: JobControl, job_id: str, answered: RescaleConfig | None) -> SchedulerTimings:
    """A job's checkpoint interval and adaptive scheduler settings: ``answered`` (``GET /jobs/:jid/rescales/config``)
    where the cluster has it (Flink 2.3, the settings in force for the job), else the JobManager's configuration
    (2.x names first, then 1.x's) with Flink's defaults for what it does not set."""
    interval = checkpoint_interval_seconds(client.checkpoint_config(job_id))
    if answered is not None:
        return SchedulerTimings(
            interval,
            cooldown_seconds=_or(answered.cooldown_seconds, DEFAULT_COOLDOWN_SECONDS),
            resource_stabilization_seconds=_or(answered.resource_stabilization_seconds, DEFAULT_STABILIZATION_SECONDS),
            # 2.3 reports the delay in force: 15 s for a job checkpointing every 5 s (3 intervals, the default),
            # 0 for one without checkpoints (recorded); 0 is left to the default rule, which gives 0 there too.
            trigger_max_delay_seconds=answered.trigger_max_delay_seconds or None,
            max_checkpoint_failures=(DEFAULT_MAX_CHECKPOINT_FAILURES if answered.max_checkpoint_failures is None
                                     else answered.max_checkpoint_failures),
            source=f"GET /jobs/{job_id}/rescales/config and /checkpoints/config")
    config = client.config()

    def duration(*keys: str) -> float | None:
        for key in keys:
            text = config.get(key)
            if text:
                return parse_flink_duration(text, key)
        return None

    failures = config.get(MAX_FAILURES_KEY) or ""
    try:
        max_failures = int(failures) if failures else DEFAULT_MAX_CHECKPOINT_FAILURES
    except ValueError:
        raise InputError(f"not a whole number: {failures[:40]!r}", field=MAX_FAILURES_KEY) from None
    return SchedulerTimings(
        interval,
        cooldown_seconds=_or(duration(COOLDOWN_KEY, COOLDOWN_KEY_1X), DEFAULT_COOLDOWN_SECONDS),
        resource_stabilization_seconds=_or(duration(STABILIZATION_KEY, STABILIZATION_KEY_1X),
                                           DEFAULT_STABILIZATION_SECONDS),
        trigger_max_delay_seconds=duration(MAX_DELAY_KEY), max_checkpoint_failures=max(max_failures, 0),
        source=f"GET /jobmanager/config (Flink's defaults where unset) and /jobs/{job_id}/checkpoints/config")


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def k8s_patch(deployment: str, target: Mapping[str, int]) -> dict[str, object]:
    """A merge patch for a FlinkDeployment: the operator's own per-vertex override key, as its autoscaler sets."""
    return {"apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
            "metadata": {"name": deployment},
            "spec": {"flinkConfiguration": {OVERRIDES_KEY: format_overrides(target)}}}


def _complete_target(job: JobDetails, target: Mapping[str, int]) -> dict[str, int]:
    """Every vertex of the job with a parallelism: the PUT must name all of them (unnamed ones keep theirs)."""
    full = {v.id: int(target.get(v.id, v.parallelism)) for v in job.vertices}
    for vid, p in full.items():
        if p < 1:
            raise InputError(f"must be >= 1, got {p}", field=f"parallelism[{vid}]")
        if p > job.vertex(vid).max_parallelism:
            raise InputError(f"{p} exceeds the vertex's max parallelism {job.vertex(vid).max_parallelism}",
                             field=f"parallelism[{vid}]")
    return full
