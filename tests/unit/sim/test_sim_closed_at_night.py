"""A job closed at night (nothing to read from 21:00 to 07:00) under the flinkscale policy with days of load
history, simulated for two days: the first day's records measure the costs, the night takes the job down to its
fewest subtasks, and the second morning's scale-up comes BEFORE the opening, sized from the costs measured the day
before (nothing flows at night to measure them again), instead of after it, when the first minutes' records
have already queued behind a job of one subtask a vertex and a restart."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from flinkscale.core.policy.registry import make_policy
from flinkscale.core.sim.compare import compare
from flinkscale.core.sim.run import SimRun
from flinkscale.core.sim.scenario import parse_scenario
from flinkscale.core.sim.traces import ReplayTrace

SCENARIOS = Path(__file__).resolve().parents[3] / "examples" / "scenarios"
DAY = 86_400.0
HOUR = 3_600.0
HISTORY_DAYS = 3


def _closed_at_night(rate: float) -> ReplayTrace:
    # 5-minute samples: open 07:00-21:00 at ``rate`` (a midday bump of 20%), closed otherwise.
    t = np.arange(0.0, (HISTORY_DAYS + 2) * DAY, 300.0)
    hour = (t % DAY) / HOUR
    open_now = (hour >= 7) & (hour < 21)
    shape = np.where(open_now, 1.0 + 0.2 * np.exp(-((hour - 13) / 2) ** 2), 0.0)
    return ReplayTrace(tuple(float(x) for x in t), tuple(float(r) for r in rate * shape))


@pytest.fixture(scope="module")
def run() -> SimRun:
    base = parse_scenario((SCENARIOS / "step-small.yaml").read_text())
    # A restart of 2 min (plus 20 s of state restored): met at the opening, it would queue minutes of records, a
    # price the plan weighs against a quarter of an hour of the day's size before the opening.
    config = replace(base.config, duration_seconds=2 * DAY, step_seconds=10.0, buffer_seconds=20.0,
                     rescale=replace(base.config.rescale, restart_seconds=120.0))
    scenario = replace(base, trace=_closed_at_night(5_000.0), config=config, history_seconds=HISTORY_DAYS * DAY)
    policy = make_policy("flinkscale", scenario.policy_settings.get("flinkscale", {}))
    return compare(scenario, {"flinkscale": policy}).runs[0]


def test_the_morning_scale_up_comes_before_the_opening(run: SimRun) -> None:
    rescales = run.history.rescales
    before = [r for r in rescales if DAY + 6 * HOUR <= r.requested_at < DAY + 7 * HOUR]
    assert len(before) == 1, [(r.requested_at / HOUR, r.new_parallelism) for r in rescales]
    (up,) = before
    assert sum(up.new_parallelism.values()) > sum(up.old_parallelism.values())
    assert up.completed_at <= DAY + 7 * HOUR  # the restart is over when the first records arrive
    # ... and it carries the day: no other rescale in the two hours after the opening.
    assert not [r for r in rescales if DAY + 7 * HOUR <= r.requested_at < DAY + 9 * HOUR]


def test_the_night_runs_on_the_fewest_subtasks(run: SimRun) -> None:
    times, slots = np.asarray(run.timeline.times), np.asarray(run.timeline.slots)
    night = (times >= DAY + 2 * HOUR) & (times < DAY + 6 * HOUR)
    assert night.any() and int(slots[night].max()) <= len(run.outcome.final_parallelism)


def test_the_opening_queues_nothing_over_the_latency_target(run: SimRun) -> None:
    step = 10.0
    lo, hi = round((DAY + 7 * HOUR) / step), round((DAY + 9 * HOUR) / step)
    rates = np.asarray(run.offered_rate[lo:hi])
    lag_seconds = np.asarray(run.lag_records[lo:hi]) / np.maximum(rates, 1.0)
    assert float(lag_seconds.max()) <= 30.0  # step-small's latency target
