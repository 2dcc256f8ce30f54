"""The autoscaling loop over recorded snapshots with an injected clock: logs, holds, applies, metrics."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from flinkscale.cli import main
from flinkscale.core.control import partial_metrics
from flinkscale.core.errors import InputError
from flinkscale.core.policy import make_policy, replay_history
from flinkscale.core.policy.base import Decision, RescaleRecord
from flinkscale.core.snapshot import MetricsSnapshot
from flinkscale.flink.autoscaler import AutoscaleLoop, LoopConfig, LoopMetrics, status_line
from flinkscale.testing import OUTAGE, FakeClock, ScriptedSampler

HISTORY = Path(__file__).parents[3] / "examples" / "snapshots" / "clickstream-p1-overload-history.jsonl"
RECORDED = [MetricsSnapshot.from_dict(json.loads(line)) for line in HISTORY.read_text().splitlines() if line.strip()]
class RecordingExecutor:
    def __init__(self, clock: FakeClock, seconds: float = 14.0) -> None:
        self.clock = clock
        self.seconds = seconds
        self.applied: list[Decision] = []

    @property
    def job_id(self) -> str:
        return RECORDED[0].job_id

    def apply(self, decision: Decision) -> RescaleRecord | None:
        self.applied.append(decision)
        start = self.clock.now
        self.clock.now += self.seconds
        current = {v.vertex_id: v.current_parallelism for v in decision.vertices}
        return RescaleRecord(start, self.clock.now, current, decision.parallelism())


def run_loop(script: list[MetricsSnapshot | str | None], tmp_path: Path, *, dry_run: bool = True,
             executor: RecordingExecutor | None = None, clock: FakeClock | None = None) -> AutoscaleLoop:
    clock = clock or FakeClock(RECORDED[0].timestamp - 60)
    shared = ScriptedSampler([None, *script])  # the first read primes the counters
    loop = AutoscaleLoop(make_policy("flinkscale"), lambda _job: shared, RECORDED[0].job_id, executor=executor,
                         config=LoopConfig(interval_seconds=60, dry_run=dry_run,
                                           duration_seconds=60 * (len(script) + 0.5), run_dir=tmp_path),
                         clock=clock, sleep=clock.sleep)
    loop.run_forever()
    return loop


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_dry_run_decides_like_the_offline_replay_and_logs_every_tick(tmp_path: Path) -> None:
    loop = run_loop(list(RECORDED), tmp_path)
    offline = replay_history(make_policy("flinkscale"), RECORDED).decisions
    logged = read_jsonl(tmp_path / "decisions.jsonl")
    assert [entry["decision"] for entry in logged] == [d.to_dict() for d in offline]
    assert all(entry["applied"] is False and entry["error"] is None for entry in logged)
    assert set(logged[0]) == {"timestamp", "decision", "applied", "rescale_seconds", "error"}
    snapshots = read_jsonl(tmp_path / "snapshots.jsonl")
    assert [MetricsSnapshot.from_dict(s) for s in snapshots] == RECORDED
    assert loop.status.rescales == 0


def test_rescale_decisions_go_to_the_executor_and_their_records_into_the_history(tmp_path: Path) -> None:
    clock = FakeClock(RECORDED[0].timestamp - 60)
    executor = RecordingExecutor(clock)
    loop = run_loop(list(RECORDED), tmp_path, dry_run=False, executor=executor, clock=clock)
    logged = read_jsonl(tmp_path / "decisions.jsonl")
    applied = [e for e in logged if e["applied"]]
    assert len(applied) == len(executor.applied) >= 1
    assert all(e["rescale_seconds"] == pytest.approx(14.0) for e in applied)
    assert len(loop.history.rescales) == len(executor.applied)
    assert all(d.rescale for d in executor.applied)


def test_outages_skipped_samples_and_partial_metrics_make_the_loop_hold(tmp_path: Path) -> None:
    blind = RECORDED[5]
    partial = replace(blind, vertices=tuple(
        replace(v, metrics=replace(v.metrics, busy_time_ms_per_second_max=None)) for v in blind.vertices))
    restarting = replace(blind, job_state="RESTARTING")
    loop = run_loop([RECORDED[0], OUTAGE, None, partial, restarting, RECORDED[1]], tmp_path)
    decisions = read_jsonl(tmp_path / "decisions.jsonl")
    assert len(decisions) == 2  # only the two complete snapshots were decided on
    holds = [e["message"] for e in read_jsonl(tmp_path / "events.jsonl") if e["kind"] == "hold"]
    assert len(holds) == 4
    assert any("REST unavailable" in str(h) for h in holds) and any("RESTARTING" in str(h) for h in holds)
    assert loop.status.ticks == 6


def test_missing_busy_time_holds_only_for_the_grace_ticks(tmp_path: Path) -> None:
    blind = [replace(s, vertices=tuple(replace(v, metrics=replace(v.metrics, busy_time_ms_per_second_max=None))
                                       for v in s.vertices)) for s in RECORDED[:5]]
    run_loop(blind, tmp_path)
    decisions = read_jsonl(tmp_path / "decisions.jsonl")
    assert len(decisions) == 5 - LoopConfig().busy_time_grace_ticks


def test_partial_metrics_names_the_vertex_without_busy_time() -> None:
    snap = RECORDED[0]
    broken = replace(snap, vertices=(replace(snap.vertices[0], metrics=replace(
        snap.vertices[0].metrics, busy_time_ms_per_second_max=None)), *snap.vertices[1:]))
    assert partial_metrics(snap) is None
    reason = partial_metrics(broken)
    assert reason is not None and snap.vertices[0].name in reason


def test_prometheus_metrics_show_parallelism_recommendation_lag_and_rescales(tmp_path: Path) -> None:
    clock = FakeClock(RECORDED[0].timestamp - 60)
    loop = run_loop(list(RECORDED), tmp_path, dry_run=False, executor=RecordingExecutor(clock), clock=clock)
    metrics = LoopMetrics()
    metrics.update(loop.status)
    text = metrics.render()
    job = RECORDED[0].job_id
    last = loop.status.last_snapshot  # after a rescale the fresh collector's priming read uses one sample
    assert last is not None
    for v in last.vertices:
        assert f'flinkscale_vertex_parallelism{{job="{job}",vertex="{v.name}"}} {float(v.parallelism)}' in text
    assert f'flinkscale_source_lag_records{{job="{job}"}} {float(last.source_lag())}' in text
    assert f'flinkscale_rescales_total{{job="{job}"}} {float(loop.status.rescales)}' in text
    assert "flinkscale_vertex_recommended_parallelism" in text and "flinkscale_vertex_utilization" in text


def test_status_line_shows_lag_and_each_vertex(tmp_path: Path) -> None:
    loop = run_loop(list(RECORDED[:3]), tmp_path)
    line = status_line(loop.status)
    assert "lag=" in line and all(f"p{v.parallelism}@" in line for v in RECORDED[2].vertices)


@pytest.mark.parametrize(("kwargs", "field"), [({"interval_seconds": 0}, "--interval"),
                                              ({"duration_seconds": -1}, "--duration")])
def test_bad_loop_config_is_rejected(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(InputError, match=field):
        LoopConfig(**kwargs)  # type: ignore[arg-type]


def test_loop_without_executor_must_be_a_dry_run() -> None:
    with pytest.raises(InputError, match="dry-run"):
        AutoscaleLoop(make_policy("flinkscale"), lambda _j: ScriptedSampler([]), "x", config=LoopConfig())


@pytest.mark.parametrize("args", [
    ["--policy", "nope"], ["--set", "no-equals-sign"], ["--interval", "0s"], ["--duration", "soon"],
    ["--policy", "flink-operator", "--set", "job.autoscaler.utilization.target=2"], ["--dashboard"],
])
def test_cli_rejects_bad_config_at_start_with_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["autoscale", "--job", "f" * 32, "--rest", "http://127.0.0.1:9", *args])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("flinkscale: error:") and "Traceback" not in err
