"""FlinkDeployments through the official ``kubernetes`` client (``CustomObjectsApi``): get and merge-patch.

Credentials come from the kubeconfig (``KUBECONFIG`` or ``~/.kube/config``) or, inside a pod, from its service
account; tests hand in an ``ApiClient`` whose configuration points at a local fake API server. Every failure
is one line naming the object's URL (never a token): ``NotFoundError`` for a missing FlinkDeployment,
``EndpointError`` for a refused or failed call.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.rest import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError

from flinkscale.core.errors import EndpointError, InputError, NotFoundError
from flinkscale.core.inputs import one_line
from flinkscale.core.redaction import redact

GROUP = "flink.apache.org"
VERSION = "v1beta1"
PLURAL = "flinkdeployments"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def parse_deployment_ref(text: str, field: str = "--k8s-deployment") -> tuple[str, str]:
    """``NAMESPACE/NAME`` -> (namespace, name)."""
    namespace, sep, name = text.strip().partition("/")
    if not sep or not _NAME.match(namespace) or not _NAME.match(name):
        raise InputError(f"must be NAMESPACE/NAME of a FlinkDeployment, got {text!r}", field=field)
    return namespace, name


def default_api_client() -> Any:
    """An ApiClient from the kubeconfig, else from the pod's service account."""
    configuration = k8s_client.Configuration()
    # Read KUBECONFIG now: the client reads it once, at import.
    config_file = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    try:
        k8s_config.load_kube_config(config_file=config_file, client_configuration=configuration)
    except (TypeError, ValueError, AttributeError, KeyError, yaml.YAMLError) as exc:
        # A kubeconfig that is there but malformed (a list, a wrong type): the client raises plain errors.
        raise InputError(f"not a valid kubeconfig ({type(exc).__name__})", field=config_file) from None
    except (ConfigException, OSError) as exc:
        if isinstance(exc, ConfigException) and os.path.isfile(config_file):  # there, but not usable
            raise InputError(f"not a valid kubeconfig: {one_line(redact(str(exc)), 160)}", field=config_file) from None
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except ConfigException:
            raise InputError("no Kubernetes credentials: no kubeconfig (KUBECONFIG or ~/.kube/config) and not "
                             "running in a pod", field="--k8s-deployment") from None
    return k8s_client.ApiClient(configuration)


class FlinkDeployments:
    """Get and patch ``flinkdeployments.flink.apache.org`` objects."""

    def __init__(self, api_client: Any | None = None, *, timeout_seconds: float = 30.0) -> None:
        self.api_client = api_client if api_client is not None else default_api_client()
        self.api = k8s_client.CustomObjectsApi(self.api_client)
        self.timeout_seconds = timeout_seconds

    def url(self, namespace: str, name: str) -> str:
        host = str(self.api_client.configuration.host).rstrip("/")
        return f"{host}/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}/{name}"

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            result = self.api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name,
                                                           _request_timeout=self.timeout_seconds)
        except (ApiException, HTTPError) as exc:
            raise self._error(exc, namespace, name, "GET") from None
        return dict(result)

    def patch(self, namespace: str, name: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """A JSON merge patch (RFC 7386): maps merge, a value replaces, null deletes."""
        try:
            result = self.api.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, dict(patch),
                _content_type="application/merge-patch+json", _request_timeout=self.timeout_seconds)
        except (ApiException, HTTPError) as exc:
            raise self._error(exc, namespace, name, "PATCH") from None
        return dict(result)

    def _error(self, exc: Exception, namespace: str, name: str, method: str) -> EndpointError:
        url = self.url(namespace, name)
        if isinstance(exc, ApiException):
            status = int(exc.status) if exc.status else None
            if status == 404:
                return NotFoundError(f"no FlinkDeployment {namespace}/{name}", endpoint=url, status=404)
            reason = str(exc.reason or "error").strip()
            if status in (401, 403):
                return EndpointError(f"{method} refused ({status} {reason}): the credentials may not {method} "
                                     "flinkdeployments in this namespace", endpoint=url, status=status)
            return EndpointError(f"{method} failed ({status} {reason})", endpoint=url, status=status)
        return EndpointError(f"{method}: cannot reach the Kubernetes API server ({type(exc).__name__})",
                             endpoint=url)
