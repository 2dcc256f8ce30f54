"""Shedding driven by the autoscaling loop: scaling first, shedding only for what scaling cannot reach.

Recorded overload (examples/snapshots/clickstream-p1-overload-history.jsonl): the source reads 5,000/s at
750 ms/s busy while its lag grows 1,000/s, so 6,000/s are offered and one subtask sustains ~6,667/s.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from flinkscale.core.policy import History, make_policy
from flinkscale.core.policy.base import Decision, RescaleRecord, VertexDecision
from flinkscale.core.snapshot import ClusterResources, MetricsSnapshot
from flinkscale.flink.autoscaler import AutoscaleLoop, LoopConfig, LoopMetrics, LoopShedding
from flinkscale.flink.shedder import ShedController
from flinkscale.testing import FakeClock

HISTORY = Path(__file__).parents[3] / "examples" / "snapshots" / "clickstream-p1-overload-history.jsonl"
RECORDED = [MetricsSnapshot.from_dict(json.loads(line)) for line in HISTORY.read_text().splitlines() if line.strip()]
ONE_SLOT = ClusterResources(task_managers=1, slots_total=1, slots_available=0, slots_per_task_manager=1,
                            max_task_managers=1)


class Sampler:
    def __init__(self, script: list[MetricsSnapshot]) -> None:
        self.script = [None, *script]  # the first read primes the counters
        self.skipped: list[str] = []

    def sample(self) -> MetricsSnapshot | None:
        return self.script.pop(0) if self.script else None


class ScaleDownPolicy:
    """Always asks for one subtask less on every vertex above 1 (a stand-in for a policy's scale-down)."""

    name = "scale-down"

    def decide(self, snapshot: MetricsSnapshot, history: History) -> Decision:
        return Decision(snapshot.timestamp, self.name, tuple(
            VertexDecision(v.id, v.name, v.parallelism, max(1, v.parallelism - 1), "lower") for v in snapshot.vertices))


def run(script: list[MetricsSnapshot], tmp_path: Path, controller: ShedController,
        policy: object | None = None) -> AutoscaleLoop:
    clock = FakeClock(script[0].timestamp - 60)
    shared = Sampler(script)
    loop = AutoscaleLoop(policy or make_policy("flinkscale"), lambda _job: shared,  # type: ignore[arg-type]
                         script[0].job_id, config=LoopConfig(interval_seconds=60, dry_run=True,
                                                             duration_seconds=60 * (len(script) + 0.5),
                                                             run_dir=tmp_path),
                         clock=clock, sleep=clock.sleep, shedding=LoopShedding(controller))
    loop.run_forever()
    return loop


def logged(tmp_path: Path, name: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in (tmp_path / name).read_text().splitlines()]


def test_at_the_slot_ceiling_the_loop_sheds_the_excess_and_says_so(tmp_path: Path) -> None:
    published: list[tuple[float, int]] = []
    controller = ShedController(lambda p, seq: published.append((p, seq)))
    script = [replace(s, cluster=ONE_SLOT) for s in RECORDED[-3:]]
    loop = run(script, tmp_path, controller)
    assert published and 0.5 < published[0][0] < 1.0  # sheds, but only part of the input
    decisions = [entry["decision"] for entry in logged(tmp_path, "decisions.jsonl")]
    assert decisions[-1]["shed_fraction"] == 1.0 - controller.keep_probability > 0  # type: ignore[index]
    assert any(e["kind"] == "shed" for e in logged(tmp_path, "events.jsonl"))
    metrics = LoopMetrics()
    metrics.update(loop.status)
    assert "flinkscale_shed_fraction{job=" in metrics.render()


def test_below_the_ceiling_the_loop_scales_instead_of_shedding(tmp_path: Path) -> None:
    published: list[tuple[float, int]] = []
    run(RECORDED[-3:], tmp_path, ShedController(lambda p, seq: published.append((p, seq))))
    decisions = [entry["decision"] for entry in logged(tmp_path, "decisions.jsonl")]
    assert any(d["rescale"] for d in decisions)  # type: ignore[index]
    assert published == []
    assert all(d["shed_fraction"] == 0.0 for d in decisions)  # type: ignore[index]


def test_no_scale_down_while_shedding_and_shedding_stops_when_capacity_is_back(tmp_path: Path) -> None:
    published: list[tuple[float, int]] = []
    controller = ShedController(lambda p, seq: published.append((p, seq)), keep_probability=0.5)
    # p 2 with room to grow, the rate back at a fraction of capacity: no lag, the source 20% busy at p 0.5.
    quiet = [replace(s, vertices=tuple(
        replace(v, parallelism=2, metrics=replace(v.metrics, num_records_in_per_second=1000.0,
                                                  pending_records=0.0, pending_records_per_second=0.0,
                                                  busy_time_ms_per_second_avg=200.0))
        for v in s.vertices)) for s in RECORDED[-2:]]
    run(quiet, tmp_path, controller, policy=ScaleDownPolicy())
    first, second = (entry["decision"] for entry in logged(tmp_path, "decisions.jsonl"))
    assert "load shedding in force" in str(first["blocked_reason"])  # type: ignore[index]
    assert published[0][0] == 1.0 and controller.keep_probability == 1.0  # shedding off at the first quiet tick
    assert second["blocked_reason"] is None and second["rescale"]  # type: ignore[index]


def test_no_shedding_in_the_two_intervals_after_a_rescale(tmp_path: Path) -> None:
    # Right after a restart the source reads little while lag piles up: that is the restart, not the capacity.
    published: list[tuple[float, int]] = []
    script = [replace(s, cluster=ONE_SLOT) for s in RECORDED[-3:]]
    clock = FakeClock(script[0].timestamp)
    loop = AutoscaleLoop(make_policy("flinkscale"), lambda _job: Sampler(script), script[0].job_id,
                         config=LoopConfig(interval_seconds=60, dry_run=True), clock=clock, sleep=clock.sleep,
                         shedding=LoopShedding(ShedController(lambda p, seq: published.append((p, seq)))))
    loop.history = History(rescales=(RescaleRecord(script[0].timestamp - 100, script[0].timestamp - 60, {}, {}),))
    loop.tick()  # primes the sampler's counters (None)
    loop.tick()  # 60 s after the rescale
    assert published == []
    loop.tick()  # 120 s after: the job has settled, the overload is real
    assert published
