"""Three jobs under one ``flinkscale autoscale --all-jobs`` daemon on the embedded cluster, killed and restarted.

The reference clickstream pipeline (PyFlink, a Python UDF: one source subtask saturates at a few thousand
events/s here) and two pure Flink SQL jobs written below (Kafka source, a keyed tumbling window, a blackhole
sink) run at parallelism 1, each on its own topic. The daemon runs as a real process (``python -m flinkscale``)
with its state in a SQLite store. A rate step on the clickstream topic must rescale that job only. The daemon is
SIGKILLed mid-run and started again on the same store: every job's history continues from it, and no decision is
applied twice (every carried-out intent starts from the parallelism the previous one reached).

CPU: three jobs on 3 one-slot TaskManagers (a third is started for the third job); the executor may add a fourth
for the scale-up (--max-task-managers 4: 2 slots per core at most).
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from flinkscale.core.errors import EndpointError
from flinkscale.flink.submit import submit_sql_script
from flinkscale.kafka.loadgen import LoadGenerator
from flinkscale.pipelines.launch import kafka_connector_jars
from flinkscale.store import StateStore
from tests.integration.conftest import Runtime
from tests.integration.test_autoscale import STEP_SETTINGS

pytestmark = pytest.mark.integration

LOW, HIGH, SQL_RATE = 1_000, 7_500, 200
LOW_SECONDS, HIGH_SECONDS = 40, 300
KILL_AFTER_SECONDS = 120  # after the daemon's start: mid high-rate phase
# A loaded 2-core machine takes a minute to start and register a TaskManager for the scale-up.
RESCALE_WAIT_SECONDS = 240


def keyed_window_sql(name: str, topic: str, bootstrap: str, group: str) -> str:
    return f"""SET 'pipeline.name' = '{name}';
SET 'execution.checkpointing.interval' = '5 s';
SET 'table.exec.source.idle-timeout' = '0 s';
CREATE TABLE clicks (
  event_id BIGINT, user_id STRING, url STRING, size_bytes INT, event_time BIGINT,
  ts AS TO_TIMESTAMP_LTZ(event_time, 3),
  WATERMARK FOR ts AS ts - INTERVAL '2' SECOND
) WITH (
  'connector' = 'kafka', 'topic' = '{topic}', 'properties.bootstrap.servers' = '{bootstrap}',
  'properties.group.id' = '{group}', 'scan.startup.mode' = 'earliest-offset', 'format' = 'json',
  'json.ignore-parse-errors' = 'true'
);
CREATE TABLE per_user (user_id STRING, window_start TIMESTAMP(3), clicks BIGINT, total_bytes BIGINT)
  WITH ('connector' = 'blackhole');
