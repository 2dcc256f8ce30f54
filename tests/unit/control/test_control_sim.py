"""The simulator runs the live loop's control step: a peak over the slot ceiling is shed, and only then."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from flinkscale.core.policy import make_policy
from flinkscale.core.sim.run import SimRun, simulate
from flinkscale.core.sim.scenario import Scenario, parse_scenario

SCENARIO = Path(__file__).parents[3] / "examples" / "scenarios" / "shed-at-ceiling.yaml"
PEAK_AT = 600.0
PEAK_RATE, CEILING_CAPACITY = 8000.0, 4 * 1000.0  # 4 slots at most, 1,000 records/s per source subtask


def run(scenario: Scenario) -> SimRun:
    return simulate(scenario.pipeline, scenario.rates(), make_policy("flinkscale"), scenario.config)


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return parse_scenario(SCENARIO.read_text())


@pytest.fixture(scope="module")
def shed_run(scenario: Scenario) -> SimRun:
    return run(scenario)


def test_a_peak_over_the_ceiling_is_shed_in_the_simulator(shed_run: SimRun, scenario: Scenario) -> None:
    assert scenario.config.shedding is not None
    outcome = shed_run.outcome
    decisions = shed_run.history.decisions
    assert outcome.records_dropped > 0
    assert max(d.shed_fraction for d in decisions) > 0
    # Nothing is shed before the peak: 2,000/s fit into the job as it is.
    assert all(d.shed_fraction == 0.0 for d in decisions if d.timestamp <= PEAK_AT)
    # At the end the job keeps what 4 slots process at the controller's 90% headroom: 1 - 0.9 x 4000/8000.
    expected = 1 - 0.9 * CEILING_CAPACITY / PEAK_RATE
    assert decisions[-1].shed_fraction == pytest.approx(expected, abs=0.05)
    # Dropped records are that share of the peak, give or take the time it took to get there.
    peak_records = PEAK_RATE * (outcome.duration_seconds - PEAK_AT)
    assert 0.8 * expected < outcome.records_dropped / peak_records < expected + 0.02


def test_shedding_starts_only_at_the_slot_ceiling(shed_run: SimRun) -> None:
    # Scale first: the first decision that sheds sees the job at 4 source subtasks, the most it may get.
    snapshots = {s.timestamp: s for s in shed_run.history.snapshots}
    first = next(d for d in shed_run.history.decisions if d.shed_fraction > 0)
    assert snapshots[first.timestamp].vertex("source").parallelism == 4
    assert shed_run.outcome.peak_slots == 4


def test_shedding_keeps_the_lag_bounded_where_backpressure_lets_it_grow(shed_run: SimRun,
                                                                       scenario: Scenario) -> None:
    unshed = run(replace(scenario, config=replace(scenario.config, shedding=None)))
    assert unshed.outcome.records_dropped == 0
    # Without shedding the excess (8,000 - 4,000)/s piles up for the rest of the hour.
    assert unshed.lag_records[-1] > 0.9 * (PEAK_RATE - CEILING_CAPACITY) * (3600 - PEAK_AT - 300)
    # With it, lag at the end is under a minute of the peak rate.
    assert shed_run.lag_records[-1] < PEAK_RATE * 60
    assert float(np.max(shed_run.lag_records[-600:])) < PEAK_RATE * 60

