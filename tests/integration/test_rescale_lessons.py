"""The operator's lessons on the real cluster: the rescale wait from the job's own settings and the duration from
Flink 2.3's rescale history. (Incomplete counters and tasks not RUNNING are tested in tests/unit/flink over
responses recorded from such a cluster: a live job shows them only for a second or two, at no predictable time.)

One embedded cluster with the rescale history on (``web.adaptive-scheduler.rescale-history.size``), one pure
Flink SQL job (datagen -> keyed tumbling window -> blackhole) checkpointing every 5 s; no broker needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flinkscale.flink.cluster import ClusterSpec, LocalCluster
from flinkscale.flink.executor import Executor
from flinkscale.flink.rest import FlinkRestClient
from flinkscale.flink.submit import submit_sql_script

pytestmark = pytest.mark.integration

SQL = """\
SET 'execution.checkpointing.interval' = '5s';
CREATE TABLE src (k INT, v BIGINT, ts AS PROCTIME()) WITH (
  'connector' = 'datagen', 'rows-per-second' = '2000',
  'fields.k.min' = '0', 'fields.k.max' = '999', 'fields.v.min' = '0', 'fields.v.max' = '1000');
CREATE TABLE sink (k INT, c BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO sink SELECT k, COUNT(*) FROM TABLE(TUMBLE(TABLE src, DESCRIPTOR(ts), INTERVAL '2' SECOND))
GROUP BY k, window_start, window_end;
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCluster, FlinkRestClient, Path]]:
    state_dir = tmp_path_factory.mktemp("flinkscale-lessons")
    local = LocalCluster(state_dir)
    try:
        info = local.up(ClusterSpec(task_managers=1, slots_per_task_manager=2, rest_port=0, extra_config={
            "jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling": "5 s",
            "web.adaptive-scheduler.rescale-history.size": "10"}))
        yield local, FlinkRestClient(info.rest_url), state_dir
    finally:
        local.down()


def test_a_rescale_waits_the_jobs_own_time_and_takes_flinks_duration(
        cluster: tuple[LocalCluster, FlinkRestClient, Path]) -> None:
    local, rest, state_dir = cluster
    script = state_dir / "window.sql"
    script.write_text(SQL)
    job_id = submit_sql_script(local, script, [], parallelism=1).job_id
    details = rest.wait_all_running(job_id, 120)
    events: list[tuple[str, str]] = []
    executor = Executor(rest, job_id, event=lambda kind, message: events.append((kind, message)))
    window = details.vertices[-1].id
    record = executor.rescale_in_place({window: 2})
    assert dict(record.new_parallelism)[window] == 2
    (wait,) = [m for k, m in events if k == "rescale-wait"]
    # Flink 2.3 reports the trigger's max delay in force: 3 checkpoint intervals by default
    assert "trigger delay 15 s (rescale-trigger.max-delay = 3 x checkpoint interval 5 s)" in wait
    assert "cooldown 5 s" in wait
    assert "rescales/config" in wait
    (history,) = [m for k, m in events if k == "rescale-history"]
    entries = rest.rescale_history(job_id)
    assert entries, "the cluster keeps a rescale history"
    seen = [(e.trigger_cause, e.terminal_state, e.duration_seconds) for e in entries]
    assert any(e.trigger_cause == "UPDATE_REQUIREMENT" for e in entries), f"our request is not in it: {seen}"
    # The rescale that brought the job back to running: our request's, or, when the scheduler had to wait for the
    # slot or a task failed on a loaded machine, the one Flink records as NEW_RESOURCE_AVAILABLE or
    # RECOVERABLE_FAILOVER after it (a CI run saw that); the executor takes the newest completed one there is.
    newest = max((e for e in entries if e.terminal_state == "COMPLETED" and e.trigger_cause != "INITIAL_SCHEDULE"),
                 key=lambda e: e.end_ms or 0.0, default=None)
    assert newest is not None and newest.duration_seconds is not None, seen
    assert record.duration_seconds == pytest.approx(newest.duration_seconds)
    assert f"{newest.duration_seconds:.1f}s" in history
    rest.cancel(job_id)
