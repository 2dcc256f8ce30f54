"""FlinkDeployment manifests: every shipped Kubernetes workload passes the CRD schema and the semantic checks;
the checks catch each way a manifest can run other than planned; the deployment section rejects what would
bite on the first apply (file:// storage, a mismatched image), with the field named and exit code 2."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from flinkscale.cli import main
from flinkscale.core.deployment import AutoscalerChoice, Target, k8s_name, parse_deployment
from flinkscale.core.errors import InputError
from flinkscale.core.manifest import (
    OVERRIDES_KEY,
    flink_deployment,
    manifest_problems,
    parallelism_patch,
    parse_overrides,
)
from flinkscale.core.plan import Plan, build_plan
from flinkscale.core.workload import parse_workload

from .crd_schema import SUBSET, load_schema, schemas, validate

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "workloads"
SHIPPED = sorted(p.stem for p in EXAMPLES.glob("*.yaml"))
#: Every shipped workload, by target: a new example must be placed here, so none escapes the checks below.
KUBERNETES_WORKLOADS = {"clickstream-1tb", "clickstream-10tb", "seed-1tb-subsecond"}
STANDALONE_WORKLOADS = {"local-demo"}


def _plan(name: str) -> Plan:
    return build_plan(parse_workload(yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())))


def _spec(**deployment: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((EXAMPLES / "clickstream-1tb.yaml").read_text())
    data["deployment"].update(deployment)
    return data


def test_every_shipped_workload_is_classified() -> None:
    assert set(SHIPPED) == KUBERNETES_WORKLOADS | STANDALONE_WORKLOADS
    for name in SHIPPED:
        expected = Target.KUBERNETES if name in KUBERNETES_WORKLOADS else Target.STANDALONE
        assert _plan(name).spec.deployment.target is expected


@pytest.mark.parametrize("name", sorted(KUBERNETES_WORKLOADS))
@pytest.mark.parametrize(("schema_name", "schema"), list(schemas()))
def test_shipped_manifest_passes_the_crd_schema(name: str, schema_name: str, schema: dict[str, Any]) -> None:
    validate(flink_deployment(_plan(name)), schema)


@pytest.mark.parametrize("name", sorted(KUBERNETES_WORKLOADS))
def test_shipped_manifest_passes_the_semantic_checks(name: str) -> None:
    plan = _plan(name)
    manifest = flink_deployment(plan)
    assert manifest_problems(manifest) == []
    spec = manifest["spec"]
    config = spec["flinkConfiguration"]
    slots = int(config["taskmanager.numberOfTaskSlots"])
    # One parallelism story: job.parallelism = the plan's slots (no replicas to take precedence over it), and the
    # planned TaskManagers' slots started and kept by Flink's resource manager.
    assert "replicas" not in spec["taskManager"]
    assert spec["job"]["parallelism"] == plan.capacity.cluster.slots.value == int(config["parallelism.default"])
    min_slots = int(config["slotmanager.number-of-slots.min"])
    assert min_slots == plan.capacity.cluster.task_managers.value * slots >= spec["job"]["parallelism"]
    assert parse_overrides(config[OVERRIDES_KEY]) == {v.job_vertex_id: v.parallelism for v in plan.vertices}
    # Standby JobManager with Kubernetes HA on durable storage.
    assert spec["jobManager"]["replicas"] == 2 and config["high-availability.type"] == "kubernetes"
    assert config["high-availability.storageDir"].startswith(("s3://", "gs://"))
    # Flink 2.3 in both places; resources equal to the memory model.
    assert spec["flinkVersion"] == "v2_3" and spec["image"] == "flink:2.3"
    memory = plan.capacity.cluster.memory.process_size
    assert spec["taskManager"]["resources"]["requests"]["memory"] == f"{memory // 2**20}Mi"
    assert spec["taskManager"]["resources"]["requests"]["cpu"] == str(plan.capacity.cluster.cores_per_task_manager)


def test_the_1tb_manifest_runs_what_was_planned() -> None:
    plan = _plan("clickstream-1tb")
    spec = flink_deployment(plan)["spec"]
    # Planned: 3 slots for CPU-sized 2 TaskManagers of 4 cores; the old manifest said parallelism 3 with 2 x 4 slots.
    assert (spec["job"]["parallelism"], spec["flinkConfiguration"]["slotmanager.number-of-slots.min"]) == (3, "8")
    assert spec["flinkConfiguration"]["job.autoscaler.enabled"] == "false"
    assert spec["job"]["upgradeMode"] == "last-state"
    # RocksDB state: local disk in the pod template, at the directory Flink puts it, and requested from the node.
    assert plan.capacity.state.backend == "rocksdb"
    template = spec["taskManager"]["podTemplate"]["spec"]
    assert template["containers"][0]["volumeMounts"][0]["mountPath"] == spec["flinkConfiguration"]["io.tmp.dirs"]
    size_limit = template["volumes"][0]["emptyDir"]["sizeLimit"]
    assert int(size_limit.removesuffix("Mi")) * 2**20 >= plan.capacity.state.local_disk_per_task_manager.value
    assert "ephemeral-storage" in spec["taskManager"]["resources"]["requests"]


def test_the_operator_autoscaler_is_configured_from_the_plan_when_chosen() -> None:
    config = flink_deployment(_plan("seed-1tb-subsecond"))["spec"]["flinkConfiguration"]
    assert config["job.autoscaler.enabled"] == "true"
    assert config["job.autoscaler.utilization.target"] == "0.7"


def test_a_hashmap_workload_gets_no_local_disk() -> None:
    spec = flink_deployment(_plan("seed-1tb-subsecond"))["spec"]
    assert "podTemplate" not in spec["taskManager"]
    assert "ephemeral-storage" not in spec["taskManager"]["resources"]["requests"]


def _set(manifest: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split("/")
    node = manifest
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    if value is None:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = value


@pytest.mark.parametrize(("path", "value", "problem"), [
    ("spec/job/parallelism", 2, "job.parallelism 2 < 3, the largest vertex override"),
    ("spec/job/parallelism", None, "job.parallelism must be >= 1"),
    ("spec/flinkConfiguration/parallelism.default", "8", "parallelism.default 8 != job.parallelism 3"),
    ("spec/flinkConfiguration/slotmanager.number-of-slots.min", "2", "fewer slots than the job runs on"),
    ("spec/jobManager/replicas", 1, "no standby JobManager"),
    ("spec/flinkConfiguration/high-availability.type", None, "high-availability.type is not kubernetes"),
    ("spec/flinkConfiguration/execution.checkpointing.dir", "file:///tmp/flinkscale/checkpoints", "not durable"),
    ("spec/flinkConfiguration/high-availability.storageDir", "file:///tmp/ha", "not durable"),
    ("spec/image", "flink:2.1", "is Flink 2.1, flinkVersion is v2_3"),
    ("spec/flinkVersion", "v2_9", "is not one of the CRD's"),
    ("spec/taskManager/resources/requests/memory", "8Gi", "!= taskmanager.memory.process.size"),
    ("spec/taskManager/podTemplate", None, "without a local-disk volume"),
    ("spec/flinkConfiguration/job.autoscaler.enabled", None, "must be stated"),
    ("metadata/name", "1tb-clickstream", "metadata.name"),
])
def test_the_semantic_checks_catch_each_breakage(path: str, value: Any, problem: str) -> None:
    manifest = flink_deployment(_plan("clickstream-1tb"))
    _set(manifest, path, value)
    problems = manifest_problems(manifest)
    assert any(problem in p for p in problems), problems


def _with_replicas(replicas: int) -> dict[str, Any]:
    """The 1 TB manifest as someone might write it with taskManager.replicas (or in standalone mode)."""
    manifest = flink_deployment(_plan("clickstream-1tb"))
    del manifest["spec"]["job"]["parallelism"]
    manifest["spec"]["taskManager"]["replicas"] = replicas
    config = manifest["spec"]["flinkConfiguration"]
    config["parallelism.default"] = config["slotmanager.number-of-slots.min"] = str(replicas * 4)
    return manifest


def test_replicas_take_precedence_and_must_cover_the_overrides() -> None:
    assert manifest_problems(_with_replicas(2)) == []
    contradicting = _with_replicas(2)
    contradicting["spec"]["job"]["parallelism"] = 3
    assert any("contradicts taskManager.replicas x slots = 8" in p for p in manifest_problems(contradicting))
    short = _with_replicas(2)
    short["spec"]["flinkConfiguration"]["taskmanager.numberOfTaskSlots"] = "1"
    assert any("< 3, the largest vertex parallelism" in p for p in manifest_problems(short))


@pytest.mark.parametrize(("path", "value"), [
    ("spec/taskManagers", {"replicas": 2}),           # misspelt: the API server would prune it silently
    ("spec/job/upgradeMode", "rolling"),              # not in the enum
    ("spec/taskManager/replicas", "2"),               # integer in the CRD
    ("spec/flinkVersion", "2.3"),                     # the CRD spells it v2_3
    ("spec/taskManager/resources/requests/cpu", 4.5), # int-or-string, not a float
    ("spec/taskManager/podTemplate/spec/volumes", [{"name": "x", "emptyDir": {"size": "1Gi"}}]),
])
def test_the_schema_check_catches_a_broken_manifest(path: str, value: Any) -> None:
    manifest = flink_deployment(_plan("clickstream-1tb"))
    _set(manifest, path, value)
    with pytest.raises(jsonschema.ValidationError):
        validate(manifest, load_schema(SUBSET))


# --- the deployment section ------------------------------------------------------------------------------

@pytest.mark.parametrize(("storage", "field"), [
    ({"checkpoint_dir": "file:///tmp/flinkscale/checkpoints", "savepoint_dir": "s3://b/s"}, "storage.checkpoint_dir"),
    ({"checkpoint_dir": "s3://b/c", "savepoint_dir": "file:///tmp/s"}, "storage.savepoint_dir"),
    ({"checkpoint_dir": "/data/checkpoints", "savepoint_dir": "s3://b/s"}, "storage.checkpoint_dir"),
    ({"savepoint_dir": "s3://b/s"}, "storage.checkpoint_dir"),
    ({"checkpoint_dir": "s3://", "savepoint_dir": "s3://b/s"}, "storage.checkpoint_dir"),
    ({"checkpoint_dir": "s3://b/c", "savepoint_dir": "s3://b/s", "kubernetes_ha": False}, "storage.kubernetes_ha"),
])
def test_kubernetes_needs_durable_storage(storage: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_deployment({"target": "kubernetes"}, storage)
    assert caught.value.field == field


def test_plan_exits_2_naming_the_field_for_file_storage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _spec()
    data["storage"]["checkpoint_dir"] = "file:///tmp/flinkscale/checkpoints"
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(data))
    assert main(["plan", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "storage.checkpoint_dir" in err and "durable" in err and "Traceback" not in err


def test_standalone_and_yarn_accept_local_storage() -> None:
    for target in ("standalone", "yarn"):
        deployment = parse_deployment({"target": target}, {"checkpoint_dir": "file:///tmp/c"})
        assert deployment.target.value == target
    assert parse_deployment(None).target is Target.STANDALONE


@pytest.mark.parametrize(("deployment", "field"), [
    ({"image": "flink:2.1"}, "deployment.image"),
    ({"flink_version": "2.9"}, "deployment.flink_version"),
    ({"flink_version": "latest"}, "deployment.flink_version"),
    ({"autoscaler": "both"}, "deployment.autoscaler"),
    ({"upgrade_mode": "rolling"}, "deployment.upgrade_mode"),
    ({"namespace": "Streaming_NS"}, "deployment.namespace"),
    ({"name": "x" * 46}, "deployment.name"),
    ({"ha_dir": "file:///tmp/ha"}, "deployment.ha_dir"),
    ({"replicas": 3}, "deployment"),
])
def test_bad_deployment_fields_are_named(deployment: dict[str, Any], field: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_workload(_spec(**deployment))
    assert caught.value.field == field


def test_version_and_image_defaults_and_custom_images() -> None:
    assert parse_deployment({}).image == "flink:2.3" and parse_deployment({}).crd_flink_version == "v2_3"
    assert parse_deployment({"flink_version": "2.2"}).image == "flink:2.2"
    assert parse_deployment({"image": "flink:2.3.0-scala_2.12-java17"}).flink_version == "2.3"
    custom = parse_deployment({"image": "registry.example.com/team/clicks@sha256:abc"})
    assert custom.image.startswith("registry") and custom.crd_flink_version == "v2_3"
    assert parse_deployment({"autoscaler": "operator"}).autoscaler is AutoscalerChoice.OPERATOR


def test_legacy_storage_keys_are_read_and_a_double_statement_is_refused() -> None:
    legacy = parse_deployment({}, {"image": "flink:2.2", "flink_version": "v2_2", "service_account": "jobs"})
    assert (legacy.image, legacy.flink_version, legacy.service_account) == ("flink:2.2", "2.2", "jobs")
    with pytest.raises(InputError) as caught:
        parse_deployment({"image": "flink:2.3"}, {"image": "flink:2.3"})
    assert caught.value.field == "storage.image"


@pytest.mark.parametrize(("name", "expected"), [
    ("clickstream-1tb", "clickstream-1tb"), ("Clicks 1TB/day", "clicks-1tb-day"), ("1tb", "flink-1tb"),
    ("a" * 60, "a" * 45), ("ü--x__", "x"),
])
def test_k8s_names_follow_the_operator_rule(name: str, expected: str) -> None:
    assert k8s_name(name) == expected


def test_a_standalone_spec_has_no_flink_deployment() -> None:
    with pytest.raises(InputError) as caught:
        flink_deployment(_plan("local-demo"))
    assert caught.value.field == "deployment.target"


# --- the autoscaler's patch -------------------------------------------------------------------------------

def test_patch_changes_overrides_and_keeps_the_rest_when_slots_suffice() -> None:
    manifest = flink_deployment(_plan("clickstream-1tb"))
    current = parse_overrides(manifest["spec"]["flinkConfiguration"][OVERRIDES_KEY])
    vertex = next(iter(current))
    patch = parallelism_patch(manifest, {vertex: 3})
    assert set(patch["spec"]) == {"flinkConfiguration"}
    assert parse_overrides(patch["spec"]["flinkConfiguration"][OVERRIDES_KEY]) == {**current, vertex: 3}


def _apply(manifest: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    patched = copy.deepcopy(manifest)
    for section, values in patch["spec"].items():
        patched["spec"].setdefault(section, {}).update(values)
    return patched


def test_patch_grows_job_parallelism_beyond_the_largest_override() -> None:
    manifest = flink_deployment(_plan("clickstream-1tb"))  # job.parallelism 3, 8 slots kept
    vertex = next(iter(parse_overrides(manifest["spec"]["flinkConfiguration"][OVERRIDES_KEY])))
    patch = parallelism_patch(manifest, {vertex: 10})
    assert patch["spec"]["job"] == {"parallelism": 10}
    config = patch["spec"]["flinkConfiguration"]
    assert config["parallelism.default"] == config["slotmanager.number-of-slots.min"] == "10"
    assert manifest_problems(_apply(manifest, patch)) == []
    # Within the current parallelism nothing but the overrides changes (the operator rescales in place).
    assert set(parallelism_patch(manifest, {vertex: 3})["spec"]) == {"flinkConfiguration"}


def test_patch_grows_replicas_when_slots_are_short() -> None:
    manifest = _with_replicas(2)  # 2 x 4 slots
    vertex = next(iter(parse_overrides(manifest["spec"]["flinkConfiguration"][OVERRIDES_KEY])))
    patch = parallelism_patch(manifest, {vertex: 10})
    assert patch["spec"]["taskManager"] == {"replicas": 3}
    config = patch["spec"]["flinkConfiguration"]
    assert config["parallelism.default"] == config["slotmanager.number-of-slots.min"] == "12"
    assert manifest_problems(_apply(manifest, patch)) == []
    assert "taskManager" not in parallelism_patch(manifest, {vertex: 8})["spec"]


def test_patch_refuses_a_deployment_driven_by_the_operator_autoscaler() -> None:
    manifest = flink_deployment(_plan("seed-1tb-subsecond"))
    with pytest.raises(InputError) as caught:
        parallelism_patch(manifest, {"0c80f7e50ab54b30f6a2580946f9e942": 3})
    assert caught.value.field == "--k8s-deployment" and "operator's autoscaler" in str(caught.value)


def test_patch_rejects_a_parallelism_below_one() -> None:
    with pytest.raises(InputError):
        parallelism_patch(flink_deployment(_plan("clickstream-1tb")), {"a" * 32: 0})
