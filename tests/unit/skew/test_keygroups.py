"""Key-group assignment against values printed by Flink 2.3's own jar (flink-dist-2.3.0.jar).

The vectors below were produced by a small Java program calling org.apache.flink.util.MathUtils.murmurHash,
KeyGroupRangeAssignment.assignToKeyGroup / computeKeyGroupRangeForOperatorIndex /
computeOperatorIndexForKeyGroup / computeDefaultMaxParallelism and String/Long.hashCode.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flinkscale.core.errors import InputError
from flinkscale.core.keygroups import (
    aligned_parallelism,
    default_max_parallelism,
    divisors,
    java_long_hash,
    java_string_hash,
    key_group_for_hash,
    key_group_range,
    key_groups_per_subtask,
    layout_imbalance,
    murmur_hash,
    operator_index_for_key_group,
    pyflink_key_hash,
    subtask_for_pyflink_string_key,
)

# (hashCode, MathUtils.murmurHash)
FLINK_MURMUR = [
    (0, 593689054),
    (1, 68075478),
    (-1, 1982413648),
    (42, 1134849565),
    (2147483647, 1653689534),
    (-2147483648, 1718298732),
    (123456789, 1088346449),
    (-987654321, 1314828554),
    (7, 1343918321),
    (1000003, 59034252),
]
# (key, String.hashCode, maxParallelism, assignToKeyGroup)
FLINK_STRING_KEY_GROUPS = [
    ('', 0, 128, 94),
    ('', 0, 720, 94),
    ('', 0, 32768, 31198),
    ('a', 97, 128, 81),
    ('a', 97, 720, 1),
    ('a', 97, 32768, 19409),
    ('user-1', -836031825, 128, 121),
    ('user-1', -836031825, 720, 313),
    ('user-1', -836031825, 32768, 13945),
    ('user-42', -147182656, 128, 20),
    ('user-42', -147182656, 720, 564),
    ('user-42', -147182656, 32768, 20116),
    ('hot', 103501, 128, 104),
    ('hot', 103501, 720, 584),
    ('hot', 103501, 32768, 16744),
    ('page/index.html', 1688427207, 128, 33),
    ('page/index.html', 1688427207, 720, 97),
    ('page/index.html', 1688427207, 32768, 10913),
    ('k#3', 103963, 128, 0),
    ('k#3', 103963, 720, 32),
    ('k#3', 103963, 32768, 27008),
    ('Zürich', -1482116162, 128, 89),
    ('Zürich', -1482116162, 720, 457),
    ('Zürich', -1482116162, 32768, 29273),
]
# (value, Long.hashCode)
FLINK_LONG_HASH = [
    (0, 0),
    (1, 1),
    (-1, 0),
    (4294967296, 1),
    (123456789012345, -2045923535),
]
# (maxParallelism, parallelism, operatorIndex, start, end)
FLINK_RANGES = [
    (128, 4, 0, 0, 31),
    (128, 4, 1, 32, 63),
    (128, 4, 2, 64, 95),
    (128, 4, 3, 96, 127),
    (128, 96, 0, 0, 1),
    (128, 96, 1, 2, 2),
    (128, 96, 2, 3, 3),
    (128, 96, 95, 127, 127),
    (128, 3, 0, 0, 42),
    (128, 3, 1, 43, 85),
    (128, 3, 2, 86, 127),
    (720, 7, 0, 0, 102),
    (720, 7, 1, 103, 205),
    (720, 7, 2, 206, 308),
    (720, 7, 6, 618, 719),
    (10, 3, 0, 0, 3),
    (10, 3, 1, 4, 6),
    (10, 3, 2, 7, 9),
]
# (parallelism, computeDefaultMaxParallelism)
FLINK_DEFAULT_MAX = [
    (1, 128),
    (4, 128),
    (85, 128),
    (86, 256),
    (100, 256),
    (1000, 2048),
    (30000, 32768),
]
# (maxParallelism, parallelism, keyGroup, computeOperatorIndexForKeyGroup)
FLINK_OPERATOR_INDEX = [
    (128, 3, 0, 0),
    (128, 3, 31, 0),
    (128, 3, 32, 0),
    (128, 3, 127, 2),
]

# (field hashCode, Row.of(field).hashCode(), assignToKeyGroup(row, 128), assignToKeyGroup(row, 720))
FLINK_ROW_KEYS = [
    (2147483647, -2147483587, 59, 347),
    (-2147483648, -2147483586, 122, 218),
    (0, 62, 33, 689),
    (0, 62, 33, 689),
    (-1482116162, -1482116100, 113, 641),
    (-147182656, -147182594, 76, 172),
    (1338602716, 1338602778, 79, 703),
    (7, 69, 17, 177),
]


@pytest.mark.parametrize(("code", "expected"), FLINK_MURMUR)
def test_murmur_hash_matches_flink(code: int, expected: int) -> None:
    assert murmur_hash(code) == expected


@pytest.mark.parametrize(("key", "hash_code", "max_parallelism", "key_group"), FLINK_STRING_KEY_GROUPS)
def test_string_keys_land_in_flinks_key_group(key: str, hash_code: int, max_parallelism: int,
                                              key_group: int) -> None:
    assert java_string_hash(key) == hash_code
    assert key_group_for_hash(hash_code, max_parallelism) == key_group


@pytest.mark.parametrize(("value", "expected"), FLINK_LONG_HASH)
def test_long_hash_matches_java(value: int, expected: int) -> None:
    assert java_long_hash(value) == expected


@pytest.mark.parametrize(("max_parallelism", "parallelism", "index", "start", "end"), FLINK_RANGES)
def test_key_group_ranges_match_flink(max_parallelism: int, parallelism: int, index: int, start: int,
                                      end: int) -> None:
    owned = key_group_range(max_parallelism, parallelism, index)
    assert (owned.start, owned.end) == (start, end)


@pytest.mark.parametrize(("parallelism", "expected"), FLINK_DEFAULT_MAX)
def test_default_max_parallelism_matches_flink(parallelism: int, expected: int) -> None:
    assert default_max_parallelism(parallelism) == expected


@pytest.mark.parametrize(("max_parallelism", "parallelism", "key_group", "expected"), FLINK_OPERATOR_INDEX)
def test_operator_index_matches_flink(max_parallelism: int, parallelism: int, key_group: int,
                                      expected: int) -> None:
    assert operator_index_for_key_group(key_group, max_parallelism, parallelism) == expected


@given(st.integers(1, 4096).flatmap(lambda m: st.tuples(st.just(m), st.integers(1, m))))
def test_ranges_partition_the_key_groups_and_agree_with_the_operator_index(layout: tuple[int, int]) -> None:
    max_parallelism, parallelism = layout
    seen: list[int] = []
    for index in range(parallelism):
        owned = key_group_range(max_parallelism, parallelism, index)
        for key_group in owned.as_range():
            assert operator_index_for_key_group(key_group, max_parallelism, parallelism) == index
        seen.extend(owned.as_range())
    assert seen == list(range(max_parallelism))


@given(st.integers(-(2**31), 2**31 - 1))
def test_murmur_is_non_negative_int32(code: int) -> None:
    assert 0 <= murmur_hash(code) < 2**31


@pytest.mark.parametrize(("max_parallelism", "parallelism", "imbalance"),
                         [(128, 96, 1.5), (128, 4, 1.0), (128, 3, 43 * 3 / 128), (720, 7, 103 * 7 / 720)])
def test_layout_imbalance_is_ceil_over_mean(max_parallelism: int, parallelism: int, imbalance: float) -> None:
    assert layout_imbalance(max_parallelism, parallelism) == pytest.approx(imbalance)
    per_subtask = key_groups_per_subtask(max_parallelism, parallelism)
    assert max(per_subtask) / (max_parallelism / parallelism) == pytest.approx(imbalance)


@pytest.mark.parametrize(("parallelism", "max_parallelism", "upper", "aligned"),
                         [(96, 128, None, 128), (96, 128, 100, 64), (7, 720, None, 8), (5, 128, None, 8),
                          (4, 128, None, 4)])
def test_aligned_parallelism_searches_up_then_down(parallelism: int, max_parallelism: int, upper: int | None,
                                                   aligned: int) -> None:
    assert aligned_parallelism(parallelism, max_parallelism, upper) == aligned
    assert max_parallelism % aligned == 0


def test_divisors() -> None:
    assert divisors(120) == (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 24, 30, 40, 60, 120)


@pytest.mark.parametrize(("call", "field"), [
    (lambda: murmur_hash(2**31), "code"),
    (lambda: key_group_for_hash(1, 0), "max_parallelism"),
    (lambda: key_group_range(128, 129, 0), "parallelism"),
    (lambda: key_group_range(128, 4, 4), "operator_index"),
    (lambda: operator_index_for_key_group(128, 128, 4), "key_group"),
])
def test_bad_input_names_the_field(call: object, field: str) -> None:
    with pytest.raises(InputError) as info:
        call()  # type: ignore[operator]
    assert info.value.field == field


@pytest.mark.parametrize(("field_hash", "row_hash", "key_group_128", "key_group_720"), FLINK_ROW_KEYS)
def test_pyflink_row_keys_match_flink(field_hash: int, row_hash: int, key_group_128: int, key_group_720: int) -> None:
    assert pyflink_key_hash(field_hash) == row_hash
    assert key_group_for_hash(row_hash, 128) == key_group_128
    assert key_group_for_hash(row_hash, 720) == key_group_720


def test_pyflink_string_key_subtask_via_keyby_key_selector() -> None:
    # Flink 2.3's KeyByKeySelector on Row.of("user-1", payload) put the key in key group 67 of 128.
    assert subtask_for_pyflink_string_key("user-1", 128, 4) == operator_index_for_key_group(67, 128, 4)
    assert subtask_for_pyflink_string_key("hot", 128, 4) == operator_index_for_key_group(98, 128, 4)
