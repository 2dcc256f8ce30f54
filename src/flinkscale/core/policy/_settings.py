"""Typed, validated policy settings from ``--set key=value`` strings.

Each policy declares its keys once as ``Setting`` rows (kind, default, help). ``parse_settings`` checks
every given key against them and converts the text, so a typo or a bad value fails at start with an
``InputError`` naming the key exactly as the user wrote it, never deep inside a decision. Durations go
through ``core.units.parse_duration`` so ``5m``, ``300s`` and ``300`` mean the same everywhere.

A policy may accept the same key under several spellings (``aliases``): the Flink operator's options
are also accepted under their legacy ``kubernetes.operator.`` prefix, and our own policy accepts the
operator's ``job.autoscaler.`` names so that a user can carry a configuration over unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from flinkscale.core.errors import InputError
from flinkscale.core.units import parse_duration

SettingKind = Literal["fraction", "positive", "non_negative", "duration", "int", "bool", "choice"]
Value = float | int | bool | str


@dataclass(frozen=True)
class Setting:
    key: str
    kind: SettingKind
    default: str
    help: str
    choices: tuple[str, ...] = ()
    # Bounds beyond the kind's (durations in seconds): a value outside them is refused, naming them.
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class ParsedSettings:
    """Values by canonical key; accessors keep the types honest for mypy and for readers."""

    values: Mapping[str, Value]

    def number(self, key: str) -> float:
        value = self.values[key]
        assert isinstance(value, (int, float)) and not isinstance(value, bool), key
        return float(value)

    def integer(self, key: str) -> int:
        value = self.values[key]
        assert isinstance(value, int) and not isinstance(value, bool), key
        return value

    def flag(self, key: str) -> bool:
        value = self.values[key]
        assert isinstance(value, bool), key
        return value

    def text(self, key: str) -> str:
        return str(self.values[key])

    def optional_number(self, key: str) -> float | None:
        return self.number(key) if key in self.values else None


def _convert(spec: Setting, raw: str, field: str) -> Value:
    value = _convert_kind(spec, raw, field)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if spec.minimum is not None and value < spec.minimum:
            raise InputError(f"must be >= {spec.minimum:g}{_seconds(spec)}, got {_shown(value)}", field=field)
        if spec.maximum is not None and value > spec.maximum:
            raise InputError(f"must be <= {spec.maximum:g}{_seconds(spec)}, got {_shown(value)}", field=field)
    return value


def _shown(value: float) -> str:
    """A number for a message: an integer of hundreds of digits does not fit ``:g`` (a float)."""
    text = str(value) if isinstance(value, int) else f"{value:g}"
    return text if len(text) <= 24 else f"{text[:12]}... ({len(text)} digits)"


def _seconds(spec: Setting) -> str:
    return " s" if spec.kind == "duration" else ""


def _convert_kind(spec: Setting, raw: str, field: str) -> Value:
    text = raw.strip()
    if spec.kind == "duration":
        return parse_duration(text, field=field)
    if spec.kind == "bool":
        lowered = text.lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered in ("false", "no", "off", "0"):
            return False
        raise InputError(f"expected true or false, got {raw!r}", field=field)
    if spec.kind == "choice":
        if text not in spec.choices:
            raise InputError(f"expected one of {', '.join(spec.choices)}, got {raw!r}", field=field)
        return text
    if spec.kind == "int":
        try:
            integer = int(text)
        except ValueError:
            raise InputError(f"expected a whole number, got {raw!r}", field=field) from None
        if integer < 1:
            raise InputError(f"must be >= 1, got {integer}", field=field)
        return integer
    try:
        number = float(text)
    except ValueError:
        raise InputError(f"expected a number, got {raw!r}", field=field) from None
    if number != number:  # NaN
        raise InputError("must be a number, got NaN", field=field)
    if spec.kind == "fraction" and not 0.0 <= number <= 1.0:
        raise InputError(f"must be between 0 and 1, got {number}", field=field)
    if spec.kind == "positive" and number <= 0:
        raise InputError(f"must be > 0, got {number}", field=field)
    if spec.kind == "non_negative" and number < 0:
        raise InputError(f"must be >= 0, got {number}", field=field)
    return number


def parse_settings(policy: str, specs: Sequence[Setting], given: Mapping[str, str] | None,
                   aliases: Sequence[str] = (), ordered: Sequence[tuple[str, str]] = ()) -> ParsedSettings:
    """Defaults overlaid with ``given``; ``aliases`` are prefixes that may stand before a canonical key.

    An alias prefix is stripped and the rest tried again, so with aliases ``("kubernetes.operator.",)``
    both ``job.autoscaler.metrics.window`` and ``kubernetes.operator.job.autoscaler.metrics.window`` land
    on the same setting. Giving one setting twice under two spellings is an error (which would win?).
    """
    by_key = {spec.key: spec for spec in specs}
    # An empty default means "unset" (the operator's utilization.max has no default either).
    values: dict[str, Value] = {spec.key: _convert(spec, spec.default, spec.key) for spec in specs if spec.default}
    seen: dict[str, str] = {}
    for key, raw in (given or {}).items():
        canonical = key
        for prefix in aliases:
            if canonical not in by_key and canonical.startswith(prefix):
                canonical = canonical[len(prefix):]
        spec = by_key.get(canonical)
        if spec is None:
            known = ", ".join(sorted(by_key)) or "none"
            raise InputError(f"unknown setting for policy {policy!r} (known: {known})", field=key)
        if canonical in seen:
            raise InputError(f"given twice (also as {seen[canonical]!r})", field=key)
        seen[canonical] = key
        values[canonical] = _convert(spec, str(raw), key)
    for low, high in ordered:  # pairs of canonical keys whose values must not cross (a min and its max)
        low_value, high_value = values[low], values[high]
        if isinstance(low_value, (int, float)) and isinstance(high_value, (int, float)) and low_value > high_value:
            raise InputError(f"must be <= {high} ({_shown(high_value)}), got {_shown(low_value)}",
                             field=seen.get(low) or seen.get(high) or low)
    return ParsedSettings(values)


def describe_settings(specs: Sequence[Setting]) -> str:
    """One line per key with its default, for ``--help`` texts and the docs."""
    return "\n".join(f"{spec.key} (default {spec.default or 'unset'}): {spec.help}" for spec in specs)
