"""The policies by name: what ``--policy NAME --set key=value`` resolves to.

``make_policy`` is the one way the CLI, the live loop and the simulator build a policy, so all of them
validate settings the same way: an unknown key or a bad value raises ``InputError`` naming that key,
before any decision is made.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flinkscale.core.errors import InputError
from flinkscale.core.policy._settings import Setting, describe_settings
from flinkscale.core.policy.base import DEFAULT_HISTORY_SECONDS, Policy

POLICY_NAMES: tuple[str, ...] = ("flinkscale", "flink-operator", "cpu-threshold", "static")

_Factory = Callable[[Mapping[str, str] | None], Policy]


def _entry(name: str) -> tuple[tuple[Setting, ...], _Factory]:
    """The policy's settings and how to build it. Its module is imported when it is asked for (static imports,
    so the import contracts still see them): a command runs one policy, and importing all four cost ~25 ms of
    every start."""
    if name == "flinkscale":
        from flinkscale.core.policy import flinkscale as fs

        return fs.SETTINGS, lambda values: fs.FlinkscalePolicy(fs.FlinkscaleSettings.from_mapping(values))
    if name == "flink-operator":
        from flinkscale.core.policy import flink_operator as op

        return op.SETTINGS, lambda values: op.FlinkOperatorPolicy(op.FlinkOperatorSettings.from_mapping(values))
    if name == "cpu-threshold":
        from flinkscale.core.policy import cpu_threshold as cpu

        return cpu.SETTINGS, lambda values: cpu.CpuThresholdPolicy(cpu.CpuThresholdSettings.from_mapping(values))
    if name == "static":
        from flinkscale.core.policy import static

        return static.SETTINGS, static.StaticPolicy
    raise InputError(f"unknown policy {name!r} (choose from {', '.join(POLICY_NAMES)})", field="policy")


def make_policy(name: str, settings: Mapping[str, str] | None = None) -> Policy:
    """The policy ``name`` configured by ``settings`` (string values, as given on the command line)."""
    return _entry(name)[1](settings)


def required_history_seconds(policy: Policy) -> float:
    """How much history (``History.append(keep_seconds=...)``) the policy needs to apply all its rules:
    the default 2 h is too short for cpu-threshold's 6 h scale-down rule. A history cut shorter only
    delays decisions (its first snapshot counts as a restart), it never hastens one."""
    seconds = getattr(policy, "history_seconds", DEFAULT_HISTORY_SECONDS)
    return float(seconds) if isinstance(seconds, (int, float)) else DEFAULT_HISTORY_SECONDS


def policy_settings(name: str) -> tuple[Setting, ...]:
    """The keys ``name`` accepts, with defaults and help."""
    return _entry(name)[0]


def describe_policy_settings(name: str) -> str:
    return describe_settings(policy_settings(name)) or "(no settings)"
