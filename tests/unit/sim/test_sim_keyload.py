"""Flink's key-group assignment as the simulator uses it, held to Flink's formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flinkscale.core import keygroups
from flinkscale.core.errors import InputError
from flinkscale.core.sim.keyload import (
    KeyDistribution,
    imbalance,
    key_group_weights,
    key_groups_of_keys,
    murmur_hash_array,
    partition_shares,
    subtask_shares,
)


@given(st.lists(st.integers(min_value=-(2**31), max_value=2**31 - 1), min_size=1, max_size=50))
@settings(max_examples=50, deadline=None)
def test_vectorised_murmur_equals_the_scalar_reference(codes: list[int]) -> None:
    vectorised = murmur_hash_array(np.array(codes, dtype=np.int64))
    assert [int(x) for x in vectorised] == [keygroups.murmur_hash(c) for c in codes]


@pytest.mark.parametrize("code", [0, 1, -1, 2**31 - 1, -(2**31), 42, 123456789])
def test_murmur_edge_values(code: int) -> None:
    assert int(murmur_hash_array(np.array([code]))[0]) == keygroups.murmur_hash(code)


def test_uniform_128_key_groups_over_96_subtasks_gives_the_busiest_1_5x() -> None:
    # 128 = 96 + 32: with kg * 96 // 128, 32 subtasks own 2 key groups and 64 own 1;
    # the mean is 128/96 key groups, so the busiest carries 2 / (128/96) = 1.5x the mean.
    shares = subtask_shares(key_group_weights(KeyDistribution(), 128), 96)
    owned = np.round(shares * 128).astype(int)
    assert sorted(set(owned.tolist())) == [1, 2]
    assert int((owned == 2).sum()) == 32
    assert imbalance(shares) == pytest.approx(1.5)


@pytest.mark.parametrize(("max_parallelism", "parallelism"),
                         [(128, 96), (128, 100), (128, 64), (720, 700), (720, 240), (32768, 1000), (128, 1)])
def test_uniform_layout_matches_the_ceiling_formula(max_parallelism: int, parallelism: int) -> None:
    shares = subtask_shares(key_group_weights(KeyDistribution(), max_parallelism), parallelism)
    expected = math.ceil(max_parallelism / parallelism) * parallelism / max_parallelism
    assert imbalance(shares) == pytest.approx(expected)
    assert shares.sum() == pytest.approx(1.0)


@given(max_parallelism=st.integers(1, 2048), data=st.data())
@settings(max_examples=60, deadline=None)
def test_each_key_group_lands_on_flinks_operator_index(max_parallelism: int, data: st.DataObject) -> None:
    parallelism = data.draw(st.integers(1, max_parallelism))
    weights = np.random.default_rng(max_parallelism).random(max_parallelism)
    weights /= weights.sum()
    shares = subtask_shares(weights, parallelism)
    expected = np.zeros(parallelism)
    for key_group in range(max_parallelism):
        expected[keygroups.operator_index_for_key_group(key_group, max_parallelism, parallelism)] += weights[key_group]
    np.testing.assert_allclose(shares, expected, rtol=1e-12, atol=1e-15)


def test_keys_go_to_murmur_modulo_max_parallelism() -> None:
    groups = key_groups_of_keys(1000, 128)
    assert [int(g) for g in groups[:50]] == [keygroups.key_group_for_hash(k, 128) for k in range(50)]


def test_zipf_hottest_key_carries_one_over_the_harmonic_number() -> None:
    keys, exponent = 1000, 1.2
    harmonic = sum(i ** -exponent for i in range(1, keys + 1))
    weights = key_group_weights(KeyDistribution("zipf", keys, exponent), 128)
    hot_group = keygroups.key_group_for_hash(0, 128)  # key 0 is rank 1
    assert weights.sum() == pytest.approx(1.0)
    assert weights[hot_group] >= 1 / harmonic
    # The hot key group holds key 0 and every other key murmur sends there.
    others = [k for k in range(1, keys) if keygroups.key_group_for_hash(k, 128) == hot_group]
    assert weights[hot_group] == pytest.approx((1 + sum((k + 1) ** -exponent for k in others)) / harmonic)


def test_zipf_skew_shows_up_at_an_aligned_parallelism() -> None:
    uniform = subtask_shares(key_group_weights(KeyDistribution(), 128), 64)
    skewed = subtask_shares(key_group_weights(KeyDistribution("zipf", 10_000, 1.0), 128), 64)
    assert imbalance(uniform) == pytest.approx(1.0)
    assert imbalance(skewed) > 2.0


@pytest.mark.parametrize(("partitions", "parallelism", "busiest", "idle"),
                         [(12, 4, 3, 0), (10, 4, 3, 0), (7, 7, 1, 0), (4, 6, 1, 2), (13, 5, 3, 0)])
def test_partition_shares(partitions: int, parallelism: int, busiest: int, idle: int) -> None:
    shares = partition_shares(partitions, parallelism)
    assert shares.sum() == pytest.approx(1.0)
    assert shares.max() * partitions == pytest.approx(busiest)
    assert int((shares == 0).sum()) == idle


@pytest.mark.parametrize(("kwargs", "field"), [({"kind": "pareto"}, "distribution"),
                                               ({"kind": "zipf"}, "keys"),
                                               ({"keys": 0}, "keys"),
                                               ({"kind": "zipf", "keys": 10, "exponent": -1}, "exponent")])
def test_bad_distributions_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as caught:
        KeyDistribution(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
