"""The multi-job autoscaler: every job on a cluster under one process, with its state in the state store.

Each cycle (``MultiJobDaemon.cycle``):

1. **finish** the rescales started in earlier cycles: each intent is marked done (with its measured
   rescale, which the store folds into the job's learned restart cost) or failed;
2. **discover** the running jobs (``GET /jobs/overview``; with ``job_ids`` only those): a new job gets its
   settings (``core.job_settings``: defaults < ``--config`` file < the job's own ``job.autoscaler.*`` /
   ``flinkscale.*`` keys from ``GET /jobs/:jid/jobmanager/config``), its history from the store and its
   stabilization interval from its own start (the control step's rule 5); a job that finished or was
   cancelled is marked gone in the store (its state is kept, ``Retention.gone_job_seconds``);
3. **collect** every job concurrently on a bounded thread pool; each job has its own deadline: one that
   is not back by then is reported and skipped this cycle (its thread finishes on its own, the REST client
   bounds every call), the others are served;
4. **decide** job by job in this thread, with the one control step (``core.control.step``), each job seeing
   the cluster through ``control.cluster_share``: the ceiling (``--max-slots`` or what the cluster can grow
   to) minus the slots every other job holds or was promised this cycle, so two jobs never count on the
   same free slots. Recommend-only jobs (``scaling.enabled=false``), excluded periods, a paused cluster
   and ``--dry-run`` decide and log without acting;
5. **write** the cycle (snapshots, decisions, load samples, scale-down timers) to the store in one
   transaction, which also renews the daemon's lease and prunes what no job needs any more
   (``Retention``; snapshots are kept for the longest policy window in use);
6. **act**: a rescale is recorded as a pending intent (committed) before the executor starts it, on a
   second pool; the job is busy (not collected) until it is done.

After a restart (even a SIGKILL) the history comes back from the store, and before a job's first decision
its pending intent is reconciled against the parallelism the job runs at: already applied -> marked done,
never applied twice; not applied and fresh -> applied again (the target is declarative); older, or someone
else changed the job -> dropped, decided anew. A pending scale-down keeps its original time because the
policies read it from the decisions in the history, which the store kept.

All store writes happen on the daemon's own thread; worker threads only talk to Flink.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from flinkscale.core import control
from flinkscale.core.control import ControllerState, ControlSettings, Rescale
from flinkscale.core.errors import EndpointError, FlinkscaleError, InputError, NotFoundError
from flinkscale.core.job_settings import (
    AutoscaleConfig,
    JobSettings,
    JobSettingsError,
    excluded_by,
    resolve_job_settings,
)
from flinkscale.core.logline import Level, LogLine
from flinkscale.core.policy import make_policy
from flinkscale.core.policy.base import Decision, History, Policy, RescaleRecord, VertexDecision, offered_load
from flinkscale.core.policy.registry import required_history_seconds
from flinkscale.core.quota import SlotCeiling, slot_ceiling, task_manager_size
from flinkscale.core.redaction import redact
from flinkscale.core.snapshot import ClusterResources, MetricsSnapshot
from flinkscale.flink.autoscaler import LoopStatus
from flinkscale.flink.collector import Collector
from flinkscale.flink.executor import Executor, ExecutorConfig
from flinkscale.flink.models import JobDetails, JobSummary
from flinkscale.flink.protocols import Applier, Sampler, SlotProvider
from flinkscale.flink.rest import FlinkRestClient
from flinkscale.host import pid_alive
from flinkscale.store import CycleEntry, Intent, LeaseHeld, Outcome, Retention, StateStore


class DaemonRest(Protocol):
    """What the daemon asks of Flink's REST API itself (collection and rescaling go through the sampler and
    the executor): ``FlinkRestClient`` implements it."""

    def running_jobs(self) -> list[JobSummary]: ...

    def job(self, job_id: str) -> JobDetails: ...

    def job_config(self, job_id: str) -> list[dict[str, str]]: ...


@dataclass(frozen=True)
class DaemonConfig:
    interval_seconds: float = 15.0
    # Empty: every running job of the cluster (--all-jobs); else only these.
    job_ids: tuple[str, ...] = ()
    dry_run: bool = False
    # Jobs collected at once; rescales carried out at once.
    max_workers: int = 8
    max_rescales: int = 2
    # A job not collected within this (default: the interval) is reported and skipped this cycle.
    job_deadline_seconds: float | None = None
    # The cluster's slot ceiling (--max-slots / the config file's cluster.max-slots); None: observed.
    max_slots: int | None = None
    retention: Retention = field(default_factory=Retention)
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")

    def __post_init__(self) -> None:
        if not self.interval_seconds > 0:
            raise InputError(f"must be > 0, got {self.interval_seconds}", field="--interval")
        if not 1 <= self.max_workers <= 1024:
            raise InputError(f"must be from 1 to 1024, got {self.max_workers}", field="--workers")
        if self.max_slots is not None and self.max_slots < 1:
            raise InputError(f"must be >= 1, got {self.max_slots}", field="--max-slots")

    @property
    def deadline(self) -> float:
        return self.job_deadline_seconds if self.job_deadline_seconds is not None else self.interval_seconds


@dataclass
class JobState:
    """One served job: its settings, policy, history and what is in flight."""

    job_id: str
    job_name: str
    sampler: Sampler
    settings: JobSettings | None = None
    policy: Policy | None = None
    control: ControlSettings = field(default_factory=ControlSettings)
    controller: ControllerState = field(default_factory=ControllerState)
    history: History = field(default_factory=History)
    error: str | None = None  # its settings are invalid: not served
    reconciled: bool = False
    started_at: float | None = None
    current: dict[str, int] = field(default_factory=dict)
    executor: Applier | None = None
    busy: Future[Any] | None = None
    busy_what: str = ""
    intent: Intent | None = None
    claimed_slots: int = 0
    phase: str = "discovered"
    last_decision: Decision | None = None
    last_snapshot: MetricsSnapshot | None = None
    rescales: int = 0
    # The configured ceilings (core.quota) for this job's TaskManager size: its own quotas, and the cluster's
    # --max-slots and quotas; None: not configured.
    job_ceiling: SlotCeiling = field(default_factory=SlotCeiling)
    cluster_ceiling: SlotCeiling = field(default_factory=SlotCeiling)
    ceiling_note: str | None = None  # which bound binds this cycle, when the job is at its ceiling
    slot_cap: int | None = None  # the slots this job may hold this cycle (None: no ceiling known)

    def loop_status(self) -> LoopStatus:
        """The job as the single-job loop's status (what ``LoopMetrics`` exports, labelled by job id)."""
        status = LoopStatus(self.job_id, self.policy.name if self.policy else "-", self.last_snapshot,
                            self.last_decision, rescales=self.rescales)
        status.holding = self.phase if self.phase.startswith(("holding", "skipped", "not served")) else None
        return status


