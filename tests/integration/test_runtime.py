"""The runtime users stand on: the real cluster and broker, the reference pipeline, rescaling, exactly-once.

What a user relies on, checked on real Flink 2.3 and a real Kafka-protocol broker:
- every event the generator produced reaches the exactly-once filesystem sink exactly once, across an
  in-place rescale (adaptive scheduler) and a stop-with-savepoint restart at a new parallelism;
- the job graph and metrics read over REST describe the running job;
- `cluster up`/`down`, three times in a row (once from a config.yaml that `flinkscale plan --emit` wrote),
  leaves no process and no file outside the state dir;
- bad input gets one line, a non-zero exit and no traceback.
"""

from __future__ import annotations

import collections
import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from flinkscale.cli import main
from flinkscale.flink import home
from flinkscale.flink.cluster import LocalCluster
from flinkscale.flink.collector import Collector
from flinkscale.kafka.loadgen import LoadGenerator
from flinkscale.pipelines.launch import submit_clickstream
from tests.integration.conftest import Runtime

pytestmark = pytest.mark.integration
REPO = Path(__file__).parents[2]


def _committed_event_ids(events_dir: Path) -> collections.Counter[int]:
    ids: collections.Counter[int] = collections.Counter()
    for part in events_dir.rglob("part-*"):  # in-progress files are hidden (".part-...") until committed
        for line in part.read_text().splitlines():
            ids[json.loads(line)["event_id"]] += 1
    return ids


def _rescale_in_place(runtime: Runtime, job_id: str, parallelism: dict[str, int]) -> float:
    started = time.monotonic()
    runtime.rest.set_resource_requirements(job_id, {vid: (1, p) for vid, p in parallelism.items()})
    while True:
        job = runtime.rest.job(job_id)
        if job.all_running and all(job.vertex(v).parallelism == p for v, p in parallelism.items()):
            return time.monotonic() - started
        assert time.monotonic() - started < 180, f"rescale did not finish: {job}"
        time.sleep(0.5)


