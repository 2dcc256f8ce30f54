"""The FlinkDeployment a plan becomes, its semantic checks, and the patch that rescales it.

Everything here is pure (dicts in, dicts out); ``flinkscale.k8s`` sends the patches to a Kubernetes API server.

**How the manifest is made consistent by construction** (Flink Kubernetes Operator 1.16, ``mode: native``):

* Parallelism without replicas, on purpose. The operator turns ``spec.taskManager.replicas`` into
  ``parallelism.default = replicas x taskmanager.numberOfTaskSlots`` and ignores ``spec.job.parallelism``
  (its CRD: replicas "takes precedence over parallelism"), and Flink 2.3.0 ignores
  ``pipeline.jobvertex-parallelism-overrides`` when a job is submitted (the client submits a StreamGraph and
  the Dispatcher applies overrides only to JobGraphs; FLINK-38770, seen on the embedded cluster in
  tests/integration/test_vertex_ids.py). With replicas every vertex of a fresh or redeployed job would run at
  replicas x slots (the 10 TB plan: 60 instead of 30). So the manifest leaves replicas out and sets
  ``job.parallelism`` (and ``parallelism.default``) to the plan's slot count, the largest vertex parallelism:
  that is what a submission runs on 2.3.0, and the overrides (keyed by the JobVertexIDs ``core.plan`` derives
  from operator uids) give each vertex its planned value wherever Flink applies them, and whenever the operator
  rescales in place (a changed override, native mode, adaptive scheduler).
* TaskManager count. In native mode Flink's resource manager starts TaskManagers for the slots the job asks
  for, so a job planned for CPU on more TaskManagers than its slots need would start fewer pods than planned.
  ``slotmanager.number-of-slots.min = planned TaskManagers x slots`` makes Flink start (and keep) them;
  ``taskmanager.load-balance.mode: SLOTS`` spreads the subtasks over them.
* High availability. ``high-availability.type: kubernetes`` with ``storageDir`` on durable storage and
  ``jobManager.replicas: 2`` (a standby JobManager); checkpoints and savepoints on durable storage too.
* Resources. ``resources.requests == limits`` (cpu = cores per TaskManager, memory = the planned
  ``taskmanager.memory.process.size`` to the byte, JobManager likewise), and the same ``taskmanager.memory.*``
  options as config.yaml, so the operator's memory derivation gives exactly the plan's breakdown.
* Local disk. RocksDB/ForSt keep their working state on local disk: the TaskManager pod template mounts an
  ``emptyDir`` sized to the planned local disk at ``io.tmp.dirs`` (where both backends put it by default) and
  requests that much ``ephemeral-storage`` (plus headroom for logs), so the scheduler places the pod on a
  node with room and the kubelet does not evict it.
* One autoscaler. ``job.autoscaler.enabled`` is written either way: ``false`` when flinkscale drives the job,
  ``true`` plus the operator's settings from the plan when the operator does.

``manifest_problems`` re-checks those rules on any FlinkDeployment (ours, or one read from a cluster), and
``parallelism_patch`` is the JSON merge patch ``flinkscale autoscale --k8s-deployment`` applies: new overrides,
and ``taskManager.replicas`` (with the two derived keys) when the new parallelism needs more slots than exist.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from flinkscale.core.deployment import (
    CRD_FLINK_VERSIONS,
    K8S_NAME,
    AutoscalerChoice,
    Target,
    UpgradeMode,
    image_version,
    is_durable,
    k8s_name,
)
from flinkscale.core.errors import InputError
from flinkscale.core.plan import Plan
from flinkscale.core.units import GiB, MiB, parse_size

API_VERSION = "flink.apache.org/v1beta1"
KIND = "FlinkDeployment"
OVERRIDES_KEY = "pipeline.jobvertex-parallelism-overrides"
SLOTS_KEY = "taskmanager.numberOfTaskSlots"
MIN_SLOTS_KEY = "slotmanager.number-of-slots.min"
AUTOSCALER_KEY = "job.autoscaler.enabled"
MAIN_CONTAINER = "flink-main-container"
LOCAL_DIR = "/flink-local"
LOCAL_VOLUME = "flink-local"
#: Room on the pod's ephemeral storage beyond the state volume: logs, the container's writable layer.
EPHEMERAL_HEADROOM = 2 * GiB


def k8s_memory(num_bytes: int) -> str:
    """A Kubernetes quantity for a byte count: whole MiB as ``1600Mi``, else plain bytes."""
    return f"{num_bytes // MiB}Mi" if num_bytes % MiB == 0 else str(num_bytes)


_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([KMGTPE]i?|k|m)?$")
_QUANTITY_UNITS = {None: 1, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
                   "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
                   "m": 0.001}


def parse_quantity(value: object) -> float | None:
    """A Kubernetes quantity (``16Gi``, ``4``, ``500m``) as a number; None when it is not one."""
    found = _QUANTITY.match(str(value).strip())
    if not found:
        return None
    return float(found.group(1)) * _QUANTITY_UNITS[found.group(2)]


def parse_overrides(text: str) -> dict[str, int]:
    """``pipeline.jobvertex-parallelism-overrides`` (``<vid>:<p>,...``) as a mapping."""
    overrides: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        vertex, _, value = item.partition(":")
        if not value.strip().isdigit():
            raise InputError(f"not <JobVertexID>:<parallelism>: {item!r}", field=OVERRIDES_KEY)
        overrides[vertex.strip()] = int(value)
    return overrides


def format_overrides(overrides: Mapping[str, int]) -> str:
    return ",".join(f"{vid}:{p}" for vid, p in sorted(overrides.items()))


def _resources(cpu: float, memory_bytes: int, ephemeral_bytes: int | None = None) -> dict[str, Any]:
    amounts: dict[str, str] = {"cpu": f"{cpu:g}", "memory": k8s_memory(memory_bytes)}
    if ephemeral_bytes:
        amounts["ephemeral-storage"] = k8s_memory(ephemeral_bytes)
    return {"requests": dict(amounts), "limits": dict(amounts)}


def flink_deployment(plan: Plan) -> dict[str, Any]:
    """The FlinkDeployment (``flink.apache.org/v1beta1``) for a plan whose spec targets Kubernetes."""
    spec, cluster, capacity = plan.spec, plan.capacity.cluster, plan.capacity
    deployment = spec.deployment
    if deployment.target is not Target.KUBERNETES:
        raise InputError(f"a FlinkDeployment is made only for deployment.target: kubernetes (this spec targets "
                         f"{deployment.target.value})", field="deployment.target")
    task_managers = int(cluster.task_managers.value)
    parallelism = int(cluster.slots.value)
    config = dict(plan.flink_config)
    config["parallelism.default"] = str(parallelism)
    config[MIN_SLOTS_KEY] = str(task_managers * cluster.slots_per_task_manager)
    config["jobmanager.scheduler"] = "adaptive"
    config["high-availability.type"] = "kubernetes"
    config["high-availability.storageDir"] = deployment.ha_dir or spec.storage.checkpoint_dir.rstrip("/") + "/ha"
    local_disk = math.ceil(capacity.state.local_disk_per_task_manager.value / GiB) * GiB
    if local_disk:
        config["io.tmp.dirs"] = LOCAL_DIR
    if deployment.autoscaler is AutoscalerChoice.OPERATOR:
        targets = spec.targets
        config.update({
            AUTOSCALER_KEY: "true",
            "job.autoscaler.utilization.target": f"{targets.utilization:g}",
            "job.autoscaler.catch-up.duration": f"{int(targets.catch_up_seconds)} s",
            "job.autoscaler.restart.time": f"{max(1, int(capacity.checkpoints.recovery_seconds.value))} s",
            "job.autoscaler.metrics.window": "15 min",
            "job.autoscaler.stabilization.interval": "5 min",
            "job.autoscaler.vertex.max-parallelism": str(int(capacity.max_parallelism.value)),
        })
    else:
        config[AUTOSCALER_KEY] = "false"
    task_manager: dict[str, Any] = {
        "resources": _resources(float(cluster.cores_per_task_manager), cluster.memory.process_size,
                                local_disk + EPHEMERAL_HEADROOM if local_disk else None),
    }
    if local_disk:
        task_manager["podTemplate"] = {"spec": {
            "containers": [{"name": MAIN_CONTAINER,
                            "volumeMounts": [{"name": LOCAL_VOLUME, "mountPath": LOCAL_DIR}]}],
            "volumes": [{"name": LOCAL_VOLUME, "emptyDir": {"sizeLimit": k8s_memory(local_disk)}}],
        }}
    name = deployment.name or k8s_name(spec.name)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": deployment.namespace,
                     "labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "flinkscale"}},
        "spec": {
            "image": deployment.image,
            "imagePullPolicy": "IfNotPresent",
            "flinkVersion": deployment.crd_flink_version,
            "mode": "native",
            "serviceAccount": deployment.service_account,
            "flinkConfiguration": {k: str(v) for k, v in config.items()},
            "jobManager": {"replicas": max(2, cluster.job_manager_replicas),
                           "resources": _resources(1.0, cluster.job_manager.process_size)},
            "taskManager": task_manager,
            "job": {"jarURI": deployment.jar_uri, "parallelism": parallelism,
                    "upgradeMode": deployment.upgrade_mode.value, "state": "running"},
        },
    }


# --- semantic checks -------------------------------------------------------------------------------------

def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _memory_bytes(value: object) -> int | None:
    """Flink memory syntax (``16384m``) or a Kubernetes quantity (``16Gi``), as the operator reads both."""
    text = str(value).strip()
    try:
        return parse_size(text)
    except InputError:
        quantity = parse_quantity(text)
        return int(quantity) if quantity is not None else None


def manifest_problems(manifest: Mapping[str, Any]) -> list[str]:
    """What would make this FlinkDeployment run other than planned, or not survive a failure (empty: none).

    Checks: replicas x slots cover the largest vertex override and ``job.parallelism`` agrees with them; a
    standby JobManager with Kubernetes HA; checkpoints, savepoints and HA metadata on durable storage;
    ``flinkVersion`` matching the image tag; resources matching the Flink memory options; local disk for
    RocksDB/ForSt; one autoscaler stated; the operator's own rules (name, upgrade mode needs)."""
    problems: list[str] = []
    spec = manifest.get("spec") or {}
    config: Mapping[str, Any] = spec.get("flinkConfiguration") or {}
    name = str((manifest.get("metadata") or {}).get("name", ""))
    if not K8S_NAME.match(name):
        problems.append(f"metadata.name {name!r}: the operator accepts lower case letters, digits and '-', "
                        "starting with a letter, at most 45 characters")
    # Slots and parallelism.
    task_manager = spec.get("taskManager") or {}
    job = spec.get("job") or {}
    slots = _int(config.get(SLOTS_KEY, 1))
    replicas = _int(task_manager.get("replicas")) if task_manager.get("replicas") is not None else None
    overrides = parse_overrides(str(config.get(OVERRIDES_KEY, "")))
    largest = max(overrides.values(), default=0)
    if slots is None or slots < 1:
        problems.append(f"flinkConfiguration.{SLOTS_KEY} must be an integer >= 1")
        slots = 1
    if replicas is not None:
        total = replicas * slots
        if largest > total:
            problems.append(f"taskManager.replicas x slots = {replicas} x {slots} = {total} < {largest}, the "
                            f"largest vertex parallelism in {OVERRIDES_KEY}")
        if job.get("parallelism") is not None and _int(job.get("parallelism")) != total:
            problems.append(f"job.parallelism {job.get('parallelism')} contradicts taskManager.replicas x slots = "
                            f"{total}, which takes precedence")
        for key in ("parallelism.default", MIN_SLOTS_KEY):
            if key in config and _int(config[key]) != total:
                problems.append(f"flinkConfiguration.{key} {config[key]} != replicas x slots = {total}")
    else:
        parallelism = _int(job.get("parallelism"))
        if parallelism is None or parallelism < 1:
            problems.append("job.parallelism must be >= 1 when taskManager.replicas is not set")
        else:
            if largest > parallelism:
                problems.append(f"job.parallelism {parallelism} < {largest}, the largest vertex override (Flink "
                                "2.3.0 starts every vertex at job.parallelism: the overrides are not applied at "
                                "submission)")
            if "parallelism.default" in config and _int(config["parallelism.default"]) != parallelism:
                problems.append(f"flinkConfiguration.parallelism.default {config['parallelism.default']} != "
                                f"job.parallelism {parallelism}")
            if MIN_SLOTS_KEY in config and (_int(config[MIN_SLOTS_KEY]) or 0) < parallelism:
                problems.append(f"flinkConfiguration.{MIN_SLOTS_KEY} {config[MIN_SLOTS_KEY]} < job.parallelism "
                                f"{parallelism}: fewer slots than the job runs on")
    # High availability and durable storage.
    jm_replicas = _int((spec.get("jobManager") or {}).get("replicas", 1)) or 1
    if jm_replicas < 2:
        problems.append(f"jobManager.replicas {jm_replicas}: no standby JobManager")
    if str(config.get("high-availability.type", "")).lower() != "kubernetes":
        problems.append("flinkConfiguration.high-availability.type is not kubernetes")
    for key in ("high-availability.storageDir", "execution.checkpointing.dir",
                "execution.checkpointing.savepoint-dir"):
        value = str(config.get(key, ""))
        if not is_durable(value):
            problems.append(f"flinkConfiguration.{key} {value!r} is not durable storage (s3, gs, abfs, hdfs)")
    upgrade = str(job.get("upgradeMode", UpgradeMode.STATELESS.value))
    if upgrade == UpgradeMode.SAVEPOINT.value and not config.get("execution.checkpointing.savepoint-dir"):
        problems.append("job.upgradeMode savepoint needs execution.checkpointing.savepoint-dir")
    # Version and image.
    version = str(spec.get("flinkVersion", ""))
    if version not in CRD_FLINK_VERSIONS:
        problems.append(f"flinkVersion {version!r} is not one of the CRD's {list(CRD_FLINK_VERSIONS)}")
    else:
        tagged = image_version(str(spec.get("image", "")))
        if tagged is not None and f"v{tagged.replace('.', '_')}" != version:
            problems.append(f"image {spec.get('image')!r} is Flink {tagged}, flinkVersion is {version}")
    # Resources against the memory model.
    for role, prefix in (("taskManager", "taskmanager"), ("jobManager", "jobmanager")):
        resources = (spec.get(role) or {}).get("resources") or {}
        requests = resources.get("requests") or {}
        memory = requests.get("memory")
        if memory is None or "cpu" not in requests:
            problems.append(f"{role}.resources.requests needs cpu and memory")
            continue
        planned = config.get(f"{prefix}.memory.process.size")
        if planned is not None and _memory_bytes(memory) != _memory_bytes(planned):
            problems.append(f"{role}.resources memory {memory} != {prefix}.memory.process.size {planned}")
        for key, amount in requests.items():
            limit = (resources.get("limits") or {}).get(key)
            if limit is not None and (parse_quantity(amount) or 0) > (parse_quantity(limit) or 0):
                problems.append(f"{role}.resources request {key} {amount} exceeds its limit {limit}")
    # Local disk for RocksDB / ForSt.
    if str(config.get("state.backend.type", "")).lower() in ("rocksdb", "forst"):
        local_dir = str(config.get("io.tmp.dirs", ""))
        template = (task_manager.get("podTemplate") or {}).get("spec") or {}
        mounts = [m for c in template.get("containers") or [] if c.get("name") == MAIN_CONTAINER
                  for m in c.get("volumeMounts") or []]
        if not local_dir or not any(m.get("mountPath") == local_dir for m in mounts):
            problems.append("RocksDB/ForSt state without a local-disk volume mounted at io.tmp.dirs")
        requests = ((task_manager.get("resources") or {}).get("requests") or {})
        if "ephemeral-storage" not in requests:
            problems.append("RocksDB/ForSt state without an ephemeral-storage request for its local disk")
    # One autoscaler, stated.
    if str(config.get(AUTOSCALER_KEY, "")).lower() not in ("true", "false"):
        problems.append(f"flinkConfiguration.{AUTOSCALER_KEY} must be stated (true: the operator's autoscaler "
                        "drives the job; false: flinkscale's)")
    return problems


