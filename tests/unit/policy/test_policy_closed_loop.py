"""Closed loop over the clickstream model of ``policy_snapshots``: what users see over hours, not one
decision. Each tick (60 s) the job reads what its slowest vertex allows, lag grows by the rest, the
policy decides, and a rescale costs 60 s in which nothing is read."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from policy_snapshots import clickstream

from flinkscale.core.policy import History, RescaleRecord, make_policy, required_history_seconds

RESTART_SECONDS = 60.0
TICK = 60.0


@dataclass(frozen=True)
class Run:
    rescale_minutes: tuple[float, ...]
    slot_hours: float
    max_lag: float
    mean_lag: float


def run(policy_name: str, profile: list[tuple[float, float]], hours: float) -> Run:
    policy = make_policy(policy_name)
    keep = required_history_seconds(policy)
    parallelism = {"src": 1, "win": 1, "sink": 1}
    lag, t, slot_seconds, max_lag, lag_integral = 0.0, 0.0, 0.0, 0.0, 0.0
    history, rescales = History(), []
    while t < hours * 3600:
        arrival = next(rate for start, rate in reversed(profile) if t >= start)
        snapshot = clickstream(t, arrival=arrival, p_src=parallelism["src"], p_win=parallelism["win"],
                               p_sink=parallelism["sink"], lag=lag)
        read = min(snapshot.vertex("src").metrics.num_records_in_per_second or 0.0, arrival + lag / TICK)
        lag = max(0.0, lag + (arrival - read) * TICK)
        max_lag = max(max_lag, lag)
        lag_integral += lag * TICK
        slot_seconds += max(parallelism.values()) * TICK
        decision = policy.decide(snapshot, history)
        history = history.append(snapshot=snapshot, decision=decision, keep_seconds=keep)
        if decision.rescale:
            rescales.append(t / 60)
            lag += arrival * RESTART_SECONDS
            new = decision.parallelism()
            history = history.append(rescale=RescaleRecord(t, t + RESTART_SECONDS, parallelism, new),
                                     keep_seconds=keep)
            parallelism = new
            t += RESTART_SECONDS
        t += TICK
    return Run(tuple(rescales), slot_seconds / 3600, max_lag, lag_integral / (hours * 3600))


@pytest.mark.parametrize("step", [3.0, 5.0])
def test_flinkscale_meets_a_rate_step_in_one_rescale(step: float) -> None:
    profile = [(0.0, 2000.0), (1200.0, 2000.0 * step)]
    ours = run("flinkscale", profile, hours=3.0)
    assert len(ours.rescale_minutes) == 1
    assert 20.0 <= ours.rescale_minutes[0] <= 25.0  # within minutes of the step at minute 20
    operator = run("flink-operator", profile, hours=3.0)
    assert len(operator.rescale_minutes) >= len(ours.rescale_minutes)
    assert ours.max_lag <= operator.max_lag


def test_flinkscale_scales_back_down_once_after_the_interval_and_does_not_oscillate() -> None:
    profile = [(0.0, 2000.0), (1200.0, 6000.0), (6000.0, 2000.0)]
    ours = run("flinkscale", profile, hours=5.0)
    assert len(ours.rescale_minutes) == 2
    # the drop at minute 100 is followed by a scale-down only after scale-down.interval (60 min)
    assert ours.rescale_minutes[1] >= 100.0 + 60.0 - 1.0


TRACES = {
    "2000/s, 3x step at 20 min, back at 100 min": [(0.0, 2000.0), (1200.0, 6000.0), (6000.0, 2000.0)],
    "2000/s, 5x step at 20 min": [(0.0, 2000.0), (1200.0, 10000.0)],
    "ramp 2000/s + 800/s every 10 min": [(600.0 * i, 2000.0 + 800.0 * i) for i in range(15)],
}

if __name__ == "__main__":  # the table in docs/autoscale-policies.md
    print("| trace | policy | rescales | slot-hours | max lag (records) | mean lag |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, trace in TRACES.items():
        for name in ("flink-operator", "flinkscale", "cpu-threshold"):
            r = run(name, trace, hours=4.0)
            print(f"| {label} | {name} | {len(r.rescale_minutes)} | {r.slot_hours:.2f} | {r.max_lag:,.0f} | "
                  f"{r.mean_lag:,.0f} |")
            label = ""
