"""Quotas and JSON logs of ``flinkscale autoscale --all-jobs`` on the embedded cluster.

One pure Flink SQL job (datagen -> keyed aggregation -> blackhole, no Kafka) runs at parallelism 1 on the
module's cluster of one-slot TaskManagers. The daemon runs as a real process with ``--quota-cpu 1`` and
``--log-format json`` (dry run): the TaskManager size comes from the real cluster's configuration
(``GET /jobs/:jid/jobmanager/config``: one slot, so one core per slot by Flink's standalone default), so the
quota admits exactly one slot; the stored decisions name that bound, and every stderr line is a JSON object
naming the job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flinkscale.flink.submit import submit_sql_script
from flinkscale.store import StateStore
from tests.integration.conftest import Runtime
from tests.integration.test_autoscale import STEP_SETTINGS

pytestmark = pytest.mark.integration

SQL = """SET 'pipeline.name' = 'sql-quota-datagen';
SET 'execution.checkpointing.interval' = '5 s';
CREATE TABLE orders (user_id INT, amount INT) WITH (
  'connector' = 'datagen', 'rows-per-second' = '200',
  'fields.user_id.min' = '1', 'fields.user_id.max' = '50', 'fields.amount.min' = '1', 'fields.amount.max' = '100'
);
CREATE TABLE totals (user_id INT, total BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO totals SELECT user_id, SUM(CAST(amount AS BIGINT)) FROM orders GROUP BY user_id;
"""


def test_a_cluster_cpu_quota_is_a_one_slot_ceiling_named_in_decisions_and_json_logs(
        clean_jobs: Runtime, tmp_path: Path) -> None:
    runtime = clean_jobs
    script = tmp_path / "quota.sql"
    script.write_text(SQL)
    job_id = submit_sql_script(runtime.cluster, script, []).job_id
    runtime.wait_running(job_id)
    config = tmp_path / "autoscale.yaml"
    config.write_text(yaml.safe_dump({"defaults": {"policy": "flinkscale", "settings": STEP_SETTINGS["flinkscale"]}}))
    state_url = f"sqlite:///{tmp_path / 'autoscale.db'}"
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run(
        [sys.executable, "-m", "flinkscale", "autoscale", "--all-jobs", "--rest", runtime.info.rest_url,
         "--state-dir", str(runtime.state_dir), "--state", state_url, "--config", str(config), "--dry-run",
         "--quota-cpu", "1", "--log-format", "json", "--interval", "5s", "--duration", "60s"],
        capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(line) for line in done.stderr.splitlines()]  # every stderr line is one JSON object
    assert done.stdout == ""  # JSON mode: everything goes to the log
    events = [r["event"] for r in records]
    assert events[0] == "daemon.start" and events[-1] == "daemon.stopped" and "daemon.cycle" in events
    discovered = [r for r in records if r["event"] == "job.discovered" and r.get("job_id") == job_id]
    assert len(discovered) == 1 and discovered[0]["job_name"] == "sql-quota-datagen"
    assert all({"ts", "level", "event", "message"} <= set(r) for r in records)

    with StateStore.open(state_url) as store:
        decisions = store.decisions(job_id)
    assert decisions, "no decision within 60 s"
    reasons = [v.reason for d in decisions for v in d.vertices]
    assert any("ceiling 1 slot: quota.cpu 1 core / 1 core per slot = 1 TaskManager (from cli)" in r
               for r in reasons), reasons[-3:]
    assert all(v.new_parallelism <= 1 for d in decisions for v in d.vertices)
