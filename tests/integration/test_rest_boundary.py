"""The REST boundary on the real cluster: every answer Flink 2.3 gives validates into the typed models (so the
strict models reject only what Flink never sends), the --rest-* options work against it, and the identity checks
of `cluster down` / `kafka down` recognise the processes flinkscale really started."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flinkscale.cli import main
from flinkscale.flink.cluster import LocalCluster
from flinkscale.kafka.broker import EmbeddedBroker

from .conftest import Runtime

pytestmark = pytest.mark.integration


def test_every_answer_of_a_running_job_validates(clean_jobs: Runtime) -> None:
    runtime = clean_jobs
    job_id, _ = runtime.clickstream(runtime.topic(2))
    rest = runtime.rest
    assert rest.overview().task_managers == 2
    assert rest.config()  # /jobmanager/config: a list of {key, value}
    assert all(tm.slots == 1 for tm in rest.task_managers())
    assert [j.id for j in rest.running_jobs()] == [job_id]
    job = rest.job(job_id)
    assert job.scheduler_type == "Adaptive" and job.vertices
    for vertex in job.vertices:
        assert len(rest.vertex_detail(job_id, vertex.id)) == vertex.parallelism
        names = rest.vertex_metric_names(job_id, vertex.id)
        assert names and rest.vertex_metrics(job_id, vertex.id, names[:3])
    assert rest.checkpoints(job_id).completed >= 0
    assert rest.checkpoint_config(job_id).mode
    assert set(rest.resource_requirements(job_id)) == {v.id for v in job.vertices}
    assert rest.task_manager_metrics(["Status.JVM.Memory.Heap.Used"])


def test_profile_with_rest_options_against_the_real_cluster(clean_jobs: Runtime, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    runtime = clean_jobs
    job_id, _ = runtime.clickstream(runtime.topic(2))
    monkeypatch.setenv("FLINKSCALE_REST_TOKEN", "ignored-by-flink-0123")
    output = tmp_path / "profile.json"
    code = main(["profile", "--job", job_id, "--rest", runtime.info.rest_url, "--rest-header", "X-Trace: it-1",
                 "--rest-timeout", "20s", "--window", "8s", "--interval", "4s", "--format", "json",
                 "--output", str(output)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(output.read_text())["snapshot"]["job_id"] == job_id
    assert "ignored-by-flink-0123" not in captured.out + captured.err + output.read_text()


def test_the_identity_checks_recognise_the_real_daemons(runtime: Runtime) -> None:
    cluster = LocalCluster(runtime.state_dir)
    info = cluster.info()
    assert info is not None and info.supervisor_create_time is not None
    assert cluster._supervisor_is_ours(info)
    daemons = cluster.pids("standalonesession") + cluster.pids("taskexecutor")
    assert len(daemons) == 3 and all(cluster._daemon_is_ours(pid) for pid in daemons)


def test_kafka_down_stops_the_real_broker_it_started(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broker = EmbeddedBroker(tmp_path)
    info = broker.up(port=0)
    try:
        assert info.cmdline is not None and info.create_time is not None
        assert main(["kafka", "down", "--state-dir", str(tmp_path)]) == 0
        assert f"stopped broker (pid {info.pid})" in capsys.readouterr().out
        assert broker.info() is None
    finally:
        if broker.info() is not None:
            broker.down()
