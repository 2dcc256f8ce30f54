"""How long a rescale may take to land, from the job's own checkpoint interval and adaptive scheduler settings.

Flink 2.x's adaptive scheduler does not restart a job the moment its resource requirements change
(``PUT /jobs/:jid/resource-requirements``); it waits, in this order (FLIP-461, flink-runtime.md section 6):

1. the **cooldown** since the job's last rescale or start
   (``jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling``, 1.x ``scaling-interval.min``; 30 s);
2. the **resource stabilization** while it has only the sufficient, not the desired, slots
   (``jobmanager.adaptive-scheduler.executing.resource-stabilization-timeout``; 60 s);
3. the **next completed checkpoint**, on which it rescales, or at the latest the **trigger's max delay**
   (``jobmanager.adaptive-scheduler.rescale-trigger.max-delay``; by default the checkpoint interval times
   ``rescale-trigger.max-checkpoint-failures`` + 1, so 3 intervals; 0 for a job without checkpoints);
4. the **restart**: tasks redeployed and state restored, which the history measures
   (the mean duration of the job's past rescales).

``rescale_wait`` adds these up into the longest a rescale of this job can legitimately take: the executor's
deadline for a rescale to land (instead of a fixed 300 s, which is too short for a job that checkpoints every
2 minutes and far too long for one that checkpoints every 5 s), and what a decision or status line prints,
every term with its source: ``rescale wait 98 s = cooldown 5 s + resource stabilization 60 s + trigger delay
15 s (3 x checkpoint interval 5 s) + restart allowance 18 s (2 x measured 9 s)``.

Pure: the caller reads the job's settings over REST (``GET /jobs/:jid/rescales/config`` on Flink 2.3, else the
JobManager's configuration, and ``GET /jobs/:jid/checkpoints/config``) and hands them in as ``SchedulerTimings``.

``wait_for_parallelism`` is the wait itself, which both appliers run after asking for a rescale (the executor
in ``flinkscale.flink``, the FlinkDeployment realizer in ``flinkscale.k8s``, which may not import each other):
it polls the job through a reader, a clock and a sleep the caller hands in, and does no I/O of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from flinkscale.core.errors import EndpointError, InputError, RuntimeFailure

COOLDOWN_KEY = "jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling"
#: Flink 1.x's name of the cooldown, still read by 2.x as a fallback.
COOLDOWN_KEY_1X = "jobmanager.adaptive-scheduler.scaling-interval.min"
STABILIZATION_KEY = "jobmanager.adaptive-scheduler.executing.resource-stabilization-timeout"
STABILIZATION_KEY_1X = "jobmanager.adaptive-scheduler.resource-stabilization-timeout"
MAX_DELAY_KEY = "jobmanager.adaptive-scheduler.rescale-trigger.max-delay"
MAX_FAILURES_KEY = "jobmanager.adaptive-scheduler.rescale-trigger.max-checkpoint-failures"
CHECKPOINT_INTERVAL_KEY = "execution.checkpointing.interval"

#: Flink 2.3's defaults for the keys above.
DEFAULT_COOLDOWN_SECONDS = 30.0
DEFAULT_STABILIZATION_SECONDS = 60.0
DEFAULT_MAX_CHECKPOINT_FAILURES = 2
#: What a restart is allowed before the job has a measured one (redeploy + restore: 3-10 s measured here;
#: large state restores take longer) and the factor on a measured one.
DEFAULT_RESTART_ALLOWANCE_SECONDS = 60.0
RESTART_ALLOWANCE_FACTOR = 2.0
#: Never less than this, whatever the settings (a REST poll or two, a TaskManager registering).
MIN_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class SchedulerTimings:
    """A job's settings that bound how long its rescale takes, with where each came from."""

    # None: the job does not checkpoint (the scheduler then rescales without waiting for one).
    checkpoint_interval_seconds: float | None
    cooldown_seconds: float = DEFAULT_COOLDOWN_SECONDS
    resource_stabilization_seconds: float = DEFAULT_STABILIZATION_SECONDS
    # None: Flink's default, checkpoint interval x (max_checkpoint_failures + 1), 0 without checkpoints.
    trigger_max_delay_seconds: float | None = None
    max_checkpoint_failures: int = DEFAULT_MAX_CHECKPOINT_FAILURES
    # Where these were read, for the explanation ("GET /jobs/:jid/rescales/config", "Flink's defaults", ...).
    source: str = "Flink's defaults"

    def __post_init__(self) -> None:
        for name in ("cooldown_seconds", "resource_stabilization_seconds"):
            if not getattr(self, name) >= 0:
                raise InputError(f"must be >= 0, got {getattr(self, name)!r}", field=name)
        if self.checkpoint_interval_seconds is not None and not self.checkpoint_interval_seconds > 0:
            raise InputError(f"must be > 0 or None, got {self.checkpoint_interval_seconds!r}",
                             field="checkpoint_interval_seconds")
        if self.trigger_max_delay_seconds is not None and not self.trigger_max_delay_seconds >= 0:
            raise InputError(f"must be >= 0, got {self.trigger_max_delay_seconds!r}",
                             field="trigger_max_delay_seconds")
        if self.max_checkpoint_failures < 0:
            raise InputError(f"must be >= 0, got {self.max_checkpoint_failures}", field="max_checkpoint_failures")


