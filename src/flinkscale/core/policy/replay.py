"""Rebuild a ``History`` from recorded snapshots by running a policy over them in order.

A recorded run is a sequence of snapshots (and, when the executor logged them, rescale records). Some
rules need the decisions a policy made earlier (the Flink operator delays a scale-down until it has
been recommended for a whole interval, and reads its earlier recommendations back), so replaying a
recording means deciding at every snapshot, exactly as the live loop would have, without applying
anything: the recording already shows what parallelism the job really ran at.

Only the snapshots within ``DECIDE_SPAN`` history lengths of the newest are decided; the older ones enter the
history undecided (their load samples still count, for a forecast). A decision older than one history length
is dropped from the history anyway, so the decisions the history ends with are made over a full history length
of earlier ones, as after a restart of the live loop from its store. Deciding a week of 1-minute snapshots
took 27 s; the span makes it a few hundred decisions whatever the recording's length.
"""

from __future__ import annotations

from collections.abc import Iterable

from flinkscale.core.policy.base import History, Policy, RescaleRecord
from flinkscale.core.snapshot import MetricsSnapshot

#: Snapshots within this many ``keep_seconds`` of the newest are decided.
DECIDE_SPAN = 2.0


def replay_history(policy: Policy, snapshots: Iterable[MetricsSnapshot], rescales: Iterable[RescaleRecord] = (),
                   keep_seconds: float | None = None) -> History:
    """The history the live loop would hold after the last of ``snapshots`` (sorted by time here);
    ``keep_seconds`` defaults to what the policy needs (``required_history_seconds``)."""
    if keep_seconds is None:
        from flinkscale.core.policy.registry import required_history_seconds

        keep_seconds = required_history_seconds(policy)
    pending = sorted(rescales, key=lambda r: r.completed_at)
    ordered = sorted(snapshots, key=lambda s: s.timestamp)
    decide_from = ordered[-1].timestamp - DECIDE_SPAN * keep_seconds if ordered else 0.0
    history = History()
    for snapshot in ordered:
        while pending and pending[0].completed_at <= snapshot.timestamp:
            history = history.append(rescale=pending.pop(0), keep_seconds=keep_seconds)
        decision = policy.decide(snapshot, history) if snapshot.timestamp >= decide_from else None
        history = history.append(snapshot=snapshot, decision=decision, keep_seconds=keep_seconds)
    for rescale in pending:
        history = history.append(rescale=rescale, keep_seconds=keep_seconds)
    return history
