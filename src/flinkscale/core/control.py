"""The control step: from a snapshot of a job and its history to actions, each with its reason.

One pure function, ``step(snapshot, history, state, settings, policy)``, is everything that decides what to
do with a job; its drivers only fetch inputs and carry actions out:

- the live loop (``flinkscale.flink.autoscaler.AutoscaleLoop``): snapshots from the REST collector, a
  ``Rescale`` to the executor, a ``SetKeepProbability`` to the job's control topic;
- the simulator (``flinkscale.core.sim.run.simulate``): snapshots from the model, actions applied to it;
- ``flinkscale shed auto``: shedding alone (no policy), keep probabilities to the control topic.

Shaped like the Flink operator autoscaler's run of one scaling cycle, in plain functions over frozen
dataclasses: *collect* (the caller's snapshot; ``partial_metrics`` refuses one too incomplete to decide on)
-> *evaluate* (``policy.decide``: per-vertex parallelism with reasons) -> *scale* (the rules below, which
turn a decision into actions) -> *realize* (the driver's executor or the simulator).

The rules between a decision and the actions, in order:

1. **Decide on complete metrics only.** A job that is not RUNNING, a task that is not RUNNING ("holding: 3
   of 4 tasks RUNNING") or a vertex without a record rate (none reported, or an IO counter Flink marks
   incomplete) is a ``Hold``, and so is a vertex without busy time, for ``busy_time_grace_ticks`` steps in a
   row; after that the policy decides without it (Flink keeps reporting none for some sources). Nothing else
   is decided in a hold step and the history is unchanged.
2. **Scale first, shed only at the ceiling.** Shedding (``settings.shedding``) covers what scaling cannot:
   the shedding controller (``core.shedding.shed_step``) steps only once the job holds every slot it may get
   (``job_at_slot_ceiling``), or while it already sheds (so that it can stop); without a policy (``shed
   auto``) scaling is not ours and it always steps.
3. **Never shed in a step that scales up**, and **settle after a rescale**: not in the ``settle_intervals``
   steps after a rescale completed (those samples show the restart, not the capacity).
4. **No scale-down while shedding**: shedding lowers busy time per record read, which would otherwise look
   like spare capacity; such a decision is blocked, with the reason.
5. **Stabilize from the job's own start** (live drivers, which pass ``job_started_at``, the ``start-time``
   of ``GET /jobs/:jid``): no decision before ``job_started_at + settings.stabilization_seconds``, and none
   on the first complete sample of a job whose history is empty (a new or just discovered job, or a driver
   restarted without a state store): a policy given an empty history treats the snapshot as an offline one
   and would decide on that single sample. Such a step holds with a hold ``Decision`` whose reason says
   why and until when; its snapshot joins the history, so the window after stabilization starts filled.
   The operator autoscaler does the same (``stabilization.interval`` counts from the job's start).
   Without ``job_started_at`` (the simulator, ``shed auto``) the rule does not apply.

Every decision carries the shed fraction in force (``Decision.shed_fraction``). The new history (the
snapshot and decision appended, bounded by ``settings.history_seconds``) and the new controller state come
back with the actions; a driver appends the ``RescaleRecord`` of a rescale it carried out
(``record_rescale``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from flinkscale.core.errors import InputError
from flinkscale.core.policy._evaluate import hold_decision, job_at_slot_ceiling, slots_required
from flinkscale.core.policy.base import DEFAULT_HISTORY_SECONDS, Decision, History, Policy, RescaleRecord
from flinkscale.core.shedding import ShedSettings, ShedState, ShedStep, shed_step
from flinkscale.core.snapshot import ClusterResources, MetricsSnapshot

#: The policy name on decisions made without a policy (``shed auto``).
SHED_ONLY = "shed-only"
NO_BUSY_TIME_NOTE = "deciding without busy time for some vertex: Flink keeps reporting none"


@dataclass(frozen=True)
class ControlSettings:
    # Seconds between steps; the settle rule counts in these.
    interval_seconds: float = 15.0
    # None: no shedding, decisions pass through with the policy's own shed fraction.
    shedding: ShedSettings | None = None
    # How far back the history reaches (``required_history_seconds(policy)`` for a policy's longest rule).
    history_seconds: float = DEFAULT_HISTORY_SECONDS
    # Steps in a row to hold for a vertex without busy time before deciding without it.
    busy_time_grace_ticks: int = 2
    # Steps after a completed rescale in which the shedding controller does not step.
    settle_intervals: float = 2.0
    # No decision this long after the job's start (rule 5; ``stabilization_seconds(policy)``).
    stabilization_seconds: float = 0.0

    def __post_init__(self) -> None:
        checks = (("interval_seconds", self.interval_seconds > 0), ("history_seconds", self.history_seconds > 0),
                  ("busy_time_grace_ticks", self.busy_time_grace_ticks >= 0),
                  ("settle_intervals", self.settle_intervals >= 0),
                  ("stabilization_seconds", self.stabilization_seconds >= 0))
        for name, ok in checks:
            if not ok:
                raise InputError(f"out of range: {getattr(self, name)!r}", field=name)


@dataclass(frozen=True)
class ControllerState:
    """What the control step remembers between steps besides the history."""

    shed: ShedState = field(default_factory=ShedState)
    # Steps in a row held for a vertex without busy time.
    busy_time_holds: int = 0


@dataclass(frozen=True)
class Rescale:
    """Set every vertex to ``parallelism``."""

    parallelism: Mapping[str, int]
    reason: str


@dataclass(frozen=True)
class SetKeepProbability:
    """Publish ``keep_probability`` under sequence number ``seq`` (1 = shedding off)."""

    keep_probability: float
    seq: int
    reason: str


@dataclass(frozen=True)
class Hold:
    """Change nothing."""

    reason: str


Action = Rescale | SetKeepProbability | Hold


@dataclass(frozen=True)
class ControlResult:
    actions: tuple[Action, ...]
    state: ControllerState
    history: History
    # None when the snapshot was too incomplete to decide on (the only action is then a Hold).
    decision: Decision | None
    # The shedding controller's step, when it stepped.
    shed: ShedStep | None = None
    notes: tuple[str, ...] = ()

    @property
    def held(self) -> str | None:
        """Why nothing was decided (None when a decision was made)."""
        if self.decision is not None:
            return None
        return next((a.reason for a in self.actions if isinstance(a, Hold)), "held")


def partial_metrics(snapshot: MetricsSnapshot, *, require_busy_time: bool = True) -> str | None:
    """Why a snapshot is not complete enough to decide on (None when it is).

    Every task must be RUNNING (``tasks_running`` of ``tasks_total``, when the producer says), and record rates
    must be there for every vertex (the collector leaves them None when Flink marks a counter incomplete: never
    read as zero, a known cause of wrong scale-downs). Busy time is NaN for a few seconds after a task starts;
    some sources never report it, so the step requires it only for ``busy_time_grace_ticks`` steps in a row
    and then lets the policy decide without it (policies treat an unknown true processing rate cautiously)."""
    if snapshot.job_state != "RUNNING":
        return f"job is {snapshot.job_state}"
    if snapshot.tasks_total is not None and (snapshot.tasks_running or 0) < snapshot.tasks_total:
        return f"{snapshot.tasks_running or 0} of {snapshot.tasks_total} tasks RUNNING"
    for vertex in snapshot.vertices:
        metrics = vertex.metrics
        rate = metrics.num_records_out_per_second if vertex.is_source else metrics.num_records_in_per_second
        if rate is None:
            return f"no record rate for {vertex.name}"
        if require_busy_time and metrics.busy_time_ms_per_second_max is None:
            return f"no busy time for {vertex.name}"
    return None


def stabilization_seconds(policy: Policy | None) -> float:
    """The policy's ``stabilization.interval`` in seconds (0 for a policy without one)."""
    value = getattr(getattr(policy, "settings", None), "stabilization_interval", 0.0)
    return float(value) if isinstance(value, (int, float)) and value > 0 else 0.0


