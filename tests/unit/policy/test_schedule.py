"""The rescale planner: its dynamic program must find the exact minimum of its own cost (checked against
brute force on small problems) and respect the daily budget of size changes."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from flinkscale.core.policy._schedule import DAY, Level, Plan, PlanProblem, rescale_late_seconds, solve


def levels(*capacities: float) -> list[Level]:
    return [Level({"v": i + 1}, float(c / 100), float(c)) for i, c in enumerate(capacities)]


def brute_force(problem: PlanProblem) -> float:
    """Every level sequence, costed with the module's formulas."""
    n = len(problem.peak)
    weight = problem.lateness_weight if problem.lateness_weight is not None else max(lv.slots for lv in problem.levels)
    overload = problem.overload_penalty if problem.overload_penalty is not None else 20 * weight
    best = math.inf
    for path in itertools.product(range(len(problem.levels)), repeat=n):
        cost, held, per_day = 0.0, problem.start_level, {}
        ok = True
        for b, level in enumerate(path):
            lv = problem.levels[level]
            day = math.floor((problem.start_time + b * problem.block_seconds - problem.day_start) / DAY)
            if level != held:
                late = rescale_late_seconds(float(problem.mean[b]), lv.capacity, problem.downtime_seconds,
                                            problem.lag_target_seconds)
                per_day[day] = per_day.get(day, problem.changes_used_today if day == 0 else 0) + 1
                if per_day[day] > problem.max_changes_per_day or math.isinf(late):
                    ok = False
                    break
                cost += weight * late
            cost += lv.slots * problem.block_seconds
            if problem.peak[b] > lv.capacity * problem.headroom:
                cost += overload * problem.block_seconds
            held = level
        if ok:
            best = min(best, cost)
    return best


@pytest.mark.parametrize("seed", range(25))
def test_dynamic_program_is_exact(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_blocks = int(rng.integers(3, 7))
    peak = rng.uniform(100, 1000, n_blocks)
    problem = PlanProblem(levels=levels(300, 600, 1200), start_level=int(rng.integers(0, 3)),
                          block_seconds=DAY / 4, start_time=0.0, peak=peak, mean=peak * 0.8,
                          downtime_seconds=float(rng.uniform(0, 600)), lag_target_seconds=60.0,
                          max_changes_per_day=int(rng.integers(0, 3)), headroom=0.9)
    plan = solve(problem)
    assert plan.cost == pytest.approx(brute_force(problem), rel=1e-9)


def changes_per_day(plan: Plan, problem: PlanProblem) -> dict[int, int]:
    counts: dict[int, int] = {}
    for time, _ in plan.changes:
        day = math.floor((problem.start_time + time - problem.day_start) / DAY)
        counts[day] = counts.get(day, 0) + 1
    return counts


@pytest.mark.parametrize("budget", [0, 1, 2, 4])
def test_never_more_changes_a_day_than_the_budget(budget: int) -> None:
    # A load that swings every 15 minutes for three days would want a change every block.
    blocks = np.arange(3 * 96)
    peak = np.where(blocks % 2 == 0, 200.0, 1000.0)
    problem = PlanProblem(levels=levels(300, 1200), start_level=1, block_seconds=900.0, start_time=0.0, peak=peak,
                          mean=peak, downtime_seconds=30.0, lag_target_seconds=60.0, max_changes_per_day=budget)
    plan = solve(problem)
    assert all(count <= budget for count in changes_per_day(plan, problem).values())


def test_scales_down_in_the_trough_and_up_before_the_ramp() -> None:
    # A day: quiet 00-08, busy 08-20, quiet again; changes cost little: down at once, up at 08:00, down at 20:00.
    hours = np.arange(0, 24, 0.25)
    peak = np.where((hours >= 8) & (hours < 20), 1000.0, 250.0)
    problem = PlanProblem(levels=levels(300, 1200), start_level=1, block_seconds=900.0, start_time=0.0, peak=peak,
                          mean=peak, downtime_seconds=30.0, lag_target_seconds=60.0, max_changes_per_day=4)
    plan = solve(problem)
    assert [(t / 3600, level) for t, level in plan.changes] == [(0.0, 0), (8.0, 1), (20.0, 0)]
    assert plan.change_now() == 0


def test_a_costly_restart_is_not_worth_a_short_trough() -> None:
    # 30 min of trough, a 10 min restart whose catch-up costs more than 30 min at the smaller size saves.
    peak = np.array([1000.0] * 8 + [250.0] * 2 + [1000.0] * 8)
    problem = PlanProblem(levels=levels(300, 1200), start_level=1, block_seconds=900.0, start_time=0.0, peak=peak,
                          mean=peak, downtime_seconds=600.0, lag_target_seconds=60.0, max_changes_per_day=4)
    assert solve(problem).changes == ()


def test_late_seconds_formula() -> None:
    # 262 s down at 20,000/s, target 60 s, capacity 25,000/s: 202 s + 20000 x 202 / 5000 = 202 + 808.
    assert rescale_late_seconds(20000.0, 25000.0, 262.0, 60.0) == pytest.approx(1010.0)
    assert rescale_late_seconds(20000.0, 25000.0, 30.0, 60.0) == 0.0
    assert math.isinf(rescale_late_seconds(20000.0, 20000.0, 262.0, 60.0))


@pytest.mark.parametrize("seed", range(25))
def test_a_higher_lateness_price_never_buys_more_late_seconds(seed: int) -> None:
    # What plan.lateness-price relies on: with the overload penalty fixed, the cheapest plan's seconds over
    # target do not grow when each of them costs more (and its slot-seconds do not shrink).
    rng = np.random.default_rng(seed)
    n_blocks = int(rng.integers(8, 30))
    peak = rng.uniform(100, 1000, n_blocks)

    start = int(rng.integers(0, 5))

    def plan_at(weight: float) -> Plan:
        return solve(PlanProblem(levels=levels(300, 450, 700, 1100, 1500), start_level=start, block_seconds=3600.0,
                                 start_time=0.0, peak=peak, mean=peak * 0.8, downtime_seconds=300.0,
                                 lag_target_seconds=60.0, max_changes_per_day=3, headroom=0.9,
                                 lateness_weight=weight, overload_penalty=1e6))

    plans = [plan_at(w) for w in (0.0, 5.0, 15.0, 50.0, 200.0)]
    for cheaper, dearer in itertools.pairwise(plans):
        assert dearer.late_seconds <= cheaper.late_seconds + 1e-6
        assert dearer.slot_seconds >= cheaper.slot_seconds - 1e-6
    assert plans[0].late_seconds > plans[-1].late_seconds or all(p.late_seconds == 0 for p in plans)
