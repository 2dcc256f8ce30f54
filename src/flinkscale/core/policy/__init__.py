"""Autoscaling policies and their registry (``make_policy``)."""

from flinkscale.core.policy.base import Decision, History, Policy, RescaleRecord, VertexDecision

__all__ = ["Decision", "History", "Policy", "RescaleRecord", "VertexDecision"]
