"""The state store's share of one control cycle: write time for 1 job and for 200 jobs of 10 vertices.

A cycle writes, for every job, what the multi-job loop keeps: the snapshot (10 vertices with metrics), the
decision (10 vertex decisions with their numbers) and the load sample, then prunes. The whole cycle is
one transaction (``StateStore.batch()``, as the daemon will run it); for comparison the same 200-job cycle
is also timed with one transaction per write, which is what a naive loop would do. Each figure is the
median over several cycles, wall and CPU, and is printed as a ratio to the 1-job cycle measured in the same
run, so the ratio does not depend on how busy the machine is. Writes are linear in jobs x vertices.

Skeleton of the issue #15 bench: the REST-stub cycle (calls per cycle, wall and CPU of collection and
decision) joins it when the multi-job loop lands.
Run: ``.venv/bin/python bench/control_plane.py [--cycles N] [--state URL]`` (default: a temp SQLite file).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from flinkscale.core.policy.base import Decision, VertexDecision
from flinkscale.core.snapshot import Edge, MetricsSnapshot, Vertex, VertexMetrics
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cycles", type=int, default=7)
    parser.add_argument("--state", default=None, help="a store URL (default: a fresh SQLite file per run)")
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
        results = {name: run() for name, run in cases}
    base_wall, _base_cpu = results["1 job, record_cycle"]
    print(f"store write time per control cycle ({VERTICES} vertices a job; snapshot + decision + load + prune)")
    print(f"{'case':36} {'wall ms':>9} {'cpu ms':>9} {'x 1 job':>8} {'ms/job':>8}")
    for name, (wall, cpu) in results.items():
        jobs = 1 if name.startswith("1 job") else 200
        print(f"{name:36} {wall * 1e3:9.1f} {cpu * 1e3:9.1f} {wall / base_wall:8.1f} {wall * 1e3 / jobs:8.2f}")
    whole = results["200 jobs, record_cycle"][0]
    for name in ("200 jobs, a call per write, batch()", "200 jobs, a transaction per write"):
        print(f"record_cycle is {results[name][0] / whole:.1f}x faster than '{name}'")


if __name__ == "__main__":
    main()
