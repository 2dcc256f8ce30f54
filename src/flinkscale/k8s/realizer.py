"""The autoscaling loop's applier for a job run by the Flink Kubernetes Operator: patch, then verify.

``FlinkDeploymentRealizer`` has the shape the loop needs of an executor (``job_id``, ``apply(decision)``, an
``event`` callback): for a rescale decision it reads the FlinkDeployment, builds the JSON merge patch of
``flinkscale.core.manifest.parallelism_patch`` (new ``pipeline.jobvertex-parallelism-overrides``; more
``job.parallelism`` or ``taskManager.replicas`` when the new parallelism needs more slots), applies it through
the Kubernetes API, and then watches the job's REST endpoint until every vertex runs at its target, which gives
the loop a ``RescaleRecord`` with the measured duration. The operator does the rest: in native mode with the
adaptive scheduler (Flink >= 1.18) an override-only change is applied in place through the job's resource
requirements; a changed ``job.parallelism`` or replica count is a (last-state) redeploy.

It refuses a FlinkDeployment whose operator autoscaler is on (two controllers must not drive one job), at
start (``check``) and before every patch. With ``dry_run`` it prints the patch as JSON and changes nothing.
This module does not import ``flinkscale.flink`` (I/O siblings stay independent): the job is read through
the small ``JobReader`` protocol, which ``flink.rest.FlinkRestClient`` satisfies.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from flinkscale.core.manifest import parallelism_patch
from flinkscale.core.policy.base import Decision, RescaleRecord
from flinkscale.core.rescale_wait import JobView, wait_for_parallelism
from flinkscale.k8s.api import FlinkDeployments

EventLog = Callable[[str, str], None]


class JobReader(Protocol):
    def job(self, job_id: str) -> JobView: ...


def operator_rest_url(namespace: str, name: str) -> str:
    """The REST service the operator creates for a FlinkDeployment (reachable inside the cluster)."""
    return f"http://{name}-rest.{namespace}:8081"


def _ignore_event(_kind: str, _message: str) -> None:
    pass


class FlinkDeploymentRealizer:
    def __init__(self, deployments: FlinkDeployments, namespace: str, name: str, rest: JobReader, job_id: str, *,
                 dry_run: bool = False, echo: Callable[[str], None] = print,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 ready_timeout_seconds: float = 900.0, poll_seconds: float = 5.0,
                 event: EventLog = _ignore_event) -> None:
        self.deployments = deployments
        self.namespace = namespace
        self.name = name
        self.rest = rest
        self._job_id = job_id
        self.dry_run = dry_run
        self.echo = echo
        self.clock = clock
        self.sleep = sleep
        self.ready_timeout_seconds = ready_timeout_seconds
        self.poll_seconds = poll_seconds
        self.event = event
        self.records: list[RescaleRecord] = []

    @property
    def job_id(self) -> str:
        return self._job_id

    def check(self) -> dict[str, Any]:
        """The FlinkDeployment, after making sure flinkscale may drive it (raises otherwise)."""
        deployment = self.deployments.get(self.namespace, self.name)
        parallelism_patch(deployment, {})
        return deployment

    def patch_for(self, target: Mapping[str, int]) -> dict[str, Any]:
        return parallelism_patch(self.deployments.get(self.namespace, self.name), target)

    def apply(self, decision: Decision) -> RescaleRecord | None:
        if not decision.rescale:
            return None
        target = decision.parallelism()
        patch = self.patch_for(target)
        where = f"FlinkDeployment {self.namespace}/{self.name}"
        if self.dry_run:
            self.echo(json.dumps(patch, sort_keys=True))
            self.event("k8s-patch", f"dry run: {where} not patched")
            return None
        old = {v.id: v.parallelism for v in self.rest.job(self.job_id).vertices}
        requested = self.clock()
        self.deployments.patch(self.namespace, self.name, patch)
        self.event("k8s-patch", f"patched {where}: {json.dumps(patch, sort_keys=True)}")
        self._wait_parallelism(target)
        completed = self.clock()
        new = {**old, **{vid: int(p) for vid, p in target.items()}}
        record = RescaleRecord(requested, completed, old, new)
        self.records.append(record)
        self.event("rescaled", f"{old} -> {new} in {record.duration_seconds:.1f}s (through {where})")
        return record

    def _wait_parallelism(self, target: Mapping[str, int]) -> None:
        # The JobManager restarts during a redeploy: its REST endpoint is away for a while (waited out).
        wait_for_parallelism(
            lambda: self.rest.job(self.job_id), target, timeout_seconds=self.ready_timeout_seconds,
            poll_seconds=self.poll_seconds, clock=self.clock, sleep=self.sleep,
            timed_out=lambda seen: f"job {self.job_id} did not reach {dict(target)} within "
                                   f"{self.ready_timeout_seconds:.0f}s of patching FlinkDeployment "
                                   f"{self.namespace}/{self.name} (runs at {seen}); check "
                                   f"`kubectl -n {self.namespace} describe flinkdeployment {self.name}`")
