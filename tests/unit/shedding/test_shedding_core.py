"""The shedding maths: Horvitz-Thompson estimators, the sample-rate bound, stratification, the controller.

Expected values come from the formulas in ../shared/notes/anchors.md section 5 and from Monte-Carlo runs
with fixed numpy seeds, not from the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from flinkscale.core.errors import InputError
from flinkscale.core.shedding import (
    Sheddability,
    check_sheddable,
    choose_keep_probability,
    classify_aggregate,
    estimate_count,
    estimate_sum,
    estimate_weighted,
    expected_relative_error,
    required_keep_probability,
    stratified_keep_probabilities,
    z_for_confidence,
)

RUNS = 2000


def binomial_floor(rate: float, runs: int) -> float:
    """The lowest observed coverage we accept for a true coverage ``rate``: 4 standard errors below it."""
    return rate - 4 * math.sqrt(rate * (1 - rate) / runs)


@pytest.mark.parametrize(("confidence", "z"), [(0.95, 1.959964), (0.99, 2.575829), (0.90, 1.644854)])
def test_z_for_confidence_is_the_two_sided_normal_quantile(confidence: float, z: float) -> None:
    assert z_for_confidence(confidence) == pytest.approx(z, abs=1e-6)


@pytest.mark.parametrize(("population", "expected"), [(1e6, 0.0095), (1e5, 0.088), (1e4, 0.49)])
def test_bound_matches_the_documented_examples(population: float, expected: float) -> None:
    # anchors.md: eps 2%, z 1.96 -> N = 10^6: 0.95%, 10^5: 8.8%, 10^4: 49%
    assert required_keep_probability(population, 0.02, 0.95) == pytest.approx(expected, rel=0.01)


@given(population=st.floats(1, 1e9), eps=st.floats(0.001, 0.5), confidence=st.floats(0.5, 0.999),
       cv=st.floats(0, 5))
def test_the_bound_is_the_rate_whose_expected_error_equals_the_target(population: float, eps: float,
                                                                     confidence: float, cv: float) -> None:
    p = required_keep_probability(population, eps, confidence, cv)
    assert 0 < p <= 1
    if p < 1:
        assert expected_relative_error(population, p, confidence, cv) == pytest.approx(eps, rel=1e-6)


@given(population=st.floats(10, 1e8), eps=st.floats(0.001, 0.5))
def test_sums_with_variation_need_the_rate_of_a_smaller_population(population: float, eps: float) -> None:
    cv = 1.5
    assert required_keep_probability(population, eps, 0.95, cv) == pytest.approx(
        required_keep_probability(population / (1 + cv**2), eps, 0.95))


def test_count_estimate_and_its_error() -> None:
    estimate = estimate_count(kept_records=500, keep_probability=0.25)
    assert estimate.value == 2000
    # relative error = z sqrt((1-p)/kept)
    assert estimate.relative_error == pytest.approx(1.959964 * math.sqrt(0.75 / 500), rel=1e-5)
    assert estimate_count(500, 1.0).relative_error == 0.0


@pytest.mark.parametrize(("population", "p"), [(10_000, 0.1), (50_000, 0.02), (2_000, 0.5)])
def test_count_is_unbiased_and_within_the_bound_at_the_stated_confidence(population: int, p: float) -> None:
    rng = np.random.default_rng(7)
    estimates = []
    covered = 0
    for _ in range(RUNS):
        kept = int((rng.random(population) < p).sum())
        estimate = estimate_count(kept, p, 0.95)
        estimates.append(estimate.value)
        low, high = estimate.interval
        covered += low <= population <= high
    mean = float(np.mean(estimates))
    standard_error_of_mean = math.sqrt(population * (1 - p) / p / RUNS)
    assert abs(mean - population) < 4 * standard_error_of_mean
    assert covered / RUNS >= binomial_floor(0.95, RUNS)


@pytest.mark.parametrize("population", [20_000, 200_000])
def test_at_the_bound_rate_the_error_stays_within_target_for_95_percent_of_runs(population: int) -> None:
    eps, confidence = 0.02, 0.95
    p = required_keep_probability(population, eps, confidence)
    rng = np.random.default_rng(11)
    kept = rng.binomial(population, p, size=RUNS)
    within = np.abs(kept / p - population) / population <= eps
    assert within.mean() >= binomial_floor(confidence, RUNS)


def test_sum_is_unbiased_and_within_the_cv_bound() -> None:
    rng = np.random.default_rng(3)
    values = rng.lognormal(mean=3.0, sigma=0.8, size=20_000)
    truth = float(values.sum())
    cv = float(values.std() / values.mean())
    eps, confidence = 0.03, 0.95
    p = required_keep_probability(len(values), eps, confidence, cv)
    within = 0
    estimates = []
    for _ in range(RUNS):
        mask = rng.random(len(values)) < p
        estimate = estimate_sum(values[mask].tolist(), p, confidence)
        estimates.append(estimate.value)
        within += abs(estimate.value - truth) / truth <= eps
    true_sd = math.sqrt((1 - p) / p * float((values**2).sum()))
    assert abs(np.mean(estimates) - truth) < 4 * true_sd / math.sqrt(RUNS)
    assert within / RUNS >= binomial_floor(confidence, RUNS)


def test_weighted_estimate_with_mixed_rates_is_unbiased() -> None:
    rng = np.random.default_rng(5)
    population = 10_000
    rates = np.where(np.arange(population) < 1000, 0.9, 0.05)  # a small stratum kept at a high rate
    estimates = []
    covered = 0
    for _ in range(RUNS):
        mask = rng.random(population) < rates
        estimate = estimate_weighted([(1.0, 1.0 / r) for r in rates[mask]])
        estimates.append(estimate.value)
        low, high = estimate.interval
        covered += low <= population <= high
    true_sd = math.sqrt(float(((1 - rates) / rates).sum()))
    assert abs(np.mean(estimates) - population) < 4 * true_sd / math.sqrt(RUNS)
    assert covered / RUNS >= binomial_floor(0.95, RUNS)


def test_stratified_rates_keep_small_groups_within_the_bound_and_fit_capacity() -> None:
    groups = {"big": 1_000_000.0, "medium": 50_000.0, "small": 2_000.0}
    capacity = 0.3 * sum(groups.values())
    rates = stratified_keep_probabilities(groups, capacity, 0.02, 0.95)
    for group, population in groups.items():
        assert rates.per_group[group] >= required_keep_probability(population, 0.02, 0.95) - 1e-12
        assert expected_relative_error(population, rates.per_group[group]) <= 0.02 + 1e-9
    assert rates.kept_records == pytest.approx(capacity, rel=1e-6)
    assert rates.per_group["small"] > rates.per_group["big"]


@settings(max_examples=200)
@given(groups=st.dictionaries(st.text(min_size=1, max_size=3), st.floats(0, 1e7), min_size=1, max_size=8),
       capacity_fraction=st.floats(0.01, 1.5))
def test_stratified_rates_never_break_a_group_bound(groups: dict[str, float], capacity_fraction: float) -> None:
    capacity = capacity_fraction * sum(groups.values())
    rates = stratified_keep_probabilities(groups, capacity, 0.02, 0.95)
    for group, population in groups.items():
        assert rates.per_group[group] >= required_keep_probability(population, 0.02, 0.95) - 1e-12
        assert rates.per_group[group] <= 1.0
    if rates.bound_records <= capacity:
        assert rates.kept_records <= capacity * (1 + 1e-9) or rates.common_level == 1.0


def test_controller_does_not_shed_without_overload() -> None:
    decision = choose_keep_probability(800.0, 1000.0, 10_000.0)
    assert decision.keep_probability == 1.0 and decision.achievable and not decision.shedding


def test_controller_sheds_exactly_the_overload_when_the_bound_allows() -> None:
    decision = choose_keep_probability(20_000.0, 10_000.0, 1_000_000.0, 0.02, 0.95)
    assert decision.keep_probability == pytest.approx(0.5)
    assert decision.achievable
    assert decision.numbers["expected_relative_error"] <= 0.02
    assert "p_cap" in decision.formula


def test_controller_says_when_the_target_cannot_be_met() -> None:
    # 10^4 records per group per window need p >= 0.49; 3x overload allows only 1/3.
    decision = choose_keep_probability(30_000.0, 10_000.0, 10_000.0, 0.02, 0.95)
    assert not decision.achievable
    assert decision.keep_probability == pytest.approx(required_keep_probability(10_000, 0.02, 0.95))
    assert "cannot" in decision.reason or "needs" in decision.reason



@pytest.mark.parametrize(("confidence", "shown"), [(0.95, "at 95%"), (0.995, "at 99.5%"), (0.999, "at 99.9%")])
def test_the_reason_states_the_confidence_as_given(confidence: float, shown: str) -> None:
    # 99.5% once read "at 100%": a bound at certainty, which no sample gives.
    met = choose_keep_probability(20_000.0, 10_000.0, 1_000_000.0, 0.02, confidence)
    missed = choose_keep_probability(30_000.0, 10_000.0, 10_000.0, 0.02, confidence)
    assert shown in met.reason and shown in missed.reason

def test_controller_reserves_capacity_to_drain_the_backlog() -> None:
    decision = choose_keep_probability(10_000.0, 10_000.0, 1e7, backlog_drain_rate=2_000.0)
    assert decision.keep_probability == pytest.approx(0.8)


@settings(max_examples=300)
@given(offered=st.floats(1, 1e7), sustainable=st.floats(1, 1e7), population=st.floats(0, 1e8),
       eps=st.floats(0.005, 0.2))
@example(offered=1.0000000000000002, sustainable=1.0, population=0.0, eps=0.125)  # rounding-level overload
def test_controller_never_sheds_more_than_needed_nor_below_the_bound(offered: float, sustainable: float,
                                                                     population: float, eps: float) -> None:
    decision = choose_keep_probability(offered, sustainable, population, eps, 0.95)
    bound = required_keep_probability(population, eps, 0.95)
    needed = min(1.0, sustainable / offered)
    assert decision.keep_probability >= needed - 1e-12
    assert decision.keep_probability >= bound - 1e-12 or decision.keep_probability == 1.0
    assert decision.keep_probability <= max(needed, bound) + 1e-12
    assert decision.achievable == (bound <= needed * (1 + 1e-9))


def test_controller_stratified_returns_per_group_rates_and_control_message() -> None:
    groups = {"a": 1_000_000.0, "b": 5_000.0}
    decision = choose_keep_probability(4.0, 1.0, groups, 0.02, 0.95)
    assert decision.achievable
    assert decision.per_group["b"] >= required_keep_probability(5_000, 0.02, 0.95)
    kept = sum(decision.per_group[g] * n for g, n in groups.items())
    assert kept <= 0.25 * sum(groups.values()) * (1 + 1e-6)
    message = decision.to_control_message(seq=4)
    per_key = message["per_key"]
    assert message["seq"] == 4 and isinstance(per_key, dict) and set(per_key) == {"a", "b"}


@pytest.mark.parametrize(("aggregate", "verdict"), [
    ("COUNT", Sheddability.SHEDDABLE), ("sum", Sheddability.SHEDDABLE), ("avg", Sheddability.SHEDDABLE),
    ("COUNT DISTINCT", Sheddability.REFUSE), ("min", Sheddability.REFUSE), ("MAX", Sheddability.REFUSE),
    ("join", Sheddability.REFUSE), ("median", Sheddability.WARN), ("my_custom_udaf", Sheddability.REFUSE),
])
def test_aggregate_classification(aggregate: str, verdict: Sheddability) -> None:
    assert classify_aggregate(aggregate).verdict is verdict


def test_check_sheddable_refuses_with_the_field_and_the_alternative() -> None:
    with pytest.raises(InputError) as info:
        check_sheddable(["count", "count_distinct", "max"])
    assert info.value.field == "aggregates"
    assert "HyperLogLog" in str(info.value) and "max" in str(info.value)
    assert len(check_sheddable(["count", "sum", "median"])) == 3


@pytest.mark.parametrize(("call", "field"), [
    (lambda: estimate_count(10, 0.0), "keep_probability"),
    (lambda: estimate_count(10, 1.5), "keep_probability"),
    (lambda: required_keep_probability(100, 0.0), "target_error"),
    (lambda: z_for_confidence(1.0), "confidence"),
    (lambda: choose_keep_probability(10, 0, 100), "sustainable_rate"),
    (lambda: choose_keep_probability(-1, 10, 100), "offered_rate"),
    (lambda: stratified_keep_probabilities({"x": -1.0}, 10, 0.02), "records_per_group['x']"),
])
def test_bad_input_names_the_field(call: object, field: str) -> None:
    with pytest.raises(InputError) as info:
        call()  # type: ignore[operator]
    assert info.value.field == field
