"""Kubernetes I/O: read and patch FlinkDeployments of the Flink Kubernetes Operator.

``FlinkDeployments`` wraps the official ``kubernetes`` client's ``CustomObjectsApi`` (credentials from the
kubeconfig or the pod's service account); ``FlinkDeploymentRealizer`` is the autoscaling loop's applier for a
job the operator runs: it turns a decision into the JSON merge patch of ``flinkscale.core.manifest`` and waits,
over the job's REST endpoint, until the job runs at the new parallelism.
"""

from flinkscale.k8s.api import FlinkDeployments, parse_deployment_ref
from flinkscale.k8s.realizer import FlinkDeploymentRealizer, operator_rest_url

__all__ = ["FlinkDeploymentRealizer", "FlinkDeployments", "operator_rest_url", "parse_deployment_ref"]
