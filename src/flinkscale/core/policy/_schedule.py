"""Rescale scheduling: which size to run in each time block, with a bounded number of size changes a day.

Shared by the clairvoyant oracle of the simulator (fed the true trace) and by our ``flinkscale`` policy (fed
its forecast), so that "how far from the best achievable" compares two uses of one model, not two models.

The model. The job can run at one of a few sizes (``Level``: the parallelism of every vertex, the slots it
uses and the source rate it carries at full speed). Time is cut into blocks; each block has the highest
rate expected in it (``peak``) and its mean (``mean``). A plan holds one level per block and pays:

- slot-seconds: ``slots x block`` for every block (a rescale bills the new size from the request on, as the
  simulator does);
- a level that cannot carry a block's peak at ``headroom`` of its full-speed capacity is charged
  ``overload_penalty`` per second of that block (never chosen when anything else fits);
- a size change stops the job for ``downtime`` seconds (restart plus state restore) while the sources keep
  filling: the backlog reaches ``r x downtime`` records, and the lag (in seconds of input) is above the
  target ``L`` for ``max(0, downtime - L)`` seconds, then drains at ``capacity - r`` for another
  ``r x (downtime - L) / (capacity - r)`` seconds. Each of those seconds over target costs
  ``lateness_weight`` slot-seconds. A level without spare capacity (``capacity <= r``) cannot drain and is
  not a target for a change.

At most ``max_changes_per_day`` size changes within each day (days counted from ``day_start``). The plan is
the exact minimum of that cost: a dynamic program over (block, level, changes used today), vectorised over
levels, O(blocks x levels x budget).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from flinkscale.core.units import SECONDS_PER_DAY

FloatArray = npt.NDArray[np.float64]

DAY = SECONDS_PER_DAY


@dataclass(frozen=True)
class Level:
    """One size of the job: parallelism per vertex, slots used, and the source rate carried at full speed."""

    parallelism: Mapping[str, int]
    slots: float
    capacity: float


@dataclass(frozen=True)
class PlanProblem:
    levels: Sequence[Level]
    start_level: int
    block_seconds: float
    start_time: float
    peak: FloatArray  # per block: the highest source rate expected in it
    mean: FloatArray  # per block: the mean source rate
    downtime_seconds: float
    lag_target_seconds: float
    max_changes_per_day: int
    changes_used_today: int = 0
    headroom: float = 0.9
    lateness_weight: float | None = None  # slot-seconds per second over target; None = the largest level's slots
    overload_penalty: float | None = None  # slot-seconds per overloaded second; None = 20 x lateness weight
    day_start: float = 0.0


@dataclass(frozen=True)
class Plan:
    levels: tuple[int, ...]  # the level held in each block
    changes: tuple[tuple[float, int], ...]  # (time, new level) of every size change
    cost: float
    slot_seconds: float
    late_seconds: float

    def change_now(self) -> int | None:
        """The level to change to at the plan's start, if its first block already differs."""
        if self.changes and self.changes[0][0] <= 0.0:
            return self.changes[0][1]
        return None


def rescale_late_seconds(rate: float, capacity: float, downtime: float, lag_target: float) -> float:
    """Seconds with lag above ``lag_target`` caused by one stop of ``downtime`` seconds at ``rate`` records/s,
    then draining at ``capacity``: ``max(0, D - L) + r (D - L) / (c - r)``; infinite without spare capacity."""
    excess = downtime - lag_target
    if excess <= 0 or rate <= 0:
        return 0.0
    if capacity <= rate:
        return math.inf
    return excess + rate * excess / (capacity - rate)


def _late_matrix(mean: FloatArray, capacity: FloatArray, downtime: float, lag_target: float) -> FloatArray:
    """``rescale_late_seconds`` for every (block mean, level capacity) pair at once."""
    excess = downtime - lag_target
    rate = mean[:, None]
    spare = capacity[None, :] - rate
    with np.errstate(divide="ignore", invalid="ignore"):
        late = np.where(spare > 0, excess + rate * excess / np.where(spare > 0, spare, 1.0), np.inf)
    late = np.where((excess <= 0) | (rate <= 0), 0.0, late)
    result: FloatArray = late.astype(np.float64)
    return result


