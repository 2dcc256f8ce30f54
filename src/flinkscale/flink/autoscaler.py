"""The autoscaling loop: collect, decide, apply, repeat; everything it sees and does goes to a run directory.

Every ``interval_seconds`` the loop asks the collector for a snapshot of the interval just ended and runs
the one control step (``flinkscale.core.control.step``, the same the simulator and ``shed auto`` run) on it
with the ``History``; it carries the step's actions out: a ``Rescale`` through the executor (``--dry-run``
decides only), a ``SetKeepProbability`` through the shedding controller's channel. The history keeps what
the policy needs (``required_history_seconds``) and the ``RescaleRecord``s the executor measured, so
policies that learn the restart cost from observed rescales see real ones.

Holding still is the answer to anything doubtful, because a decision on partial metrics is worse than none:
a REST outage or a JobManager restart (``EndpointError``), a job that is not RUNNING, a sample that
straddles a restart or rescale (the collector returns ``None``), or a vertex without busy time or record
rates. The loop then logs a ``hold`` event, starts a fresh collector (so the next interval does not mix two
executions of the job) and retries at the next tick. It never gives up on its own; ``duration_seconds``
or ``should_stop`` ends it. A job also gets its stabilization interval from its own start (the collector's
``started_at``, the job's ``start-time``) and is never decided on from its first sample (the control step's
rule 5); those ticks log a hold decision saying until when.

The run directory (read live by the dashboard; the format is ``flinkscale.core.rundir``):
``snapshots.jsonl``, ``decisions.jsonl`` (``DecisionRecord``) and ``events.jsonl`` (``RunEvent``). Lines
are flushed as written.

Load shedding (optional, ``LoopShedding``): scaling comes first, shedding covers only what scaling cannot;
the rules (shed only at the slot ceiling, never while scaling up nor while a rescale settles, no scale-down
while shedding) are the control step's, see ``flinkscale.core.control``. Each decision carries the shed
fraction in force, and every change of p is an event.

Time comes in through ``clock`` and ``sleep`` so tests drive the loop over recorded snapshots instantly.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

from flinkscale.core import control, rundir
from flinkscale.core.control import ControllerState, ControlSettings
from flinkscale.core.errors import EndpointError, FlinkscaleError, InputError, NotFoundError
from flinkscale.core.policy.base import Decision, History, Policy, RescaleRecord
from flinkscale.core.policy.registry import required_history_seconds
from flinkscale.core.redaction import redact
from flinkscale.core.rundir import DecisionRecord, RunEvent
from flinkscale.core.snapshot import MetricsSnapshot
from flinkscale.flink.protocols import Applier, Sampler
from flinkscale.flink.shedder import ShedController

DEFAULT_INTERVAL_SECONDS = 15.0


@dataclass(frozen=True)
class LoopShedding:
    """Shedding driven by the loop: the controller (publishing to the job's control topic) and, optionally,
    the topic's arrival rate (``kafka.control.ArrivalRate.sample``), sampled once per tick."""

    controller: ShedController
    arrival_rate: Callable[[], float | None] | None = None


@dataclass(frozen=True)
class LoopConfig:
    interval_seconds: float = DEFAULT_INTERVAL_SECONDS
    dry_run: bool = False
    # None: run until stopped.
    duration_seconds: float | None = None
    run_dir: Path | None = None
    # Ticks in a row the loop holds for a vertex without busy time before deciding without it.
    busy_time_grace_ticks: int = 2

    def __post_init__(self) -> None:
        if not self.interval_seconds > 0:
            raise InputError(f"must be > 0, got {self.interval_seconds}", field="--interval")
        if self.duration_seconds is not None and not self.duration_seconds > 0:
            raise InputError(f"must be > 0, got {self.duration_seconds}", field="--duration")


@dataclass
class LoopStatus:
    """The loop's state as the live view and the metrics exporter show it."""

    job_id: str
    policy: str
    last_snapshot: MetricsSnapshot | None = None
    last_decision: Decision | None = None
    decisions: deque[DecisionRecord] = field(default_factory=lambda: deque(maxlen=8))
    events: deque[RunEvent] = field(default_factory=lambda: deque(maxlen=8))
    holding: str | None = None
    rescales: int = 0
    ticks: int = 0


@dataclass(frozen=True)
class LoopSummary:
    ticks: int
    snapshots: int
    decisions: int
    rescales: tuple[RescaleRecord, ...]
    holds: int
    errors: tuple[str, ...]


class RunDirectory:
    """Append-only JSONL files under ``run_dir`` (nothing is written when it is None)."""

    def __init__(self, run_dir: Path | None) -> None:
        self.run_dir = run_dir
        self._files: dict[str, IO[str]] = {}
        if run_dir is not None:
            try:
                run_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(f"cannot create: {exc.strerror or exc}", field="--run-dir") from None

    def write(self, record: rundir.RunRecord) -> None:
        """Append ``record`` to its file (``rundir.file_for``) and flush, so readers see whole lines."""
        if self.run_dir is None:
            return
        name = rundir.file_for(record)
        handle = self._files.get(name)
        if handle is None:
            handle = self._files[name] = (self.run_dir / name).open("a", encoding="utf-8")
        handle.write(rundir.to_line(record) + "\n")  # to_line redacts: the dashboard serves these files
        handle.flush()

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()


class AutoscaleLoop:
    """One job under one policy. ``make_sampler(job_id)`` builds a fresh collector (after a hold or a
    rescale the job, and maybe its id, changed); ``executor`` is None for a dry run."""

    def __init__(self, policy: Policy, make_sampler: Callable[[str], Sampler], job_id: str, *,
                 executor: Applier | None = None, config: LoopConfig | None = None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 on_tick: Callable[[LoopStatus], None] = lambda _status: None,
                 should_stop: Callable[[], bool] = lambda: False, shedding: LoopShedding | None = None) -> None:
        self.policy = policy
        self.shedding = shedding
        self.config = config or LoopConfig()
        if executor is None and not self.config.dry_run:
            raise InputError("an executor is needed unless --dry-run is given", field="executor")
        self.make_sampler = make_sampler
        self.executor = executor
        self.clock = clock
        self.sleep = sleep
        self.on_tick = on_tick
        self.should_stop = should_stop
        self.control = ControlSettings(
            interval_seconds=self.config.interval_seconds,
            shedding=shedding.controller.settings if shedding else None,
            history_seconds=required_history_seconds(policy),
            busy_time_grace_ticks=self.config.busy_time_grace_ticks,
            stabilization_seconds=control.stabilization_seconds(policy))
        self.controller_state = ControllerState()
        self.history = History()
        self.status = LoopStatus(job_id, policy.name)
        self.run = RunDirectory(self.config.run_dir)
        self._sampler = make_sampler(job_id)
        self._skipped_seen = 0
        self._holds = 0
        self._errors: list[str] = []
        self._snapshots = 0
        self._decisions = 0

    # --- public ---------------------------------------------------------------------------------
    def event(self, kind: str, message: str) -> None:
        event = RunEvent(self.clock(), kind, redact(message))
        self.status.events.append(event)
        self.run.write(event)

    def run_forever(self) -> LoopSummary:
        """Prime the collector, then tick every interval until ``duration_seconds`` or ``should_stop``."""
        started = self.clock()
        self.event("start", f"policy {self.policy.name}, interval {self.config.interval_seconds:g}s"
                   + (", dry run" if self.config.dry_run else ""))
        try:
            self._prime()
            while not self.should_stop():
                next_tick = self.clock() + self.config.interval_seconds
                if self.config.duration_seconds is not None and next_tick - started > self.config.duration_seconds:
                    break
                self._sleep_until(next_tick)
                if self.should_stop():
                    break
                self.tick()
        finally:
            self.event("stop", f"{self.status.ticks} ticks, {self.status.rescales} rescales")
            self.run.close()
        return LoopSummary(self.status.ticks, self._snapshots, self._decisions, self.history.rescales,
                           self._holds, tuple(self._errors))

    def tick(self) -> DecisionRecord | None:
        """One collect-decide-apply round; the decision entry, or None when the loop held still."""
        self.status.ticks += 1
        snapshot = self._collect()
        if snapshot is None:
            self.on_tick(self.status)
            return None
        result = self._step(snapshot)
        for note in result.notes:
            self.event("note", note)
        if result.decision is None:
            self._hold(result.held or "held", fresh_sampler=False)
            self.on_tick(self.status)
            return None
        decision = result.decision
        self.status.holding = None
        self._snapshots += 1
        self._decisions += 1
        self.status.last_snapshot = snapshot
        self.run.write(snapshot)
        self.history = result.history
        self._shed(result)
        entry = self._apply(decision)
        self.status.last_decision = decision
        self.status.decisions.append(entry)
        self.run.write(entry)
        self.on_tick(self.status)
        return entry

    # --- steps ----------------------------------------------------------------------------------
    def _prime(self) -> None:
        try:
            self._sampler.sample()
        except EndpointError as exc:
            self._hold(f"REST unavailable: {exc}")

    def _sleep_until(self, when: float) -> None:
        remaining = when - self.clock()
        if remaining > 0:
            self.sleep(remaining)

    def _collect(self) -> MetricsSnapshot | None:
        try:
            snapshot = self._sampler.sample()
        except NotFoundError as exc:
            # A JobManager restart without HA forgets the job: hold; the operator (or a supervisor) resubmits.
            self._hold(f"job not found: {exc}")
            return None
        except EndpointError as exc:
            self._hold(f"REST unavailable: {exc}")
            return None
        skipped = self._sampler.skipped[self._skipped_seen:]
        self._skipped_seen = len(self._sampler.skipped)
        if snapshot is None:
            self._hold(skipped[-1] if skipped else "priming the collector", fresh_sampler=False)
            return None
        return snapshot

    def _step(self, snapshot: MetricsSnapshot) -> control.ControlResult:
        """The control step on ``snapshot``; the shedding state in force is the controller's."""
        shedding = self.shedding
        arrival = shedding.arrival_rate() if shedding is not None and shedding.arrival_rate else None
        state = self.controller_state
        if shedding is not None:
            state = replace(state, shed=shedding.controller.state)
        # The collector knows the job's start-time (``started_at``): no decision before its stabilization.
        started_at = getattr(self._sampler, "started_at", None)
        result = control.step(snapshot, self.history, state, self.control, self.policy, arrival_rate=arrival,
                              job_started_at=started_at if isinstance(started_at, (int, float)) else None)
        self.controller_state = result.state
        return result

    def _shed(self, result: control.ControlResult) -> None:
        """Publish a new keep probability (``SetKeepProbability``) and log it."""
        if self.shedding is None or result.shed is None:
            return
        self.shedding.controller.commit(result.shed, result.state.shed)
        for action in result.actions:
            if isinstance(action, control.SetKeepProbability):
                self.event("shed", action.reason)

    def _hold(self, reason: str, *, fresh_sampler: bool = True) -> None:
        self._holds += 1
        self.status.holding = reason
        self.event("hold", reason)
        if fresh_sampler:
            self._new_sampler()

    def _new_sampler(self) -> None:
        self._sampler = self.make_sampler(self.executor.job_id if self.executor else self.status.job_id)
        self._skipped_seen = 0
        with contextlib.suppress(EndpointError):
            self._sampler.sample()  # prime: the next tick measures a clean interval

    def _apply(self, decision: Decision) -> DecisionRecord:
        now = self.clock()
        if not decision.rescale or self.config.dry_run or self.executor is None:
            return DecisionRecord(now, decision, False, None, None)
        try:
            record = self.executor.apply(decision)
        except FlinkscaleError as exc:
            self._errors.append(redact(str(exc)))
            self.event("error", f"rescale failed: {exc}")
            self._new_sampler()
            return DecisionRecord(now, decision, False, None, str(exc))
        if record is None:
            return DecisionRecord(now, decision, False, None, None)
        self.history = control.record_rescale(self.history, record, self.control)
        self.status.rescales += 1
        self.status.job_id = self.executor.job_id
        self._new_sampler()
        return DecisionRecord(now, decision, True, record.duration_seconds, None)


# --- Prometheus ---------------------------------------------------------------------------------------
class LoopMetrics:
    """The loop's state as Prometheus gauges and counters, on a registry of its own (tests run several)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.registry = CollectorRegistry()
        self.parallelism = Gauge("flinkscale_vertex_parallelism", "Current parallelism of a job vertex",
                                 ["job", "vertex"], registry=self.registry)
        self.recommended = Gauge("flinkscale_vertex_recommended_parallelism",
                                 "Parallelism the policy recommends for a job vertex", ["job", "vertex"],
                                 registry=self.registry)
        self.utilization = Gauge("flinkscale_vertex_utilization",
                                 "Busy time of the busiest subtask, as a fraction of the interval",
                                 ["job", "vertex"], registry=self.registry)
        self.lag = Gauge("flinkscale_source_lag_records", "Records pending in the job's sources (consumer lag)",
                         ["job"], registry=self.registry)
        self.rescales = Counter("flinkscale_rescales", "Rescales carried out", ["job"], registry=self.registry)
        self.shed_fraction = Gauge("flinkscale_shed_fraction", "Fraction of source records shed (0 = none)",
                                   ["job"], registry=self.registry)
        self._rescales_seen: dict[str, int] = {}  # per job: one registry serves every job of a daemon

    def update(self, status: LoopStatus) -> None:
        job = status.job_id
        snapshot = status.last_snapshot
        if snapshot is not None:
            for v in snapshot.vertices:
                self.parallelism.labels(job, v.name).set(v.parallelism)
                if v.metrics.busy_ratio_max is not None:
                    self.utilization.labels(job, v.name).set(v.metrics.busy_ratio_max)
            self.lag.labels(job).set(snapshot.source_lag())
        if status.last_decision is not None:
            for d in status.last_decision.vertices:
                self.recommended.labels(job, d.vertex_name).set(d.new_parallelism)
            self.shed_fraction.labels(job).set(status.last_decision.shed_fraction)
        seen = self._rescales_seen.get(job, 0)
        if status.rescales > seen:
            self.rescales.labels(job).inc(status.rescales - seen)
            self._rescales_seen[job] = status.rescales
        else:
            self.rescales.labels(job)  # the series exists (at 0) from the first tick

    def render(self) -> str:
        from prometheus_client import generate_latest

        return generate_latest(self.registry).decode()

    @contextmanager
    def serve(self, port: int, host: str = "127.0.0.1") -> Iterator[int]:
        """Serve ``/metrics`` on ``host:port`` (0 picks a free port) while the block runs; yields the port."""
        from prometheus_client import start_http_server

        try:
            server, thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", field="--metrics-port") from None
        try:
            yield int(server.server_address[1])
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


# --- plain-text view ------------------------------------------------------------------------------------
def status_line(status: LoopStatus) -> str:
    """One line per tick for logs and non-TTY output."""
    stamp = time.strftime("%H:%M:%S", time.gmtime(status.last_snapshot.timestamp if status.last_snapshot else 0))
    if status.holding:
        return f"{stamp} hold: {status.holding}"
    snapshot = status.last_snapshot
    if snapshot is None:
        return f"{stamp} waiting for the first snapshot"
    vertices = " ".join(
        f"{v.name[:24]}=p{v.parallelism}@{(v.metrics.busy_ratio_max or 0) * 100:.0f}%" for v in snapshot.vertices)
    line = f"{stamp} lag={snapshot.source_lag():,.0f} {vertices}"
    if status.decisions:
        entry = status.decisions[-1]
        d = entry.decision
        if d.rescale:
            line += f" -> rescale {d.parallelism()}" + (
                f" done in {entry.rescale_seconds:.1f}s" if entry.applied and entry.rescale_seconds is not None
                else f" FAILED: {entry.error}" if entry.error else " (not applied)")
        elif d.blocked_reason:
            line += f" (blocked: {d.blocked_reason})"
        if d.shed_fraction > 0:
            line += f" shedding {d.shed_fraction:.0%}"
    return line
