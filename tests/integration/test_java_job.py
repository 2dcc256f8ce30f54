"""A Java DataStream job (``java/jobs``, built by ``make java``) under profile and a rescale, like any other job.

The job reads clicks from Kafka, keys them by user and counts them in a keyed process function with state
(RocksDB, TTL) that burns 300 us per event, then writes every event to an exactly-once file sink. Under
1,000 ev/s of load:

* ``flinkscale profile`` (REST only) finds the job's keyed edge and names the keyed process vertex, where the
  cost is, as the bottleneck, with a sustainable rate consistent with 300 us per event;
* ``flinkscale job rescale`` (the adaptive scheduler's in-place rescale, the autoscaler's executor path)
  takes the keyed vertex to 2 subtasks while events flow, and the sink then holds every event exactly once,
  with each user's running count continuing from its state (the count of a user's last event = its events).
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from flinkscale.cli import main
from flinkscale.kafka.loadgen import LoadGenerator
from flinkscale.pipelines.launch import KeyedClicksJavaOptions, submit_keyed_clicks_java
from tests.integration.conftest import Runtime
from tests.integration.test_runtime import _wait_caught_up

pytestmark = pytest.mark.integration
COST_US = 300.0


def test_java_job_is_profiled_and_rescaled_exactly_once(clean_jobs: Runtime, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    runtime = clean_jobs
    topic = runtime.topic(partitions=2)
    out = tmp_path / "events"
    options = KeyedClicksJavaOptions(bootstrap=runtime.broker.bootstrap, topic=topic, out=f"file://{out}",
                                     group=runtime.unique("group"), cost_us=COST_US)
    job_id = submit_keyed_clicks_java(runtime.cluster, options).job_id
    job = runtime.wait_running(job_id)
    keyed = [e for e in job.edges if e.ship_strategy.value == "HASH"]
    assert len(keyed) == 1, job.edges
    keyed_vertex = keyed[0].target
    generator = LoadGenerator(runtime.broker.bootstrap, topic, users=300, seed=21)
    load = threading.Thread(target=generator.run, args=([1_000] * 75,))
    load.start()
    try:
        time.sleep(12)  # past the first checkpoint and the first (stale) metric reads
        capsys.readouterr()
        assert main(["profile", "--rest", runtime.info.rest_url, "--job", job_id, "--window", "20s",
                     "--interval", "5s", "--format", "json"]) == 0
        document: dict[str, Any] = json.loads(capsys.readouterr().out)
        analysis = document["analysis"]
        assert analysis["bottleneck"] == keyed_vertex, analysis["findings"]
        sustainable = analysis["max_sustainable_source_rate"]["value"]
        # 300 us of busy loop per event bounds one subtask near 3,300 ev/s; real overheads only lower it.
        assert 0 < sustainable < 1e6 / COST_US * 1.15, sustainable
        assert main(["job", "rescale", job_id, "--vertex", f"{keyed_vertex}=2",
                     "--rest", runtime.info.rest_url]) == 0
        assert runtime.rest.job(job_id).vertex(keyed_vertex).parallelism == 2
    finally:
        load.join()
        generator.close()
    _wait_caught_up(runtime, topic, options.group)
    time.sleep(6)  # one more checkpoint commits the last files
    runtime.rest.wait_savepoint(job_id, runtime.rest.trigger_stop_with_savepoint(job_id, drain=True))
    runtime.rest.wait_job_state(job_id, ["FINISHED"])

    rows = [json.loads(line) for part in out.rglob("part-*") for line in part.read_text().splitlines()]
    ids = Counter(row["event_id"] for row in rows)
    produced = generator.manifest
    assert sum(ids.values()) == produced.produced and set(ids) == set(range(produced.first_id, produced.next_id))
    per_user = Counter(row["user_id"] for row in rows)
    last_count: dict[str, int] = {}
    for row in rows:
        last_count[row["user_id"]] = max(last_count.get(row["user_id"], 0), row["user_count"])
    assert last_count == dict(per_user), "keyed state was lost or double counted across the rescale"
