"""``static``: never rescales. The baseline of peak provisioning: whatever parallelism the job (or the
simulated scenario) starts with is what it keeps, so its cost is the peak's cost all day long."""

from __future__ import annotations

from collections.abc import Mapping

from flinkscale.core.policy import _evaluate as ev
from flinkscale.core.policy._settings import Setting, parse_settings
from flinkscale.core.policy.base import Decision, History
from flinkscale.core.snapshot import MetricsSnapshot

NAME = "static"
SETTINGS: tuple[Setting, ...] = ()


class StaticPolicy:
    name = NAME

    def __init__(self, settings: Mapping[str, str] | None = None) -> None:
        parse_settings(NAME, SETTINGS, settings)  # rejects any key: static has none

    def decide(self, snapshot: MetricsSnapshot, history: History) -> Decision:
        return ev.hold_decision(snapshot, NAME, "static: provisioned up front, never rescales")
