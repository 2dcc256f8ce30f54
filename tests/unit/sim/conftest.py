"""Test helpers for the simulator: tiny pipelines and a scripted, test-only policy."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pytest

from flinkscale.core.policy.base import Decision, History, VertexDecision
from flinkscale.core.sim.model import SimEdge, SimPipeline, SimVertex
from flinkscale.core.snapshot import MetricsSnapshot, ShipStrategy


def chain(*capacities: float, parallelism: int | tuple[int, ...] = 1, ship: ShipStrategy = ShipStrategy.REBALANCE,
          selectivity: float = 1.0, partitions: int | None = None, state_bytes: float = 0.0,
          max_parallelism: int = 128) -> SimPipeline:
    """A linear job v0 -> v1 -> ... with the given per-subtask capacities (v0 is the source)."""
    ps = parallelism if isinstance(parallelism, tuple) else (parallelism,) * len(capacities)
    vertices = tuple(SimVertex(id=f"v{i}", parallelism=ps[i], capacity=c, max_parallelism=max_parallelism,
                               is_source=i == 0, partitions=partitions if i == 0 else None,
                               state_bytes=state_bytes if i == len(capacities) - 1 else 0.0)
                     for i, c in enumerate(capacities))
    edges = tuple(SimEdge(f"v{i}", f"v{i + 1}", ship, selectivity) for i in range(len(capacities) - 1))
    return SimPipeline(vertices, edges)


@dataclass
class ScriptedPolicy:
    """Test-only: asks for the given parallelism at the given times, sheds as scripted, else holds.

    Records every snapshot and history it was handed, so tests can check what a policy sees.
    """

    plan: Mapping[float, Mapping[str, int]] = field(default_factory=dict)
    shed: Mapping[float, float] = field(default_factory=dict)
    name: str = "scripted"
    seen: list[tuple[MetricsSnapshot, History]] = field(default_factory=list)

    def decide(self, snapshot: MetricsSnapshot, history: History) -> Decision:
        self.seen.append((snapshot, history))
        wanted = self.plan.get(snapshot.timestamp, {})
        vertices = tuple(VertexDecision(v.id, v.name, v.parallelism, wanted.get(v.id, v.parallelism), "scripted")
                         for v in snapshot.vertices)
        shed = 0.0
        for at, fraction in sorted(self.shed.items()):
            if snapshot.timestamp >= at:
                shed = fraction
        return Decision(timestamp=snapshot.timestamp, policy=self.name, vertices=vertices, shed_fraction=shed)


# Test modules take the helpers as fixtures (the test directories are not packages).
@pytest.fixture(name="chain")
def chain_fixture() -> Callable[..., SimPipeline]:
    return chain


@pytest.fixture(name="scripted")
def scripted_fixture() -> type[ScriptedPolicy]:
    return ScriptedPolicy
