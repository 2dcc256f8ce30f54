"""The oracle (clairvoyant plan run on the simulator) and the predictive flinkscale policy in closed loop:
the oracle respects its daily budget and beats holding the start size on a diurnal day; flinkscale never
exceeds rescales.max-per-day whatever the load does; a scenario's prior load reaches the policies."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import chain
from flinkscale.core.errors import InputError
from flinkscale.core.forecast import DAY
from flinkscale.core.policy import make_policy
from flinkscale.core.policy.static import StaticPolicy
from flinkscale.core.sim.model import ClusterSpec, RescaleSpec
from flinkscale.core.sim.oracle import OracleSettings, ScheduledPolicy, oracle_plan, oracle_settings, size_levels
from flinkscale.core.sim.run import SimConfig, simulate
from flinkscale.core.sim.scenario import parse_scenario

STEP = 20.0


def diurnal(days: float, seed: int, spikes: bool = False) -> np.ndarray:
    t = np.arange(0.0, days * DAY, STEP)
    rng = np.random.default_rng(seed)
    rates = 2000.0 + 1500.0 * np.sin(2 * np.pi * t / DAY - np.pi / 2) * rng.uniform(0.8, 1.2)
    rates *= 1 + rng.normal(0, 0.02, t.size)
    if spikes:
        for start in rng.uniform(0, days * DAY - 1800, 3):
            rates[(t >= start) & (t < start + 900)] *= 2.0
    return np.maximum(rates, 50.0)


def config(days: float, decision: float = 300.0) -> SimConfig:
    return SimConfig(duration_seconds=days * DAY, step_seconds=STEP, decision_interval_seconds=decision,
                     metrics_window_seconds=min(300.0, decision), latency_target_seconds=60.0, buffer_seconds=2 * STEP,
                     cluster=ClusterSpec(max_slots=400), rescale=RescaleSpec(restart_seconds=40.0))


def per_day(times: list[float]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for t in times:
        counts[math.floor(t / DAY)] = counts.get(math.floor(t / DAY), 0) + 1
    return counts


def test_size_levels_grow_with_rate_and_respect_the_cluster() -> None:
    pipeline = chain(4000.0, 100.0, parallelism=(2, 20), partitions=16)
    levels = size_levels(pipeline, ClusterSpec(max_slots=60), 500.0, 10000.0)
    capacities = [lv.capacity for lv in levels]
    assert capacities == sorted(capacities)
    assert all(lv.slots <= 60 for lv in levels)
    # v1 (100/s per subtask) needs ceil(rate / 100) subtasks; the largest fitting level is at most 58 + 2 slots.
    assert all(lv.parallelism["v1"] >= math.ceil(lv.capacity / 100 - 1e-9) for lv in levels)


@pytest.mark.parametrize("budget", [1, 2, 4])
def test_oracle_plan_keeps_its_budget_and_runs_on_the_simulator(budget: int) -> None:
    pipeline = chain(4000.0, 100.0, parallelism=(2, 40), partitions=16)
    rates = diurnal(2, seed=budget)
    cfg = config(2)
    plan = oracle_plan(pipeline, rates, step_seconds=STEP, cluster=cfg.cluster, downtime_seconds=40.0,
                       lag_target_seconds=60.0, settings=OracleSettings(max_changes_per_day=budget))
    assert all(n <= budget for n in per_day([t for t, _ in plan.schedule]).values())
    run = simulate(pipeline, rates, ScheduledPolicy(plan.schedule), cfg)
    held = simulate(pipeline.with_parallelism(plan.levels[-1].parallelism), rates, StaticPolicy(), cfg)
    assert run.outcome.rescales == len(plan.schedule)
    assert run.outcome.core_hours < held.outcome.core_hours


def test_oracle_settings_reject_bad_values() -> None:
    assert oracle_settings({"max-changes-per-day": "2", "block": "30m"}) == OracleSettings(2, 1800.0)
    with pytest.raises(InputError) as error:
        oracle_settings({"max-changes-per-day": "0"})
    assert error.value.field == "max-changes-per-day"


@pytest.mark.parametrize("seed", range(3))
def test_flinkscale_never_exceeds_its_daily_rescale_budget(seed: int) -> None:
    # Two days of spiky diurnal load, starting without history (reactive on day 0, planned on day 1), with a
    # budget of 2 that the load would like to exceed.
    pipeline = chain(4000.0, 100.0, parallelism=(2, 10), partitions=16)
    rates = diurnal(2, seed=seed, spikes=True)
    policy = make_policy("flinkscale", {"rescales.max-per-day": "2", "vertex.max-parallelism": "128",
                                        "metrics.window": "5m", "stabilization.interval": "5m"})
    run = simulate(pipeline, rates, policy, config(2, decision=600.0))
    assert all(n <= 2 for n in per_day([r.requested_at for r in run.history.rescales]).values())
    assert run.outcome.rescales >= 1


def test_scenario_history_is_the_load_before_the_run() -> None:
    text = """
name: prior
duration: 2h
step: 10s
history: 1d
trace: {type: diurnal, average: 1000/s, peak_factor: 1.5, peak_at: 14h}
pipeline:
  vertices:
    - {id: src, source: true, parallelism: 1, capacity: 5000/s}
"""
    scenario = parse_scenario(text)
    rates = scenario.rates()
    assert len(rates) == 720
    history = scenario.prior_history()
    assert len(history.load) == 1440
    assert history.load[0][0] == pytest.approx(-DAY + 60.0)
    assert history.load[-1][0] == pytest.approx(0.0)
    # The run starts at midnight of day 1: its first rate continues the day before (the 00:00 trough).
    assert rates[0] == pytest.approx(history.load[0][1], rel=0.01)
