"""Rebuild a ``History`` from recorded snapshots by running a policy over them in order.

A recorded run is a sequence of snapshots (and, when the executor logged them, rescale records). Some
rules need the decisions a policy made earlier (the Flink operator delays a scale-down until it has
been recommended for a whole interval, and reads its earlier recommendations back), so replaying a
recording means deciding at every snapshot, exactly as the live loop would have, without applying
anything: the recording already shows what parallelism the job really ran at.
"""

from __future__ import annotations

from collections.abc import Iterable

from flinkscale.core.policy.base import History, Policy, RescaleRecord
from flinkscale.core.snapshot import MetricsSnapshot


def replay_history(policy: Policy, snapshots: Iterable[MetricsSnapshot], rescales: Iterable[RescaleRecord] = (),
                   keep_seconds: float | None = None) -> History:
    """The history the live loop would hold after the last of ``snapshots`` (sorted by time here);
    ``keep_seconds`` defaults to what the policy needs (``required_history_seconds``)."""
    if keep_seconds is None:
        from flinkscale.core.policy.registry import required_history_seconds

        keep_seconds = required_history_seconds(policy)
    pending = sorted(rescales, key=lambda r: r.completed_at)
    history = History()
    for snapshot in sorted(snapshots, key=lambda s: s.timestamp):
        while pending and pending[0].completed_at <= snapshot.timestamp:
            history = history.append(rescale=pending.pop(0), keep_seconds=keep_seconds)
        decision = policy.decide(snapshot, history)
        history = history.append(snapshot=snapshot, decision=decision, keep_seconds=keep_seconds)
    for rescale in pending:
        history = history.append(rescale=rescale, keep_seconds=keep_seconds)
    return history
