"""``autoscale --k8s-deployment``: the realizer patches a FlinkDeployment through the official kubernetes client.

No Kubernetes API server can run here, so the client (its own ``ApiClient``, ``CustomObjectsApi`` and
configuration, unmodified) talks to a recorded API: a small HTTP server on 127.0.0.1 that answers the
FlinkDeployment paths as the API server does (the object with server-set metadata and status, RFC 7386 merge
patches only with ``application/merge-patch+json``, ``Status`` bodies for 404 and 403). A fake operator makes the
job's REST view follow the overrides stored in the object, so the realizer's wait for the new parallelism ends.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s_client

from flinkscale.cli import main
from flinkscale.core.errors import EndpointError, InputError, NotFoundError
from flinkscale.core.manifest import OVERRIDES_KEY, flink_deployment, manifest_problems, parse_overrides
from flinkscale.core.plan import build_plan
from flinkscale.core.policy.base import Decision, VertexDecision
from flinkscale.core.workload import parse_workload
from flinkscale.k8s import FlinkDeploymentRealizer, FlinkDeployments, operator_rest_url, parse_deployment_ref

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "workloads"
PREFIX = "/apis/flink.apache.org/v1beta1/namespaces/"


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386, as the API server applies a merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


@dataclass
class FakeApiServer:
    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    forbidden: set[str] = field(default_factory=set)
    port: int = 0

    def add(self, manifest: dict[str, Any]) -> None:
        stored = copy.deepcopy(manifest)
        stored["metadata"].update({"uid": "6c1e0b6a-6f5e-4d7e-9d55-1f2b3c4d5e6f", "resourceVersion": "1000",
                                   "generation": 1, "creationTimestamp": "2026-11-27T10:00:00Z"})
        stored["status"] = {"lifecycleState": "STABLE", "jobStatus": {"jobId": "a" * 32, "state": "RUNNING"}}
        self.objects[(stored["metadata"]["namespace"], stored["metadata"]["name"])] = stored

    def handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _status(self, code: int, reason: str, message: str) -> None:
                self._send(code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                  "message": message, "reason": reason, "code": code})

            def _object(self) -> tuple[tuple[str, str], dict[str, Any] | None]:
                namespace, _, name = self.path.removeprefix(PREFIX).partition("/flinkdeployments/")
                key = (namespace, name)
                return key, server.objects.get(key)

            def do_GET(self) -> None:
                server.requests.append({"method": "GET", "path": self.path,
                                        "authorization": self.headers.get("Authorization")})
                key, found = self._object()
                if key[1] in server.forbidden:
                    self._status(403, "Forbidden", f'flinkdeployments.flink.apache.org "{key[1]}" is forbidden')
                elif found is None:
                    self._status(404, "NotFound", f'flinkdeployments.flink.apache.org "{key[1]}" not found')
                else:
                    self._send(200, found)

            def do_PATCH(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                content_type = self.headers.get("Content-Type")
                server.requests.append({"method": "PATCH", "path": self.path, "content_type": content_type,
                                        "body": body})
                key, found = self._object()
                if found is None:
                    self._status(404, "NotFound", f'flinkdeployments.flink.apache.org "{key[1]}" not found')
                    return
                if content_type != "application/merge-patch+json":
                    self._status(415, "UnsupportedMediaType", f"the body of the request was in an unknown "
                                                              f"format: {content_type}")
                    return
                merged = _merge(found, body)
                merged["metadata"]["resourceVersion"] = str(int(found["metadata"]["resourceVersion"]) + 1)
                merged["metadata"]["generation"] = found["metadata"]["generation"] + 1
                server.objects[key] = merged
                self._send(200, merged)

        return Handler


@pytest.fixture
def api_server() -> Iterator[FakeApiServer]:
    fake = FakeApiServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    fake.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        httpd.shutdown()
        httpd.server_close()


def _deployments(fake: FakeApiServer) -> FlinkDeployments:
    configuration = k8s_client.Configuration()
    configuration.host = f"http://127.0.0.1:{fake.port}"
    return FlinkDeployments(k8s_client.ApiClient(configuration), timeout_seconds=5)


@dataclass
class Vertex:
    id: str
    parallelism: int


@dataclass
class Job:
    vertices: list[Vertex]
    state: str = "RUNNING"
    all_running: bool = True


class FakeOperator:
    """The job's REST view: each vertex runs at its override in the stored FlinkDeployment (after ``lag`` reads)."""

    def __init__(self, fake: FakeApiServer, key: tuple[str, str], lag: int = 2) -> None:
        self.fake, self.key, self.lag = fake, key, lag
        self.initial = parse_overrides(fake.objects[key]["spec"]["flinkConfiguration"][OVERRIDES_KEY])
        self.reads_since_change = 0
        self.last: dict[str, int] = dict(self.initial)

    def job(self, job_id: str) -> Job:
        wanted = parse_overrides(self.fake.objects[self.key]["spec"]["flinkConfiguration"][OVERRIDES_KEY])
        if wanted != self.last:
            self.reads_since_change += 1
            if self.reads_since_change > self.lag:
                self.last, self.reads_since_change = wanted, 0
        return Job([Vertex(vid, p) for vid, p in self.last.items()])


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _manifest(name: str = "clickstream-1tb") -> dict[str, Any]:
    return flink_deployment(build_plan(parse_workload(yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text()))))