def stabilizing(snapshot: MetricsSnapshot, history: History, settings: ControlSettings,
                job_started_at: float | None) -> str | None:
    """Why rule 5 holds this step (None when it does not): the job started less than
    ``settings.stabilization_seconds`` ago, or this is the first sample of a job with an empty history."""
    if job_started_at is None:
        return None
    until = job_started_at + settings.stabilization_seconds
    if snapshot.timestamp < until:
        return (f"stabilizing: the job started at {_clock_time(job_started_at)}, "
                f"no decision for {until - snapshot.timestamp:.0f}s more (until {_clock_time(until)}, "
                "stabilization.interval)")
    if not history.snapshots and not history.rescales:
        return "stabilizing: first sample of this job, no history yet; deciding from the next interval on"
    return None


def _clock_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%H:%M:%S UTC")


def step(snapshot: MetricsSnapshot, history: History, state: ControllerState, settings: ControlSettings,
         policy: Policy | None, *, arrival_rate: float | None = None,
         job_started_at: float | None = None) -> ControlResult:
    """One control step. ``policy`` None sheds only (``shed auto``); ``arrival_rate`` (records/s reaching
    the source topic, when the driver knows it) is the shedding controller's offered rate;
    ``job_started_at`` (UNIX seconds, from the job's details) enables rule 5."""
    # collect: refuse a snapshot too incomplete to decide on
    partial = partial_metrics(snapshot, require_busy_time=state.busy_time_holds < settings.busy_time_grace_ticks)
    if partial:
        busy_time_only = partial_metrics(snapshot, require_busy_time=False) is None
        held = replace(state, busy_time_holds=state.busy_time_holds + (1 if busy_time_only else 0))
        return ControlResult((Hold(partial),), held, history, None)
    notes: tuple[str, ...] = ()
    if state.busy_time_holds and partial_metrics(snapshot) is not None:
        notes = (NO_BUSY_TIME_NOTE,)
    else:
        state = replace(state, busy_time_holds=0)
    why = stabilizing(snapshot, history, settings, job_started_at)
    if why is not None:
        held_decision = hold_decision(snapshot, policy.name if policy is not None else SHED_ONLY, why)
        history = history.append(snapshot=snapshot, decision=held_decision, keep_seconds=settings.history_seconds)
        return ControlResult((Hold(why),), state, history, held_decision, None, notes)
    # evaluate
    decision = (policy.decide(snapshot, history) if policy is not None
                else hold_decision(snapshot, SHED_ONLY, "no autoscaling policy: shedding only"))
    # scale: the rules between a decision and the actions
    shed: ShedStep | None = None
    if settings.shedding is not None:
        decision, shed, shed_state = _with_shedding(snapshot, history, decision, state.shed, settings,
                                                    settings.shedding, scaling=policy is not None,
                                                    arrival_rate=arrival_rate)
        state = replace(state, shed=shed_state)
    history = history.append(snapshot=snapshot, decision=decision, keep_seconds=settings.history_seconds)
    actions: list[Action] = []
    if decision.rescale:
        actions.append(Rescale(decision.parallelism(), _rescale_reason(decision)))
    if shed is not None and shed.published_seq is not None:
        actions.append(SetKeepProbability(shed.keep_probability, shed.published_seq, shed.describe()))
    if not actions:
        actions.append(Hold(decision.blocked_reason or _hold_reason(decision)))
    return ControlResult(tuple(actions), state, history, decision, shed, notes)


