"""The state store's share of one control cycle: write time for 1 job and for 200 jobs of 10 vertices.

A cycle writes, for every job, what the multi-job loop keeps: the snapshot (10 vertices with metrics), the
decision (10 vertex decisions with their numbers) and the load sample, then prunes. The whole cycle is
one transaction (``StateStore.batch()``, as the daemon will run it); for comparison the same 200-job cycle
is also timed with one transaction per write, which is what a naive loop would do. Each figure is the
median over several cycles, wall and CPU, and is printed as a ratio to the 1-job cycle measured in the same
run, so the ratio does not depend on how busy the machine is. Writes are linear in jobs x vertices.

The whole control cycle (``--daemon``, the default part after the store figures): the multi-job daemon
(``flinkscale.app.multijob``, dry run, the ``flinkscale`` policy) over a REST stub that answers like the
recorded Flink 2.3 conversation in tests/fixtures/rest/collector_clickstream_step.json (the same bodies,
fanned out to J jobs of 10 vertices with counters that advance with a virtual clock). Per cycle: REST
calls (formula: 1 discovery + J x (V + S + 4) for V vertices and S sources a job: the job, each vertex's
counters, each source's lag, the overview, checkpoints and TaskManager metrics), wall and CPU, and the store
write time inside it, for 1 job and for 200, printed as ratios.
Run: ``.venv/bin/python bench/control_plane.py [--cycles N] [--state URL]`` (default: a temp SQLite file).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from flinkscale.app.multijob import DaemonConfig, MultiJobDaemon
from flinkscale.core.job_settings import AutoscaleConfig
from flinkscale.core.policy.base import Decision, VertexDecision
from flinkscale.core.snapshot import Edge, MetricsSnapshot, Vertex, VertexMetrics
from flinkscale.flink.collector import Collector
from flinkscale.flink.rest import FlinkRestClient
from flinkscale.store import CycleEntry, Retention, StateStore

VERTICES = 10


def snapshot(job_id: str, timestamp: float) -> MetricsSnapshot:
    ids = [f"{job_id}-v{i}" for i in range(VERTICES)]
    vertices = tuple(
        Vertex(vid, f"operator {i}", 4, 128, is_source=i == 0, is_sink=i == VERTICES - 1,
               metrics=VertexMetrics(num_records_in_per_second=1000.0 + i, num_records_out_per_second=990.0,
                                     num_bytes_in_per_second=1.2e5, num_bytes_out_per_second=1.1e5,
                                     busy_time_ms_per_second_max=600.0, busy_time_ms_per_second_avg=500.0,
                                     back_pressured_time_ms_per_second_max=0.0, idle_time_ms_per_second_avg=400.0,
                                     pending_records=12.0 if i == 0 else None))
        for i, vid in enumerate(ids))
    edges = tuple(Edge(a, b) for a, b in itertools.pairwise(ids))
    return MetricsSnapshot(timestamp, job_id, f"job {job_id}", vertices, edges)


def decision(snap: MetricsSnapshot) -> Decision:
    return Decision(snap.timestamp, "flinkscale", tuple(
        VertexDecision(v.id, v.name, v.parallelism, v.parallelism, "within bounds",
                       {"true_processing_rate": 2000.0, "target_rate": 1000.0, "utilization": 0.6})
        for v in snap.vertices))


def cycle(store: StateStore, jobs: list[str], now: float, mode: str) -> None:
    """mode: 'record_cycle' (the whole cycle in a few multi-row statements), 'batch' (a store call per write
    inside one transaction) or 'per-write' (a transaction per write)."""
    snapshots = [snapshot(job_id, now) for job_id in jobs]

    def write() -> None:
        if mode == "record_cycle":
            store.record_cycle([CycleEntry(s.job_id, s, decision(s), 1000.0) for s in snapshots])
        else:
            for snap in snapshots:
                store.add_snapshot(snap.job_id, snap)
                store.add_decision(snap.job_id, decision(snap))
                store.record_load(snap.job_id, now, 1000.0)
        store.prune(Retention(snapshot_seconds=3600), now=now)

    if mode == "per-write":
        write()
    else:
        with store.batch():
            write()


def measure(url: str, jobs: int, cycles: int, mode: str) -> tuple[float, float]:
    """Median wall and CPU seconds per cycle (the store is written for a few cycles first)."""
    clock: list[float] = [1_800_000_000.0]
    store = StateStore.open(url, clock=lambda: clock[0])
    names = [f"{i:032x}" for i in range(jobs)]
    walls, cpus = [], []
    try:
        for i in range(cycles + 2):
            wall, cpu = time.perf_counter(), time.process_time()
            cycle(store, names, clock[0], mode)
            if i >= 2:  # the first cycles warm caches and create rows
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
            clock[0] += 15.0
    finally:
        store.close()
    return statistics.median(walls), statistics.median(cpus)


RECORDING = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "rest" / "collector_clickstream_step.json"


class RestStub(httpx.MockTransport):
    """Flink's answers for ``jobs`` jobs of ``VERTICES`` vertices, from the recorded bodies (one source per job)."""

    def __init__(self, jobs: int, clock: list[float]) -> None:
        recorded = json.loads(RECORDING.read_text())

        def first(match: Callable[[dict[str, object]], bool]) -> object:
            return next(e["body"] for e in recorded if match(e))

        self.job_body = first(lambda e: str(e["path"]).count("/") == 2 and str(e["path"]).startswith("/jobs/"))
        self.vertex_body = first(lambda e: str(e["path"]).count("/") == 4 and "/vertices/" in str(e["path"]))
        self.names_body = first(lambda e: str(e["path"]).endswith("/subtasks/metrics") and not e["query"])
        self.static = {"/overview": first(lambda e: e["path"] == "/overview"),
                       "checkpoints": first(lambda e: str(e["path"]).endswith("/checkpoints")),
                       "/taskmanagers/metrics": first(lambda e: e["path"] == "/taskmanagers/metrics")}
        self.jobs = [f"{i:032x}" for i in range(1, jobs + 1)]
        self.clock = clock
        self.calls = 0
        self._lock = threading.Lock()
        super().__init__(self._answer)

    def _vertex_ids(self, job_id: str) -> list[str]:
        return [f"{job_id[:24]}{i:08x}" for i in range(VERTICES)]

    def _answer(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.calls += 1
        path = request.url.path
        now_ms = int(self.clock[0] * 1000)
        parts = path.strip("/").split("/")
        if path == "/jobs/overview":
            return httpx.Response(200, json={"jobs": [{"jid": j, "name": f"job-{j[-4:]}", "state": "RUNNING",
                                                       "start-time": now_ms - 86_400_000} for j in self.jobs]})
        if path in self.static:
            return httpx.Response(200, json=self.static[path])
        job_id = parts[1]
        if parts[2:] == ["checkpoints"]:
            return httpx.Response(200, json=self.static["checkpoints"])
        if parts[2:] == ["jobmanager", "config"]:
            return httpx.Response(200, json=[{"key": "execution.checkpointing.interval", "value": "10s"}])
        ids = self._vertex_ids(job_id)
        if len(parts) == 2:
            body = copy.deepcopy(self.job_body)
            assert isinstance(body, dict)
            template = body["vertices"][0]
            body.update({"jid": job_id, "now": now_ms, "start-time": now_ms - 86_400_000, "vertices": [
                {**template, "id": vid, "name": f"operator {i}", "parallelism": 2, "tasks": {"RUNNING": 2}}
                for i, vid in enumerate(ids)]})
            body["plan"] = {"nodes": [{"id": vid, "inputs": [{"id": ids[i - 1], "ship_strategy": "HASH"}] if i else []}
                                      for i, vid in enumerate(ids)]}
            return httpx.Response(200, json=body)
        if parts[4:] == ["subtasks", "metrics"]:
            if request.url.query:
                return httpx.Response(200, json=[{"id": request.url.params["get"], "sum": 1200.0}])
            names = list(self.names_body) if isinstance(self.names_body, list) else []
            partition = "Source__x.KafkaSourceReader.topic.clicks.partition.0.currentOffset"
            return httpx.Response(200, json=[*names, {"id": partition}])
        seconds = self.clock[0] - 1_800_000_000.0
        body = copy.deepcopy(self.vertex_body)
        assert isinstance(body, dict)
        subtask = body["subtasks"][0]
        body.update({"id": parts[3], "parallelism": 2, "now": now_ms, "subtasks": [
            {**subtask, "subtask": k, "metrics": {
                **subtask["metrics"], "read-records": int(1000 * seconds), "write-records": int(1000 * seconds),
                "accumulated-busy-time": int(400 * seconds), "accumulated-idle-time": int(600 * seconds),
                "accumulated-backpressured-time": 0}} for k in range(2)]})
        return httpx.Response(200, json=body)


def measure_daemon(url: str, jobs: int, cycles: int) -> dict[str, float]:
    """Median per cycle of the multi-job daemon's cycle over the REST stub: calls, wall, CPU, store writes."""
    clock: list[float] = [1_800_000_000.0]
    stub = RestStub(jobs, clock)
    client = FlinkRestClient("http://flink.stub:8081", transport=stub, retries=0)
    store = StateStore.open(url, clock=lambda: clock[0])
    daemon = MultiJobDaemon(client, store, AutoscaleConfig(), DaemonConfig(interval_seconds=15.0, dry_run=True,
                                                                           owner="bench:1",
                                                                           job_deadline_seconds=600.0),
                            make_sampler=lambda job: Collector(client, job, clock=lambda: clock[0],
                                                               refresh_seconds=0.0),
                            make_executor=lambda _job: None, clock=lambda: clock[0])
    writes: list[float] = []
    write = daemon._write

    def timed_write(entries: list[CycleEntry]) -> None:
        began = time.perf_counter()
        write(entries)
        writes.append(time.perf_counter() - began)

    daemon._write = timed_write  # type: ignore[method-assign]
    walls, cpus, calls, decided = [], [], [], []
    try:
        for i in range(cycles + 3):
            before = stub.calls
            wall, cpu = time.perf_counter(), time.process_time()
            report = daemon.cycle()
            if i >= 3:  # discovery, priming and the first decision are not a steady cycle
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
                calls.append(stub.calls - before)
                decided.append(report.decided)
            clock[0] += 15.0
    finally:
        daemon.close()
        store.close()
    return {"wall": statistics.median(walls), "cpu": statistics.median(cpus), "calls": statistics.median(calls),
            "write": statistics.median(writes[3:]), "decided": statistics.median(decided)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=7)
    parser.add_argument("--state", default=None, help="a store URL (default: a fresh SQLite file per run)")
    parser.add_argument("--jobs", type=int, default=200, help="jobs in the large daemon cycle")
    parser.add_argument("--daemon-only", action="store_true", help="skip the store-only figures")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flinkscale-bench-") as tmp:
        runs = 0

        def url() -> str:
            nonlocal runs
            runs += 1
            return args.state or f"sqlite:///{Path(tmp) / f'run{runs}.db'}"

        cases: list[tuple[str, Callable[[], tuple[float, float]]]] = [
            ("1 job, record_cycle", lambda: measure(url(), 1, args.cycles, "record_cycle")),
            ("200 jobs, record_cycle", lambda: measure(url(), 200, args.cycles, "record_cycle")),
            ("200 jobs, a call per write, batch()", lambda: measure(url(), 200, args.cycles, "batch")),
            ("200 jobs, a transaction per write", lambda: measure(url(), 200, max(2, args.cycles // 3), "per-write")),
        ]
        results = {name: run() for name, run in ([] if args.daemon_only else cases)}
        one = measure_daemon(url(), 1, args.cycles)
        many = measure_daemon(url(), args.jobs, max(3, args.cycles // 2))
    if results:
        print_store(results)
    print_daemon(args.jobs, one, many)


def print_store(results: dict[str, tuple[float, float]]) -> None:
    base_wall, _base_cpu = results["1 job, record_cycle"]
    print(f"store write time per control cycle ({VERTICES} vertices a job; snapshot + decision + load + prune)")
    print(f"{'case':36} {'wall ms':>9} {'cpu ms':>9} {'x 1 job':>8} {'ms/job':>8}")
    for name, (wall, cpu) in results.items():
        jobs = 1 if name.startswith("1 job") else 200
        print(f"{name:36} {wall * 1e3:9.1f} {cpu * 1e3:9.1f} {wall / base_wall:8.1f} {wall * 1e3 / jobs:8.2f}")
    whole = results["200 jobs, record_cycle"][0]
    for name in ("200 jobs, a call per write, batch()", "200 jobs, a transaction per write"):
        print(f"record_cycle is {results[name][0] / whole:.1f}x faster than '{name}'")
    print()


def print_daemon(count: int, one: dict[str, float], many: dict[str, float]) -> None:
    print(f"one control cycle of the multi-job daemon over a REST stub ({VERTICES} vertices, 1 source a job; "
          "dry run, policy flinkscale)")
    print(f"REST calls per cycle = 1 + J x (V + S + 4) = 1 + J x {VERTICES + 1 + 4}: "
          f"predicted {1 + VERTICES + 5} and {1 + count * (VERTICES + 5)}")
    print(f"{'jobs':>6} {'decided':>8} {'calls':>7} {'wall s':>8} {'cpu s':>8} {'store ms':>9} {'calls/job':>10}")
    for jobs, r in ((1, one), (count, many)):
        print(f"{jobs:6d} {r['decided']:8.0f} {r['calls']:7.0f} {r['wall']:8.3f} {r['cpu']:8.3f} "
              f"{r['write'] * 1e3:9.1f} {r['calls'] / jobs:10.2f}")
    print(f"ratios {count} jobs / 1 job: calls {many['calls'] / one['calls']:.0f}x, wall "
          f"{many['wall'] / one['wall']:.0f}x, cpu {many['cpu'] / one['cpu']:.0f}x, store write "
          f"{many['write'] / one['write']:.0f}x (jobs: {count}x)")
    print(f"goal: a {count}-job cycle under 10 s wall: {'met' if many['wall'] < 10 else 'NOT met'} "
          f"({many['wall']:.2f} s)")


if __name__ == "__main__":
    main()
