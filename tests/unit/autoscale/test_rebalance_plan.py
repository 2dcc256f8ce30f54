"""``plan_rebalance``: which skew remedies a savepoint restart can apply, and which it must only list."""

from __future__ import annotations

import shlex

import pytest

from flinkscale.cli import main
from flinkscale.cli.autoscale import command_resubmit
from flinkscale.core.errors import InputError, RuntimeFailure
from flinkscale.core.rebalance import plan_rebalance
from flinkscale.core.skew import SkewRecommendation, SkewReport, VertexSkew


def vertex(recommendations: tuple[SkewRecommendation, ...], *, skewed: bool = True, p: int = 3) -> VertexSkew:
    return VertexSkew("v1", "GlobalWindowAggregate", p, 120, True, 1.6, "busy_time", 1.6, 1.6, 900.0, 30.0,
                      1.0, 1.6, 0.0, skewed, True, recommendations)


def rec(action: str, *, parallelism: int | None = None, gain: float = 1.2,
        config: dict[str, str] | None = None) -> SkewRecommendation:
    return SkewRecommendation(action, action, 1.0, gain, "why", config or {}, parallelism, True)


def report(*vertices: VertexSkew) -> SkewReport:
    return SkewReport("j", "job", 0.0, 1.3, vertices)


def test_best_aligned_parallelism_and_job_level_config_are_applied() -> None:
    plan = plan_rebalance(report(vertex((
        rec("align-parallelism", parallelism=4, gain=1.5), rec("align-parallelism", parallelism=2, gain=1.1),
        rec("two-phase-aggregation", config={"table.optimizer.agg-phase-strategy": "TWO_PHASE"})))))
    assert plan.parallelism == {"v1": 4}
    assert plan.job_config == {"table.optimizer.agg-phase-strategy": "TWO_PHASE"}
    assert plan.changes_anything


def test_cluster_level_keys_max_parallelism_and_code_changes_are_listed_not_applied() -> None:
    plan = plan_rebalance(report(vertex((
        rec("adaptive-partitioner", config={"taskmanager.network.adaptive-partitioner.enabled": "true"}),
        rec("max-parallelism-with-divisors", config={"pipeline.max-parallelism": "96"}),
        rec("salt-hot-keys")))))
    assert plan.job_config == {} and plan.parallelism == {} and not plan.changes_anything
    text = " ".join(plan.not_applied)
    assert "taskmanager.network.adaptive-partitioner.enabled" in text and "cluster-level" in text
    assert "pipeline.max-parallelism" in text and "salt-hot-keys" in text


def test_vertices_that_are_not_skewed_are_left_alone() -> None:
    plan = plan_rebalance(report(vertex((rec("align-parallelism", parallelism=4),), skewed=False)))
    assert not plan.changes_anything and plan.not_applied == ()


def test_rebalance_apply_without_a_resubmit_command_is_refused_before_touching_the_job(
        capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["rebalance", "--job", "f" * 32, "--rest", "http://127.0.0.1:9", "--apply"])
    assert code == 2
    assert "--resubmit-command" in capsys.readouterr().err


def test_resubmit_command_must_name_the_savepoint() -> None:
    with pytest.raises(InputError, match="savepoint"):
        command_resubmit("flink run -d job.py", None)


@pytest.mark.parametrize("output", [
    "Job has been submitted with JobID 0123456789abcdef0123456789abcdef\n",  # flink run
    '{\n  "job_id": "0123456789abcdef0123456789abcdef",\n  "submit_seconds": 9.1\n}\n',  # job submit --format json
])
def test_resubmit_reads_the_new_job_id_from_flink_run_or_flinkscale_job_submit(output: str) -> None:
    resubmit = command_resubmit(f"printf %s {shlex.quote(output)} # {{savepoint}}", None)
    assert resubmit("file:///sp/savepoint-1") == "0123456789abcdef0123456789abcdef"


def test_resubmit_without_a_job_id_in_its_output_fails_and_keeps_the_savepoint() -> None:
    resubmit = command_resubmit("echo submitted as job 0123456789abcdef0123456789abcdef # {savepoint}", None)
    with pytest.raises(RuntimeFailure, match="savepoint file:///sp/savepoint-1 is kept"):
        resubmit("file:///sp/savepoint-1")