def record_rescale(history: History, record: RescaleRecord, settings: ControlSettings) -> History:
    """The history with a rescale the driver carried out (its measured duration feeds the policies)."""
    return history.append(rescale=record, keep_seconds=settings.history_seconds)


def _with_shedding(snapshot: MetricsSnapshot, history: History, decision: Decision, shed_state: ShedState,
                   settings: ControlSettings, shedding: ShedSettings, *, scaling: bool,
                   arrival_rate: float | None) -> tuple[Decision, ShedStep | None, ShedState]:
    keep = shed_state.keep_probability
    grows = decision.rescale and any(v.new_parallelism > v.current_parallelism for v in decision.vertices)
    if decision.rescale and not grows and keep < 1.0:
        decision = replace(decision, blocked_reason=(
            f"load shedding in force (keep p={keep:.3f}): no scale-down until it stops"))
    at_ceiling = not scaling or job_at_slot_ceiling(snapshot)
    # The first samples after a rescale show the restart (little read, much lag), not the capacity.
    last = history.rescales[-1].completed_at if history.rescales else None
    settling = last is not None and snapshot.timestamp - last < settings.settle_intervals * settings.interval_seconds
    shed: ShedStep | None = None
    if not grows and not settling and (at_ceiling or keep < 1.0):
        shed, shed_state = shed_step(snapshot, shed_state, shedding, arrival_rate)
    return replace(decision, shed_fraction=1.0 - shed_state.keep_probability), shed, shed_state


