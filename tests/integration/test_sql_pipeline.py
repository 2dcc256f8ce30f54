"""The reference SQL pipeline (``clickstream-sql``) on the real cluster, with the Java shedding library.

One job, submitted through the Table API (no Python at run time), goes through two phases:

1. p = 1 on its control topic, a rescale in place (1 -> 2 subtasks) while events flow: the exactly-once
   filesystem sink holds every produced event exactly once;
2. ``flinkscale shed set --keep 0.5`` (the CLI, on the same control topic the PyFlink path uses): the Java
   function keeps exactly the events that Python's ``keep_by_key_hash(event_id, 0.5)`` keeps (the same
   protocol: crc32 of the id's text, threshold round(p x 10000)), the kept fraction is about 0.5, and per
   window the Horvitz-Thompson estimates in the window rows add up to 2 x the kept events seen by the events
   sink and lie within 4 standard errors of the true counts in the load generator's manifest.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from flinkscale.cli import main as cli_main
from flinkscale.kafka.control import ControlChannel
from flinkscale.kafka.loadgen import LoadGenerator
from flinkscale.pipelines.clickstream_sql import SqlClickstreamOptions
from flinkscale.pipelines.launch import submit_clickstream_sql
from flinkscale.pipelines.shedding import keep_by_key_hash
from tests.integration.conftest import Runtime
from tests.integration.test_runtime import _committed_event_ids, _rescale_in_place, _wait_caught_up
from tests.integration.test_shedding import read_rows, window_epoch

pytestmark = pytest.mark.integration

WINDOW_SECONDS = 5


def keep_probability_metric(runtime: Runtime, job_id: str) -> set[float]:
    """The keepProbability gauge of every shedding function instance (operator metrics, read over REST)."""
    values: set[float] = set()
    for vertex in runtime.rest.job(job_id).vertices:
        names = [n for n in runtime.rest.vertex_metric_names(job_id, vertex.id)
                 if n.endswith("flinkscale_shedding.keepProbability")]
        if names:
            for metric in runtime.rest.vertex_metrics(job_id, vertex.id, names, "min,max").values():
                values.update(v for v in (metric.min, metric.max) if v is not None)
    return values


def wait_for_keep_probability(runtime: Runtime, job_id: str, p: float, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    seen: set[float] = set()
    while time.monotonic() < deadline:
        seen = keep_probability_metric(runtime, job_id)
        if seen == {p}:
            return
        time.sleep(1)
    raise AssertionError(f"the job's shedding functions report p = {seen}, not {p}")


def per_window_truth(generator: LoadGenerator) -> dict[int, int]:
    truth: dict[int, int] = defaultdict(int)
    for (_user, window), (count, _size) in generator.manifest.per_window.items():
        truth[window] += count
    return truth


def test_sql_pipeline_is_exactly_once_across_a_rescale_and_sheds_on_the_control_topic(
        clean_jobs: Runtime, tmp_path: Path) -> None:
    runtime = clean_jobs
    topic = runtime.topic(partitions=2)
    control = runtime.unique("shed-control")
    channel = ControlChannel(runtime.broker.bootstrap, control)
    channel.publish(1.0)
    channel.close()
    events, agg = tmp_path / "events", tmp_path / "agg"
    options = SqlClickstreamOptions(bootstrap=runtime.broker.bootstrap, topic=topic, group=runtime.unique("group"),
                                    events_dir=f"file://{events}", agg_dir=f"file://{agg}", cost_rounds=20,
                                    window_seconds=WINDOW_SECONDS, shed_control_topic=control)
    job_id = submit_clickstream_sql(runtime.cluster, options).job_id
    job = runtime.wait_running(job_id)
    assert [e.ship_strategy.value for e in job.edges] == ["HASH"]  # source+calc -> keyed window
    wait_for_keep_probability(runtime, job_id, 1.0)

    # Phase 1: everything kept, a rescale in place while events flow.
    generator = LoadGenerator(runtime.broker.bootstrap, topic, users=200, seed=5, window_seconds=WINDOW_SECONDS)
    load = threading.Thread(target=generator.run, args=([400] * 30,))
    load.start()
    try:
        time.sleep(8)
        _rescale_in_place(runtime, job_id, {v.id: 2 for v in job.vertices})
    finally:
        load.join()
    phase1 = (generator.manifest.first_id, generator.manifest.next_id)
    _wait_caught_up(runtime, topic, options.group)

    # Phase 2: the CLI halves p; the job picks it up (its gauge says so) before new events arrive.
    assert cli_main(["shed", "set", "--topic", control, "--keep", "0.5",
                     "--bootstrap", runtime.broker.bootstrap]) == 0
    wait_for_keep_probability(runtime, job_id, 0.5)
    generator.run([400] * 20)
    generator.close()
    _wait_caught_up(runtime, topic, options.group)
    time.sleep(6)  # a checkpoint after the last record commits the sinks' files
    runtime.rest.wait_savepoint(job_id, runtime.rest.trigger_stop_with_savepoint(job_id, drain=True))
    runtime.rest.wait_job_state(job_id, ["FINISHED"])

    ids = _committed_event_ids(events)
    assert max(ids.values()) == 1, "an event was written twice"
    assert {i for i in ids if i < phase1[1]} == set(range(*phase1)), "phase 1 lost events"
    phase2 = range(phase1[1], generator.manifest.next_id)
    kept = {i for i in ids if i >= phase1[1]}
    expected = {i for i in phase2 if keep_by_key_hash(str(i), 0.5)}
    assert kept == expected, (f"the Java function kept {len(kept)} events, Python's rule predicts {len(expected)} "
                              f"({len(kept ^ expected)} differ)")
    assert 0.45 < len(kept) / len(phase2) < 0.55

    # The weights: per window, SUM(weight) = kept events x their weight (1 in phase 1, 2 in phase 2), and the
    # estimate is within 4 standard errors (its own variance estimate) of the truth.
    event_rows = [json.loads(line) for part in events.rglob("part-*") for line in part.read_text().splitlines()]
    expected_estimate: Counter[int] = Counter()
    for row in event_rows:
        window = row["event_time"] // 1000 // WINDOW_SECONDS * WINDOW_SECONDS
        expected_estimate[window] += 2 if row["event_id"] >= phase1[1] else 1
    estimates: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for row in read_rows(agg):
        window = window_epoch(row["window_start"])
        estimates[window][0] += row["clicks_estimate"]
        estimates[window][1] += row["clicks_variance"]
    truth = per_window_truth(generator)
    assert set(estimates) == set(truth)
    report: list[str] = []
    for window, (estimate, variance) in sorted(estimates.items()):
        report.append(f"{window}: estimate {estimate:.0f} true {truth[window]} se {math.sqrt(variance):.1f}")
        assert estimate == pytest.approx(expected_estimate[window]), report
        assert abs(estimate - truth[window]) <= 4 * math.sqrt(variance) + 1e-9, report
    print("\n" + "\n".join(report))
    assert any(variance > 0 for _, variance in estimates.values()), "no window was shed"
