"""Helpers for the state store tests: a fake clock, small snapshots and decisions."""

from __future__ import annotations

import itertools
import math

from flinkscale.core.policy.base import Decision, VertexDecision
from flinkscale.core.snapshot import Edge, MetricsSnapshot, Vertex, VertexMetrics

JOB = "a" * 32
OTHER = "b" * 32


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def snapshot(timestamp: float, job_id: str = JOB, parallelism: int = 2, vertices: int = 2) -> MetricsSnapshot:
    ids = [f"v{i}" for i in range(vertices)]
    return MetricsSnapshot(
        timestamp=timestamp, job_id=job_id, job_name=f"job-{job_id[:4]}",
        vertices=tuple(Vertex(vid, f"op {vid}", parallelism, 128, is_source=i == 0, is_sink=i == vertices - 1,
                              metrics=VertexMetrics(num_records_in_per_second=1000.0 + i,
                                                    busy_time_ms_per_second_max=512.5,
                                                    pending_records=math.nan if i else 42.0))
                       for i, vid in enumerate(ids)),
        edges=tuple(Edge(a, b) for a, b in itertools.pairwise(ids)))


def decision(timestamp: float, new: int = 4) -> Decision:
    return Decision(timestamp, "flinkscale", (
        VertexDecision("v0", "op v0", 2, new, "busy 0.97 > 0.95", {"true_processing_rate": 1234.5,
                                                                    "target_rate": math.inf}),
        VertexDecision("v1", "op v1", 2, 2, "fine", {}),
    ))