@dataclass(frozen=True)
class Collected:
    snapshot: MetricsSnapshot | None
    started_at: float | None
    skipped: str | None
    job_config: list[dict[str, str]] | None
    observed: dict[str, int] | None


@dataclass(frozen=True)
class CycleReport:
    """What one cycle did, for the log line and tests."""

    started_at: float
    jobs: int
    decided: int
    rescales_started: int
    lines: tuple[str, ...]
    wall_seconds: float


class MultiJobDaemon:
    """``make_sampler(job_id)`` builds a collector; ``make_executor(job_id)`` an executor (None: dry run);
    ``paused()`` says whether the cluster-wide pause is on (checked every cycle)."""

    def __init__(self, rest: DaemonRest, store: StateStore, config: AutoscaleConfig, daemon: DaemonConfig, *,
                 make_sampler: Callable[[str], Sampler], make_executor: Callable[[str], Applier | None],
                 clock: Callable[[], float] = time.time, log: Callable[[str], None] = lambda _line: None,
                 paused: Callable[[], bool] = lambda: False) -> None:
        self.rest = rest
        self.store = store
        self.config = config
        self.daemon = daemon
        self.make_sampler = make_sampler
        self.make_executor = make_executor
        self.clock = clock
        self.log = log
        self.paused = paused
        self.jobs: dict[str, JobState] = {}
        self._collect_pool = ThreadPoolExecutor(daemon.max_workers, thread_name_prefix="flinkscale-collect")
        self._apply_pool = ThreadPoolExecutor(daemon.max_rescales, thread_name_prefix="flinkscale-rescale")
        self._lines: list[str] = []
        self._lease = False

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Take the store's lease: a second live daemon on the same store is refused (``LeaseHeld``). The
        lease of a daemon of this host whose process is gone (killed) is taken over at once rather than
        after it expires, so a restart after a SIGKILL serves the jobs again in its first cycle."""
        ttl = max(60.0, 4 * self.daemon.interval_seconds)
        try:
            self.store.acquire_lease(self.daemon.owner, ttl_seconds=ttl)
        except LeaseHeld:
            holder = self.store.lease_holder()
            if holder is None or not _dead_local_owner(holder.owner):
                raise
            self.store.acquire_lease(holder.owner, ttl_seconds=ttl)  # the dead owner's lease, then ours
            self.store.release_lease()
            self.store.acquire_lease(self.daemon.owner, ttl_seconds=ttl)
            self._say("store.lease", f"took over the state store's lease from {holder.owner}, whose process is gone")
        self._lease = True

    def close(self) -> None:
        self._collect_pool.shutdown(wait=False, cancel_futures=True)
        self._apply_pool.shutdown(wait=True)  # a rescale in flight finishes, and its intent with it
        self._finish_rescales()
        if self._lease:
            self.store.release_lease()
            self._lease = False

    def run(self, should_stop: Callable[[], bool], sleep: Callable[[float], None],
            duration_seconds: float | None = None, on_cycle: Callable[[CycleReport], None] = lambda _r: None
            ) -> int:
        """Cycle every interval until ``should_stop`` or ``duration_seconds``; the number of cycles."""
        started = self.clock()
        cycles = 0
        while not should_stop():
            begun = self.clock()
            on_cycle(self.cycle())
            cycles += 1
            next_cycle = begun + self.daemon.interval_seconds
            if duration_seconds is not None and next_cycle - started > duration_seconds:
                break
            remaining = next_cycle - self.clock()
            if remaining > 0 and not should_stop():
                sleep(remaining)
        return cycles

    # --- one cycle -------------------------------------------------------------------------------
    def _say(self, event: str, text: str, *, level: Level = "info", job_id: str | None = None,
             job_name: str | None = None) -> None:
        line = LogLine(redact(text), event, level=level, job_id=job_id, job_name=job_name)
        self._lines.append(line)
        self.log(line)

    def _say_job(self, state: JobState, event: str, text: str, *, level: Level = "info") -> None:
        """A line about one job: ``job NAME (ID): text``."""
        self._say(event, f"job {state.job_name} ({state.job_id}): {text}", level=level, job_id=state.job_id,
                  job_name=state.job_name)

    def cycle(self) -> CycleReport:
        now = self.clock()
        wall = time.monotonic()
        self._lines = []
        self._finish_rescales()
        if not self._discover(now):
            return CycleReport(now, len(self.jobs), 0, 0, tuple(self._lines), time.monotonic() - wall)
        collected = self._collect()
        entries: list[CycleEntry] = []
        rescales: list[tuple[JobState, Rescale]] = []
        for job_id in sorted(collected):
            state = self.jobs[job_id]
            outcome = self._decide(state, collected[job_id], now)
            if outcome is None:
                continue
            entry, rescale = outcome
            entries.append(entry)
            if rescale is not None:
                rescales.append((state, rescale))
        self._write(entries)
        started = sum(self._start_rescale(state, rescale) for state, rescale in rescales)
        return CycleReport(now, len(self.jobs), len(entries), started, tuple(self._lines), time.monotonic() - wall)

    def _discover(self, now: float) -> bool:
        try:
            running = self.rest.running_jobs()
        except EndpointError as exc:
            self._say("cluster.unavailable", f"holding every job: REST unavailable: {exc}", level="warning")
            if self._lease:
                self.store.renew_lease()  # still alive: a standby must not take over during an outage
            return False
        wanted = set(self.daemon.job_ids)
        present = {j.id: j for j in running if not wanted or j.id in wanted}
        for job_id in sorted(wanted - set(present)):
            if job_id in self.jobs or not any(j.job_id == job_id for j in self.store.jobs()):
                self._say("job.not-running", f"job {job_id}: not running (finished, cancelled or unknown to the "
                          "cluster)", level="warning", job_id=job_id)
        for job_id in sorted(set(self.jobs) - set(present)):
            state = self.jobs[job_id]
            if state.busy is not None and not state.busy.done():
                continue  # a rescale in flight: decide about it once it has finished
            self.store.mark_gone(job_id, now)
            del self.jobs[job_id]
            self._say_job(state, "job.gone", "finished or cancelled; state kept in the store")
        for job_id in sorted(set(present) - set(self.jobs)):
            summary = present[job_id]
            self.store.upsert_job(job_id, summary.name, now)
            self.jobs[job_id] = JobState(job_id, summary.name, self.make_sampler(job_id))
            self._say("job.discovered", f"job {summary.name} ({job_id}): discovered", job_id=job_id,
                      job_name=summary.name)
        return True

    def _collect(self) -> dict[str, Collected]:
        futures: dict[str, Future[Collected]] = {}
        for job_id, state in sorted(self.jobs.items()):
            if state.error is not None:
                continue
            if state.busy is not None and not state.busy.done():
                state.phase = f"busy: {state.busy_what}"
                continue
            state.busy, state.claimed_slots = None, 0
            futures[job_id] = self._collect_pool.submit(self._collect_one, state)
        if not futures:
            return {}
        wait(futures.values(), timeout=self.daemon.deadline)
        results: dict[str, Collected] = {}
        for job_id, future in futures.items():
            state = self.jobs[job_id]
            if not future.done():
                state.busy, state.busy_what = future, "collection past its deadline"
                state.phase = f"skipped: not collected within {self.daemon.deadline:g}s"
                self._say_job(state, "job.deadline-missed", f"not collected within its deadline "
                              f"({self.daemon.deadline:g}s); skipped this cycle, the other jobs are served",
                              level="warning")
                continue
            try:
                results[job_id] = future.result()
            except NotFoundError as exc:
                state.phase = f"holding: job not found: {exc}"
                state.sampler = self.make_sampler(job_id)
            except FlinkscaleError as exc:
                state.phase = f"holding: {exc}"
                self._say_job(state, "job.holding", f"holding: {exc}", level="warning")
                state.sampler = self.make_sampler(job_id)
        return results

    def _collect_one(self, state: JobState) -> Collected:
        """On a worker thread: REST only."""
        job_config = self.rest.job_config(state.job_id) if state.settings is None else None
        observed = None
        if not state.reconciled:
            details = self.rest.job(state.job_id)
            observed = {v.id: v.parallelism for v in details.vertices}
        snapshot = state.sampler.sample()
        started = getattr(state.sampler, "started_at", None)
        skipped = state.sampler.skipped[-1] if state.sampler.skipped else None
        return Collected(snapshot, started if isinstance(started, (int, float)) else None, skipped, job_config,
                         observed)

    # --- deciding --------------------------------------------------------------------------------
    def _configure(self, state: JobState, job_config: Sequence[Mapping[str, Any]], now: float) -> bool:
        try:
            settings = resolve_job_settings(state.job_id, state.job_name, self.config, job_config)
            state.job_ceiling, state.cluster_ceiling = self._ceilings(state, settings, job_config)
        except JobSettingsError as exc:  # its message already names the job
            self._not_served(state, "job.invalid-settings", str(exc))
            return False
        policy = make_policy(settings.policy.value, settings.policy_values())
        state.settings, state.policy = settings, policy
        state.control = ControlSettings(interval_seconds=self.daemon.interval_seconds,
                                        history_seconds=required_history_seconds(policy),
                                        stabilization_seconds=control.stabilization_seconds(policy))
        try:
            history = self.store.history(state.job_id, state.control.history_seconds, now)
        except InputError as exc:  # a damaged row of this job: the others are served
            self._not_served(state, "job.damaged-history", f"job {state.job_name} ({state.job_id}): {exc}",
                             error=str(exc))
            return False
        load = tuple((s.timestamp, s.source_rate) for s in self.store.load_history(state.job_id))
        state.history = replace(history, load=load)
        if history.snapshots or history.rescales:
            self._say_job(state, "job.history-restored", f"history continues from the store "
                          f"({len(history.snapshots)} snapshots, {len(history.decisions)} decisions, "
                          f"{len(history.rescales)} rescales)")
        return True

    def _ceilings(self, state: JobState, settings: JobSettings, job_config: Sequence[Mapping[str, Any]]
                  ) -> tuple[SlotCeiling, SlotCeiling]:
        """The job's own quota ceiling and the cluster's (``--max-slots`` and the cluster quotas), for the
        TaskManager size of the file's cluster section or else the job's Flink configuration; a bad value is a
        ``JobSettingsError`` naming the job and the key."""
        cluster = self.config.cluster
        flink_config = {str(e.get("key")): str(e.get("value")) for e in job_config if isinstance(e, Mapping)}
        max_source = cluster.max_slots.source if cluster.max_slots.value == self.daemon.max_slots else "--max-slots"
        try:
            tm = task_manager_size(flink_config, cpu=cluster.task_manager_cpu,
                                   memory_bytes=cluster.task_manager_memory_bytes, slots=cluster.task_manager_slots,
                                   configured_source=f"file:{self.config.path}#cluster")
            job = slot_ceiling(task_manager=tm, quota_cpu=settings.quota_cpu.value,
                               quota_cpu_source=settings.quota_cpu.source,
                               quota_memory_bytes=settings.quota_memory_bytes.value,
                               quota_memory_source=settings.quota_memory_bytes.source)
            whole = slot_ceiling(task_manager=tm, max_slots=self.daemon.max_slots, max_slots_source=max_source,
                                 quota_cpu=cluster.quota_cpu.value, quota_cpu_source=cluster.quota_cpu.source,
                                 quota_memory_bytes=cluster.quota_memory_bytes.value,
                                 quota_memory_source=cluster.quota_memory_bytes.source)
        except InputError as exc:
            key = exc.field or "quota"
            message = str(exc)[len(key) + 2:] if str(exc).startswith(f"{key}: ") else str(exc)
            raise JobSettingsError(message, job_id=state.job_id, job_name=state.job_name, key=key) from None
        for ceiling in (job, whole):
            if ceiling.slots == 0:
                self._say_job(state, "job.quota-below-one-task-manager", f"{ceiling.explain()}: not even one "
                              f"TaskManager ({tm.describe()}) fits; the job is never scaled above 1 slot",
                              level="warning")
        return job, whole

    def _not_served(self, state: JobState, event: str, line: str, error: str | None = None) -> None:
        """One line for a job this daemon cannot serve (``event``: why); the other jobs are served."""
        state.error = error or line
        state.phase = f"not served: {state.error}"
        self._say(event, f"{line}; this job is not served, the others are", level="error",
                  job_id=state.job_id, job_name=state.job_name)

    def _reconcile(self, state: JobState, observed: Mapping[str, int], now: float) -> None:
        """Before a job's first decision: settle the intent a previous run left pending."""
        state.reconciled = True
        result = self.store.reconcile(state.job_id, observed, retry_window_seconds=2 * self.daemon.interval_seconds,
                                      now=now)
        if result.outcome is Outcome.NOTHING_PENDING:
            return
        self._say_job(state, "job.intent-reconciled", f"pending rescale intent {result.outcome.value}: "
                      f"{result.reason}")
        if result.outcome is Outcome.RETRY and result.intent is not None:
            state.intent = result.intent

    def _decide(self, state: JobState, got: Collected, now: float
                ) -> tuple[CycleEntry, Rescale | None] | None:
        if state.settings is None and (got.job_config is None or not self._configure(state, got.job_config, now)):
            return None
        if got.observed is not None:
            state.current = dict(got.observed)
            self._reconcile(state, got.observed, now)
        if state.intent is not None:  # RETRY: apply the same declarative target again, no new intent
            self._retry(state)
            return None
        state.started_at = got.started_at
        settings, policy = state.settings, state.policy
        assert settings is not None and policy is not None
        if not settings.enabled.value:
            state.phase = f"not autoscaled (enabled=false, from {settings.enabled.source})"
            return None
        snapshot = got.snapshot
        if snapshot is None:
            state.phase = f"holding: {got.skipped or 'priming the collector'}"
            return None
        state.current = dict(snapshot.parallelism_by_id)
        snapshot = self._share(state, snapshot)
        result = control.step(snapshot, state.history, state.controller, state.control, policy,
                              job_started_at=state.started_at)
        state.controller = result.state
        if result.decision is None:
            state.phase = f"holding: {result.held}"
            return None
        decision = self._note_ceiling(state, result.decision)
        state.history = replace(result.history, decisions=(*result.history.decisions[:-1], decision)) \
            if result.history.decisions and result.history.decisions[-1] is result.decision else result.history
        state.last_decision, state.last_snapshot = decision, snapshot
        rescale = next((a for a in result.actions if isinstance(a, Rescale)), None)
        if rescale is not None:
            why_not = self._why_not_act(state, settings, now)
            if why_not is not None:
                state.phase = f"recommends {dict(rescale.parallelism)}, not applied: {why_not}"
                self._say_job(state, "job.recommendation", state.phase)
                rescale = None
            else:
                capped = self._within_ceiling(state, self._capped(rescale, settings))
                rescale = capped if capped.parallelism != state.current else None
                if rescale is not None:  # promised now: the jobs decided after this one do not count on them
                    state.claimed_slots = control.extra_slots(state.current, rescale.parallelism)
        if rescale is None and not state.phase.startswith("recommends"):
            state.phase = "holding: " + next((a.reason for a in result.actions if isinstance(a, control.Hold)),
                                             "nothing to change")
        if state.ceiling_note is not None and state.ceiling_note not in state.phase:
            state.phase += f" ({state.ceiling_note})"
        return CycleEntry(state.job_id, snapshot, decision, offered_load(snapshot)), rescale

    def _why_not_act(self, state: JobState, settings: JobSettings, now: float) -> str | None:
        if self.daemon.dry_run:
            return "--dry-run"
        if self.paused():
            return "the cluster-wide pause is on"
        if not settings.scaling_enabled.value:
            return f"recommend only (scaling.enabled=false, from {settings.scaling_enabled.source})"
        period = excluded_by(settings.excluded_periods.value, datetime.fromtimestamp(now, UTC))
        if period is not None:
            return f"inside the excluded period {period.text!r} (from {settings.excluded_periods.source})"
        return None

    @staticmethod
    def _capped(rescale: Rescale, settings: JobSettings) -> Rescale:
        cap = settings.vertex_max_parallelism.value
        if cap is None:
            return rescale
        target = {v: min(p, cap) for v, p in rescale.parallelism.items()}
        reason = rescale.reason + f"; capped at {cap} (vertex.max-parallelism, from " \
                                  f"{settings.vertex_max_parallelism.source})"
        return Rescale(target, reason) if target != dict(rescale.parallelism) else rescale

    def _share(self, state: JobState, snapshot: MetricsSnapshot) -> MetricsSnapshot:
        """The snapshot with the cluster as this job may count on it (``control.cluster_share``): the cluster's
        configured ceiling (the lowest of --max-slots and its quotas) or else what it has, less what the other
        jobs hold or were promised, and never above the job's own quota."""
        cluster = snapshot.cluster
        configured, own = state.cluster_ceiling.slots, state.job_ceiling.slots
        state.ceiling_note, state.slot_cap = None, None
        if cluster is None and configured is None and own is None:
            return snapshot
        used_by_job = max(state.current.values(), default=0)
        promised = sum(s.claimed_slots for s in self.jobs.values() if s is not state)
        if cluster is not None:
            held = max(0, cluster.slots_total - cluster.slots_available - used_by_job)
        else:
            held = sum(max(s.current.values(), default=0) for s in self.jobs.values() if s is not state)
        taken = held + promised
        if configured is not None:
            ceiling = configured
        elif cluster is not None:
            ceiling = cluster.slots_ceiling
        else:  # only the job's own quota is known: the others cannot take from it
            ceiling = taken + (own or 1)
        note = state.cluster_ceiling.explain() if configured is not None else None
        if note is not None and taken:
            note = f"{note}, {taken} of them held by other jobs"
        if own is not None and own <= ceiling - taken:
            taken, note = ceiling - own, state.job_ceiling.explain()
        state.slot_cap = max(1, ceiling - taken)
        state.ceiling_note = note
        base = cluster or ClusterResources(1, ceiling, 0, 1, None)
        return replace(snapshot, cluster=control.cluster_share(base, ceiling=ceiling, used_by_job=used_by_job,
                                                               held_by_others=taken))

    @staticmethod
    def _note_ceiling(state: JobState, decision: Decision) -> Decision:
        """Say on every vertex at the job's slot ceiling which configured bound put it there."""
        note, cap = state.ceiling_note, state.slot_cap
        at_cap = {v.vertex_id for v in decision.vertices if cap is not None and v.new_parallelism >= cap}
        if note is None or not at_cap:
            state.ceiling_note = None
            return decision
        vertices = tuple(replace(v, reason=f"{v.reason}; {note}" if v.reason else note)
                         if v.vertex_id in at_cap and note not in v.reason else v for v in decision.vertices)
        return replace(decision, vertices=vertices)

    def _within_ceiling(self, state: JobState, rescale: Rescale) -> Rescale:
        """Never past the configured ceilings, whatever the policy asked (policies already respect them)."""
        caps = [c for c in (state.job_ceiling.slots, state.cluster_ceiling.slots) if c is not None]
        if not caps:
            return rescale
        cap = max(1, min(caps))
        target = {v: min(p, cap) for v, p in rescale.parallelism.items()}
        if target == dict(rescale.parallelism):
            return rescale
        binding = state.job_ceiling if state.job_ceiling.slots == min(caps) else state.cluster_ceiling
        return Rescale(target, f"{rescale.reason}; {binding.explain()}")

    def _write(self, entries: list[CycleEntry]) -> None:
        """The cycle in one transaction (which renews the lease): snapshots, decisions, load, timers."""
        window = max((s.control.history_seconds for s in self.jobs.values()), default=0.0)
        retention = replace(self.daemon.retention,
                            snapshot_seconds=max(self.daemon.retention.snapshot_seconds, window))
        with self.store.batch():
            self.store.record_cycle(entries)
            self.store.prune(retention, now=self.clock())
            for entry in entries:
                if entry.decision is None:
                    continue
                pending = {p.vertex_id: p for p in control.pending_scale_downs(entry.decision)
                           if p.target is not None}
                existing = {t.vertex_id: t for t in self.store.timers(entry.job_id)}
                for vertex_id, timer in pending.items():
                    known = existing.get(vertex_id)
                    if known is None or known.target_parallelism != timer.target or known.due_at != timer.due_at:
                        assert timer.target is not None
                        self.store.set_timer(entry.job_id, vertex_id, timer.target, timer.due_at)
                for vertex_id in set(existing) - set(pending):
                    self.store.clear_timer(entry.job_id, vertex_id)

    # --- acting ----------------------------------------------------------------------------------
    def _start_rescale(self, state: JobState, rescale: Rescale) -> int:
        executor = self._executor(state)
        if executor is None:
            return 0
        extra = control.extra_slots(state.current, rescale.parallelism)
        state.intent = self.store.record_intent(state.job_id, state.current, rescale.parallelism)
        self._submit(state, executor, rescale.parallelism, extra, rescale.reason)
        return 1

    def _retry(self, state: JobState) -> None:
        intent = state.intent
        assert intent is not None
        executor = self._executor(state)
        if executor is None:  # a dry run: leave the intent pending for a daemon that acts
            state.intent = None
            self._say_job(state, "job.intent-left", "a pending rescale intent is left for a daemon that acts (this "
                          "one does not: --dry-run)")
            return
        self._submit(state, executor, intent.target_parallelism,
                     control.extra_slots(intent.previous_parallelism, intent.target_parallelism),
                     "retrying the pending intent of a previous run")

    def _executor(self, state: JobState) -> Applier | None:
        if self.daemon.dry_run:
            return None
        if state.executor is None:
            state.executor = self.make_executor(state.job_id)
        return state.executor

    def _submit(self, state: JobState, executor: Applier, target: Mapping[str, int], extra: int,
                reason: str) -> None:
        intent = state.intent
        assert intent is not None
        state.claimed_slots = max(state.claimed_slots, extra)
        state.phase = f"rescaling to {dict(target)}"
        self._say_job(state, "job.rescaling", f"rescaling to {dict(target)} (intent {intent.intent_id[:8]}): "
                      f"{reason}")
        decision = Decision(self.clock(), state.policy.name if state.policy else "retry", tuple(
            VertexDecision(vertex_id, vertex_id, state.current.get(vertex_id, p), p, reason)
            for vertex_id, p in target.items()))
        state.busy, state.busy_what = self._apply_pool.submit(executor.apply, decision), "rescaling"

    def _finish_rescales(self) -> None:
        for state in list(self.jobs.values()):
            future, intent = state.busy, state.intent
            if future is None or intent is None or not future.done() or state.busy_what != "rescaling":
                continue
            state.busy, state.intent, state.claimed_slots = None, None, 0
            state.sampler = self.make_sampler(state.job_id)  # the next interval measures a clean one
            try:
                record: RescaleRecord | None = future.result()
            except FlinkscaleError as exc:
                self.store.finish_intent(intent.intent_id, "failed", note=redact(str(exc))[:500])
                state.phase = f"rescale failed: {exc}"
                self._say_job(state, "job.rescale-failed", f"rescale failed: {exc}", level="error")
                continue
            self.store.finish_intent(intent.intent_id, "done")
            if record is not None:
                self.store.add_rescale(state.job_id, record)
                state.history = control.record_rescale(state.history, record, state.control)
                state.current = dict(record.new_parallelism)
                state.rescales += 1
                state.phase = f"rescaled to {dict(record.new_parallelism)} in {record.duration_seconds:.1f}s"
                self._say_job(state, "job.rescaled", state.phase)


