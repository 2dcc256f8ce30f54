"""The clairvoyant reference: the best rescale plan for a trace known in advance, run on the simulator.

``oracle_plan`` sees the whole offered-rate array and chooses, per time block (15 min by default), one size
of the job out of a geometric grid (each size the smallest parallelism per vertex whose busiest subtask
carries a rate at full speed, key groups and partitions included: ``provisioning.parallelism_levels``),
with at most ``max_changes_per_day`` size changes a day, paying the scenario's own downtime model
(``restart_time + state / restore_bandwidth``) and the lag it causes against the scenario's latency target
(``policy._schedule``: the same planner our ``flinkscale`` policy runs on its forecast). The plan is then
EXECUTED on the simulator by ``ScheduledPolicy`` (a policy that rescales at the planned times), so the
oracle's core-hours, seconds over target and rescales in a comparison table are measured exactly like every
other policy's, not taken from the planner's estimate.

The oracle's choices: it starts from the scenario's parallelism like every other policy; a block's size must
carry the block's highest rate at ``headroom`` (0.95) of full speed; a second of lag over the target costs
as much as a second of the largest size (``PlanProblem.lateness_weight``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from flinkscale.core.errors import InputError
from flinkscale.core.policy import _evaluate as ev
from flinkscale.core.policy._schedule import Level, Plan, PlanProblem, solve
from flinkscale.core.policy._settings import Setting, parse_settings
from flinkscale.core.policy.base import Decision, History, VertexDecision
from flinkscale.core.sim.keyload import FloatArray
from flinkscale.core.sim.model import ClusterSpec, SimPipeline
from flinkscale.core.sim.provisioning import carried_rate, parallelism_levels
from flinkscale.core.snapshot import MetricsSnapshot

NAME = "oracle"


@dataclass(frozen=True)
class OracleSettings:
    max_changes_per_day: int = 4
    block_seconds: float = 900.0
    headroom: float = 0.95
    grid_step: float = 1.03  # ratio between consecutive sizes' rates


@dataclass(frozen=True)
class OraclePlan:
    plan: Plan
    levels: tuple[Level, ...]
    schedule: tuple[tuple[float, Mapping[str, int]], ...]  # (time, parallelism) of every planned change


def size_levels(pipeline: SimPipeline, cluster: ClusterSpec, low_rate: float, high_rate: float,
                grid_step: float = 1.03) -> list[Level]:
    """Sizes from ``low_rate`` to ``high_rate`` (records/s at the sources) in steps of ``grid_step``; sizes
    the cluster cannot hold are left out, duplicates merged (the larger rate kept)."""
    low = max(low_rate, 1e-6)
    count = max(2, math.ceil(math.log(max(high_rate, low * grid_step) / low) / math.log(grid_step)) + 1)
    rates = [low * grid_step ** i for i in range(count)]
    by_parallelism: dict[tuple[tuple[str, int], ...], Level] = {}
    for rate, parallelism in zip(rates, parallelism_levels(pipeline, rates, 1.0), strict=True):
        slots = cluster.slots_for(parallelism)
        if slots > cluster.max_slots:
            break
        key = tuple(sorted(parallelism.items()))
        by_parallelism[key] = Level(parallelism, float(slots), rate)
    return sorted(by_parallelism.values(), key=lambda level: level.capacity)


def oracle_plan(pipeline: SimPipeline, rates: FloatArray, *, step_seconds: float, cluster: ClusterSpec,
                downtime_seconds: float, lag_target_seconds: float,
                settings: OracleSettings | None = None) -> OraclePlan:
    """The cheapest plan for ``rates`` (one value per step) under the planner's model."""
    s = settings or OracleSettings()
    steps_per_block = max(1, round(s.block_seconds / step_seconds))
    block = steps_per_block * step_seconds
    n_blocks = math.ceil(len(rates) / steps_per_block)
    padded = np.full(n_blocks * steps_per_block, np.nan)
    padded[: len(rates)] = rates
    shaped = padded.reshape(n_blocks, steps_per_block)
    peak = np.nanmax(shaped, axis=1)
    mean = np.nanmean(shaped, axis=1)
    levels = size_levels(pipeline, cluster, float(np.min(mean)) * 0.9, float(np.max(peak)) / s.headroom * 1.05,
                         s.grid_step)
    start = pipeline.parallelism()
    start_level = Level(start, float(cluster.slots_for(start)), carried_rate(pipeline, start))
    levels = [start_level, *[lv for lv in levels if dict(lv.parallelism) != start]]
    plan = solve(PlanProblem(levels=levels, start_level=0, block_seconds=block, start_time=0.0, peak=peak,
                             mean=mean, downtime_seconds=downtime_seconds, lag_target_seconds=lag_target_seconds,
                             max_changes_per_day=s.max_changes_per_day, headroom=s.headroom))
    schedule = tuple((time, dict(levels[index].parallelism)) for time, index in plan.changes)
    return OraclePlan(plan, tuple(levels), schedule)


class ScheduledPolicy:
    """Rescales to planned sizes at planned times (the oracle's plan, executed like any policy's decisions)."""

    def __init__(self, schedule: Sequence[tuple[float, Mapping[str, int]]], name: str = NAME) -> None:
        self.schedule = tuple(sorted(schedule, key=lambda item: item[0]))
        self.name = name

    def planned(self, timestamp: float) -> Mapping[str, int] | None:
        current = None
        for time, parallelism in self.schedule:
            if time <= timestamp + 1e-9:
                current = parallelism
        return current

    def decide(self, snapshot: MetricsSnapshot, history: History) -> Decision:
        wanted = self.planned(snapshot.timestamp)
        if wanted is None or all(wanted.get(v.id, v.parallelism) == v.parallelism for v in snapshot.vertices):
            return ev.hold_decision(snapshot, self.name, "oracle: the plan holds this size")
        return Decision(snapshot.timestamp, self.name, tuple(
            VertexDecision(v.id, v.name, v.parallelism, wanted.get(v.id, v.parallelism),
                           "oracle: planned size change (clairvoyant plan)")
            for v in snapshot.vertices))


SETTINGS: tuple[Setting, ...] = (
    Setting("max-changes-per-day", "int", "4", "size changes the plan may make in a day"),
    Setting("block", "duration", "15m", "the plan holds one size per block of this length"),
    Setting("headroom", "fraction", "0.95", "a size must carry a block's highest rate at this share of full speed"),
)


def oracle_settings(given: Mapping[str, str] | None = None) -> OracleSettings:
    """``OracleSettings`` from ``--set oracle.KEY=VALUE`` strings (unknown keys and bad values name the key)."""
    values = parse_settings(NAME, SETTINGS, given)
    headroom = values.number("headroom")
    if headroom <= 0:
        raise InputError("must be > 0", field="headroom")
    block = values.number("block")
    if block <= 0:
        raise InputError("must be > 0", field="block")
    return OracleSettings(max_changes_per_day=values.integer("max-changes-per-day"), block_seconds=block,
                          headroom=headroom)
