"""The policies by name: what ``--policy NAME --set key=value`` resolves to.

``make_policy`` is the one way the CLI, the live loop and the simulator build a policy, so all of them
validate settings the same way: an unknown key or a bad value raises ``InputError`` naming that key,
before any decision is made.
"""

from __future__ import annotations

from collections.abc import Mapping

from flinkscale.core.errors import InputError
from flinkscale.core.policy import cpu_threshold, flink_operator, flinkscale, static
from flinkscale.core.policy._settings import Setting, describe_settings
from flinkscale.core.policy.base import DEFAULT_HISTORY_SECONDS, Policy

POLICY_NAMES: tuple[str, ...] = ("flinkscale", "flink-operator", "cpu-threshold", "static")

_SETTINGS: dict[str, tuple[Setting, ...]] = {
    flinkscale.NAME: flinkscale.SETTINGS,
    flink_operator.NAME: flink_operator.SETTINGS,
    cpu_threshold.NAME: cpu_threshold.SETTINGS,
    static.NAME: static.SETTINGS,
}


def make_policy(name: str, settings: Mapping[str, str] | None = None) -> Policy:
    """The policy ``name`` configured by ``settings`` (string values, as given on the command line)."""
    if name == flinkscale.NAME:
        return flinkscale.FlinkscalePolicy(flinkscale.FlinkscaleSettings.from_mapping(settings))
    if name == flink_operator.NAME:
        return flink_operator.FlinkOperatorPolicy(flink_operator.FlinkOperatorSettings.from_mapping(settings))
    if name == cpu_threshold.NAME:
        return cpu_threshold.CpuThresholdPolicy(cpu_threshold.CpuThresholdSettings.from_mapping(settings))
    if name == static.NAME:
        return static.StaticPolicy(settings)
    raise InputError(f"unknown policy {name!r} (choose from {', '.join(POLICY_NAMES)})", field="policy")


def required_history_seconds(policy: Policy) -> float:
    """How much history (``History.append(keep_seconds=...)``) the policy needs to apply all its rules:
    the default 2 h is too short for cpu-threshold's 6 h scale-down rule. A history cut shorter only
    delays decisions (its first snapshot counts as a restart), it never hastens one."""
    seconds = getattr(policy, "history_seconds", DEFAULT_HISTORY_SECONDS)
    return float(seconds) if isinstance(seconds, (int, float)) else DEFAULT_HISTORY_SECONDS


def policy_settings(name: str) -> tuple[Setting, ...]:
    """The keys ``name`` accepts, with defaults and help."""
    if name not in _SETTINGS:
        raise InputError(f"unknown policy {name!r} (choose from {', '.join(POLICY_NAMES)})", field="policy")
    return _SETTINGS[name]


def describe_policy_settings(name: str) -> str:
    return describe_settings(policy_settings(name)) or "(no settings)"
