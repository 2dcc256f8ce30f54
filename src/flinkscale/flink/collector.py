"""The collector: a running Flink job, sampled over REST, as ``MetricsSnapshot``s.

Flink's ``*PerSecond`` metrics are 60 s moving averages, which smear a rate step over a minute and lag every
decision taken on them (flink-runtime.md, gotcha 2). The collector therefore works from cumulative counters and
takes differences between two samples: ``read-records``, ``write-records``, ``read-bytes``, ``write-bytes`` and
``accumulated-busy/backpressured/idle-time`` per subtask, all from ``GET /jobs/:jid/vertices/:vid`` (one call per
vertex, whatever its parallelism). Rates are then exact over the sampling interval, the max over subtasks comes
from real per-subtask counters (the busiest subtask bounds a vertex).

The counters come from the JobManager's metric store, which refreshes lazily: a request starts an asynchronous
fetch (at most once per ``metrics.fetcher.update-interval``) and is answered from the store as it was. Read
as is, a sample shows the counters of the previous request's time, so rates are right only when samples are
evenly spaced; a sample taken 8 s after a 4 s gap reported 274 instead of 700 records/s on this machine.
``read()`` therefore asks for the job first (which starts the fetch), waits ``refresh_seconds`` (0.25 s was
enough here; default 0.5 s) and then reads the counters: every sample is current, whatever the spacing.
Clusters with the default 10 s fetch interval need ``metrics.fetcher.update-interval`` at or below the sampling
interval for that to hold; the embedded cluster uses 2 s, and ``fetch_interval_warning`` says so for any other
cluster whose setting is longer than the interval asked for.

What Flink reports that is not a counter comes from the aggregated metric endpoint: a source's
``pendingRecords`` (consumer lag), the Kafka partitions it reads (from its per-partition offset metric names,
looked up once per vertex), and TaskManager heap and GC time. Calls per sample: 1 (job, which
also starts the refresh) + V (vertices) + S (sources' lag) + 3 (overview, checkpoints, TaskManager metrics)
= V + S + 4 for V vertices and S sources.

A sample whose interval straddles a restart or a rescale (the job not RUNNING, a parallelism change, or a counter
that went backwards) yields no snapshot, and the reason is kept in ``skipped``: mixing counters from two
executions of a vertex would produce nonsense rates.

Two things make a snapshot *partial*, which the control step refuses to decide on (``control.partial_metrics``):

- an IO counter Flink marks incomplete (``read-records-complete: false``, also ``write-records``, ``read-bytes``,
  ``write-bytes``; ``models.io_counter``) in either sample: it is a partial sum over the subtasks whose metrics
  the JobManager holds, often 0, and read as a count it makes a busy vertex look idle. That vertex's record and
  byte rates are then unknown (None), never zero, and a note says which counters;
- a task that is not RUNNING in either sample (``tasks_running`` < ``tasks_total`` on the snapshot, the lower of
  the two reads): a deploying or restarting subtask's counters say nothing about the job's capacity.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from flinkscale.core.rates import window_mean
from flinkscale.core.skew import flink_skew_metric
from flinkscale.core.snapshot import (
    CheckpointStats,
    ClusterResources,
    JvmPressure,
    MetricsSnapshot,
    SubtaskMetrics,
    Vertex,
    VertexMetrics,
)
from flinkscale.core.units import parse_flink_duration
from flinkscale.flink.models import JobDetails, SubtaskDetail, incomplete_io_counters, io_counter, metric_value
from flinkscale.flink.rest import FlinkRestClient

_PARTITION_METRIC = re.compile(r"\.topic\.(?P<topic>.+)\.partition\.(?P<partition>\d+)\.currentOffset$")
_HEAP_USED = "Status.JVM.Memory.Heap.Used"
_HEAP_MAX = "Status.JVM.Memory.Heap.Max"
_GC_TIME = "Status.JVM.GarbageCollector.All.TimeMsPerSecond"
#: Seconds between the request that starts the metric store's refresh and the read (see the module docstring).
DEFAULT_REFRESH_SECONDS = 0.5
FETCH_INTERVAL_KEY = "metrics.fetcher.update-interval"
#: Flink's default for FETCH_INTERVAL_KEY, in effect when the cluster's configuration does not set it.
DEFAULT_FETCH_INTERVAL_SECONDS = 10.0


def fetch_interval_warning(config: Mapping[str, str], interval_seconds: float) -> str | None:
    """Why samples ``interval_seconds`` apart would be stale on a cluster with this configuration, or None."""
    text = config.get(FETCH_INTERVAL_KEY)
    fetch = DEFAULT_FETCH_INTERVAL_SECONDS if text is None else parse_flink_duration(text, FETCH_INTERVAL_KEY)
    if fetch <= interval_seconds:
        return None
    where = f"is {text}" if text is not None else f"is not set (Flink's default: {fetch:g} s)"
    return (f"{FETCH_INTERVAL_KEY} {where} on this cluster: its REST metric store refreshes at most every "
            f"{fetch:g} s, so samples every {interval_seconds:g} s repeat stale counters and rates come out wrong. "
            f"Set {FETCH_INTERVAL_KEY}: {max(1, int(interval_seconds // 2))} s in the cluster's configuration, "
            f"or sample at --interval {fetch:g}s or more.")


@dataclass(frozen=True)
class SubtaskCounters:
    index: int
    read_records: float | None
    write_records: float | None
    read_bytes: float | None
    write_bytes: float | None
    busy_ms: float | None
    backpressured_ms: float | None
    idle_ms: float | None
    # IO counters Flink marked incomplete in this read (their fields above are None).
    incomplete: tuple[str, ...] = ()
    # Which run of the subtask this is: (attempt, start-time ms). A failover redeploys it: its counters restart
    # from 0 and, catching up from the last checkpoint, can pass the old run's before the next read.
    run: tuple[int, int] = (0, -1)


@dataclass(frozen=True)
class VertexSample:
    """Raw counters of one vertex at one instant."""

    vertex_id: str
    parallelism: int
    subtasks: tuple[SubtaskCounters, ...]
    pending_records: float | None


@dataclass(frozen=True)
class RawSample:
    """Everything read at one instant; two of them make a snapshot."""

    timestamp: float
    job: JobDetails
    vertices: Mapping[str, VertexSample]


def _delta(new: float | None, old: float | None) -> float | None:
    return None if new is None or old is None else new - old


class Collector:
    """Samples one job; ``sample()`` returns a snapshot over the interval since the previous call."""

    def __init__(self, client: FlinkRestClient, job_id: str, *, clock: Callable[[], float] = time.time,
                 partitions: Mapping[str, int] | None = None, max_task_managers: int | None = None,
                 refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.refresh_seconds = refresh_seconds
        self.sleep = sleep
        self.job_id = job_id
        self.clock = clock
        self.max_task_managers = max_task_managers
        self._partitions_override = dict(partitions or {})
        self._source_metrics: dict[str, tuple[str | None, int | None]] = {}
        self._previous: RawSample | None = None
        self.skipped: list[str] = []
        self.calls_per_sample = 0
        # The job's start-time (UNIX seconds) as its details last said; None before the first read.
        self.started_at: float | None = None

    # --- reading ---------------------------------------------------------------------------------
    def _source_info(self, vertex_id: str) -> tuple[str | None, int | None]:
        """(name of the pendingRecords metric, number of partitions) for a source vertex, looked up once."""
        known = self._source_metrics.get(vertex_id)
        # A source registers its per-partition metrics only once partitions are assigned, a few seconds after
        # start: keep looking until both are known rather than caching an early, empty answer.
        if known is None or None in known:
            names = self.client.vertex_metric_names(self.job_id, vertex_id)
            pending = next((n for n in names if n.endswith(".pendingRecords")), None)
            partitions = {m.group("topic", "partition") for n in names if (m := _PARTITION_METRIC.search(n))}
            known = (pending, len(partitions) or None)
            self._source_metrics[vertex_id] = known
        return known

    def read(self) -> RawSample:
        before = self.client.calls
        # The job request also starts the metric store's refresh; the counters are read after it has landed.
        job = self.client.job(self.job_id)
        self.started_at = job.start_time_ms / 1000.0 if job.start_time_ms > 0 else None
        if self.refresh_seconds > 0:
            self.sleep(self.refresh_seconds)
        sources = _source_vertex_ids(job)
        vertices = {}
        for v in job.vertices:
            detail = self.client.vertex_detail(self.job_id, v.id)
            subtasks = tuple(_subtask_counters(s) for s in detail)
            pending = None
            if v.id in sources:
                pending_name, _ = self._source_info(v.id)
                if pending_name:
                    found = self.client.vertex_metrics(self.job_id, v.id, [pending_name], "sum").get(pending_name)
                    pending = found.sum if found is not None else None
            vertices[v.id] = VertexSample(v.id, v.parallelism, subtasks, pending)
        sample = RawSample(self.clock(), job, vertices)
        self.calls_per_sample = self.client.calls - before
        return sample

    def sample(self) -> MetricsSnapshot | None:
        """Read now; a snapshot of the interval since the previous read, or ``None`` (first read, or skipped)."""
        current = self.read()
        previous, self._previous = self._previous, current
        if previous is None:
            return None
        problem = _straddles(previous, current)
        if problem:
            self.skipped.append(f"{time.strftime('%H:%M:%S', time.gmtime(current.timestamp))} {problem}")
            return None
        before = self.client.calls
        snapshot = self._snapshot(previous, current)
        self.calls_per_sample += self.client.calls - before
        return snapshot

    # --- building --------------------------------------------------------------------------------
    def _snapshot(self, old: RawSample, new: RawSample) -> MetricsSnapshot:
        seconds = max(new.timestamp - old.timestamp, 1e-3)
        sources = _source_vertex_ids(new.job)
        sinks = {v.id for v in new.job.vertices} - {e.source for e in new.job.edges}
        vertices = []
        incomplete: list[str] = []
        for info in new.job.vertices:
            names = _incomplete(old.vertices[info.id], new.vertices[info.id])
            if names:
                incomplete.append(f"{info.name}: Flink marks its {', '.join(names)} counters incomplete; its record "
                                  "rates are unknown (not zero) this interval")
            metrics = _vertex_metrics(old.vertices[info.id], new.vertices[info.id], seconds)
            partitions = self._partitions_override.get(info.id)
            if info.id in sources and partitions is None:
                partitions = self._source_info(info.id)[1]
            vertices.append(Vertex(id=info.id, name=info.name, parallelism=info.parallelism,
                                   max_parallelism=info.max_parallelism, is_source=info.id in sources,
                                   is_sink=info.id in sinks, partitions=partitions, metrics=metrics))
        overview = self.client.overview()
        cluster = ClusterResources(overview.task_managers, overview.slots_total, overview.slots_available,
                                   overview.slots_total // max(overview.task_managers, 1), self.max_task_managers)
        tasks = _worst_tasks(old, new)
        return MetricsSnapshot(
            timestamp=new.timestamp, job_id=new.job.id, job_name=new.job.name, vertices=tuple(vertices),
            edges=new.job.edges, job_state=new.job.state, window_seconds=seconds, cluster=cluster,
            checkpoints=self._checkpoints(), jvm=self._jvm(),
            notes=tuple(incomplete) + tuple(n for v in vertices for n in _notes(v)),
            tasks_running=tasks[0] if tasks else None, tasks_total=tasks[1] if tasks else None)

    def _checkpoints(self) -> CheckpointStats:
        stats = self.client.checkpoints(self.job_id)
        latest = stats.latest_completed
        return CheckpointStats(
            completed=stats.completed, failed=stats.failed, in_progress=stats.in_progress, restored=stats.restored,
            last_duration_ms=latest.end_to_end_duration_ms if latest else None,
            avg_duration_ms=stats.duration_avg_ms, max_duration_ms=stats.duration_max_ms,
            last_size_bytes=latest.checkpointed_size if latest else None,
            state_size_bytes=latest.state_size if latest else None)

    def _jvm(self) -> JvmPressure:
        metrics = self.client.task_manager_metrics([_HEAP_USED, _HEAP_MAX, _GC_TIME], "max")
        used, heap_max = metrics.get(_HEAP_USED), metrics.get(_HEAP_MAX)
        ratio = used.max / heap_max.max if used and heap_max and used.max is not None and heap_max.max else None
        gc = metrics.get(_GC_TIME)
        return JvmPressure(heap_used_ratio_max=ratio, gc_time_ms_per_second_max=gc.max if gc else None)


def _source_vertex_ids(job: JobDetails) -> set[str]:
    return {v.id for v in job.vertices} - {e.target for e in job.edges}


def _subtask_counters(data: SubtaskDetail) -> SubtaskCounters:
    m = data.metrics
    return SubtaskCounters(
        data.index, io_counter(m, "read-records"), io_counter(m, "write-records"),
        io_counter(m, "read-bytes"), io_counter(m, "write-bytes"),
        metric_value(m.get("accumulated-busy-time")), metric_value(m.get("accumulated-backpressured-time")),
        metric_value(m.get("accumulated-idle-time")), incomplete_io_counters(m), (data.attempt, data.start_time_ms))


def _tasks_running(job: JobDetails) -> tuple[int, int] | None:
    """(tasks RUNNING, tasks in all): one task per subtask of every vertex (``vertices[].tasks``); None when
    Flink gives no task counts (then nothing is claimed either way)."""
    if not job.vertices or any(not v.tasks for v in job.vertices):
        return None
    return (sum(min(v.tasks.get("RUNNING", 0), v.parallelism) for v in job.vertices),
            sum(v.parallelism for v in job.vertices))


def _worst_tasks(old: RawSample, new: RawSample) -> tuple[int, int] | None:
    """The task counts of whichever read had fewer tasks RUNNING (None when either read has none)."""
    counts = [_tasks_running(old.job), _tasks_running(new.job)]
    known = [c for c in counts if c is not None]
    return min(known) if len(known) == 2 else None


def _incomplete(old: VertexSample, new: VertexSample) -> tuple[str, ...]:
    """The IO counters of a vertex marked incomplete in either read (``IO_COUNTERS`` order, each once)."""
    return tuple(dict.fromkeys(name for s in old.subtasks + new.subtasks for name in s.incomplete))


def _straddles(old: RawSample, new: RawSample) -> str | None:
    if new.job.state != "RUNNING" or old.job.state != "RUNNING":
        return f"job was {old.job.state} -> {new.job.state}; sample discarded"
    # A task not RUNNING makes the snapshot partial (the control step holds, saying how many run), whatever its
    # counters did meanwhile: a redeployed subtask's counters restart from 0.
    tasks = _worst_tasks(old, new)
    tasks_settled = tasks is None or tasks[0] == tasks[1]
    for vid, vertex in new.vertices.items():
        before = old.vertices.get(vid)
        if before is None or before.parallelism != vertex.parallelism or len(before.subtasks) != len(vertex.subtasks):
            return f"vertex {vid} was rescaled during the sample; sample discarded"
        if not tasks_settled:
            continue
        for a, b in zip(before.subtasks, vertex.subtasks, strict=True):
            if _redeployed(a, b):
                return (f"vertex {vid} restarted during the sample (subtask {b.index} was redeployed); "
                        "sample discarded")
            if a.read_records is not None and b.read_records is not None and b.read_records < a.read_records:
                return f"vertex {vid} restarted during the sample (counters went back); sample discarded"
    return None


def _redeployed(old: SubtaskCounters, new: SubtaskCounters) -> bool:
    """A new run of the subtask between two reads: another attempt, or (the adaptive scheduler starts a new
    execution graph at attempt 0) another start-time. A read without a start-time (-1) proves nothing."""
    (old_attempt, old_start), (new_attempt, new_start) = old.run, new.run
    return new_attempt != old_attempt or (old_start > 0 and new_start > 0 and new_start != old_start)


def _per_second(values: Sequence[float | None], seconds: float) -> list[float] | None:
    if not values or any(v is None for v in values):
        return None
    return [max(v, 0.0) / seconds for v in values if v is not None]


def _vertex_metrics(old: VertexSample, new: VertexSample, seconds: float) -> VertexMetrics:
    pairs = list(zip(old.subtasks, new.subtasks, strict=True))
    # One counter marked incomplete makes all of the vertex's IO unknown: in and out come from the same partial read.
    io_known = not _incomplete(old, new)

    def rates(field: str) -> list[float] | None:
        return _per_second([_delta(getattr(b, field), getattr(a, field)) for a, b in pairs], seconds)

    def io_rates(field: str) -> list[float] | None:
        return rates(field) if io_known else None

    records_in, records_out = io_rates("read_records"), io_rates("write_records")
    busy, backpressured, idle = rates("busy_ms"), rates("backpressured_ms"), rates("idle_ms")
    bytes_in, bytes_out = io_rates("read_bytes"), io_rates("write_bytes")
    subtasks = tuple(
        SubtaskMetrics(index=a.index,
                       num_records_in_per_second=records_in[i] if records_in else None,
                       num_records_out_per_second=records_out[i] if records_out else None,
                       busy_time_ms_per_second=_clamp_ms(busy[i]) if busy else None,
                       back_pressured_time_ms_per_second=_clamp_ms(backpressured[i]) if backpressured else None,
                       idle_time_ms_per_second=_clamp_ms(idle[i]) if idle else None)
        for i, (a, _) in enumerate(pairs))
    pending_rate = _delta(new.pending_records, old.pending_records)
    return VertexMetrics(
        num_records_in_per_second=sum(records_in) if records_in else None,
        num_records_out_per_second=sum(records_out) if records_out else None,
        num_bytes_in_per_second=sum(bytes_in) if bytes_in else None,
        num_bytes_out_per_second=sum(bytes_out) if bytes_out else None,
        busy_time_ms_per_second_max=_clamp_ms(max(busy)) if busy else None,
        busy_time_ms_per_second_avg=_clamp_ms(sum(busy) / len(busy)) if busy else None,
        back_pressured_time_ms_per_second_max=_clamp_ms(max(backpressured)) if backpressured else None,
        back_pressured_time_ms_per_second_avg=_clamp_ms(sum(backpressured) / len(backpressured))
        if backpressured else None,
        idle_time_ms_per_second_avg=_clamp_ms(sum(idle) / len(idle)) if idle else None,
        pending_records=new.pending_records,
        pending_records_per_second=None if pending_rate is None else pending_rate / seconds,
        records_in_skew=flink_skew_metric(records_in) if records_in else None,
        subtasks=subtasks)


def _clamp_ms(value: float) -> float:
    # Accumulated times are sampled on the TaskManagers a little apart from each other and from our clock,
    # so a fully busy subtask can show 1003 ms per second; Flink itself caps these metrics at 1000.
    return min(max(value, 0.0), 1000.0)


def _notes(vertex: Vertex) -> list[str]:
    notes = []
    if vertex.metrics.busy_time_ms_per_second_max is None:
        notes.append(f"{vertex.name}: Flink reports no busy time (NaN); its true processing rate is unknown")
    return notes


def collect_window(collector: Collector, window_seconds: float, interval_seconds: float = 10.0, *,
                   progress: Callable[[float, MetricsSnapshot | None], None] | None = None,
                   sleep: Callable[[float], None] = time.sleep,
                   should_stop: Callable[[], bool] = lambda: False) -> list[MetricsSnapshot]:
    """Samples over ``window_seconds`` (the first read only primes the counters).

    The window starts once the priming read is done and always gets one measured read: on a loaded machine the
    priming read alone can outlast a short window, and a window without a second read measures nothing.
    """
    snapshots: list[MetricsSnapshot] = []
    collector.sample()
    started = collector.clock()
    attempts = 0
    while not should_stop():
        elapsed = collector.clock() - started
        if attempts and elapsed >= window_seconds:
            break
        attempts += 1
        sleep(max(min(interval_seconds, window_seconds - elapsed), 0.0))
        snapshot = collector.sample()
        if snapshot is not None:
            snapshots.append(snapshot)
        if progress:
            progress(collector.clock() - started, snapshot)
    return snapshots


def merge_window(snapshots: Sequence[MetricsSnapshot]) -> MetricsSnapshot:
    """One snapshot over a whole window: rates weighted by each sample's interval, lag from the last sample."""
    if not snapshots:
        raise ValueError("no snapshots to merge")
    last = snapshots[-1]
    total = sum(s.window_seconds for s in snapshots)

    def weighted(vertex_id: str, field: str) -> float | None:
        return window_mean((getattr(s.vertex(vertex_id).metrics, field), s.window_seconds) for s in snapshots)

    vertices = []
    for v in last.vertices:
        fields = {f: weighted(v.id, f) for f in (
            "num_records_in_per_second", "num_records_out_per_second", "num_bytes_in_per_second",
            "num_bytes_out_per_second", "busy_time_ms_per_second_max", "busy_time_ms_per_second_avg",
            "back_pressured_time_ms_per_second_max", "back_pressured_time_ms_per_second_avg",
            "idle_time_ms_per_second_avg", "pending_records_per_second", "records_in_skew")}
        subtasks = tuple(
            replace(st, **cast(dict[str, Any], {f: _mean_subtask(snapshots, v.id, st.index, f) for f in (
                "num_records_in_per_second", "num_records_out_per_second", "busy_time_ms_per_second",
                "back_pressured_time_ms_per_second", "idle_time_ms_per_second")}))
            for st in v.metrics.subtasks)
        vertices.append(replace(v, metrics=replace(v.metrics, subtasks=subtasks, **fields)))
    notes = tuple(dict.fromkeys(n for s in snapshots for n in s.notes))
    return replace(last, vertices=tuple(vertices), window_seconds=total, notes=notes)


def _mean_subtask(snapshots: Sequence[MetricsSnapshot], vertex_id: str, index: int, field: str) -> float | None:
    return window_mean((getattr(st, field), s.window_seconds) for s in snapshots
                       for st in s.vertex(vertex_id).metrics.subtasks if st.index == index)