@dataclass(frozen=True)
class RescaleWait:
    """The longest a rescale of the job may take, and its terms (label, seconds, why)."""

    seconds: float
    terms: tuple[tuple[str, float, str], ...]
    source: str

    def describe(self) -> str:
        parts = " + ".join(f"{label} {_secs(value)}" + (f" ({why})" if why else "") for label, value, why in self.terms)
        text = f"rescale wait {_secs(self.seconds)} = {parts}"
        if self.seconds > sum(value for _, value, _ in self.terms) + 1e-9:
            text += f", at least {_secs(MIN_WAIT_SECONDS)}"
        return f"{text} (settings from {self.source})"


def trigger_delay(timings: SchedulerTimings) -> tuple[float, str]:
    """The longest the scheduler waits for a checkpoint to rescale on, and why."""
    interval = timings.checkpoint_interval_seconds
    n = timings.max_checkpoint_failures + 1
    default = None if interval is None else interval * n
    in_intervals = "" if interval is None else f"{n} x checkpoint interval {_secs(interval)}"
    delay = timings.trigger_max_delay_seconds
    if delay is not None:
        # Flink 2.3 reports the delay in force, which is the default one unless the key is set.
        same = default is not None and abs(delay - default) < 1e-6
        return delay, "rescale-trigger.max-delay" + (f" = {in_intervals}" if same else "")
    if default is None:
        return 0.0, "the job does not checkpoint"
    return default, in_intervals


def rescale_wait(timings: SchedulerTimings, measured_restart_seconds: float | None = None) -> RescaleWait:
    """The longest a rescale may take from the request until every task runs at the new parallelism:
    cooldown + resource stabilization + trigger delay + restart allowance (``RESTART_ALLOWANCE_FACTOR`` x the
    mean measured restart, or ``DEFAULT_RESTART_ALLOWANCE_SECONDS`` before the first one), at least
    ``MIN_WAIT_SECONDS``."""
    delay, delay_why = trigger_delay(timings)
    if measured_restart_seconds is not None and measured_restart_seconds >= 0:
        restart = RESTART_ALLOWANCE_FACTOR * measured_restart_seconds
        restart_why = f"{RESTART_ALLOWANCE_FACTOR:g} x measured {_secs(measured_restart_seconds)}"
    else:
        restart, restart_why = DEFAULT_RESTART_ALLOWANCE_SECONDS, "none measured yet"
    terms = (("cooldown", timings.cooldown_seconds, ""),
             ("resource stabilization", timings.resource_stabilization_seconds, ""),
             ("trigger delay", delay, delay_why),
             ("restart allowance", restart, restart_why))
    total = sum(value for _, value, _ in terms)
    return RescaleWait(max(total, MIN_WAIT_SECONDS), terms, timings.source)


class VertexView(Protocol):
    """What the wait reads of a job vertex (``flink.models.JobVertexInfo`` has it)."""

    @property
    def id(self) -> str: ...

    @property
    def parallelism(self) -> int: ...


class JobView(Protocol):
    """What the wait reads of a job (``flink.models.JobDetails`` has it)."""

    @property
    def all_running(self) -> bool: ...

    @property
    def vertices(self) -> Sequence[VertexView]: ...


_Job = TypeVar("_Job", bound=JobView)


def wait_for_parallelism(read_job: Callable[[], _Job], target: Mapping[str, int], *, timeout_seconds: float,
                         poll_seconds: float, clock: Callable[[], float], sleep: Callable[[float], None],
                         timed_out: Callable[[dict[str, int]], str]) -> _Job:
    """The job as first read with every task RUNNING and every vertex of ``target`` at its parallelism.

    ``read_job`` is called every ``poll_seconds`` until then. A REST error is waited out (the JobManager is
    away while the job restarts or is redeployed), except a 404: the job is gone, and that error is raised.
    After ``timeout_seconds`` a ``RuntimeFailure`` says ``timed_out(seen)``, ``seen`` being the parallelism
    of each vertex as last read (empty if no read succeeded)."""
    deadline = clock() + timeout_seconds
    seen: dict[str, int] = {}
    while True:
        try:
            job = read_job()
            seen = {v.id: v.parallelism for v in job.vertices}
            if job.all_running and all(seen.get(vid) == p for vid, p in target.items()):
                return job
        except EndpointError as exc:
            if exc.status == 404:
                raise
        if clock() >= deadline:
            raise RuntimeFailure(timed_out(seen))
        sleep(poll_seconds)


def _secs(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 10 or seconds == int(seconds) else f"{seconds:.1f} s"
