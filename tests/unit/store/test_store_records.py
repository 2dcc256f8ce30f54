"""Every record kind round-trips through the store; a batch is all or nothing."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from store_helpers import JOB, OTHER, FakeClock, decision, snapshot

from flinkscale.core.errors import InputError
from flinkscale.core.policy.base import RescaleRecord
from flinkscale.store import CycleEntry, StateStore


def test_snapshots_round_trip_and_come_back_in_time_order(store: StateStore, clock: FakeClock) -> None:
    later, earlier = snapshot(clock.now + 60), snapshot(clock.now)
    store.add_snapshot(JOB, later)
    store.add_snapshot(JOB, earlier)
    store.add_snapshot(OTHER, snapshot(clock.now, job_id=OTHER))
    back = store.snapshots(JOB)
    assert [s.timestamp for s in back] == [earlier.timestamp, later.timestamp]
    assert back[0].to_dict() == earlier.to_dict()  # NaN metrics come back as missing, as in every recording
    assert back[0].vertices[1].metrics.pending_records is None
    assert [s.to_dict() for s in store.snapshots(JOB, since=clock.now + 1)] == [later.to_dict()]


def test_decisions_round_trip_with_their_reasons_and_numbers(store: StateStore, clock: FakeClock) -> None:
    for i in range(3):
        store.add_decision(JOB, decision(clock.now + i, new=3 + i))
    back = store.decisions(JOB)
    assert [d.parallelism()["v0"] for d in back] == [3, 4, 5]
    assert back[0].vertices[0].reason == "busy 0.97 > 0.95"
    assert back[0].vertices[0].numbers["true_processing_rate"] == 1234.5
    assert math.isinf(back[0].vertices[0].numbers["target_rate"])
    assert [d.parallelism()["v0"] for d in store.decisions(JOB, limit=2)] == [4, 5]


def test_rescales_round_trip_and_teach_the_restart_cost(store: StateStore, clock: FakeClock) -> None:
    store.upsert_job(JOB, "clicks")
    store.add_rescale(JOB, RescaleRecord(clock.now, clock.now + 40, {"v0": 2}, {"v0": 4}))
    store.add_rescale(JOB, RescaleRecord(clock.now + 100, clock.now + 160, {"v0": 4}, {"v0": 3}))
    assert store.rescales(JOB) == (RescaleRecord(clock.now, clock.now + 40, {"v0": 2}, {"v0": 4}),
                                   RescaleRecord(clock.now + 100, clock.now + 160, {"v0": 4}, {"v0": 3}))
    job = store.job(JOB)
    assert job is not None and job.restart_cost_samples == 2 and job.restart_cost_seconds == pytest.approx(50.0)


def test_history_is_what_the_policy_saw_before_a_restart(url: str, clock: FakeClock) -> None:
    with StateStore.open(url, clock=clock) as before:
        for i in range(10):
            before.add_snapshot(JOB, snapshot(clock.now + 60 * i))
        before.add_decision(JOB, decision(clock.now + 540))
        before.add_rescale(JOB, RescaleRecord(clock.now + 540, clock.now + 600, {"v0": 2}, {"v0": 4}))
    clock.advance(600)
    with StateStore.open(url, clock=clock) as after:
        history = after.history(JOB, keep_seconds=300)
    assert [s.timestamp for s in history.snapshots] == [clock.now - 300 + 60 * i for i in range(5)]
    assert len(history.decisions) == 1 and len(history.rescales) == 1


def test_jobs_are_tracked_and_a_returning_job_is_no_longer_gone(store: StateStore, clock: FakeClock) -> None:
    store.upsert_job(JOB, "clicks", now=clock.now)
    store.upsert_job(OTHER, "orders", now=clock.now)
    store.mark_gone(OTHER, now=clock.now + 10)
    store.mark_gone(OTHER, now=clock.now + 20)  # the first time it was seen gone counts
    jobs = {j.job_id: j for j in store.jobs()}
    assert jobs[JOB].gone_since is None and jobs[OTHER].gone_since == clock.now + 10
    store.upsert_job(OTHER, "orders v2", now=clock.now + 30)
    back = store.job(OTHER)
    assert back is not None and back.gone_since is None and back.job_name == "orders v2"
    assert back.first_seen == clock.now and back.last_seen == clock.now + 30


def test_timers_round_trip_move_and_clear(store: StateStore, clock: FakeClock) -> None:
    store.set_timer(JOB, "v0", 2, due_at=clock.now + 3600)
    store.set_timer(JOB, "v1", 1, due_at=clock.now + 600)
    store.set_timer(OTHER, "v0", 1, due_at=clock.now + 60)
    assert [(t.job_id, t.vertex_id) for t in store.timers()] == [(OTHER, "v0"), (JOB, "v1"), (JOB, "v0")]
    assert [t.vertex_id for t in store.timers(JOB, due_by=clock.now + 600)] == ["v1"]
    store.set_timer(JOB, "v1", 1, due_at=clock.now + 900)  # moved, not duplicated
    assert [t.due_at for t in store.timers(JOB)] == [clock.now + 900, clock.now + 3600]
    store.clear_timer(JOB, "v1")
    assert [t.vertex_id for t in store.timers(JOB)] == ["v0"]
    store.clear_timer(JOB)
    assert store.timers(JOB) == ()


def test_load_history_keeps_one_mean_per_minute(store: StateStore) -> None:
    minute = 1_800_000_000 // 60 * 60.0
    for second, rate in [(0, 100.0), (15, 200.0), (45, 300.0), (60, 50.0), (179, 70.0)]:
        store.record_load(JOB, minute + second, rate)
    store.record_load(JOB, minute + 5, math.nan)  # a partial sample is skipped, never read as a rate
    samples = store.load_history(JOB)
    assert [(s.timestamp - minute, s.source_rate, s.samples) for s in samples] == [
        (0.0, 200.0, 3), (60.0, 50.0, 1), (120.0, 70.0, 1)]
    assert [s.timestamp - minute for s in store.load_history(JOB, since=minute + 61)] == [60.0, 120.0]


def test_a_batch_is_one_transaction_so_a_crash_inside_leaves_nothing(store: StateStore, clock: FakeClock) -> None:
    with pytest.raises(KeyboardInterrupt), store.batch():
        store.add_snapshot(JOB, snapshot(clock.now))
        store.add_decision(JOB, decision(clock.now))
        store.record_load(JOB, clock.now, 5.0)
        raise KeyboardInterrupt  # stands for the process dying between two writes
    assert store.row_counts()["snapshots"] == 0 and store.row_counts()["decisions"] == 0
    with store.batch():
        store.add_snapshot(JOB, snapshot(clock.now))
        store.add_decision(JOB, decision(clock.now))
        assert len(store.snapshots(JOB)) == 1  # reads inside a batch see its writes
    assert store.row_counts()["snapshots"] == 1 and store.row_counts()["decisions"] == 1


def test_a_backup_taken_while_the_daemon_holds_the_store_opens_with_every_row(
        store: StateStore, clock: FakeClock, tmp_path: Path) -> None:
    store.acquire_lease("daemon")
    with store.batch():
        store.add_snapshot(JOB, snapshot(clock.now))
        store.set_timer(JOB, "v0", 1, due_at=clock.now + 60)
        store.record_intent(JOB, {"v0": 2}, {"v0": 1})
    target = tmp_path / "backup.db"
    store.backup(target)
    with StateStore.open(f"sqlite:///{target}", clock=clock) as copy:
        assert copy.row_counts() == store.row_counts()
        assert copy.pending_intent(JOB) is not None and len(copy.timers(JOB)) == 1
    with pytest.raises(InputError, match="exists already"):
        store.backup(target)


def test_a_whole_cycle_recorded_at_once_reads_back_like_single_writes(store: StateStore, clock: FakeClock) -> None:
    entries = [CycleEntry(JOB, snapshot(clock.now), decision(clock.now), 120.0),
               CycleEntry(OTHER, snapshot(clock.now, job_id=OTHER), None, None),  # no decision, partial rate
               CycleEntry("c" * 32, None, decision(clock.now), 5.0)]  # no snapshot: no load sample either
    store.record_cycle(entries)
    assert [s.to_dict() for s in store.snapshots(JOB)] == [snapshot(clock.now).to_dict()]
    assert store.decisions(JOB) == (decision(clock.now),)
    assert [s.source_rate for s in store.load_history(JOB)] == [120.0]
    assert len(store.snapshots(OTHER)) == 1 and store.decisions(OTHER) == () and store.load_history(OTHER) == ()
    assert store.snapshots("c" * 32) == () and len(store.decisions("c" * 32)) == 1
    assert store.load_history("c" * 32) == ()