def _wait_caught_up(runtime: Runtime, topic: str, group: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = runtime.admin.describe(topic, group)
        if all(p.lag == 0 for p in info.partitions):
            return
        time.sleep(1)
    raise AssertionError(f"consumer group {group} still lags on {topic}: {runtime.admin.describe(topic, group)}")


def test_every_event_arrives_exactly_once_across_rescale_and_savepoint_restart(clean_jobs: Runtime,
                                                                              tmp_path: Path) -> None:
    runtime = clean_jobs
    topic = runtime.topic(partitions=4)
    events = tmp_path / "events"
    job_id, options = runtime.clickstream(topic, cost_us=20, events_dir=f"file://{events}",
                                          agg_dir=f"file://{tmp_path / 'agg'}")
    generator = LoadGenerator(runtime.broker.bootstrap, topic, zipf_s=1.2, seed=7)
    load = threading.Thread(target=generator.run, args=([2_000] * 75,))
    load.start()
    try:
        # The REST API describes the running job: two vertices joined by a keyed edge, and live rates.
        job = runtime.wait_running(job_id)
        source, aggregate = (v.id for v in job.vertices)
        assert [e.ship_strategy.value for e in job.edges] == ["HASH"]
        collector = Collector(runtime.rest, job_id)
        collector.sample()
        deadline = time.monotonic() + 60  # the source needs a few seconds to assign partitions and fetch
        while True:
            time.sleep(3)
            snapshot = collector.sample()
            assert snapshot is not None and snapshot.vertex(source).is_source
            if (snapshot.vertex(source).metrics.num_records_in_per_second or 0) > 500:
                break
            assert time.monotonic() < deadline, f"no records flow: {snapshot.vertex(source).metrics}"
        assert snapshot.vertex(source).partitions == 4

        seconds = _rescale_in_place(runtime, job_id, {source: 2, aggregate: 2})
        print(f"in-place rescale to 2: {seconds:.1f}s")
        time.sleep(8)
        savepoint = runtime.stop(job_id)
        # Resubmit the same graph (same base parallelism keeps SQL operator ids) and rescale it in place.
        restarted = submit_clickstream(runtime.cluster, options, parallelism=1, savepoint=savepoint).job_id
        runtime.wait_running(restarted)
        assert runtime.rest.checkpoints(restarted).latest_restored_id is not None
        _rescale_in_place(runtime, restarted, {source: 1, aggregate: 2})
    finally:
        load.join()
        generator.close()
    _wait_caught_up(runtime, topic, options.group)
    time.sleep(6)  # one more checkpoint after the last record
    runtime.rest.wait_savepoint(restarted, runtime.rest.trigger_stop_with_savepoint(restarted, drain=True))
    runtime.rest.wait_job_state(restarted, ["FINISHED"])

    ids = _committed_event_ids(events)
    produced = generator.manifest
    assert produced.produced > 100_000
    assert sum(ids.values()) == produced.produced, "duplicates or losses"
    assert set(ids) == set(range(produced.first_id, produced.next_id))


def _processes_naming(path: Path) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if str(path).encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _tmp_entries() -> set[str]:
    return {p.name for p in Path("/tmp").iterdir()
            if p.name.startswith(("flink-", "hsperfdata", "jm_", "tm_", "python-dist", "blobStore"))}


def test_cluster_up_and_down_three_times_leaves_nothing_behind(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    emitted = tmp_path / "plan"
    assert main(["plan", str(REPO / "examples/workloads/local-demo.yaml"), "--emit", str(emitted)]) == 0
    before = _tmp_entries()
    for round_ in range(3):
        state = tmp_path / f"state{round_}"
        extra = ["--config", str(emitted / "config.yaml")] if round_ == 0 else []
        assert main(["cluster", "up", "--rest-port", "0", "--state-dir", str(state), *extra]) == 0
        assert main(["kafka", "up", "--port", "0", "--state-dir", str(state)]) == 0
        info = LocalCluster(state).info()
        assert info is not None
        if round_ == 0:  # the planned configuration is what the cluster runs with
            from flinkscale.flink.rest import FlinkRestClient

            config = FlinkRestClient(info.rest_url).config()
            planned = {k: v for k, v in (line.split(": ", 1) for line in (emitted / "config.yaml").read_text()
                                         .splitlines() if line.startswith("execution.checkpointing.interval"))}
            for key, value in planned.items():
                assert config[key].replace(" ", "") == value.strip().strip("'\"").replace(" ", "")
        assert _processes_naming(state)
        assert main(["kafka", "down", "--state-dir", str(state)]) == 0
        assert main(["cluster", "down", "--state-dir", str(state)]) == 0
        assert _processes_naming(state) == []
        assert not list((state / "pid").glob("*.pid"))
        assert not (state / "tmp").exists()
        # RocksDB's own short dir (the other lane's clusters make theirs meanwhile: only this one's is checked)
        assert not LocalCluster(state).rocksdb_dir.exists()
    assert _tmp_entries() - before == set()
    capsys.readouterr()


def _one_line_error(capsys: pytest.CaptureFixture[str], code: int, expected_code: int, text: str) -> None:
    err = capsys.readouterr().err.strip()
    assert code == expected_code
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert text in err


def test_bad_input_gets_one_line_and_a_non_zero_exit(runtime: Runtime, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    state = ["--state-dir", str(runtime.state_dir)]
    _one_line_error(capsys, main(["job", "stop", "0123456789abcdef0123456789abcdef", *state]), 2, "not found")
    _one_line_error(capsys, main(["job", "list", "--rest", "http://127.0.0.1:1"]), 2, "http://127.0.0.1:1")
    _one_line_error(capsys, main(["job", "submit", "clickstream", "--kafka-jars", str(tmp_path / "none"), *state]),
                    2, "--kafka-jars")
    empty = tmp_path / "jars"
    empty.mkdir()
    _one_line_error(capsys, main(["job", "submit", "clickstream", "--kafka-jars", str(empty), *state]),
                    2, "flink-connector-kafka")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        _one_line_error(capsys, main(["cluster", "up", "--rest-port", str(port), "--state-dir",
                                      str(tmp_path / "s1")]), 2, f"port {port} is already in use")
        _one_line_error(capsys, main(["kafka", "up", "--port", str(port), "--state-dir", str(tmp_path / "s2")]),
                        2, f"port {port} is already in use")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-java"))
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(home, "JVM_ROOT", tmp_path / "no-jvm")
    _one_line_error(capsys, main(["cluster", "up", "--rest-port", "0", "--state-dir", str(tmp_path / "s3")]),
                    1, "no Java found")
    assert _processes_naming(tmp_path) == []
