"""The intent log: a SIGKILL at any moment never causes a duplicate rescale or a forgotten timer.

Each test stops the "daemon" (closes its store without finishing) at one of the moments that matter and
opens the store again, as a restarted daemon does, then reconciles with the parallelism the job runs at.
"""

from __future__ import annotations

import pytest
from store_helpers import JOB, OTHER, FakeClock

from flinkscale.core.errors import RuntimeFailure
from flinkscale.store import Outcome, StateStore

BEFORE = {"v0": 2, "v1": 4}
AFTER = {"v0": 2, "v1": 2}  # v1 scales down 4 -> 2
TARGET = {"v1": 2}


def _killed_after_intent(url: str, clock: FakeClock) -> str:
    with StateStore.open(url, clock=clock) as daemon:
        daemon.set_timer(JOB, "v1", 2, due_at=clock.now)
        intent = daemon.record_intent(JOB, {"v1": 4}, TARGET)
    return intent.intent_id  # killed here: the intent is pending, the rescale may or may not have happened


def test_killed_after_the_rescale_took_effect_it_is_marked_done_and_never_applied_again(
        url: str, clock: FakeClock) -> None:
    intent_id = _killed_after_intent(url, clock)
    clock.advance(30)
    with StateStore.open(url, clock=clock) as restarted:
        result = restarted.reconcile(JOB, AFTER, retry_window_seconds=600)
        assert result.outcome is Outcome.APPLIED
        assert result.intent is not None and result.intent.intent_id == intent_id and result.intent.status == "done"
        assert restarted.pending_intent(JOB) is None
        assert restarted.timers(JOB) == ()  # the scale-down it carried out is no longer pending
        again = restarted.reconcile(JOB, AFTER, retry_window_seconds=600)
        assert again.outcome is Outcome.NOTHING_PENDING


def test_killed_before_the_rescale_took_effect_it_is_retried_within_the_window(url: str, clock: FakeClock) -> None:
    intent_id = _killed_after_intent(url, clock)
    clock.advance(30)
    with StateStore.open(url, clock=clock) as restarted:
        result = restarted.reconcile(JOB, BEFORE, retry_window_seconds=600)
        assert result.outcome is Outcome.RETRY and result.intent is not None
        assert result.intent.target_parallelism == TARGET
        pending = restarted.pending_intent(JOB)
        assert pending is not None and pending.intent_id == intent_id  # still the one intent, not a second
        assert [t.vertex_id for t in restarted.timers(JOB)] == ["v1"]  # the timer is not forgotten
        with pytest.raises(RuntimeFailure, match="pending rescale intent"):
            restarted.record_intent(JOB, {"v1": 4}, {"v1": 1})
        restarted.finish_intent(intent_id, "done")
        assert restarted.timers(JOB) == ()


def test_a_stale_intent_that_never_took_effect_is_dropped_and_its_timer_kept(url: str, clock: FakeClock) -> None:
    _killed_after_intent(url, clock)
    clock.advance(3600)  # the daemon was down for an hour
    with StateStore.open(url, clock=clock) as restarted:
        result = restarted.reconcile(JOB, BEFORE, retry_window_seconds=600)
        assert result.outcome is Outcome.DROPPED and result.intent is not None
        assert result.intent.status == "dropped" and "3600s old" in result.reason
        assert restarted.pending_intent(JOB) is None
        # The scale-down was decided, not carried out: its timer (and original due time) stays for the policy.
        assert [t.due_at for t in restarted.timers(JOB)] == [clock.now - 3600]
        assert restarted.record_intent(JOB, {"v1": 4}, {"v1": 3}).status == "pending"


def test_a_job_someone_else_rescaled_is_diverged_and_decided_anew(url: str, clock: FakeClock) -> None:
    _killed_after_intent(url, clock)
    with StateStore.open(url, clock=clock) as restarted:
        result = restarted.reconcile(JOB, {"v0": 2, "v1": 6}, retry_window_seconds=600)
        assert result.outcome is Outcome.DIVERGED and "v1=6" in result.reason
        assert restarted.pending_intent(JOB) is None
        vertex_missing = restarted.record_intent(JOB, {"v1": 6}, {"v1": 3})
        result = restarted.reconcile(JOB, {"v0": 2}, retry_window_seconds=600)
        assert result.outcome is Outcome.DIVERGED and result.intent is not None
        assert result.intent.intent_id == vertex_missing.intent_id and "v1=None" in result.reason


def test_a_failed_rescale_is_recorded_and_frees_the_job(store: StateStore, clock: FakeClock) -> None:
    intent = store.record_intent(JOB, {"v1": 4}, TARGET)
    store.record_intent(OTHER, {"v1": 4}, TARGET)  # intents are per job
    store.finish_intent(intent.intent_id, "failed", note="PUT resource-requirements: 409")
    (back,) = store.intents(JOB)
    assert back.status == "failed" and back.note == "PUT resource-requirements: 409" and back.finished_at == clock.now
    assert store.pending_intent(JOB) is None
    pending = store.pending_intent(OTHER)
    assert pending is not None and pending.previous_parallelism == {"v1": 4}
    with pytest.raises(ValueError):
        store.finish_intent(intent.intent_id, "pending")
    with pytest.raises(RuntimeFailure, match="no rescale intent"):
        store.finish_intent("nope", "done")


def test_finishing_done_clears_only_the_timers_it_carried_out(store: StateStore, clock: FakeClock) -> None:
    store.set_timer(JOB, "v1", 2, due_at=clock.now)
    store.set_timer(JOB, "v0", 1, due_at=clock.now + 3600)  # another scale-down, not part of this rescale
    intent = store.record_intent(JOB, {"v1": 4}, {"v1": 2})
    store.finish_intent(intent.intent_id, "done")
    assert [t.vertex_id for t in store.timers(JOB)] == ["v0"]
