"""Reference pipeline throughput on the embedded cluster at parallelism 1 and 2 (ratio p2 / p1 in the same run).

Method: prefill a 4-partition topic with a backlog, start the clickstream job (events to a file sink, cost_us per
event in the Python enrichment), and measure the drain rate from the collector's counter deltas once the job runs
flat out: after a 10 s warm-up, the median over 5 s samples that end with records still waiting. p=2 runs on 2
TaskManagers x 1 slot, so each enrichment subtask has its own Python interpreter (thread mode shares one GIL per
TaskManager). Also prints cluster start and submit times.

Usage: python bench/pipeline_throughput.py [--cost-us 50] [--backlog 600000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from flinkscale.flink.cluster import ClusterSpec, LocalCluster
from flinkscale.flink.collector import Collector
from flinkscale.flink.rest import FlinkRestClient
from flinkscale.kafka.admin import TopicAdmin
from flinkscale.kafka.broker import EmbeddedBroker
from flinkscale.kafka.loadgen import LoadGenerator
from flinkscale.pipelines.launch import ClickstreamOptions, submit_clickstream

SAMPLES, SAMPLE_SECONDS = 8, 5.0


def drain_rate(cluster: LocalCluster, rest: FlinkRestClient, bootstrap: str, parallelism: int, cost_us: float,
               backlog: int, out: Path) -> tuple[float, float]:
    topic = f"bench-p{parallelism}"
    TopicAdmin(bootstrap).create_topic(topic, 4)
    LoadGenerator(bootstrap, topic, seed=parallelism).produce_count(backlog)
    options = ClickstreamOptions(bootstrap=bootstrap, topic=topic, group=f"bench-{parallelism}", cost_us=cost_us,
                                 events_dir=f"file://{out / topic}")
    submission = submit_clickstream(cluster, options, parallelism=parallelism)
    rest.wait_all_running(submission.job_id)
    collector = Collector(rest, submission.job_id)
    collector.sample()
    time.sleep(10)  # warm-up: partition assignment, first fetches, the JIT
    collector.sample()
    # Only intervals that end with records still waiting measure the job flat out: once the backlog is gone the
    # source reads only what trickles in.
    saturated: list[float] = []
    for _ in range(SAMPLES):
        time.sleep(SAMPLE_SECONDS)
        snapshot = collector.sample()
        if snapshot is None:
            continue
        source = snapshot.sources()[0].metrics
        if source.pending_records == 0:
            break
        saturated.append(source.num_records_in_per_second or 0.0)
    rest.wait_savepoint(submission.job_id, rest.trigger_stop_with_savepoint(submission.job_id))
    if not saturated:
        raise RuntimeError(f"p={parallelism}: the backlog was drained before a full sample: raise --backlog")
    return statistics.median(saturated), submission.seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cost-us", type=float, default=50.0)
    parser.add_argument("--backlog", type=int, default=600_000)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="fs-bench-"))
    cluster, broker = LocalCluster(state), EmbeddedBroker(state)
    try:
        started = time.monotonic()
        info = cluster.up(ClusterSpec(task_managers=2, slots_per_task_manager=1, rest_port=0))
        startup = time.monotonic() - started
        bootstrap = broker.up(port=0).bootstrap
        rest = FlinkRestClient(info.rest_url)
        rates = {p: drain_rate(cluster, rest, bootstrap, p, args.cost_us, args.backlog, state / "out") for p in (1, 2)}
    finally:
        cluster.down()
        broker.down()
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (2 cores)")
    print(f"cluster up (2 TaskManagers x 1 slot): {startup:.1f} s")
    for p, (rate, submit) in rates.items():
        print(f"p={p}: {rate:,.0f} events/s drained at cost_us={args.cost_us:g}; flink run -py took {submit:.1f} s")
    print(f"ratio p2/p1: {rates[2][0] / rates[1][0]:.2f} (ideal 2.00 with a free core per subtask)")


if __name__ == "__main__":
    main()
