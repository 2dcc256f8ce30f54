"""The one parser for sizes, rates and durations: decimal vs binary units are exact, bad input names its field."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flinkscale.core.errors import InputError
from flinkscale.core.units import (
    GiB,
    MiB,
    TiB,
    flink_memory,
    format_bytes,
    parse_duration,
    parse_flink_duration,
    parse_rate,
    parse_size,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("512mb", 512 * 10**6), ("1TB", 10**12), ("1TiB", 2**40), ("1600m", 1600 * MiB), ("4g", 4 * GiB),
    ("4 GiB", 4 * GiB), ("1.5kb", 1500), ("100", 100), (2048, 2048), ("2b", 2),
])
def test_sizes_follow_si_and_iec_and_flink_syntax(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(("text", "seconds"), [
    ("250ms", 0.25), ("5s", 5.0), ("5m", 300.0), ("2h", 7200.0), ("1d", 86400.0), ("30", 30.0), (1.5, 1.5),
])
def test_durations(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_one_terabyte_a_day_is_eleven_point_six_megabytes_a_second() -> None:
    rate = parse_rate("1TB/day")
    assert rate.is_bytes
    assert rate.per_second == pytest.approx(10**12 / 86400)
    assert rate.records_per_second(1000) == pytest.approx(11_574.07, rel=1e-4)


@pytest.mark.parametrize(("text", "per_second", "is_bytes"), [
    ("40k/s", 40_000, False), ("3.5e9/day", 3.5e9 / 86400, False), ("1TiB/h", TiB / 3600, True),
    ("120/min", 2.0, False), ("5k", 5000, False),
])
def test_rates(text: str, per_second: float, is_bytes: bool) -> None:
    rate = parse_rate(text)
    assert rate.per_second == pytest.approx(per_second)
    assert rate.is_bytes is is_bytes


@pytest.mark.parametrize(("parser", "text", "message"), [
    (parse_size, "12 parsecs", "unknown size unit"), (parse_size, "-1mb", "cannot read"),
    (parse_duration, "5 fortnights", "unknown duration unit"), (parse_rate, "5k/week", "unknown period"),
    (parse_rate, "five/s", "cannot read"),
])
def test_bad_input_names_the_field(parser: object, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        parser(text, field="workload.volume")  # type: ignore[operator]
    assert str(info.value).startswith("workload.volume: ")


@given(st.integers(min_value=1, max_value=2**20))
def test_flink_memory_syntax_round_trips(mebibytes: int) -> None:
    assert parse_size(flink_memory(mebibytes * MiB)) == mebibytes * MiB


def test_formatting_says_which_unit() -> None:
    assert format_bytes(10**12) == "1.00 TB"
    assert format_bytes(2**40, binary=True) == "1.00 TiB"


@pytest.mark.parametrize(("text", "seconds"), [
    ("2000", 2.0), ("10 s", 10.0), ("10s", 10.0), ("500 ms", 0.5), ("2 min", 120.0), ("1 h", 3600.0),
    ("3 seconds", 3.0),
])
def test_flink_durations_read_a_bare_number_as_milliseconds(text: str, seconds: float) -> None:
    assert parse_flink_duration(text) == pytest.approx(seconds)


def test_an_unknown_flink_duration_unit_names_the_key() -> None:
    with pytest.raises(InputError, match="fortnight") as info:
        parse_flink_duration("2 fortnights", field="metrics.fetcher.update-interval")
    assert info.value.field == "metrics.fetcher.update-interval"
