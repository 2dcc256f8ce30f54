"""One parser for sizes, rates and durations, so every spec and flag reads numbers the same way.

Sizes follow the SI/IEC split exactly: ``1TB`` is 10**12 bytes and ``1TiB`` is 2**40 bytes. Flink's
own memory options use binary units with short suffixes (``1600m`` = 1600 MiB, ``4g`` = 4 GiB), so a
lone ``k``/``m``/``g``/``t`` (Flink style) is binary, while ``kb``/``mb``/``gb``/``tb`` are decimal.

Rates are ``<count><unit?>/<period>``: ``40k/s`` (records), ``1TB/day`` (bytes), ``3.5e9/day``.
Durations: ``250ms``, ``5s``, ``5m``, ``2h``, ``1d``, or a bare number of seconds.

Every parser returns a finite, non-negative number or raises ``InputError`` naming the field: ``1e400s``,
``inf``, ``nan`` and products that overflow a float (``1e300TB/day``) are refused here, once, so no caller
ever meets an infinity that came from a user.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TypeVar

from flinkscale.core.errors import InputError, float_of

_N = TypeVar("_N", int, float)

SECONDS_PER_DAY = 86400.0

KB, MB, GB, TB = 10**3, 10**6, 10**9, 10**12
KiB, MiB, GiB, TiB = 2**10, 2**20, 2**30, 2**40

_SIZE_UNITS: dict[str, int] = {
    "": 1, "b": 1,
    "kb": KB, "mb": MB, "gb": GB, "tb": TB, "pb": 10**15,
    "kib": KiB, "mib": MiB, "gib": GiB, "tib": TiB, "pib": 2**50,
    # Flink's own memory syntax: a single letter means a binary multiple.
    "k": KiB, "m": MiB, "g": GiB, "t": TiB,
    "kibibytes": KiB, "mebibytes": MiB, "gibibytes": GiB,
}
_COUNT_UNITS: dict[str, float] = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "bn": 1e9}
_DURATION_UNITS: dict[str, float] = {
    "": 1.0, "ms": 1e-3, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0,
    "day": 86400.0, "days": 86400.0,
}
_PERIODS: dict[str, float] = {
    "s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0,
    "h": 3600.0, "hour": 3600.0, "d": 86400.0, "day": 86400.0,
}
_NUMBER = r"([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)"
_QUANTITY = re.compile(rf"^\s*{_NUMBER}\s*([a-zA-Z]*)\s*$")


def _split(text: str, field: str | None, what: str) -> tuple[float, str]:
    match = _QUANTITY.match(text)
    if not match:
        raise InputError(f"cannot read {_quote(text)} as {what}", field=field)
    number = float(match.group(1))
    if not math.isfinite(number):
        raise InputError(f"{_quote(text)} is too large a number", field=field)
    return number, match.group(2).lower()


def _quote(text: object) -> str:
    """A user's value quoted for a one-line message: newlines folded, long values cut."""
    quoted = repr(" ".join(str(text).split()))
    return quoted if len(quoted) <= 60 else quoted[:57] + "...'"


def parse_size(value: str | int | float, field: str | None = None) -> int:
    """Bytes in a size such as ``512mb`` (decimal), ``1TiB`` (binary) or ``1600m`` (Flink, binary)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _non_negative(int(_non_negative(float_of(value, field), field)), field)
    _check_type(value, field)
    number, unit = _split(str(value), field, "a size (e.g. 512mb, 4GiB, 1600m)")
    if unit not in _SIZE_UNITS:
        raise InputError(f"unknown size unit {_quote(unit)} in {_quote(value)}", field=field)
    return _non_negative(round(_non_negative(number * _SIZE_UNITS[unit], field)), field)


def parse_duration(value: str | int | float, field: str | None = None) -> float:
    """Seconds in a duration such as ``250ms``, ``5m`` or ``2h``; a bare number is seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _non_negative(float_of(value, field), field)
    _check_type(value, field)
    number, unit = _split(str(value), field, "a duration (e.g. 250ms, 30s, 5m, 2h)")
    if unit not in _DURATION_UNITS:
        raise InputError(f"unknown duration unit {_quote(unit)} in {_quote(value)}", field=field)
    return _non_negative(number * _DURATION_UNITS[unit], field)