def solve(problem: PlanProblem) -> Plan:
    """The cheapest plan of ``problem`` (see the module docstring)."""
    levels = list(problem.levels)
    n_levels, n_blocks = len(levels), len(problem.peak)
    if n_levels == 0 or n_blocks == 0:
        return Plan((), (), 0.0, 0.0, 0.0)
    budget = max(0, problem.max_changes_per_day)
    block = problem.block_seconds
    slots = np.array([lv.slots for lv in levels], dtype=np.float64)
    capacity = np.array([lv.capacity for lv in levels], dtype=np.float64)
    weight = problem.lateness_weight if problem.lateness_weight is not None else float(slots.max())
    overload = problem.overload_penalty if problem.overload_penalty is not None else 20.0 * weight
    big = math.inf

    day_of = np.floor((problem.start_time + block * np.arange(n_blocks) - problem.day_start) / DAY).astype(np.int64)
    width = budget + 1
    # cost[k, c]: cheapest cost so far ending in level k having used c changes today; late likewise.
    cost = np.full((n_levels, width), big)
    cost[problem.start_level, min(problem.changes_used_today, budget)] = 0.0
    late_total = np.zeros((n_levels, width))
    parents: list[npt.NDArray[np.int64]] = []  # per block: state (k, c) -> packed k * width + c before it
    resets: list[npt.NDArray[np.int64] | None] = []  # per block: at a new day, the count each level came from
    rows = np.arange(n_levels)
    late_matrix = _late_matrix(np.asarray(problem.mean, dtype=np.float64), capacity, problem.downtime_seconds,
                               problem.lag_target_seconds)
    for b in range(n_blocks):
        reset = None
        if b > 0 and day_of[b] != day_of[b - 1]:
            # A new day: the budget is whole again (each level keeps its cheapest state).
            reset = np.argmin(cost, axis=1).astype(np.int64)
            kept, kept_late = cost[rows, reset], late_total[rows, reset]
            cost = np.full_like(cost, big)
            late_total = np.zeros_like(late_total)
            cost[:, 0], late_total[:, 0] = kept, kept_late
        resets.append(reset)
        hold = slots * block + np.where(problem.peak[b] > capacity * problem.headroom, overload * block, 0.0)
        stay = cost + hold[:, None]
        parent = rows[:, None] * width + np.arange(width)[None, :]
        late_new = late_total.copy()
        if budget > 0:
            late = late_matrix[b]
            finite = np.isfinite(late)
            switch_extra = np.where(finite, weight * np.where(finite, late, 0.0), big)
            counts = np.arange(budget)
            # The cheapest predecessor for each count c, then a change into any other level (c + 1); a level
            # that is itself the cheapest predecessor takes the second cheapest (a change to itself is none).
            previous = cost[:, :-1]
            order = np.argsort(previous, axis=0, kind="stable")
            first_prev = order[0]
            second_prev = order[1] if n_levels > 1 else order[0]
            from_prev = np.where(rows[:, None] == first_prev[None, :], second_prev[None, :], first_prev[None, :])
            from_cost = previous[from_prev, counts[None, :]]
            candidate = from_cost + (hold + switch_extra)[:, None]
            candidate = np.where(from_prev == rows[:, None], big, candidate)
            better = candidate < stay[:, 1:]
            stay[:, 1:] = np.where(better, candidate, stay[:, 1:])
            parent[:, 1:] = np.where(better, from_prev * width + counts[None, :], parent[:, 1:])
            switched_late = late_total[from_prev, counts[None, :]] + np.where(finite, late, 0.0)[:, None]
            late_new[:, 1:] = np.where(better, switched_late, late_total[:, 1:])
        parents.append(parent)
        cost, late_total = stay, late_new

    final = np.unravel_index(int(np.argmin(cost)), cost.shape)
    k, c = int(final[0]), int(final[1])
    total = float(cost[k, c])
    late_seconds = float(late_total[k, c])
    path = [0] * n_blocks
    for b in range(n_blocks - 1, -1, -1):
        path[b] = k
        packed = int(parents[b][k, c])
        k, c = packed // width, packed % width
        reset_b = resets[b]
        if reset_b is not None:
            c = int(reset_b[k])
    changes: list[tuple[float, int]] = []
    held = problem.start_level
    for b, level in enumerate(path):
        if level != held:
            changes.append((b * block, level))
        held = level
    slot_seconds = float(sum(slots[level] * block for level in path))
    return Plan(tuple(path), tuple(changes), total, slot_seconds, late_seconds)