INSERT INTO per_user
SELECT user_id, window_start, COUNT(*), SUM(CAST(size_bytes AS BIGINT))
FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '5' SECOND))
GROUP BY user_id, window_start, window_end;
"""


def start_daemon(runtime: Runtime, state_url: str, config: Path, log: Path) -> subprocess.Popen[bytes]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "flinkscale", "autoscale", "--all-jobs", "--rest", runtime.info.rest_url,
             "--state-dir", str(runtime.state_dir), "--state", state_url, "--config", str(config),
             "--interval", "5s", "--max-task-managers", "4"], stdout=out, stderr=subprocess.STDOUT, env=env)


def test_three_jobs_one_daemon_a_step_rescales_that_job_only_and_a_sigkill_loses_nothing(
        clean_jobs: Runtime, tmp_path: Path) -> None:
    runtime = clean_jobs
    runtime.cluster.start_task_managers(1)  # three one-slot jobs
    runtime.cluster.set_task_manager_count(3)
    topics = [runtime.topic(partitions=2, prefix=p) for p in ("clicks", "orders", "views")]
    stop = threading.Event()
    generators = [LoadGenerator(runtime.broker.bootstrap, t, seed=21 + i) for i, t in enumerate(topics)]
    rates = [[LOW] * LOW_SECONDS + [HIGH] * HIGH_SECONDS + [LOW] * 120,
             [SQL_RATE] * 600, [SQL_RATE] * 600]
    # 100 us of Python per event on the enriched-events branch, as in the step test (the cost sits in that
    # branch's UDF: without an events sink the job had no Python stage and kept up with 7,500 ev/s at p=1).
    clickstream, _ = runtime.clickstream(topics[0], cost_us=100, events_dir=f"file://{tmp_path / 'events'}")
    jars = kafka_connector_jars(runtime.cluster.state_dir, None)
    sql_jobs = []
    for name, topic in (("sql-orders-window", topics[1]), ("sql-views-window", topics[2])):
        script = tmp_path / f"{name}.sql"
        script.write_text(keyed_window_sql(name, topic, runtime.broker.bootstrap, runtime.unique(name)))
        sql_jobs.append(submit_sql_script(runtime.cluster, script, jars).job_id)
    for job in (clickstream, *sql_jobs):
        runtime.wait_running(job)
    def produce(generator: LoadGenerator, rates: list[int]) -> None:
        try:
            generator.run(rates, stop=stop)
        except EndpointError:  # records still in flight when the test stops the load: not what it checks
            if not stop.is_set():
                raise

    loads = [threading.Thread(target=produce, args=(g, r), daemon=True)
             for g, r in zip(generators, rates, strict=True)]
    for load in loads:
        load.start()

    config = tmp_path / "autoscale.yaml"
    config.write_text(yaml.safe_dump({"defaults": {"policy": "flinkscale", "settings": STEP_SETTINGS["flinkscale"]}}))
    state_url = f"sqlite:///{tmp_path / 'state' / 'autoscale.db'}"
    log = tmp_path / "daemon.log"
    timeline: list[str] = []
    begun = time.monotonic()

    def mark(what: str) -> None:
        timeline.append(f"+{time.monotonic() - begun:5.0f}s {what}")

    daemon = start_daemon(runtime, state_url, config, log)
    mark(f"daemon 1 started (pid {daemon.pid})")
    try:
        time.sleep(KILL_AFTER_SECONDS)
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=30)
        mark("daemon 1 SIGKILLed")
        first_log = log.read_text()
        with StateStore.open(state_url) as store:
            before = {job: len(store.decisions(job)) for job in (clickstream, *sql_jobs)}
        daemon = start_daemon(runtime, state_url, config, log)
        mark(f"daemon 2 started (pid {daemon.pid})")
        deadline = time.monotonic() + RESCALE_WAIT_SECONDS
        while time.monotonic() < deadline and daemon.poll() is None:  # until the step's rescale is recorded
            time.sleep(5)
            with StateStore.open(state_url) as store:
                if any(i.status == "done" for i in store.intents(clickstream)):
                    mark("the clickstream rescale is done (its intent finished in the store)")
                    break
        time.sleep(20)  # a few more cycles: every job keeps being decided on
        daemon.send_signal(signal.SIGINT)
        daemon.wait(timeout=300)
        mark("daemon 2 stopped (SIGINT)")
    finally:
        if daemon.poll() is None:
            daemon.kill()
        stop.set()
        for load in loads:
            load.join(timeout=30)
    second_log = log.read_text()[len(first_log):]
    print("\n" + "\n".join(timeline))
    print(second_log[-3000:])

    with StateStore.open(state_url) as store:
        rescales = {job: store.rescales(job) for job in (clickstream, *sql_jobs)}
        intents = {job: store.intents(job) for job in (clickstream, *sql_jobs)}
        after = {job: len(store.decisions(job)) for job in (clickstream, *sql_jobs)}
        for record in rescales[clickstream]:
            print(f"rescale {dict(record.old_parallelism)} -> {dict(record.new_parallelism)} "
                  f"in {record.duration_seconds:.1f}s")
    for intent in intents[clickstream]:
        print(f"intent {dict(intent.previous_parallelism)} -> {dict(intent.target_parallelism)}: {intent.status} "
              f"({intent.note or ''})")
    # The step rescaled the clickstream job up, and only it. A kill after Flink applied the rescale but before
    # the daemon recorded it leaves a done intent (reconciled as applied) and no measured rescale record.
    done = [i for i in intents[clickstream] if i.status == "done"]
    assert done, f"the clickstream job was not rescaled: {second_log[-2000:]}"
    assert max(max(i.target_parallelism.values()) for i in done) >= 2
    assert max(v.parallelism for v in runtime.rest.job(clickstream).vertices) >= 2
    for job in sql_jobs:
        assert rescales[job] == () and intents[job] == (), f"SQL job {job} was rescaled"
    # The restarted daemon continued every job's history from the store and kept deciding.
    assert second_log.count("history continues from the store") == 3, second_log[-2000:]
    assert all(after[job] > before[job] > 0 for job in after)
    # No decision applied twice: each carried-out intent starts where the previous one ended.
    for previous, current in itertools.pairwise(done):
        assert dict(current.previous_parallelism) == dict(previous.target_parallelism)
    assert len(rescales[clickstream]) <= len(done)
    assert not [i for i in intents[clickstream] if i.status == "pending"]
