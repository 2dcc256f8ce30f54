"""Load a FlinkDeployment CRD's openAPIV3Schema from a file and validate manifests against it with jsonschema.

The file is either a whole CustomResourceDefinition (``spec.versions[name=v1beta1].schema.openAPIV3Schema``, as
the operator's Helm chart ships it) or a mapping with a top-level ``openAPIV3Schema`` (the hand-written subset in
tests/fixtures/crd/). Objects with ``properties`` and neither ``additionalProperties`` nor
``x-kubernetes-preserve-unknown-fields`` are closed before validating: the API server prunes unknown fields of such
objects, so a misspelt field would vanish on apply; here it is an error.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "crd"
SUBSET = FIXTURES / "flinkdeployment-v1beta1-operator-1.16-subset.yaml"
#: A full CRD file to validate against as well (none is shipped: the operator's CRD is not vendored here).
FULL_CRD_ENV = "FLINKSCALE_FLINKDEPLOYMENT_CRD"
#: Where the team's shared data would hold the operator's full CRD (beside the checkout, as CI lays it out).
SHARED_CRD = Path(__file__).resolve().parents[4] / "shared" / "crds" / "flinkdeployments.flink.apache.org-v1.yml"


def _close(node: Any) -> None:
    if isinstance(node, dict):
        if ("properties" in node and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")):
            node["additionalProperties"] = False
        for value in node.values():
            _close(value)
    elif isinstance(node, list):
        for item in node:
            _close(item)


def load_schema(path: Path, version: str = "v1beta1") -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    if "openAPIV3Schema" in document:
        schema = document["openAPIV3Schema"]
    else:
        (entry,) = [v for v in document["spec"]["versions"] if v["name"] == version]
        schema = entry["schema"]["openAPIV3Schema"]
    schema = copy.deepcopy(schema)
    # Kubernetes serves apiVersion, kind and metadata (ObjectMeta) on every object; a CRD's schema may omit them.
    implicit = {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                "metadata": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    for key, value in implicit.items():
        schema.setdefault("properties", {}).setdefault(key, value)
    _close(schema)
    return dict(schema)


def schemas() -> Iterator[tuple[str, dict[str, Any]]]:
    """The subset always; the full CRD too when FLINKSCALE_FLINKDEPLOYMENT_CRD names one or shared/ holds one."""
    yield SUBSET.name, load_schema(SUBSET)
    full = os.environ.get(FULL_CRD_ENV)
    if full:
        yield Path(full).name, load_schema(Path(full))
    elif SHARED_CRD.is_file():
        yield f"shared/crds/{SHARED_CRD.name}", load_schema(SHARED_CRD)


def validate(manifest: dict[str, Any], schema: dict[str, Any]) -> None:
    jsonschema.validate(manifest, schema)
