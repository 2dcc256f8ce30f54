"""Snapshot builders for the policy tests: a job is described by what a person would say about it
(per-vertex parallelism, records in and out, how busy, lag), not by the whole dataclass tree."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flinkscale.core.policy.base import History
from flinkscale.core.snapshot import (
    ClusterResources,
    Edge,
    JvmPressure,
    MetricsSnapshot,
    ShipStrategy,
    Vertex,
    VertexMetrics,
)


def vertex(vid: str, p: int, *, rate_in: float | None, rate_out: float | None = None, busy_max: float | None,
           busy_avg: float | None = None, back_pressured: float | None = None, lag: float | None = None,
           lag_rate: float | None = None, partitions: int | None = None, max_p: int = 128,
           source: bool = False) -> Vertex:
    return Vertex(
        id=vid, name=vid, parallelism=p, max_parallelism=max_p, is_source=source, partitions=partitions,
        metrics=VertexMetrics(
            num_records_in_per_second=rate_in,
            num_records_out_per_second=rate_in if rate_out is None else rate_out,
            busy_time_ms_per_second_max=busy_max,
            busy_time_ms_per_second_avg=busy_max if busy_avg is None else busy_avg,
            back_pressured_time_ms_per_second_max=back_pressured,
            back_pressured_time_ms_per_second_avg=back_pressured,
            pending_records=lag, pending_records_per_second=lag_rate))


def job(ts: float, *vertices: Vertex, edges: tuple[tuple[str, str, str], ...] = (),
        slots: int | None = None, jvm: JvmPressure | None = None, state: str = "RUNNING",
        window_seconds: float = 60.0) -> MetricsSnapshot:
    cluster = None
    if slots is not None:
        used = max(v.parallelism for v in vertices)
        cluster = ClusterResources(task_managers=1, slots_total=slots, slots_available=max(0, slots - used),
                                   slots_per_task_manager=slots)
    return MetricsSnapshot(
        timestamp=ts, job_id="job", job_name="job", vertices=tuple(vertices),
        edges=tuple(Edge(a, b, ShipStrategy.parse(strategy)) for a, b, strategy in edges),
        job_state=state, window_seconds=window_seconds, cluster=cluster, jvm=jvm)


def clickstream(ts: float, *, arrival: float, p_src: int = 1, p_win: int = 1, p_sink: int = 1, lag: float = 0.0,
                src_ms: float = 0.15, win_ms: float = 0.2, sink_ms: float = 0.24, win_skew: float = 1.0,
                partitions: int = 8, max_p: int = 128, slots: int | None = None,
                jvm: JvmPressure | None = None) -> MetricsSnapshot:
    """Source -> (HASH) window aggregate (60 records in per record out) -> (REBALANCE) sink, with costs in
    ms per record per subtask; the graph reads what its slowest vertex can take (backpressure) and lag
    grows by the rest. ``win_skew`` = busiest window subtask's load / mean load."""
    capacity_src = p_src * 1000.0 / src_ms
    capacity_win = p_win * 1000.0 / (win_ms * win_skew)
    demand = arrival if lag <= 0 else max(arrival, capacity_src)
    read = min(demand, capacity_src, capacity_win)
    out = read / 60.0
    src_busy = read / p_src * src_ms
    win_busy_avg = read / p_win * win_ms
    back_pressured = (1000.0 - src_busy) if read < min(demand, capacity_src) else 0.0
    return job(
        ts,
        vertex("src", p_src, rate_in=read, busy_max=src_busy, back_pressured=back_pressured, lag=lag,
               lag_rate=arrival - read, partitions=partitions, max_p=max_p, source=True),
        vertex("win", p_win, rate_in=read, rate_out=out, busy_max=min(1000.0, win_busy_avg * win_skew),
               busy_avg=win_busy_avg, max_p=max_p),
        vertex("sink", p_sink, rate_in=out, busy_max=out / p_sink * sink_ms, max_p=max_p),
        edges=(("src", "win", "HASH"), ("win", "sink", "REBALANCE")), slots=slots, jvm=jvm)


def history_of(*snapshots: MetricsSnapshot, **kwargs: Any) -> History:
    history = History()
    for s in snapshots:
        history = history.append(snapshot=s, **kwargs)
    return history


def at(snapshot: MetricsSnapshot, ts: float) -> MetricsSnapshot:
    return replace(snapshot, timestamp=ts)