def _rescale_reason(decision: Decision) -> str:
    return "; ".join(f"{v.vertex_name}: {v.current_parallelism} -> {v.new_parallelism} ({v.reason})"
                     for v in decision.vertices if v.changed)


def _hold_reason(decision: Decision) -> str:
    return "; ".join(dict.fromkeys(v.reason for v in decision.vertices if v.reason)) or "nothing to change"


# --- several jobs on one cluster ------------------------------------------------------------------------

def cluster_share(cluster: ClusterResources, *, ceiling: int, used_by_job: int, held_by_others: int
                  ) -> ClusterResources:
    """The cluster as one of several jobs may see it: ``ceiling`` slots in all (``--max-slots``, or what the
    cluster can grow to), of which ``held_by_others`` are held or already promised to other jobs, so the
    job's slot ceiling (``job_slot_ceiling``) is ``ceiling - held_by_others`` and two jobs never both count
    on the same free slots. The TaskManager size stays the cluster's."""
    per_tm = max(cluster.slots_per_task_manager, 1)
    ceiling = max(ceiling, 1)
    whole = ceiling // per_tm  # TaskManagers that fit under the ceiling (0 when it is under one's size)
    available = max(0, ceiling - used_by_job - held_by_others)
    return ClusterResources(max(whole, 1), ceiling, available, per_tm, whole)


def extra_slots(current: Mapping[str, int], target: Mapping[str, int]) -> int:
    """Slots a rescale from ``current`` to ``target`` takes beyond what the job holds (0 for a scale-down)."""
    return max(0, slots_required({**current, **target}) - slots_required(current))


@dataclass(frozen=True)
class PendingScaleDown:
    """A scale-down a decision asked for that waits for its time (``target`` None: not known yet)."""

    vertex_id: str
    target: int | None
    due_at: float


def pending_scale_downs(decision: Decision) -> tuple[PendingScaleDown, ...]:
    """The scale-down timers a decision states: each policy that delays a scale-down puts its target and due
    time in the vertex's numbers (``scale_down_target``, ``scale_down_due_at``). The policies keep their timers
    in the history; this hands them to the state store and ``autoscale status``."""
    found: list[PendingScaleDown] = []
    for vertex in decision.vertices:
        target, due_at = vertex.numbers.get("scale_down_target"), vertex.numbers.get("scale_down_due_at")
        if target is None or due_at is None or not math.isfinite(target) or not math.isfinite(due_at):
            continue
        if int(target) < vertex.current_parallelism:
            found.append(PendingScaleDown(vertex.vertex_id, int(target), float(due_at)))
    return tuple(found)