def _decision(target: dict[str, int], old: dict[str, int]) -> Decision:
    vertices = tuple(VertexDecision(vertex_id=vid, vertex_name=vid[:6], current_parallelism=old.get(vid, 1),
                                    new_parallelism=p, reason="test") for vid, p in target.items())
    return Decision(timestamp=0.0, policy="test", vertices=vertices)


def _realizer(fake: FakeApiServer, manifest: dict[str, Any], **kwargs: Any) -> tuple[FlinkDeploymentRealizer,
                                                                                        list[tuple[str, str]]]:
    fake.add(manifest)
    key = (manifest["metadata"]["namespace"], manifest["metadata"]["name"])
    clock = Clock()
    events: list[tuple[str, str]] = []
    realizer = FlinkDeploymentRealizer(_deployments(fake), *key, FakeOperator(fake, key), "a" * 32, clock=clock,
                                       sleep=clock.sleep, poll_seconds=5, ready_timeout_seconds=60,
                                       event=lambda kind, message: events.append((kind, message)), **kwargs)
    return realizer, events


def test_a_decision_becomes_a_merge_patch_of_the_overrides(api_server: FakeApiServer) -> None:
    manifest = _manifest()
    realizer, events = _realizer(api_server, manifest)
    old = parse_overrides(manifest["spec"]["flinkConfiguration"][OVERRIDES_KEY])
    vertex = max(old, key=lambda v: old[v])  # the sessionize vertex, at 3
    record = realizer.apply(_decision({vertex: 2}, old))

    patches = [r for r in api_server.requests if r["method"] == "PATCH"]
    assert len(patches) == 1 and patches[0]["content_type"] == "application/merge-patch+json"
    assert patches[0]["path"] == f"{PREFIX}streaming/flinkdeployments/clickstream-1tb"
    assert set(patches[0]["body"]["spec"]) == {"flinkConfiguration"}  # an override change only: in place
    stored = api_server.objects[("streaming", "clickstream-1tb")]
    assert parse_overrides(stored["spec"]["flinkConfiguration"][OVERRIDES_KEY]) == {**old, vertex: 2}
    # Everything else is as it was (a merge patch, not a replacement).
    assert stored["spec"]["taskManager"] == manifest["spec"]["taskManager"]
    assert stored["spec"]["flinkConfiguration"]["high-availability.type"] == "kubernetes"
    assert record is not None and record.old_parallelism[vertex] == 3 and record.new_parallelism[vertex] == 2
    # The fake operator shows the change on the third read after the patch: two 5 s polls on the fake clock.
    assert record.duration_seconds == 10.0
    assert [kind for kind, _ in events] == ["k8s-patch", "rescaled"]


def test_slots_short_grows_the_deployment_and_it_stays_consistent(api_server: FakeApiServer) -> None:
    manifest = _manifest()
    realizer, _ = _realizer(api_server, manifest)
    old = parse_overrides(manifest["spec"]["flinkConfiguration"][OVERRIDES_KEY])
    vertex = next(iter(old))
    realizer.apply(_decision({vertex: 12}, old))
    stored = api_server.objects[("streaming", "clickstream-1tb")]
    assert stored["spec"]["job"]["parallelism"] == 12
    assert stored["spec"]["flinkConfiguration"]["slotmanager.number-of-slots.min"] == "12"
    server_side = {"uid", "resourceVersion", "generation", "creationTimestamp"}
    assert server_side <= set(stored["metadata"])
    assert manifest_problems({k: v for k, v in stored.items() if k != "status"}) == []


def test_dry_run_prints_the_patch_and_changes_nothing(api_server: FakeApiServer) -> None:
    manifest = _manifest()
    printed: list[str] = []
    realizer, events = _realizer(api_server, manifest, dry_run=True, echo=printed.append)
    old = parse_overrides(manifest["spec"]["flinkConfiguration"][OVERRIDES_KEY])
    vertex = next(iter(old))
    assert realizer.apply(_decision({vertex: 5}, old)) is None
    assert [r["method"] for r in api_server.requests] == ["GET"]
    (line,) = printed
    patch = json.loads(line)
    assert parse_overrides(patch["spec"]["flinkConfiguration"][OVERRIDES_KEY])[vertex] == 5
    assert events[0][0] == "k8s-patch" and "dry run" in events[0][1]


def test_a_deployment_driven_by_the_operator_autoscaler_is_refused(api_server: FakeApiServer) -> None:
    realizer, _ = _realizer(api_server, _manifest("seed-1tb-subsecond"))
    with pytest.raises(InputError, match="operator's autoscaler"):
        realizer.check()
    assert all(r["method"] == "GET" for r in api_server.requests)


