"""Calibration: the same rate step on the embedded Flink cluster and in the simulator; ratios sim / real.

What runs (issue 4, acceptance: both ratios within 0.75-1.33):

1. Its own cluster (1 TaskManager x 1 slot, free ports, a temporary state dir) and broker, one topic, and the
   reference pipeline (``submit_clickstream``, cost_us=100, parallelism 1, with the events file sink: vertex 0 =
   Kafka source -> Python enrichment -> file sink -> local window aggregate, the bottleneck; vertex 1 = the
   global window aggregate). Without the events sink the planner drops the unused enrichment column, and with it
   the Python UDF: the job would then not be the reference pipeline at all.
2. Capacity: a backlog is produced BEFORE the job starts (so the generator does not compete for the 2 cores),
   the job drains it from the earliest offset at full speed, and the collector's records-in rate over the
   saturated samples is the measured capacity.
3. The step, with ``LoadGenerator.run``: ``low`` x capacity for ``--before`` s (the profile phase), ``high`` x
   capacity for ``--pulse`` s, ``low`` x capacity for ``--after`` s, while a ``Collector`` samples every
   ``--interval`` s. Real lag = records produced (the generator's counts) - records read by the source (the
   collector's counter deltas); the source's ``pendingRecords`` is printed next to it (it refreshes unevenly).
4. The simulator: ``pipeline_from_snapshot(merge_window(profile-phase snapshots))`` (capacities from records in
   / busy time, as a profile measures them), then ``step_response`` with the rates the generator actually
   achieved in each phase. The simulated lag is read at the same instants as the real samples.
5. Peak lag and time to recover (from the step to the first sample after the peak with lag at or below the
   lag before the step + 1 s of the final rate) for both, and the ratios sim / real.

Everything started here is stopped in ``finally``. Run: .venv/bin/python bench/sim_calibration.py [--json]
(about 5 minutes; nothing else heavy should run on the machine meanwhile).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from flinkscale.core.sim import pipeline_capacity, pipeline_from_snapshot, step_response
from flinkscale.core.sim.calibration import measured_capacity_per_subtask
from flinkscale.core.snapshot import MetricsSnapshot
from flinkscale.flink.cluster import ClusterSpec, LocalCluster
from flinkscale.flink.collector import Collector, merge_window
from flinkscale.flink.rest import FlinkRestClient
from flinkscale.kafka.admin import TopicAdmin
from flinkscale.kafka.broker import EmbeddedBroker
from flinkscale.kafka.loadgen import LoadGenerator
from flinkscale.pipelines.launch import ClickstreamOptions, submit_clickstream


@dataclass(frozen=True)
class Sample:
    time: float  # seconds since the generator started (negative: before)
    snapshot: MetricsSnapshot

    @property
    def lag(self) -> float:
        return float(self.snapshot.sources()[0].metrics.pending_records or 0.0)

    @property
    def rate_in(self) -> float:
        return float(self.snapshot.sources()[0].metrics.num_records_in_per_second or 0.0)


class Sampler(threading.Thread):
    """Samples the job every ``interval`` seconds on a wall-clock grid until stopped."""

    def __init__(self, collector: Collector, interval: float) -> None:
        super().__init__(daemon=True)
        self.collector = collector
        self.interval = interval
        self.origin = time.time()
        self.samples: list[Sample] = []
        self.stopped = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.collector.sample()
            next_at = time.time() + self.interval
            while not self.stopped.wait(max(0.0, next_at - time.time())):
                next_at += self.interval
                snapshot = self.collector.sample()
                if snapshot is not None:
                    self.samples.append(Sample(snapshot.timestamp - self.origin, snapshot))
        except BaseException as exc:  # reported by the main thread
            self.error = exc

    def since(self, origin: float) -> list[Sample]:
        shift = origin - self.origin
        return [replace(s, time=s.time - shift) for s in self.samples]


def wait_pending_metric(rest: FlinkRestClient, job_id: str, timeout: float = 90.0) -> None:
    """Until the source registers ``pendingRecords``: the collector looks the metric's name up once, and a
    lookup right after the job starts finds nothing."""
    job = rest.job(job_id)
    source = next(v.id for v in job.vertices if v.id not in {e.target for e in job.edges})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(n.endswith(".pendingRecords") for n in rest.vertex_metric_names(job_id, source)):
            return
        time.sleep(0.5)
    raise RuntimeError(f"the source reported no pendingRecords metric within {timeout:.0f}s")


def recovery(times: np.ndarray, lag: np.ndarray, step_at: float, threshold: float) -> float | None:  # type: ignore[type-arg]
    """Seconds from the step to the first point after the peak (after the step) with lag <= threshold (None: never)."""
    after_step = int(np.searchsorted(times, step_at, side="right"))
    if after_step >= len(lag):
        return None
    peak = after_step + int(np.argmax(lag[after_step:]))
    after = np.nonzero(lag[peak:] <= threshold)[0]
    return float(times[peak + int(after[0])] - step_at) if after.size else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cost-us", type=float, default=100.0)
    parser.add_argument("--low", type=float, default=0.5, help="rate before and after, x measured capacity")
    parser.add_argument("--high", type=float, default=1.3, help="rate during the pulse, x measured capacity")
    parser.add_argument("--before", type=int, default=60, help="seconds at the low rate before the step")
    parser.add_argument("--pulse", type=int, default=60, help="seconds at the high rate")
    parser.add_argument("--after", type=int, default=150, help="seconds at the low rate after the pulse")
    parser.add_argument("--interval", type=float, default=5.0, help="collector sampling interval, s")
    parser.add_argument("--backlog", type=int, default=300_000, help="records for the capacity measurement")
    parser.add_argument("--json", action="store_true", help="print the raw series as JSON too")
    args = parser.parse_args()

    state_dir = Path(tempfile.mkdtemp(prefix="flinkscale-calibration-"))
    cluster, broker = LocalCluster(state_dir), EmbeddedBroker(state_dir)
    generator: LoadGenerator | None = None
    sampler: Sampler | None = None
    try:
        started = time.monotonic()
        info = cluster.up(ClusterSpec(task_managers=1, slots_per_task_manager=1, rest_port=0))
        bootstrap = broker.up(port=0).bootstrap
        TopicAdmin(bootstrap).create_topic("calibration", 1)
        print(f"cluster {info.rest_url}, broker {bootstrap} up in {time.monotonic() - started:.0f}s")
        generator = LoadGenerator(bootstrap, "calibration", seed=7)
        generator.produce_count(args.backlog)
        rest = FlinkRestClient(info.rest_url)
        # The events sink is what keeps the enrichment in the job: with only the window aggregate, the planner
        # prunes the unused enrich() column and the Python UDF (the cost being calibrated) never runs.
        options = ClickstreamOptions(bootstrap=bootstrap, topic="calibration", group="calibration",
                                     cost_us=args.cost_us, events_dir=f"file://{state_dir / 'events'}")
        job_id = submit_clickstream(cluster, options, parallelism=1).job_id
        rest.wait_all_running(job_id)
        wait_pending_metric(rest, job_id)
        sampler = Sampler(Collector(rest, job_id), args.interval)
        sampler.start()

        # Capacity: the drain rate of the backlog, over samples that were saturated from start to end.
        drain_deadline = time.monotonic() + 180
        while time.monotonic() < drain_deadline:
            time.sleep(1.0)
            if sampler.samples and sampler.samples[-1].lag < 1000 and len(sampler.samples) >= 2:
                break
        for s in sampler.samples:
            print(f"  drain t={s.time:6.1f}s lag {s.lag:>10,.0f} in {s.rate_in:>8,.0f}/s")
        saturated = [s for s in sampler.samples[1:] if s.lag > 0.1 * args.backlog]
        if not saturated:
            raise RuntimeError("no saturated sample while draining the backlog; raise --backlog")
        capacity = statistics.median(s.rate_in for s in saturated)
        busy = statistics.median((s.snapshot.sources()[0].metrics.busy_time_ms_per_second_max or 0)
                                 for s in saturated)
        print(f"measured capacity: {capacity:,.0f} records/s (median of {len(saturated)} saturated samples, "
              f"busy {busy:.0f} ms/s)")

        low, high = args.low * capacity, args.high * capacity
        rates = [low] * args.before + [high] * args.pulse + [low] * args.after

        def progress(second: int, target: float, produced: int) -> None:
            if second % 15 == 14:
                lag = sampler.samples[-1].lag if sampler and sampler.samples else float("nan")
                print(f"  t={second + 1:>4}s target {target:>8,.0f}/s produced {produced:>8,}/s lag {lag:>10,.0f}")

        origin = time.time()
        report = generator.run(rates, progress=progress)
        time.sleep(args.interval * 1.5)
        sampler.stopped.set()
        sampler.join()
        if sampler.error:
            raise sampler.error
        print(f"generator: {report.produced:,} records in {report.seconds:.0f}s; {len(report.warnings)} seconds "
              "below 95% of the target")

        samples = [s for s in sampler.since(origin) if s.time > 0]
        achieved = np.array([produced for _, _, produced in generator.manifest.seconds[-len(rates):]], dtype=float)
        rate_before = float(achieved[: args.before].mean())
        rate_during = float(achieved[args.before: args.before + args.pulse].mean())
        rate_after = float(achieved[args.before + args.pulse:].mean())

        real_t = np.array([s.time for s in samples])
        pending_lag = np.array([s.lag for s in samples])
        # Flink's pendingRecords refreshes too slowly and too unevenly for 5 s samples, so the real lag compared is
        # from counters: records produced (the generator's per-second counts) minus records the source read (the
        # collector's exact counter deltas), anchored at the first sample's pendingRecords (the lag is ~0 then).
        cumulative_produced = np.concatenate(([0.0], np.cumsum(achieved)))
        produced_at = np.interp(real_t, np.arange(len(cumulative_produced)), cumulative_produced)
        read = np.array([s.rate_in * s.snapshot.window_seconds for s in samples])
        read_since_first = np.concatenate(([0.0], np.cumsum(read[1:])))
        real_lag = np.maximum(pending_lag[0] + (produced_at - produced_at[0]) - read_since_first, 0.0)
        step_at = float(args.before)
        before_real = real_lag[real_t <= step_at]
        threshold_real = (float(before_real[-1]) if before_real.size else 0.0) + rate_after
        real_peak = float(real_lag.max())
        real_recover = recovery(real_t, real_lag, step_at, threshold_real)
        backlogged = [s.rate_in for s in samples if s.time > step_at and s.lag > 0.05 * max(real_peak, 1.0)]
        print(f"rates achieved: before {rate_before:,.0f}/s, pulse {rate_during:,.0f}/s, after {rate_after:,.0f}/s "
              f"(targets {low:,.0f} / {high:,.0f} / {low:,.0f}); real processing while backlogged after the step: "
              f"median {statistics.median(backlogged) if backlogged else float('nan'):,.0f}/s")

        # The profile (issue 4): the pre-step phase (the first sample is partly the end of the drain: skipped).
        # For comparison, the same from the saturated drain (busy ~1000 ms/s): a profile at full load.
        profiles = {
            "pre-step profile": merge_window([s.snapshot for s in samples if args.interval <= s.time <= args.before]),
            "saturated profile": merge_window([s.snapshot for s in saturated]),
        }
        duration = float(len(rates) + args.interval * 1.5)
        results: dict[str, dict[str, float | None]] = {}
        series: dict[str, list[float]] = {}
        for label, profile in profiles.items():
            pipeline = pipeline_from_snapshot(profile, capacities=_unmeasurable(profile))
            source_busy = profile.sources()[0].metrics.busy_time_ms_per_second_avg or 0.0
            print(f"{label} ({profile.window_seconds:.0f}s, source busy {source_busy:.0f} ms/s): "
                  + ", ".join(f"{v.id[:8]} p={v.parallelism} c={v.capacity:,.0f}/s" for v in pipeline.vertices)
                  + f"; pipeline capacity {pipeline_capacity(pipeline):,.0f}/s")
            sim = step_response(pipeline, rate_before=rate_before, rate_during=rate_during, rate_after=rate_after,
                                step_at_seconds=step_at, pulse_seconds=float(args.pulse), duration_seconds=duration)
            # The simulated lag at the real sampling instants (the step that contains each instant).
            sim_lag = sim.lag_records[np.clip(np.ceil(real_t).astype(int) - 1, 0, len(sim.lag_records) - 1)]
            before_sim = sim_lag[real_t <= step_at]
            threshold_sim = (float(before_sim[-1]) if before_sim.size else 0.0) + rate_after
            results[label] = {"capacity": pipeline_capacity(pipeline), "peak": float(sim_lag.max()),
                              "recover": recovery(real_t, sim_lag, step_at, threshold_sim)}
            series[label] = sim_lag.tolist()

        labels = list(profiles)
        print(f"{'t (s)':>7} {'real lag':>10} {'pendingRecords':>15} "
              + " ".join(f"{'sim: ' + label:>24}" for label in labels))
        for i, (t, r) in enumerate(zip(real_t, real_lag, strict=True)):
            print(f"{t:7.1f} {r:10,.0f} {pending_lag[i]:15,.0f} "
                  + " ".join(f"{series[label][i]:24,.0f}" for label in labels))
        pending_recover = recovery(real_t, pending_lag, step_at, threshold_real)
        print(f"real by pendingRecords: peak lag {pending_lag.max():,.0f}, recovered {pending_recover} s "
              "after the step")
        print(f"real: peak lag {real_peak:,.0f} records, recovered {real_recover} s after the step")
        for label in labels:
            peak, recover = results[label]["peak"], results[label]["recover"]
            assert peak is not None
            peak_ratio = f"{peak / real_peak:.2f}" if real_peak else "n/a"
            recover_ratio = f"{recover / real_recover:.2f}" if recover and real_recover else "n/a"
            print(f"sim with the {label}: peak lag {peak:,.0f} (ratio sim/real {peak_ratio}), recovered {recover} s "
                  f"after the step (ratio sim/real {recover_ratio})")
        print("target: both ratios within 0.75-1.33")
        if args.json:
            print(json.dumps({"capacity_saturated": capacity, "rates": [rate_before, rate_during, rate_after],
                              "times": real_t.tolist(), "real_lag": real_lag.tolist(),
                              "pending_lag": pending_lag.tolist(), "sim_lag": series,
                              "real_peak": real_peak, "real_recover": real_recover, "sim": results,
                              "backlogged_rates": backlogged}))
    finally:
        if sampler is not None:
            sampler.stopped.set()
        if generator is not None:
            generator.close()
        cluster.down()
        broker.down()
        shutil.rmtree(state_dir, ignore_errors=True)


def _unmeasurable(profile: MetricsSnapshot) -> dict[str, float]:
    """Capacities for vertices whose busy time is too small to measure (the global window aggregate gets a few
    records per window): bounded from below by rate / 1 ms of busy time per second, which makes them never the
    bottleneck, as they are not in the real job either."""
    capacities = {}
    for vertex in profile.vertices:
        if measured_capacity_per_subtask(vertex) is None:
            rate = vertex.metrics.num_records_in_per_second or 0.0
            capacities[vertex.id] = max(rate, 1.0) / (vertex.parallelism * 0.001)
    return capacities


if __name__ == "__main__":
    main()
