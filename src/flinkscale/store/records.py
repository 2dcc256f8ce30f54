"""The records the state store keeps besides the core's snapshots, decisions and rescales."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

IntentStatus = Literal["pending", "done", "failed", "dropped"]


@dataclass(frozen=True)
class LeaseInfo:
    """Who may write the store, and until when (UNIX seconds)."""

    owner: str
    acquired_at: float
    heartbeat_at: float
    expires_at: float


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    job_name: str
    first_seen: float
    last_seen: float
    gone_since: float | None
    restart_cost_seconds: float | None
    restart_cost_samples: int


@dataclass(frozen=True)
class Intent:
    """A rescale about to be carried out: written before acting, finished after."""

    intent_id: str
    job_id: str
    created_at: float
    previous_parallelism: Mapping[str, int]
    target_parallelism: Mapping[str, int]
    status: IntentStatus
    finished_at: float | None = None
    note: str | None = None


@dataclass(frozen=True)
class ScaleDownTimer:
    """A scale-down that is decided but waits until ``due_at`` (UNIX seconds)."""

    job_id: str
    vertex_id: str
    target_parallelism: int
    created_at: float
    due_at: float


@dataclass(frozen=True)
class LoadSample:
    """A job's mean source rate (records/s) over one minute starting at ``timestamp``."""

    timestamp: float
    source_rate: float
    samples: int


class Outcome(StrEnum):
    NOTHING_PENDING = "nothing-pending"
    APPLIED = "applied"          # the job runs at the target: marked done, never apply it again
    RETRY = "retry"              # the job still runs at the previous parallelism, intent still fresh
    DROPPED = "dropped"          # not applied and too old to retry: decide anew from fresh metrics
    DIVERGED = "diverged"        # the job runs at neither: someone else changed it; decide anew


@dataclass(frozen=True)
class Reconciliation:
    outcome: Outcome
    intent: Intent | None
    reason: str


@dataclass(frozen=True)
class Retention:
    """How much each job keeps; ``StateStore.prune`` deletes the rest.

    Snapshots cover the policy's window (pass ``required_history_seconds(policy)``); the load history keeps
    15 days of one-per-minute samples (21,600 rows a job); a job seen gone keeps its state a week, so a job
    resubmitted under the same id continues, then everything of it goes.
    """

    snapshot_seconds: float = 7200.0
    decisions_per_job: int = 500
    rescales_per_job: int = 100
    finished_intent_seconds: float = 7 * 86400.0
    load_history_seconds: float = 15 * 86400.0
    gone_job_seconds: float = 7 * 86400.0


@dataclass(frozen=True)
class PruneCounts:
    snapshots: int = 0
    decisions: int = 0
    rescales: int = 0
    intents: int = 0
    load_samples: int = 0
    jobs: int = 0

    @property
    def total(self) -> int:
        return self.snapshots + self.decisions + self.rescales + self.intents + self.load_samples + self.jobs
