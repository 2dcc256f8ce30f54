"""A stateful job scales down in place on a cluster whose state dir path is neither short nor very long.

Flink writes each RocksDB instance's LOG file into its own log dir, under a name made of the instance's whole
path, flattened. It checks that the instance path leaves room for that name (a path over 251 characters keeps its
LOG beside the database), but a restore that merges several subtasks' incremental state opens a temporary
instance per state handle one directory deeper, unchecked. With a state dir of 53 characters (pytest's temp dirs
are about that long) the name came to 259 characters, over the 255 a file name may have: every restore of the
scaled-down job failed ("File name too long") and the job restarted forever. Measured before the fix: exactly
this test, with the state dir at 37 characters, passed; at 53 it failed that way.

The local cluster now keeps RocksDB's working dirs in a short dir of its own (flink/cluster.py). This test runs
the restore that failed: the Java keyed job (RocksDB, incremental checkpoints) at p=2, rescaled in place to p=1
by the adaptive scheduler.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flinkscale.flink.cluster import ClusterSpec, LocalCluster
from flinkscale.flink.rest import FlinkRestClient
from flinkscale.kafka.admin import TopicAdmin
from flinkscale.kafka.broker import EmbeddedBroker
from flinkscale.kafka.loadgen import LoadGenerator
from flinkscale.pipelines.launch import KeyedClicksJavaOptions, submit_keyed_clicks_java

pytestmark = pytest.mark.integration


STATE_DIR_LENGTH = 53  # where the failure was (see the docstring)


@pytest.fixture()
def deep_cluster() -> Iterator[tuple[LocalCluster, FlinkRestClient, str]]:
    base = Path(tempfile.mkdtemp(prefix="fs-deep-"))
    state = base / ("x" * (STATE_DIR_LENGTH - len(str(base)) - 1))
    assert len(str(state)) == STATE_DIR_LENGTH
    cluster, broker = LocalCluster(state), EmbeddedBroker(state)
    try:
        info = cluster.up(ClusterSpec(task_managers=1, slots_per_task_manager=2, rest_port=0))
        bootstrap = broker.up(port=0).bootstrap
        yield cluster, FlinkRestClient(info.rest_url), bootstrap
    finally:
        cluster.down()
        broker.down()
        shutil.rmtree(base, ignore_errors=True)
    assert not cluster.rocksdb_dir.exists()


@pytest.mark.timeout(600)
def test_a_keyed_rocksdb_job_scales_down_in_place_whatever_the_state_dirs_length(
        deep_cluster: tuple[LocalCluster, FlinkRestClient, str], tmp_path: Path) -> None:
    cluster, rest, bootstrap = deep_cluster
    TopicAdmin(bootstrap).create_topic("keyed", 2)
    options = KeyedClicksJavaOptions(bootstrap=bootstrap, topic="keyed", out=f"file://{tmp_path / 'out'}",
                                     checkpoint_interval_ms=2000)
    job = submit_keyed_clicks_java(cluster, options, parallelism=2).job_id
    rest.wait_all_running(job, timeout=180)
    stop = threading.Event()
    load = threading.Thread(target=LoadGenerator(bootstrap, "keyed", users=2_000, seed=5).run,
                            args=([200] * 600,), kwargs={"stop": stop}, daemon=True)
    load.start()
    try:
        _wait_checkpoint_with_state(rest, job)
        restored_before = rest.checkpoints(job).restored
        # p=2 -> 1 in place: the restore merges two subtasks' incremental RocksDB state (a temporary instance
        # per state handle, one directory deeper than the job's own).
        rest.set_resource_requirements(job, {v.id: (1, 1) for v in rest.job(job).vertices})
        deadline = time.monotonic() + 180
        while any(v.parallelism != 1 for v in rest.job(job).vertices) and time.monotonic() < deadline:
            time.sleep(1.0)
        rest.wait_all_running(job, timeout=180)
        _wait_checkpoint_with_state(rest, job)
        assert rest.checkpoints(job).restored == restored_before + 1  # restored once, not failing and retrying
        assert rest.job_exceptions(job) == []
        assert {v.parallelism for v in rest.job(job).vertices} == {1}
        rest.wait_savepoint(job, rest.trigger_stop_with_savepoint(job))
    finally:
        stop.set()
        load.join(timeout=30)


def _wait_checkpoint_with_state(rest: FlinkRestClient, job: str, timeout: float = 180.0) -> None:
    """Until a checkpoint completes after the job has records in its state."""
    deadline = time.monotonic() + timeout
    first = rest.checkpoints(job).completed
    while time.monotonic() < deadline:
        stats = rest.checkpoints(job)
        if stats.completed >= first + 2 and (stats.state_size_avg or 0) > 0:
            return
        assert stats.failed == 0 or rest.job_exceptions(job) == [], rest.job_exceptions(job)
        time.sleep(1.0)
    raise AssertionError(f"job {job}: no checkpoint with state within {timeout:.0f} s")