def test_missing_and_forbidden_deployments_are_one_line_errors(api_server: FakeApiServer) -> None:
    deployments = _deployments(api_server)
    with pytest.raises(NotFoundError) as missing:
        deployments.get("streaming", "nope")
    assert missing.value.exit_code == 2 and missing.value.status == 404
    assert f"127.0.0.1:{api_server.port}{PREFIX}streaming/flinkdeployments/nope" in str(missing.value)
    api_server.forbidden.add("locked")
    with pytest.raises(EndpointError, match="403") as refused:
        deployments.get("streaming", "locked")
    assert "\n" not in str(refused.value)


def test_an_unreachable_api_server_is_an_endpoint_error() -> None:
    configuration = k8s_client.Configuration()
    configuration.host = "http://127.0.0.1:9"  # discard port: nothing listens
    configuration.retries = 0
    deployments = FlinkDeployments(k8s_client.ApiClient(configuration), timeout_seconds=2)
    with pytest.raises(EndpointError, match="cannot reach the Kubernetes API server"):
        deployments.get("streaming", "clickstream-1tb")


def test_credentials_come_from_the_kubeconfig_and_never_reach_a_message(
        api_server: FakeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "s3cr3t-t0ken-value"
    kubeconfig = {"apiVersion": "v1", "kind": "Config", "current-context": "test",
                  "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{api_server.port}"}}],
                  "users": [{"name": "me", "user": {"token": token}}],
                  "contexts": [{"name": "test", "context": {"cluster": "fake", "user": "me"}}]}
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    monkeypatch.setenv("KUBECONFIG", str(path))
    api_server.add(_manifest())
    deployments = FlinkDeployments()
    assert deployments.get("streaming", "clickstream-1tb")["kind"] == "FlinkDeployment"
    assert api_server.requests[-1]["authorization"] == f"Bearer {token}"
    with pytest.raises(NotFoundError) as missing:
        deployments.get("streaming", "nope")
    assert token not in str(missing.value)


def test_no_credentials_is_an_input_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(InputError, match="no Kubernetes credentials"):
        FlinkDeployments()


@pytest.mark.parametrize("content", ["- a\n", "apiVersion: v1\nclusters: 5\n", "contexts: [[1]]\n"])
def test_a_malformed_kubeconfig_is_an_input_error_naming_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                           content: str) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(content)
    monkeypatch.setenv("KUBECONFIG", str(path))
    with pytest.raises(InputError) as refused:
        FlinkDeployments()
    assert refused.value.field == str(path)


@pytest.mark.parametrize("text", ["clickstream", "streaming/", "/x", "Streaming/x", "a/b/c"])
def test_deployment_refs_are_checked(text: str) -> None:
    with pytest.raises(InputError):
        parse_deployment_ref(text)
    assert parse_deployment_ref("streaming/clickstream-1tb") == ("streaming", "clickstream-1tb")
    assert operator_rest_url("streaming", "clickstream-1tb") == "http://clickstream-1tb-rest.streaming:8081"


def test_the_cli_rejects_a_bad_reference_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["autoscale", "--job", "a" * 32, "--k8s-deployment", "no-namespace"]) == 2
    err = capsys.readouterr().err
    assert "--k8s-deployment" in err and "Traceback" not in err


@pytest.fixture
def flink_rest() -> Iterator[tuple[str, str]]:
    """A Flink REST endpoint answering the two calls autoscale makes before its loop, from a recorded job."""
    recorded = json.loads((Path(__file__).resolve().parents[2] / "fixtures" / "rest" / "clickstream_p1" /
                           "job.json").read_text())
    job = recorded["body"]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

        def do_GET(self) -> None:
            if not self.path.startswith(("/jobmanager/config", f"/jobs/{job['jid']}")):
                self.send_response(404)
                self.end_headers()
                return
            data = json.dumps([] if self.path.startswith("/jobmanager/config") else job).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", str(job["jid"])
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_cli_checks_the_deployment_before_its_loop(
        api_server: FakeApiServer, flink_rest: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    kubeconfig = {"apiVersion": "v1", "kind": "Config", "current-context": "test",
                  "clusters": [{"name": "fake", "cluster": {"server": f"http://127.0.0.1:{api_server.port}"}}],
                  "users": [{"name": "me", "user": {"token": "t"}}],
                  "contexts": [{"name": "test", "context": {"cluster": "fake", "user": "me"}}]}
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(kubeconfig))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    api_server.add(_manifest("seed-1tb-subsecond"))  # the operator's autoscaler drives it
    rest, job_id = flink_rest
    args = ["autoscale", "--job", job_id, "--rest", rest, "--state-dir", str(tmp_path / "state"), "--dry-run"]
    assert main([*args, "--k8s-deployment", "streaming/seed-1tb-subsecond"]) == 2
    err = capsys.readouterr().err
    assert "--k8s-deployment" in err and "operator's autoscaler" in err and "Traceback" not in err
    assert main([*args, "--k8s-deployment", "streaming/absent"]) == 2
    assert "no FlinkDeployment streaming/absent" in capsys.readouterr().err
    assert [r["method"] for r in api_server.requests] == ["GET", "GET"]