# --- the autoscaler's patch --------------------------------------------------------------------------------

def parallelism_patch(deployment: Mapping[str, Any], target: Mapping[str, int]) -> dict[str, Any]:
    """The JSON merge patch that runs ``target`` (JobVertexID -> parallelism) on a FlinkDeployment.

    Overrides for vertices not in ``target`` are kept. With ``taskManager.replicas`` set (a manifest of one's
    own, or standalone mode) and the largest parallelism needing more slots than ``replicas x slots``, replicas
    grow to ``ceil(largest / slots)`` and the keys derived from them follow. Without replicas (flinkscale's
    manifests) ``job.parallelism`` grows to the largest override, so that a redeploy, which on Flink 2.3.0
    starts every vertex at job.parallelism, still has the slots. Nothing shrinks here.
    A deployment whose operator autoscaler is enabled is refused: two controllers must not drive one job."""
    spec = deployment.get("spec") or {}
    config: Mapping[str, Any] = spec.get("flinkConfiguration") or {}
    name = (deployment.get("metadata") or {}).get("name", "?")
    if str(config.get(AUTOSCALER_KEY, "false")).strip().lower() == "true":
        raise InputError(f"FlinkDeployment {name} has {AUTOSCALER_KEY}: true: the operator's autoscaler drives it, "
                         "and flinkscale will not fight it (set it to false to hand the job over)",
                         field="--k8s-deployment")
    for vertex, parallelism in target.items():
        if parallelism < 1:
            raise InputError(f"must be >= 1, got {parallelism}", field=f"parallelism[{vertex}]")
    overrides = {**parse_overrides(str(config.get(OVERRIDES_KEY, ""))), **{k: int(v) for k, v in target.items()}}
    patch_config: dict[str, str] = {OVERRIDES_KEY: format_overrides(overrides)}
    patch_spec: dict[str, Any] = {"flinkConfiguration": patch_config}
    task_manager = spec.get("taskManager") or {}
    replicas = _int(task_manager.get("replicas")) if task_manager.get("replicas") is not None else None
    slots = _int(config.get(SLOTS_KEY, 1)) or 1
    largest = max(overrides.values(), default=0)
    if replicas is not None and replicas * slots < largest:
        replicas = math.ceil(largest / slots)
        patch_spec["taskManager"] = {"replicas": replicas}
        for key in ("parallelism.default", MIN_SLOTS_KEY):
            if key in config:
                patch_config[key] = str(replicas * slots)
    elif replicas is None:
        parallelism = _int((spec.get("job") or {}).get("parallelism")) or 0
        if largest > parallelism:  # a redeploy on Flink 2.3.0 runs every vertex at job.parallelism
            patch_spec["job"] = {"parallelism": largest}
            if "parallelism.default" in config:
                patch_config["parallelism.default"] = str(largest)
            if MIN_SLOTS_KEY in config and (_int(config[MIN_SLOTS_KEY]) or 0) < largest:
                patch_config[MIN_SLOTS_KEY] = str(largest)
    return {"spec": patch_spec}
