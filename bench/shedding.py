"""Load shedding on the embedded cluster: throughput, lag and accuracy at 1x, 1.5x, 2x and 3x overload.

    .venv/bin/python bench/shedding.py [--factors 1,1.5,2,3] [--phase-seconds 30] [--cost-us 200]
    .venv/bin/python bench/shedding.py --pipeline sql --factors 2 --phase-seconds 60 --window-seconds 2

Starts its own embedded Flink cluster (2 TaskManagers x 1 slot) and broker, and stops both at the end.
One reference-pipeline job (200 us enrichment per event, shedding control topic) runs throughout:

1. the sustainable rate S of the source vertex is measured (records read / busy time, saturated);
2. per overload factor f: ``--off-seconds`` at f x S with p = 1 (lag growth without shedding), then
   ``--phase-seconds`` at f x S with the ShedController on (2% target at 95% confidence), while the
   collector records the read rate, the lag and p;
3. the load stops, the lag drains, the job is stopped with drain (every window flushed) and each 10 s
   window's total clicks is compared with the generator's manifest.

``--pipeline sql`` runs the SQL reference pipeline (``clickstream-sql``, cost ``--cost-rounds``) with the Java
shedding library instead, driven by the same controller over the same control topic. Each window row carries
its own variance, so the table also says how many shedding windows lie within the job's stated bound
(``z x sqrt(variance)`` at ``--confidence``), the claim the job makes.

Rows: the factor, the offered rate, the read rate and the fully processed (kept) rate with shedding, the lag
growth per second without and with shedding (the ratio to the offered rate says how much of the overload
each absorbs), the mean keep probability, and per-window accuracy (max relative error of the windows whose
events were produced during the shedding phase, and the share within the 2% target). Timing on a shared
2-core machine is noisy; the comparisons are within the same run.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from flinkscale.core.shedding import z_for_confidence
from flinkscale.flink.cluster import ClusterSpec, LocalCluster
from flinkscale.flink.collector import Collector
from flinkscale.flink.rest import FlinkRestClient
from flinkscale.flink.shedder import ShedController, ShedSettings, source_load
from flinkscale.kafka.admin import TopicAdmin
from flinkscale.kafka.broker import EmbeddedBroker
from flinkscale.kafka.control import ArrivalRate, ControlChannel
from flinkscale.kafka.loadgen import LoadGenerator
from flinkscale.pipelines.clickstream_sql import SqlClickstreamOptions
from flinkscale.pipelines.launch import ClickstreamOptions, submit_clickstream, submit_clickstream_sql

SAMPLE_SECONDS = 5.0
TARGET_ERROR = 0.02


@dataclass
class Phase:
    factor: float
    offered: float
    shedding: bool
    started: float = 0.0  # wall clock (s) of the first event
    ended: float = 0.0
    growth: list[float] = field(default_factory=list)  # arrival - read, records/s, per sample
    read_rates: list[float] = field(default_factory=list)
    keep: list[float] = field(default_factory=list)

    def lag_growth(self) -> float:
        """Mean of (records arriving on the topic - records the job read) per second: exact lag growth.

        Not from Flink's pendingRecords, which its REST metric store refreshes only every few seconds."""
        return sum(self.growth) / len(self.growth) if self.growth else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--factors", default="1,1.5,2,3")
    parser.add_argument("--phase-seconds", type=int, default=30)
    parser.add_argument("--off-seconds", type=int, default=20)
    parser.add_argument("--cost-us", type=float, default=200.0, help="pyflink: enrichment cost per event (us)")
    parser.add_argument("--pipeline", choices=["pyflink", "sql"], default="pyflink",
                        help="pyflink: the Python-UDF reference pipeline; sql: clickstream-sql (Java shedding)")
    parser.add_argument("--cost-rounds", type=int, default=20000, help="sql: SHA-256 rounds per event")
    parser.add_argument("--window-seconds", type=int, default=10, help="the job's tumbling window")
    parser.add_argument("--confidence", type=float, default=0.99,
                        help="the confidence of the bound each window states (the job's shed_confidence)")
    args = parser.parse_args()
    factors = [float(f) for f in args.factors.split(",")]

    state_dir = Path(tempfile.mkdtemp(prefix="flinkscale-bench-shedding-"))
    cluster = LocalCluster(state_dir)
    broker = EmbeddedBroker(state_dir)
    try:
        info = cluster.up(ClusterSpec(task_managers=2, slots_per_task_manager=1, rest_port=0))
        bootstrap = broker.up(port=0).bootstrap
        rest = FlinkRestClient(info.rest_url)
        TopicAdmin(bootstrap).create_topic("clicks", 4)
        channel = ControlChannel(bootstrap, "shed-control")
        channel.publish(1.0, 0)
        agg_dir = state_dir / "agg"
        common = {"bootstrap": bootstrap, "topic": "clicks", "agg_dir": f"file://{agg_dir}",
                  "events_dir": f"file://{state_dir / 'events'}", "window_seconds": args.window_seconds,
                  "shed_control_topic": "shed-control", "shed_confidence": args.confidence,
                  # Overload means backlog: an idle split's records would be dropped as late.
                  "source_idle_timeout": "0 s"}
        if args.pipeline == "sql":
            job_id = submit_clickstream_sql(cluster, SqlClickstreamOptions(**common,
                                                                           cost_rounds=args.cost_rounds)).job_id
        else:
            job_id = submit_clickstream(cluster, ClickstreamOptions(**common, cost_us=args.cost_us)).job_id
        rest.wait_all_running(job_id, timeout=180)
        generator = LoadGenerator(bootstrap, "clicks", users=2000, seed=3,
                                  window_seconds=args.window_seconds)
        collector = Collector(rest, job_id)
        phases, sustainable = _run(generator, collector, channel, factors, args)
        # Drain: p back to 1 by the last controller steps; wait for the lag, then flush every window.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            time.sleep(SAMPLE_SECONDS)
            snapshot = collector.sample()
            if snapshot is not None and source_load(snapshot).lag == 0:
                break
        channel.publish(1.0)
        time.sleep(3)
        rest.wait_savepoint(job_id, rest.trigger_stop_with_savepoint(job_id, drain=True))
        rest.wait_job_state(job_id, ["FINISHED"])
        generator.close()
        channel.close()
        _print_table(phases, sustainable, _window_errors(agg_dir, generator, args.confidence), args.window_seconds)
    finally:
        cluster.down()
        broker.down()