_FLINK_DURATION_UNITS: dict[str, float] = {
    **{u: 86400.0 for u in ("d", "day", "days")}, **{u: 3600.0 for u in ("h", "hour", "hours")},
    **{u: 60.0 for u in ("m", "min", "mins", "minute", "minutes")},
    **{u: 1.0 for u in ("s", "sec", "secs", "second", "seconds")},
    **{u: 1e-3 for u in ("", "ms", "milli", "millis", "millisecond", "milliseconds")},
    **{u: 1e-6 for u in ("us", "micro", "micros", "microsecond", "microseconds")},
    **{u: 1e-9 for u in ("ns", "nano", "nanos", "nanosecond", "nanoseconds")},
}


def parse_flink_duration(value: str, field: str | None = None) -> float:
    """Seconds in a duration as Flink's configuration writes it (``10 s``, ``2 min``); a bare number is
    milliseconds there, unlike in flinkscale's own flags."""
    number, unit = _split(value, field, "a Flink duration (e.g. 10 s, 500 ms, 2 min)")
    if unit not in _FLINK_DURATION_UNITS:
        raise InputError(f"unknown duration unit {_quote(unit)} in {_quote(value)}", field=field)
    return _non_negative(number * _FLINK_DURATION_UNITS[unit], field)


@dataclass(frozen=True)
class Rate:
    """A per-second rate of either records or bytes."""

    per_second: float
    is_bytes: bool

    def records_per_second(self, event_bytes: float) -> float:
        return self.per_second / event_bytes if self.is_bytes else self.per_second

    def bytes_per_second(self, event_bytes: float) -> float:
        return self.per_second if self.is_bytes else self.per_second * event_bytes


def parse_rate(value: str | int | float, field: str | None = None) -> Rate:
    """A rate such as ``40k/s`` (records), ``3.5e9/day`` (records) or ``1TB/day`` (bytes)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Rate(_non_negative(float_of(value, field), field), is_bytes=False)
    _check_type(value, field)
    text = str(value).strip()
    amount_text, _, period_text = text.partition("/")
    period = _PERIODS.get(period_text.strip().lower() or "s")
    if period is None:
        raise InputError(f"unknown period {_quote(period_text)} in {_quote(value)} (use /s, /min, /h, /day)",
                         field=field)
    number, unit = _split(amount_text, field, "a rate (e.g. 40k/s, 1TB/day)")
    if unit in _COUNT_UNITS:
        return Rate(_non_negative(number * _COUNT_UNITS[unit] / period, field), is_bytes=False)
    if unit in _SIZE_UNITS:
        return Rate(_non_negative(number * _SIZE_UNITS[unit] / period, field), is_bytes=True)
    raise InputError(f"unknown unit {_quote(unit)} in rate {_quote(value)}", field=field)


def _check_type(value: object, field: str | None) -> None:
    if not isinstance(value, str):
        raise InputError(f"must be a number or a text such as 40k/s, 1TB or 30s, got {type(value).__name__}",
                         field=field)


def _non_negative(number: _N, field: str | None) -> _N:
    if math.isnan(number):
        raise InputError("must be a number, got nan", field=field)
    if math.isinf(number):
        raise InputError("must be a finite number (it is too large)", field=field)
    if number < 0:
        raise InputError(f"must be >= 0, got {number:g}", field=field)
    return number


def format_bytes(num_bytes: float, binary: bool = False) -> str:
    """``1.00 TB`` (decimal) or ``1.00 TiB`` (binary); the unit says which."""
    step, units = (1024.0, ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]) if binary else (
        1000.0, ["B", "kB", "MB", "GB", "TB", "PB"])
    value = float(num_bytes)
    for unit in units:
        if abs(value) < step or unit == units[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= step
    raise AssertionError("unreachable")


def format_rate(per_second: float) -> str:
    """``40.0k/s``: compact record rates for tables."""
    for threshold, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(per_second) >= threshold:
            return f"{per_second / threshold:.1f}{suffix}/s"
    return f"{per_second:.1f}/s"


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}min"
    return f"{seconds / 3600:.1f}h"


def flink_memory(num_bytes: int) -> str:
    """A byte count in Flink's option syntax: whole mebibytes as ``1600m``, else bytes as ``...b``."""
    return f"{num_bytes // MiB}m" if num_bytes % MiB == 0 else f"{num_bytes}b"
