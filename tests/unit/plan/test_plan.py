"""Plan assembly and rendering: JobVertexIDs as Flink derives them, Flink 2.x keys, every format renders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from flinkscale.cli import main
from flinkscale.core.plan import build_plan, job_vertex_id
from flinkscale.core.workload import parse_workload
from flinkscale.report.plan import FORMATS, flink_config_yaml, flink_deployment, render

from .conftest import BASE_SPEC

KUBERNETES = {"deployment": {"target": "kubernetes"},
              "storage": {"checkpoint_dir": "s3://b/ckpt", "savepoint_dir": "s3://b/savepoints"}}


@pytest.mark.parametrize(("uid", "flink_id"), [
    # Printed by Flink 2.3 (JobGraph vertex IDs of a job whose chain heads set these uids).
    ("clicks", "77a0f10083e1c8fb475a05f15f6a1a61"),
    ("sessionize", "ca66d3be734d272b23819cbd4b5a7bee"),
    ("sink-ü", "fe6895d5ff844986c1ff5d63f30f2251"),
    # Reported by the embedded Flink 2.3 cluster for pipelines/salted_counts.py (tests/integration/test_vertex_ids.py).
    ("clicks-source", "d41bc76645937e651d1e0d2741a80195"),
    ("count-per-user", "4bfbc7b8eb82a28684db009b52dadf84"),
    # Printed by the Guava murmur3_128 shaded in flink-dist (covers the >16-byte block path).
    ("parse", "a0bcbe636c3291fd3f45c25deb2b0823"),
    ("a-much-longer-operator-uid-over-16-bytes", "777f3430db40b6d43b04fa9ef10080a6"),
])
def test_job_vertex_id_matches_flink(uid: str, flink_id: str) -> None:
    assert job_vertex_id(uid) == flink_id


def test_overrides_name_each_chain_head_once() -> None:
    plan = build_plan(parse_workload(BASE_SPEC))
    heads = {v.head: v for v in plan.vertices}
    # src -> parse is a forward edge into a single-input operator: one chain headed by src.
    assert "parse" not in heads and "parse" in heads["src"].operators
    entries = dict(item.split(":") for item in plan.flink_config["pipeline.jobvertex-parallelism-overrides"].split(","))
    assert entries[job_vertex_id("src")] == str(plan.capacity.operator("parse").parallelism.value)
    assert len(entries) == len(plan.vertices)


def test_flink_config_uses_flink_2_keys() -> None:
    config = build_plan(parse_workload(BASE_SPEC)).flink_config
    for key in ("execution.checkpointing.interval", "execution.checkpointing.dir", "state.backend.type",
                "taskmanager.memory.process.size", "pipeline.max-parallelism", "taskmanager.numberOfTaskSlots"):
        assert key in config
    for legacy in ("state.backend", "state.checkpoints.dir", "execution.checkpointing.checkpoints-after-tasks-finish"):
        assert legacy not in config
    assert yaml.safe_load(flink_config_yaml(build_plan(parse_workload(BASE_SPEC)))) == config


@pytest.mark.parametrize("output_format", FORMATS)
def test_every_format_renders(output_format: str) -> None:
    text = render(build_plan(parse_workload(BASE_SPEC)), output_format)
    assert "test" in text and len(text) > 200


def test_json_carries_the_task_manager_memory_under_flink_option_names() -> None:
    plan = build_plan(parse_workload(BASE_SPEC))
    data = json.loads(render(plan, "json"))
    memory = data["cluster"]["taskmanager_memory"]
    assert memory["taskmanager.memory.process.size"] == plan.capacity.cluster.memory.process_size
    assert sum(data["cluster"]["taskmanager_memory_components"].values()) == memory["taskmanager.memory.process.size"]
    for explained in data["operators"][0].values():
        if isinstance(explained, dict):
            assert {"value", "formula", "inputs"} <= set(explained)


def test_emit_writes_config_manifest_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({**BASE_SPEC, **KUBERNETES}))
    assert main(["plan", str(spec), "--emit", str(tmp_path / "out"), "--format", "markdown"]) == 0
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"config.yaml", "flinkdeployment.yaml", "plan.md",
                                                               "plan.json"}
    assert capsys.readouterr().out.startswith("# flinkscale plan")


def test_emit_writes_no_manifest_for_a_standalone_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(BASE_SPEC))  # no deployment section: standalone
    assert main(["plan", str(spec), "--emit", str(tmp_path / "out")]) == 0
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"config.yaml", "plan.md", "plan.json"}
    assert "no flinkdeployment.yaml: deployment.target is standalone" in capsys.readouterr().out


def test_flink_deployment_shape() -> None:
    plan = build_plan(parse_workload({**BASE_SPEC, **KUBERNETES}))
    manifest = flink_deployment(plan)
    assert manifest["apiVersion"] == "flink.apache.org/v1beta1" and manifest["kind"] == "FlinkDeployment"
    config = manifest["spec"]["flinkConfiguration"]
    assert config["pipeline.jobvertex-parallelism-overrides"] == plan.flink_config[
        "pipeline.jobvertex-parallelism-overrides"]
    assert config["job.autoscaler.enabled"] == "false"  # flinkscale drives it by default
    assert all(isinstance(v, str) for v in config.values())
    assert manifest["spec"]["job"]["parallelism"] == plan.capacity.cluster.slots.value
