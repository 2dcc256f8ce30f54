"""The reference pipeline's shed_weight UDF without a cluster: weights, kept fractions, whole users."""

from __future__ import annotations

from collections import defaultdict

import pytest

from flinkscale.pipelines import clickstream


def weight_udf(p: float, mode: str = "random") -> clickstream.ShedWeight:
    udf = clickstream.ShedWeight(p, mode, "unused:9092", "")  # no control topic: p stays as given
    udf.open(None)
    return udf


@pytest.mark.parametrize("p", [0.0001, 0.123456, 0.37, 0.5, 0.99995, 1.0])
def test_weight_is_the_exact_inclusion_probability(p: float) -> None:
    udf = weight_udf(p)
    weights = {udf.eval(event_id, "u1") for event_id in range(20_000)}
    threshold = max(1, round(p * 10_000))
    # round(), not int(): int(0.37 x 10000) = 3699 would keep 3699 buckets while weighting by 1/0.37.
    assert weights <= {0.0, 10_000 / threshold}


@pytest.mark.parametrize("p", [0.1, 0.37, 0.5, 0.8])
def test_random_mode_keeps_about_p_and_the_count_estimate_is_close(p: float) -> None:
    udf = weight_udf(p)
    n = 100_000
    weights = [udf.eval(event_id, "u1") for event_id in range(n)]
    kept = sum(1 for w in weights if w > 0)
    estimate = sum(weights)
    # Bernoulli bound at ~4.4 sigma: z sqrt((1-p)/(p n)).
    tolerance = 4.4 * ((1 - p) / (p * n)) ** 0.5
    assert abs(estimate - n) / n <= tolerance
    assert abs(kept / n - p) <= tolerance * p


def test_key_hash_mode_keeps_whole_users() -> None:
    udf = weight_udf(0.5, "key_hash")
    decisions: dict[str, set[bool]] = defaultdict(set)
    for event_id in range(20_000):
        user = f"u{event_id % 400}"
        decisions[user].add(udf.eval(event_id, user) > 0)
    assert all(len(kept) == 1 for kept in decisions.values())
    kept_users = sum(1 for kept in decisions.values() if True in kept)
    assert 120 < kept_users < 280  # ~200 of 400 (binomial, 4 sigma = 40)


def test_control_message_parsing_keeps_the_last_good_value() -> None:
    udf = weight_udf(1.0)
    udf._apply(b'{"keep_probability": 0.25, "seq": 3}')
    assert udf.threshold == 2500
    udf._apply(b'{"keep_probability": 0.9, "seq": 2}')  # older seq: ignored
    udf._apply(b"not json")
    udf._apply(b'{"keep_probability": 0, "seq": 9}')  # invalid p: ignored
    assert (udf.threshold, udf.seq) == (2500, 3)
