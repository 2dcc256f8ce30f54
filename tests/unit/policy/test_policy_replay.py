"""``replay_history`` over a long recording: it decides only the recent span, and ends with the history a
replay that decided every snapshot ends with (`decide --history` with a week of 1-minute snapshots took 27 s)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
from tests.unit.policy.policy_snapshots import clickstream

from flinkscale.core.policy import History, make_policy, replay_history
from flinkscale.core.policy import replay as replay_module
from flinkscale.core.policy.base import Decision, Policy
from flinkscale.core.policy.registry import required_history_seconds
from flinkscale.core.snapshot import MetricsSnapshot

DAY = 86_400.0


@dataclass
class Counting:
    """A policy that counts the snapshots it is asked to decide (and decides as the wrapped one)."""

    inner: Policy
    calls: int = 0
    name: str = "counting"

    @property
    def history_seconds(self) -> float:
        return required_history_seconds(self.inner)

    def decide(self, snapshot: MetricsSnapshot, history: History) -> Decision:
        self.calls += 1
        return self.inner.decide(snapshot, history)


def diurnal_recording(days: float, step: float) -> list[MetricsSnapshot]:
    """A job at p 2/2/1 under a daily wave peaking at 12,000 records/s, one snapshot every ``step`` s."""
    return [clickstream(t, arrival=6000.0 + 5000.0 * math.sin(2 * math.pi * t / DAY), p_src=2, p_win=2)
            for t in (1.7e9 + i * step for i in range(int(days * DAY / step)))]


@pytest.mark.parametrize("name", ["flinkscale", "flink-operator", "cpu-threshold"])
def test_only_the_recent_span_is_decided_and_the_history_ends_the_same(name: str,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    recording = diurnal_recording(days=2.0, step=300.0)
    span = Counting(make_policy(name))
    keep = required_history_seconds(span.inner)
    recent = replay_history(span, recording)
    assert span.calls == sum(1 for s in recording if s.timestamp >= recording[-1].timestamp - 2 * keep)
    assert span.calls < len(recording)

    monkeypatch.setattr(replay_module, "DECIDE_SPAN", math.inf)
    every = Counting(make_policy(name))
    full = replay_history(every, recording)
    assert every.calls == len(recording)
    assert recent.decisions == full.decisions  # all within the history's reach, decided alike
    assert recent.load == full.load and len(recent.load) == len(recording)  # the forecast's samples: all of them
    assert span.inner.decide(recording[-1], recent) == every.inner.decide(recording[-1], full)
