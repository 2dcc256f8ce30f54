"""Retention: a daemon that runs for weeks keeps a bounded store."""

from __future__ import annotations

from store_helpers import JOB, OTHER, FakeClock, decision, snapshot

from flinkscale.core.policy.base import RescaleRecord
from flinkscale.store import Retention, StateStore

DAY = 86400.0


def test_days_of_cycles_stay_within_the_retention_bounds(store: StateStore, clock: FakeClock) -> None:
    # Scaled down so the test is quick on a busy machine: a cycle every 30 minutes for 3 days, a rescale
    # every 6 hours, a prune every hour, and retention windows to match (one day of load history).
    cycle_seconds, prune_every, rescale_every = 1800.0, 2, 12
    retention = Retention(snapshot_seconds=4 * 3600, decisions_per_job=20, rescales_per_job=3,
                          finished_intent_seconds=12 * 3600, load_history_seconds=DAY, gone_job_seconds=7 * DAY)
    store.upsert_job(JOB, "clicks")
    largest: dict[str, int] = {}
    for cycle in range(3 * 48):
        with store.batch():
            store.add_snapshot(JOB, snapshot(clock.now))
            store.add_decision(JOB, decision(clock.now))
            store.record_load(JOB, clock.now, 100.0)
            if cycle % rescale_every == 0:
                intent = store.record_intent(JOB, {"v0": 2}, {"v0": 4})
                store.finish_intent(intent.intent_id, "done")
                store.add_rescale(JOB, RescaleRecord(clock.now, clock.now + 30, {"v0": 2}, {"v0": 4}))
            if cycle % prune_every == 0:
                store.prune(retention)
        for table, rows in store.row_counts().items():
            largest[table] = max(largest.get(table, 0), rows)
        clock.advance(cycle_seconds)
    assert largest["snapshots"] <= 8 + 1 + prune_every  # the 4 h window plus what accrues between prunes
    assert largest["decisions"] <= 20 + prune_every
    assert largest["rescales"] <= 3 + 1
    assert largest["intents"] <= 2 + 1 + 1  # 12 h of finished intents (one per 6 h), plus one
    assert largest["load_history"] <= 48 + 1 + prune_every  # one row per cycle here (one per minute at most)
    # ... and the day of load history the policy learns from is all there.
    first = store.load_history(JOB)[0].timestamp
    assert clock.now - DAY - prune_every * cycle_seconds - 60 <= first <= clock.now - DAY + cycle_seconds
    assert store.row_counts()["load_history"] >= 48 - 1


def test_a_job_gone_for_longer_than_the_retention_is_forgotten_entirely(store: StateStore, clock: FakeClock) -> None:
    for job in (JOB, OTHER):
        store.upsert_job(job, job)
        store.add_snapshot(job, snapshot(clock.now, job_id=job))
        store.add_decision(job, decision(clock.now))
        store.set_timer(job, "v0", 1, due_at=clock.now + 60)
        store.record_load(job, clock.now, 1.0)
    store.mark_gone(OTHER)
    retention = Retention(snapshot_seconds=30 * DAY, gone_job_seconds=7 * DAY)
    clock.advance(6 * DAY)
    assert store.prune(retention).jobs == 0
    assert store.decisions(OTHER) != ()  # a resubmitted job would continue from here
    clock.advance(2 * DAY)
    pruned = store.prune(retention)
    assert pruned.jobs == 1 and pruned.total >= 1
    assert [j.job_id for j in store.jobs()] == [JOB]
    assert store.decisions(OTHER) == () and store.timers(OTHER) == () and store.snapshots(OTHER) == ()
    assert store.load_history(OTHER) == ()
    assert store.decisions(JOB) != () and store.timers(JOB) != ()


def test_pending_intents_and_timers_are_never_pruned(store: StateStore, clock: FakeClock) -> None:
    store.upsert_job(JOB, "clicks")
    store.record_intent(JOB, {"v0": 2}, {"v0": 1})
    store.set_timer(JOB, "v0", 1, due_at=clock.now + 3600)
    clock.advance(30 * DAY)
    store.prune(Retention())
    assert store.pending_intent(JOB) is not None and len(store.timers(JOB)) == 1
