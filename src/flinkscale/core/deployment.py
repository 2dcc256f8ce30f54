"""Where and how a planned pipeline runs: the ``deployment`` section of a workload spec.

    deployment:
      target: kubernetes        # kubernetes (Flink Kubernetes Operator) | standalone | yarn; default standalone
      flink_version: "2.3"      # default 2.3 -> flinkVersion v2_3
      image: flink:2.3          # default flink:<flink_version>; a versioned tag must match flink_version
      namespace: streaming      # default "default"
      service_account: flink    # default flink
      autoscaler: flinkscale    # flinkscale (`flinkscale autoscale --k8s-deployment`) | operator; never both
      upgrade_mode: last-state  # last-state | savepoint | stateless
      jar_uri: local:///opt/flink/usrlib/job.jar
      ha_dir: s3://bucket/flink/ha   # default <storage.checkpoint_dir>/ha
    storage:
      checkpoint_dir: s3://bucket/flink/checkpoints   # durable (s3, gs, abfs, hdfs) for kubernetes
      savepoint_dir: s3://bucket/flink/savepoints

Only ``target: kubernetes`` produces a FlinkDeployment (``flinkscale.core.manifest``), and that target has
hard requirements checked here, once, with the field at fault named: checkpoints, savepoints and the HA
metadata must live on durable storage (a ``file://`` path, or the ``file:///tmp`` default, dies with the pod),
and Kubernetes HA with a standby JobManager is always on (``last-state`` upgrades and the standby need it).

The older ``storage.image``, ``storage.flink_version``, ``storage.service_account``, ``storage.jar_uri`` and
``storage.kubernetes_ha`` keys are still read as fallbacks (stating one in both places is an error), so
existing specs keep parsing; ``parse_deployment`` therefore sees the raw ``storage`` mapping as well.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from flinkscale.core.errors import InputError


class Target(StrEnum):
    KUBERNETES = "kubernetes"
    STANDALONE = "standalone"
    YARN = "yarn"


class AutoscalerChoice(StrEnum):
    #: flinkscale's loop drives the job (``flinkscale autoscale --k8s-deployment``); the operator's is off.
    FLINKSCALE = "flinkscale"
    #: The Flink Kubernetes Operator's autoscaler, configured from the plan; flinkscale refuses to drive it.
    OPERATOR = "operator"


class UpgradeMode(StrEnum):
    LAST_STATE = "last-state"
    SAVEPOINT = "savepoint"
    STATELESS = "stateless"


#: URI schemes whose data outlives a pod (Flink's S3, GCS, Azure and HDFS file systems).
DURABLE_SCHEMES = ("s3", "s3a", "s3p", "gs", "abfs", "abfss", "hdfs")
#: ``flinkVersion`` values of the operator 1.16 FlinkDeployment CRD (its enum).
CRD_FLINK_VERSIONS = ("v1_13", "v1_14", "v1_15", "v1_16", "v1_17", "v1_18", "v1_19", "v1_20",
                      "v2_0", "v2_1", "v2_2", "v2_3", "v2_4")
DEFAULT_FLINK_VERSION = "2.3"
DEFAULT_JAR_URI = "local:///opt/flink/usrlib/job.jar"

_VERSION = re.compile(r"^(\d+)\.(\d+)(?:\.\d+)?$")
_TAG_VERSION = re.compile(r"^(\d+)\.(\d+)")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
#: The operator's FlinkDeployment name rule (its DefaultValidator): at most 45 characters.
K8S_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,43}[a-z0-9])?$")


@dataclass(frozen=True)
class Deployment:
    target: Target = Target.STANDALONE
    flink_version: str = DEFAULT_FLINK_VERSION
    image: str = f"flink:{DEFAULT_FLINK_VERSION}"
    namespace: str = "default"
    service_account: str = "flink"
    autoscaler: AutoscalerChoice = AutoscalerChoice.FLINKSCALE
    upgrade_mode: UpgradeMode = UpgradeMode.LAST_STATE
    jar_uri: str = DEFAULT_JAR_URI
    # None: <storage.checkpoint_dir>/ha.
    ha_dir: str | None = None
    # None: derived from the spec's name (k8s_name).
    name: str | None = None

    @property
    def crd_flink_version(self) -> str:
        """``flinkVersion`` as the CRD spells it: "2.3" -> "v2_3"."""
        major, minor = self.flink_version.split(".")[:2]
        return f"v{major}_{minor}"


def uri_scheme(uri: str) -> str:
    return uri.split("://", 1)[0].lower() if "://" in uri else ""


def is_durable(uri: str) -> bool:
    return uri_scheme(uri) in DURABLE_SCHEMES and len(uri.split("://", 1)[1].strip("/")) > 0


def image_version(image: str) -> str | None:
    """"flink:2.3.0-java17" -> "2.3"; None when the tag does not start with a version (a custom image)."""
    last = image.rsplit("/", 1)[-1]
    if "@" in last:
        last = last.split("@", 1)[0]
    if ":" not in last:
        return None
    found = _TAG_VERSION.match(last.split(":", 1)[1])
    return f"{found.group(1)}.{found.group(2)}" if found else None


def k8s_name(name: str) -> str:
    """A FlinkDeployment name the operator accepts (lower case, '-', starts with a letter, <= 45 characters)."""
    cleaned = re.sub(r"-+", "-", "".join(ch if ch.isalnum() and ch.isascii() else "-" for ch in name.lower()))
    cleaned = cleaned.strip("-")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = f"flink-{cleaned}".strip("-")
    return cleaned[:45].rstrip("-")


def _text(data: Mapping[str, Any], key: str, path: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InputError("must be a string", field=f"{path}.{key}")
    return str(value).strip()


def _choice(data: Mapping[str, Any], key: str, path: str, choices: type[StrEnum], default: StrEnum) -> Any:
    text = _text(data, key, path)
    if text is None:
        return default
    value = text.lower().replace("_", "-")
    allowed = [c.value for c in choices]
    if value not in allowed:
        raise InputError(f"must be one of {allowed}, got {text!r}", field=f"{path}.{key}")
    return choices(value)


#: A container image reference, loosely: registry[:port]/repository[:tag][@digest], no spaces or line breaks.
_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,511}")
_DEPLOYMENT_KEYS = ("target", "flink_version", "image", "namespace", "service_account", "autoscaler",
                    "upgrade_mode", "jar_uri", "ha_dir", "name")
#: The deployment keys an older spec states under ``storage`` (``storage.kubernetes_ha`` is the fifth one).
LEGACY_STORAGE_KEYS = ("image", "flink_version", "jar_uri", "service_account")


def parse_deployment(data: Any, storage: Any = None) -> Deployment:
    """The ``deployment`` section (``data``), checked against the raw ``storage`` section it depends on."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise InputError("must be a mapping", field="deployment")
    unknown = sorted(set(map(str, data)) - set(_DEPLOYMENT_KEYS))
    if unknown:
        raise InputError(f"unknown field(s) {unknown}; known: {sorted(_DEPLOYMENT_KEYS)}", field="deployment")
    raw_storage: Mapping[str, Any] = storage if isinstance(storage, Mapping) else {}
    merged: dict[str, Any] = dict(data)
    for key in LEGACY_STORAGE_KEYS:
        if raw_storage.get(key) is None:
            continue
        if data.get(key) is not None:
            raise InputError(f"stated twice: use deployment.{key} only", field=f"storage.{key}")
        merged[key] = raw_storage[key]
    path = "deployment"
    target: Target = _choice(merged, "target", path, Target, Target.STANDALONE)

    version_text = _text(merged, "flink_version", path) or DEFAULT_FLINK_VERSION
    version_field = f"{path}.flink_version" if data.get("flink_version") is not None else "storage.flink_version"
    legacy = re.fullmatch(r"v(\d+)_(\d+)", version_text)
    if legacy:  # the CRD spelling (storage.flink_version: v2_1) is accepted too
        version_text = f"{legacy.group(1)}.{legacy.group(2)}"
    found = _VERSION.match(version_text)
    if not found:
        raise InputError(f"must be a Flink version such as 2.3, got {version_text!r}", field=version_field)
    flink_version = f"{found.group(1)}.{found.group(2)}"
    if f"v{found.group(1)}_{found.group(2)}" not in CRD_FLINK_VERSIONS:
        raise InputError(f"Flink {flink_version} is not a flinkVersion of the operator's CRD "
                         f"({', '.join(CRD_FLINK_VERSIONS)})", field=version_field)

    image = _text(merged, "image", path) or f"flink:{flink_version}"
    image_field = f"{path}.image" if data.get("image") is not None else "storage.image"
    if not _IMAGE.fullmatch(image):  # written into the manifest: no spaces, line breaks or quotes
        raise InputError(f"must be a container image reference such as flink:2.3, got {image[:60]!r}",
                         field=image_field)
    tagged = image_version(image)
    if tagged is not None and tagged != flink_version:
        raise InputError(f"image {image!r} is Flink {tagged} but flink_version is {flink_version}",
                         field=image_field)

    namespace = _text(merged, "namespace", path) or "default"
    if not _DNS_LABEL.match(namespace):
        raise InputError("must be a Kubernetes namespace (lower case letters, digits, '-', <= 63)",
                         field=f"{path}.namespace")
    service_account = _text(merged, "service_account", path) or "flink"
    if not _DNS_SUBDOMAIN.match(service_account):
        raise InputError("must be a Kubernetes service account name", field=f"{path}.service_account")
    name = _text(merged, "name", path)
    if name is not None and not K8S_NAME.match(name):
        raise InputError("must start with a letter, hold lower case letters, digits and '-', and be at most "
                         "45 characters (the operator's rule)", field=f"{path}.name")
    jar_uri = _text(merged, "jar_uri", path) or DEFAULT_JAR_URI
    if "://" not in jar_uri:
        raise InputError("must be a URI with a scheme, such as local:///opt/flink/usrlib/job.jar",
                         field=f"{path}.jar_uri")

    deployment = Deployment(
        target=target, flink_version=flink_version, image=image, namespace=namespace,
        service_account=service_account,
        autoscaler=_choice(merged, "autoscaler", path, AutoscalerChoice, AutoscalerChoice.FLINKSCALE),
        upgrade_mode=_choice(merged, "upgrade_mode", path, UpgradeMode, UpgradeMode.LAST_STATE),
        jar_uri=jar_uri, ha_dir=_text(merged, "ha_dir", path), name=name)
    if target is Target.KUBERNETES:
        _check_kubernetes(deployment, raw_storage)
    return deployment


def _check_kubernetes(deployment: Deployment, storage: Mapping[str, Any]) -> None:
    """A pod's disk is gone with the pod: checkpoints, savepoints and HA metadata need durable storage."""
    schemes = ", ".join(f"{s}://" for s in ("s3", "gs", "abfs", "hdfs"))
    for key in ("checkpoint_dir", "savepoint_dir"):
        value = _text(storage, key, "storage")
        if not value:
            raise InputError(f"is required for deployment.target kubernetes: a durable URI ({schemes})",
                             field=f"storage.{key}")
        if not is_durable(value):
            scheme = uri_scheme(value) or "a plain path"
            raise InputError(f"{scheme}{'://' if uri_scheme(value) else ''} does not survive a pod; "
                             f"deployment.target kubernetes needs a durable URI ({schemes})",
                             field=f"storage.{key}")
    if deployment.ha_dir is not None and not is_durable(deployment.ha_dir):
        raise InputError(f"Kubernetes HA metadata needs a durable URI ({schemes})", field="deployment.ha_dir")
    if storage.get("kubernetes_ha") is False:
        raise InputError("deployment.target kubernetes always runs Kubernetes HA with a standby JobManager "
                         "(last-state upgrades need it); remove this key", field="storage.kubernetes_ha")