def _dead_local_owner(owner: str) -> bool:
    """``owner`` is ``HOST:PID`` of this host and that process is gone."""
    host, _, pid = owner.rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and not pid_alive(int(pid))


def default_state_url(state_dir: os.PathLike[str] | str) -> str:
    """``sqlite:///STATE_DIR/autoscale.db``: where the daemon keeps its state unless --state says otherwise."""
    return f"sqlite:///{os.path.abspath(os.fspath(state_dir))}/autoscale.db"


# --- autoscale status ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class JobStatus:
    """One job's phase as the store knows it (``flinkscale autoscale status``)."""

    job_id: str
    job_name: str
    phase: str  # stabilizing, holding, rescaling, scale-down pending, gone, no decision yet
    detail: str
    last_decision_at: float | None
    scale_down_due_at: float | None
    last_rescale: Mapping[str, Any] | None
    learned_restart_seconds: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "job_name": self.job_name, "phase": self.phase, "detail": self.detail,
                "last_decision_at": self.last_decision_at, "scale_down_due_at": self.scale_down_due_at,
                "last_rescale": dict(self.last_rescale) if self.last_rescale else None,
                "learned_restart_seconds": self.learned_restart_seconds}


def clock_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%H:%M")


def job_statuses(store: StateStore) -> list[JobStatus]:
    """Every job the store knows, with its phase: from its pending intent, timers and last decision."""
    statuses = []
    for job in store.jobs():
        decisions = store.decisions(job.job_id, limit=1)
        last = decisions[-1] if decisions else None
        rescales = store.rescales(job.job_id)
        last_rescale = None
        if rescales:
            r = rescales[-1]
            last_rescale = {"completed_at": r.completed_at, "duration_seconds": r.duration_seconds,
                            "from": dict(r.old_parallelism), "to": dict(r.new_parallelism)}
        timers = store.timers(job.job_id)
        pending = [p for p in control.pending_scale_downs(last)] if last is not None else []
        due = min([t.due_at for t in timers] + [p.due_at for p in pending], default=None)
        intent = store.pending_intent(job.job_id)
        if job.gone_since is not None:
            phase, detail = "gone", f"finished or cancelled at {clock_time(job.gone_since)} UTC; state kept"
        elif intent is not None:
            phase, detail = "rescaling", (f"to {dict(intent.target_parallelism)} since "
                                          f"{clock_time(intent.created_at)} UTC (intent {intent.intent_id[:8]})")
        elif last is None:
            phase, detail = "no decision yet", "collecting its first samples"
        elif any(v.reason.startswith("stabilizing") for v in last.vertices):
            phase, detail = "stabilizing", last.vertices[0].reason if last.vertices else ""
        elif due is not None:
            phase, detail = "scale-down pending", f"scale-down due at {clock_time(due)} UTC"
        elif last.rescale:
            phase, detail = "rescale decided", "; ".join(
                f"{v.vertex_name}: {v.current_parallelism} -> {v.new_parallelism}" for v in last.vertices if v.changed)
        else:
            reasons = last.blocked_reason or "; ".join(dict.fromkeys(v.reason for v in last.vertices if v.reason))
            phase, detail = "holding", reasons or "nothing to change"
        statuses.append(JobStatus(job.job_id, job.job_name, phase, detail, last.timestamp if last else None, due,
                                  last_rescale, job.restart_cost_seconds))
    return statuses


# --- composition for the command line --------------------------------------------------------------------

def daemon_on_cluster(client: FlinkRestClient, store: StateStore, config: AutoscaleConfig, daemon: DaemonConfig,
                      *, cluster: SlotProvider | None, executor_config: ExecutorConfig,
                      max_task_managers: int | None, log: Callable[[str], None],
                      paused: Callable[[], bool]) -> MultiJobDaemon:
    """A daemon collecting through the REST collector and rescaling through the executor (on the embedded
    cluster it adds and removes TaskManagers; rescales then run one at a time, as they share them)."""
    if cluster is not None:
        daemon = replace(daemon, max_rescales=1)

    def make_sampler(job_id: str) -> Sampler:
        return Collector(client, job_id, max_task_managers=max_task_managers if cluster else None)

    def make_executor(job_id: str) -> Applier | None:
        if daemon.dry_run:
            return None
        return Executor(client, job_id, cluster=cluster, config=executor_config,
                        event=lambda kind, message: log(f"job {job_id}: {kind}: {message}"))

    return MultiJobDaemon(client, store, config, daemon, make_sampler=make_sampler, make_executor=make_executor,
                          log=log, paused=paused)
