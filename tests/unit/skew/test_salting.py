"""Salted two-phase aggregation: exactly the unsalted result, and a hot key spread over subtasks."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from flinkscale.core.errors import InputError
from flinkscale.core.keygroups import subtask_for_pyflink_string_key
from flinkscale.pipelines.salting import (
    AGGREGATIONS,
    COUNT,
    SUM,
    Aggregation,
    phase1_partials,
    salt_for,
    salted_aggregate_batch,
    salted_key,
    unsalted_aggregate,
    unsalted_key,
)

Record = tuple[str, int, str]  # key, value, event id


def make_records(seed: int, size: int, exponent: float = 1.2) -> list[Record]:
    rng = np.random.default_rng(seed)
    keys = rng.zipf(exponent, size=size)
    values = rng.integers(-1000, 1000, size=size)
    return [(f"user-{k}", int(v), f"evt-{seed}-{i}") for i, (k, v) in enumerate(zip(keys, values, strict=True))]


@pytest.mark.parametrize("name", sorted(AGGREGATIONS))
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("salts", [1, 4, 16])
def test_salted_result_equals_the_unsalted_result(name: str, seed: int, salts: int) -> None:
    aggregation = AGGREGATIONS[name]
    records = make_records(seed, 5_000)
    salted = salted_aggregate_batch(records, lambda r: r[0], lambda r: r[1], lambda r: r[2], salts, aggregation)
    plain = unsalted_aggregate(records, lambda r: r[0], lambda r: r[1], aggregation)
    assert salted == plain  # integer values: sums are exact in any order


@given(st.lists(st.tuples(st.sampled_from("abcde"), st.integers(-10**6, 10**6), st.uuids()), max_size=200),
       st.integers(1, 32))
def test_salted_sum_and_count_equal_unsalted_on_any_input(records: list[tuple[str, int, object]], salts: int) -> None:
    aggregations: tuple[Aggregation[Any, Any, Any], ...] = (SUM, COUNT)
    for aggregation in aggregations:
        assert salted_aggregate_batch(records, lambda r: r[0], lambda r: r[1], lambda r: r[2], salts,
                                      aggregation) == unsalted_aggregate(records, lambda r: r[0], lambda r: r[1],
                                                                         aggregation)


def test_salt_is_deterministic_per_event_and_spreads_evenly() -> None:
    assert salt_for("evt-1", 8) == salt_for("evt-1", 8)
    counts = Counter(salt_for(f"evt-{i}", 8) for i in range(80_000))
    assert set(counts) == set(range(8))
    assert max(counts.values()) / min(counts.values()) < 1.1


def test_salted_key_round_trips_keys_containing_the_separator() -> None:
    assert unsalted_key(salted_key("a|b", 3)) == "a|b"


def test_bad_salt_count_names_the_field() -> None:
    with pytest.raises(InputError) as info:
        salt_for("x", 0)
    assert info.value.field == "salts"


def subtask_loads(keys: list[str], max_parallelism: int, parallelism: int) -> list[int]:
    loads = [0] * parallelism
    for key in keys:
        loads[subtask_for_pyflink_string_key(key, max_parallelism, parallelism)] += 1
    return loads


def test_a_zipf_hot_key_spreads_over_subtasks_with_max_parallelism_128_and_p_4() -> None:
    records = make_records(seed=7, size=40_000, exponent=1.2)
    hot_key, hot_count = Counter(r[0] for r in records).most_common(1)[0]
    assert hot_count / len(records) > 0.15  # Zipf(1.2): the top key alone is a large share

    unsalted_loads = subtask_loads([r[0] for r in records], 128, 4)
    salted_keys = [salted_key(r[0], salt_for(r[2], 16)) for r in records]
    salted_loads = subtask_loads(salted_keys, 128, 4)

    hot_subtasks_unsalted = {subtask_for_pyflink_string_key(hot_key, 128, 4)}
    hot_subtasks_salted = {subtask_for_pyflink_string_key(k, 128, 4) for k, r in zip(salted_keys, records, strict=True)
                           if r[0] == hot_key}
    assert len(hot_subtasks_unsalted) == 1
    assert len(hot_subtasks_salted) == 4  # 16 salts over 4 subtasks reach every subtask

    def max_over_mean(loads: list[int]) -> float:
        return max(loads) / (sum(loads) / len(loads))

    assert max_over_mean(salted_loads) < max_over_mean(unsalted_loads)
    assert max_over_mean(salted_loads) < 1.25


def test_phase1_holds_at_most_salts_partials_per_key() -> None:
    records = make_records(seed=5, size=3_000)
    partials = phase1_partials(records, lambda r: r[0], lambda r: r[1], lambda r: r[2], 4, SUM)
    per_key = Counter(key for key, _ in partials)
    assert max(per_key.values()) <= 4
