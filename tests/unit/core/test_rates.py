"""The rate formulas (core/rates.py): worked examples from the operator's definitions, and properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flinkscale.core import rates

rate_st = st.floats(min_value=0.0, max_value=1e9, allow_nan=False)
busy_st = st.floats(min_value=1.0, max_value=1000.0, allow_nan=False)
parallelism_st = st.integers(min_value=1, max_value=4096)


@pytest.mark.parametrize(("rate", "busy_ms", "expected"), [
    (1000.0, 500.0, 2000.0),   # half busy -> could take twice the input
    (1000.0, 1000.0, 1000.0),  # saturated -> takes what it takes
    (300.0, 750.0, 400.0),
    (1000.0, 0.0, math.inf),   # never busy
    (1000.0, 1200.0, 1000.0),  # a reading over 1000 ms/s counts as fully busy
])
def test_true_processing_rate(rate: float, busy_ms: float, expected: float) -> None:
    assert rates.true_processing_rate(rate, busy_ms) == pytest.approx(expected)


@pytest.mark.parametrize(("rate", "back_pressured_ms", "expected"), [
    (5000.0, 250.0, 5000.0 / 0.75), (1000.0, 0.0, 1000.0), (1000.0, 1000.0, math.inf)])
def test_observed_true_processing_rate(rate: float, back_pressured_ms: float, expected: float) -> None:
    assert rates.observed_true_processing_rate(rate, back_pressured_ms) == pytest.approx(expected)


def test_operator_capacity_example() -> None:
    # catch-up 100/s, target 6000/s, restart 5 min, catch-up 30 min, utilization 0.7 (the operator's formula)
    assert rates.required_capacity(6000, 0.7, 300, 1800, catch_up_rate=100) == pytest.approx(
        100 + 6000 * 300 / 1800 + 6000 / 0.7)
    assert rates.required_capacity(6000, 0.0) == math.inf


@given(rate_st, busy_st)
def test_tpr_is_never_below_the_rate_and_scales_with_it(rate: float, busy: float) -> None:
    tpr = rates.true_processing_rate(rate, busy)
    assert tpr >= rate * (1 - 1e-12)
    assert rates.true_processing_rate(2 * rate, busy) == pytest.approx(2 * tpr)


@given(rate_st, busy_st, busy_st)
def test_busier_means_lower_tpr(rate: float, a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert rates.true_processing_rate(rate, high) <= rates.true_processing_rate(rate, low) * (1 + 1e-12)


@given(st.floats(min_value=1.0, max_value=1e9), busy_st, parallelism_st)
def test_per_subtask_capacity_and_cost_are_inverse(rate: float, busy: float, p: int) -> None:
    capacity = rates.per_subtask_capacity(rate, busy, p)
    assert capacity * p == pytest.approx(rates.true_processing_rate(rate, busy))
    assert rates.cost_us_per_record(rate, busy, p) * capacity == pytest.approx(1e6)
    # A measured cost stated in a spec gives back the measured capacity (the planner's road).
    assert rates.capacity_from_cost(rates.cost_us_per_record(rate, busy, p)) == pytest.approx(capacity)


def test_capacity_from_cost() -> None:
    assert rates.capacity_from_cost(25.0) == 40_000.0  # 25 us per record: 40k records per busy second
    assert rates.capacity_from_cost(0.0) == math.inf  # a free operator never limits


@given(rate_st, busy_st, st.floats(min_value=1e-6, max_value=1.0))
def test_sustainable_rate_is_tpr_times_the_kept_fraction(rate: float, busy: float, keep: float) -> None:
    assert rates.sustainable_rate(rate, busy, keep) == pytest.approx(rates.true_processing_rate(rate, busy) * keep)
    assert rates.sustainable_rate(rate, busy, keep) <= rates.true_processing_rate(rate, busy) * (1 + 1e-12)


@given(st.floats(min_value=0.0, max_value=1e9), st.floats(min_value=0.01, max_value=1.0),
       st.floats(min_value=0.0, max_value=3600.0), st.floats(min_value=1.0, max_value=7200.0))
def test_capacity_covers_the_target_at_the_utilization(target: float, u: float, restart: float,
                                                       catch_up: float) -> None:
    needed = rates.required_capacity(target, u, restart, catch_up)
    assert needed >= target / u * (1 - 1e-12)
    # A longer restart never asks for less.
    assert rates.required_capacity(target, u, restart + 60, catch_up) >= needed


values_st = st.lists(st.tuples(st.floats(min_value=-1e6, max_value=1e6), st.floats(min_value=0.1, max_value=600)),
                     min_size=1, max_size=20)


@given(values_st)
def test_window_mean_lies_between_min_and_max(pairs: list[tuple[float, float]]) -> None:
    mean = rates.window_mean(pairs)
    assert mean is not None
    lo, hi = min(v for v, _ in pairs), max(v for v, _ in pairs)
    assert lo - 1e-6 * max(1.0, abs(lo)) <= mean <= hi + 1e-6 * max(1.0, abs(hi))


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=1, max_size=20),
       st.floats(min_value=0.1, max_value=600))
def test_equal_intervals_give_the_plain_mean(values: list[float], seconds: float) -> None:
    assert rates.window_mean((v, seconds) for v in values) == pytest.approx(sum(values) / len(values), abs=1e-6)


def test_window_mean_weights_by_interval_and_skips_unknowns() -> None:
    # 10 s at 100/s and 50 s at 400/s: 350/s over the minute, not the plain mean 250/s.
    assert rates.window_mean([(100.0, 10.0), (400.0, 50.0)]) == pytest.approx(350.0)
    assert rates.window_mean([(None, 10.0), (math.nan, 10.0), (5.0, 20.0)]) == 5.0
    assert rates.window_mean([(None, 10.0)]) is None
