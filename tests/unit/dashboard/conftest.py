"""A fake autoscale loop: writes a run directory the way the real loop will (the dashboard's data contract).

Snapshots go through ``MetricsSnapshot.to_dict`` and decisions through ``Decision.to_dict``, so the tests
exercise the exact JSON the loop produces, not a hand-written imitation of it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flinkscale.core.policy.base import Decision, VertexDecision
from flinkscale.core.snapshot import Edge, MetricsSnapshot, ShipStrategy, Vertex, VertexMetrics

SOURCE, WINDOW, SINK = "src0", "win1", "snk2"


def clickstream_snapshot(timestamp: float, *, parallelism: int = 1, busy_ms: float = 400.0,
                         rate: float = 2000.0, lag: float = 0.0) -> MetricsSnapshot:
    """Source -> (HASH) keyed window -> (FORWARD) sink, like the reference pipeline."""
    return MetricsSnapshot(
        timestamp=timestamp, job_id="a" * 32, job_name="clickstream",
        vertices=(
            Vertex(SOURCE, "Source: clickstream -> Parse/Enrich", 1, 128, is_source=True, partitions=8,
                   metrics=VertexMetrics(num_records_in_per_second=rate, num_records_out_per_second=rate,
                                         busy_time_ms_per_second_max=300.0, pending_records=lag)),
            Vertex(WINDOW, "TumblingEventTimeWindows(60000) -> page views per minute", parallelism, 128,
                   metrics=VertexMetrics(num_records_in_per_second=rate, busy_time_ms_per_second_max=busy_ms,
                                         back_pressured_time_ms_per_second_max=0.0)),
            Vertex(SINK, "Sink: page-stats", 1, 128, is_sink=True,
                   metrics=VertexMetrics(num_records_in_per_second=rate / 60)),
        ),
        edges=(Edge(SOURCE, WINDOW, ShipStrategy.HASH), Edge(WINDOW, SINK, ShipStrategy.FORWARD)),
        window_seconds=10.0,
    )


def scale_decision(timestamp: float, old: int, new: int, reason: str, *,
                   blocked_reason: str | None = None, numbers: dict[str, float] | None = None) -> Decision:
    return Decision(timestamp, "flinkscale", (
        VertexDecision(WINDOW, "TumblingEventTimeWindows(60000) -> page views per minute", old, new, reason,
                       numbers or {"utilization": 1.0, "true_processing_rate": 5000.0}),
        VertexDecision(SOURCE, "Source: clickstream -> Parse/Enrich", 1, 1, "within target"),
    ), blocked_reason=blocked_reason)


class FakeRunWriter:
    """Appends records to a run directory exactly as the contract says (one JSON object per line)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)

    def _append(self, name: str, text: str) -> None:
        with (self.run_dir / name).open("a", encoding="utf-8") as stream:
            stream.write(text)

    def line(self, name: str, data: Any) -> str:
        text = json.dumps(data) + "\n"
        self._append(name, text)
        return text

    def raw(self, name: str, text: str) -> None:
        self._append(name, text)

    def snapshot(self, snapshot: MetricsSnapshot) -> str:
        return self.line("snapshots.jsonl", snapshot.to_dict())

    def decision(self, decision: Decision, *, applied: bool, rescale_seconds: float | None = None,
                 error: str | None = None) -> str:
        return self.line("decisions.jsonl", {"timestamp": decision.timestamp, "decision": decision.to_dict(),
                                             "applied": applied, "rescale_seconds": rescale_seconds,
                                             "error": error})

    def event(self, timestamp: float, kind: str, message: str) -> str:
        return self.line("events.jsonl", {"timestamp": timestamp, "kind": kind, "message": message})


@pytest.fixture()
def writer(tmp_path: Path) -> FakeRunWriter:
    return FakeRunWriter(tmp_path / "run")
