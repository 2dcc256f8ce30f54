"""History is bounded: what the policy windows need, plus caps, so a long-running loop does not grow."""

from __future__ import annotations

from flinkscale.core.policy.base import MAX_HISTORY_ITEMS, MAX_HISTORY_RESCALES, Decision, History, RescaleRecord
from flinkscale.core.snapshot import MetricsSnapshot, Vertex


def snap(t: float) -> MetricsSnapshot:
    return MetricsSnapshot(timestamp=t, job_id="j", job_name="j", vertices=(Vertex("v", "v", 1, 128),))


def test_snapshots_and_decisions_older_than_the_horizon_are_dropped() -> None:
    history = History()
    for t in range(0, 10_000, 10):
        history = history.append(snapshot=snap(t), decision=Decision(t, "p", ()), keep_seconds=600)
    assert [s.timestamp for s in history.snapshots] == list(range(9990 - 600, 10_000, 10))
    assert [d.timestamp for d in history.decisions] == list(range(9990 - 600, 10_000, 10))


def test_rescales_keep_the_most_recent_up_to_the_cap() -> None:
    history = History()
    for i in range(MAX_HISTORY_RESCALES + 50):
        history = history.append(rescale=RescaleRecord(i, i + 1.0, {}, {}))
    assert len(history.rescales) == MAX_HISTORY_RESCALES
    assert history.rescales[-1].requested_at == MAX_HISTORY_RESCALES + 49
    assert history.rescales[0].requested_at == 50


def test_a_cap_bounds_even_a_history_within_its_horizon() -> None:
    history = History(snapshots=tuple(snap(float(t)) for t in range(MAX_HISTORY_ITEMS)))
    history = history.append(snapshot=snap(float(MAX_HISTORY_ITEMS)), keep_seconds=10 * MAX_HISTORY_ITEMS)
    assert len(history.snapshots) == MAX_HISTORY_ITEMS
    assert history.snapshots[0].timestamp == 1.0