def _produce(generator: LoadGenerator, rates: list[float], stop: threading.Event | None = None) -> threading.Thread:
    thread = threading.Thread(target=lambda: generator.run(rates, stop=stop), daemon=True)
    thread.start()
    return thread


def _run(generator: LoadGenerator, collector: Collector, channel: ControlChannel, factors: list[float],
         args: argparse.Namespace) -> tuple[list[Phase], float]:
    stop = threading.Event()
    thread = _produce(generator, [3000.0] * 120, stop)
    collector.sample()
    estimates: list[float] = []
    # The read rate ramps up while the job warms up; measure until two estimates agree within 15%.
    while thread.is_alive() and not (len(estimates) >= 3 and abs(estimates[-1] - estimates[-2])
                                     <= 0.15 * max(estimates[-2:]) and estimates[-1] >= 0.85 * max(estimates)):
        time.sleep(SAMPLE_SECONDS)
        snapshot = collector.sample()
        if snapshot is not None:
            estimate = source_load(snapshot).sustainable_rate(1.0, 300.0)
            if estimate is not None:
                estimates.append(estimate)
    stop.set()
    thread.join()
    sustainable = max(estimates[1:] or estimates)
    print(f"sustainable rate of the source vertex: {sustainable:.0f} records/s (best after warm-up of "
          f"{[round(e) for e in estimates]})")
    seq = 1
    phases = []
    arrivals = ArrivalRate(generator.bootstrap, generator.topic)
    for factor in factors:
        offered = factor * sustainable
        for shedding, seconds in ((False, args.off_seconds), (True, args.phase_seconds)):
            phase = Phase(factor, offered, shedding)
            controller = None
            if shedding:
                controller = ShedController(lambda p, s: channel.publish(p, s),
                                            ShedSettings(target_error=TARGET_ERROR,
                                                         window_seconds=args.window_seconds),
                                            next_seq=seq)
            else:
                channel.publish(1.0, seq)
                seq += 1
            phase.started = time.time()
            thread = _produce(generator, [offered] * seconds)
            collector.sample()
            arrivals.sample()
            while thread.is_alive():
                time.sleep(SAMPLE_SECONDS)
                snapshot = collector.sample()
                arrival = arrivals.sample()
                if snapshot is None:
                    continue
                load = source_load(snapshot)
                if arrival is not None:
                    phase.growth.append(arrival - load.consumed_rate)
                phase.read_rates.append(load.consumed_rate)
                if controller is not None:
                    controller.step(snapshot, arrival)
                    phase.keep.append(controller.keep_probability)
                else:
                    phase.keep.append(1.0)
            thread.join()
            phase.ended = time.time()
            if controller is not None:
                seq = controller.next_seq
            phases.append(phase)
            half = phase.growth[len(phase.growth) // 2:]
            print(f"  factor {factor}: shedding {'on' if shedding else 'off'}: lag growth "
                  f"{phase.lag_growth():+.0f}/s ({sum(half) / max(len(half), 1):+.0f}/s in the second half), "
                  f"p by sample {[round(k, 2) for k in phase.keep]}")
    return phases, sustainable


def _window_errors(agg_dir: Path, generator: LoadGenerator, confidence: float) -> dict[int, tuple[float, int, bool]]:
    """window start (s) -> (relative error of the total clicks, true records, whether the estimate lies within the
    bound the window's rows state at ``confidence``: z x sqrt(summed variance))."""
    import json

    estimates: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for path in agg_dir.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            for line in path.read_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    start = datetime.fromisoformat(row["window_start"]).replace(tzinfo=UTC).timestamp()
                    estimates[int(start)][0] += row["clicks_estimate"]
                    estimates[int(start)][1] += row.get("clicks_variance") or 0.0
    exact: dict[int, int] = defaultdict(int)
    for (_user, window), (count, _size) in generator.manifest.per_window.items():
        exact[window] += count
    z = z_for_confidence(confidence)
    result = {}
    for w, n in exact.items():
        if n:
            estimate, variance = estimates.get(w, [0.0, 0.0])
            result[w] = (abs(estimate - n) / n, n, abs(estimate - n) <= z * math.sqrt(variance) + 1e-9)
    return result


def _print_table(phases: list[Phase], sustainable: float, errors: dict[int, tuple[float, int, bool]],
                 window_seconds: int) -> None:
    print()
    print(f"sustainable S = {sustainable:,.0f} records/s; target {TARGET_ERROR:.0%} at 95% confidence; "
          f"{window_seconds} s windows")
    header = (f"{'overload':>8} {'offered/s':>10} {'read/s':>8} {'kept/s':>8} {'mean p':>7} {'lag/s off':>10} "
              f"{'lag/s on':>9} {'windows':>7} {'max err':>8} {'<=2%':>6} {'in bound':>8}")
    print(header)
    print("-" * len(header))
    by_factor: dict[float, dict[bool, Phase]] = defaultdict(dict)
    for phase in phases:
        by_factor[phase.factor][phase.shedding] = phase
    for factor, pair in by_factor.items():
        on, off = pair[True], pair[False]
        read = sum(on.read_rates) / max(len(on.read_rates), 1)
        keep = sum(on.keep) / max(len(on.keep), 1)
        # Windows whose events were all produced during the shedding phase.
        inside = [(e, bound) for w, (e, _n, bound) in errors.items()
                  if on.started <= w and w + window_seconds <= on.ended]
        max_error = max(e for e, _ in inside) if inside else float("nan")
        within = sum(1 for e, _ in inside if e <= TARGET_ERROR) / len(inside) if inside else float("nan")
        in_bound = f"{sum(b for _, b in inside)}/{len(inside)}"
        print(f"{factor:>7.1f}x {on.offered:>10,.0f} {read:>8,.0f} {read * keep:>8,.0f} {keep:>7.3f} "
              f"{off.lag_growth():>+10,.0f} {on.lag_growth():>+9,.0f} {len(inside):>7} {max_error:>8.2%} "
              f"{within:>6.0%} {in_bound:>8}")
    print("read/s: records the source read; kept/s = read x p; lag/s: lag growth per second over the phase "
          "(shedding off, then on); max err: largest |estimate - exact| / exact of the total clicks per window; in "
          "bound: windows within the bound their rows state (z x sqrt(variance) at --confidence).")


if __name__ == "__main__":
    main()
