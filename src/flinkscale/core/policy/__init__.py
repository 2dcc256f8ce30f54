"""Autoscaling policies and their registry (``make_policy``).

Every policy is a pure ``decide(snapshot, history) -> Decision``; ``make_policy(name, settings)`` builds
one from ``--policy``/``--set`` strings. ``replay_history`` turns a recorded run into the history a
policy would have held.
"""

from flinkscale.core.policy._evaluate import job_at_slot_ceiling
from flinkscale.core.policy.base import Decision, History, Policy, RescaleRecord, VertexDecision
from flinkscale.core.policy.registry import (
    POLICY_NAMES,
    describe_policy_settings,
    make_policy,
    policy_settings,
    required_history_seconds,
)
from flinkscale.core.policy.replay import replay_history

__all__ = [
    "POLICY_NAMES",
    "Decision",
    "History",
    "Policy",
    "RescaleRecord",
    "VertexDecision",
    "describe_policy_settings",
    "job_at_slot_ceiling",
    "make_policy",
    "policy_settings",
    "replay_history",
    "required_history_seconds",
]
