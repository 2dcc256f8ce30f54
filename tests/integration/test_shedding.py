"""Load shedding on the real cluster: lag stays bounded at 2x overload, and the estimates hold their bound.

One job (the reference pipeline with a 200 us enrichment and a shedding control topic) goes through four
phases, with the load generator's manifest as the exact truth:

1. measure: a moderate rate; the sustainable rate S = records read / busy time of the source vertex.
2. overload at 2 S with shedding off (p = 1 on the control topic): lag grows. When the job reads well above
   S there (the shared machine got quieter), S is measured again from those reads and the phase repeated once.
3. the same overload with the ShedController on: p drops to about S / 2S, lag stops growing.
4. the load stops: the controller returns p to 1 (capacity is back); the job drains its lag and is
   stopped with drain=True so every window is flushed to the exactly-once filesystem sink.

Then per 10 s window, the total clicks and bytes (the sum of the per-user rows) are compared with the
manifest: the median shed window within the 2% target and none beyond twice it (the 95%-of-windows claim
is tested over 400 seeded windows in tests/unit/shedding), unshed windows exact.
Per-user windows are not compared: at p = 0.5 a 2% bound needs ~10^4 records per group per window.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from flinkscale.core.shedding import z_for_confidence
from flinkscale.flink.collector import Collector
from flinkscale.flink.shedder import ShedController, ShedSettings, source_load
from flinkscale.kafka.control import ArrivalRate, ControlChannel
from flinkscale.kafka.loadgen import LoadGenerator, LoadReport

from .conftest import Runtime

pytestmark = pytest.mark.integration

WINDOW_SECONDS = 10
TARGET_ERROR = 0.02
CONFIDENCE = 0.95
SAMPLE_SECONDS = 5.0


class Load:
    """The generator in a background thread, one phase (a list of per-second rates) at a time."""

    def __init__(self, generator: LoadGenerator) -> None:
        self.generator = generator
        self.thread: threading.Thread | None = None
        self.reports: list[LoadReport] = []

    def start(self, rates: list[float], stop: threading.Event | None = None) -> None:
        self.wait()
        self.thread = threading.Thread(target=lambda: self.reports.append(self.generator.run(rates, stop=stop)),
                                       daemon=True)
        self.thread.start()

    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def wait(self) -> None:
        if self.thread is not None:
            self.thread.join()
            self.thread = None


def plateau(estimates: list[float]) -> bool:
    """The last two estimates agree within 15% and are near the best so far: warm-up is over."""
    if len(estimates) < 3:
        return False
    last, previous = estimates[-1], estimates[-2]
    return abs(last - previous) <= 0.15 * max(last, previous) and last >= 0.85 * max(estimates)


def read_rows(directory: Path) -> list[dict[str, Any]]:
    rows = []
    for path in directory.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows


def window_epoch(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("T", " ")).replace(tzinfo=UTC).timestamp())


def drain_stop(runtime: Runtime, job_id: str) -> None:
    request = runtime.rest.trigger_stop_with_savepoint(job_id, drain=True)
    runtime.rest.wait_savepoint(job_id, request)
    runtime.rest.wait_job_state(job_id, ["FINISHED"])


def overload_without_shedding(load: Load, collector: Collector, arrivals: ArrivalRate, overload: float,
                              log: list[str]) -> tuple[list[float], list[float]]:
    """35 s at `overload` with p = 1: the lag growth (records arriving on the topic - records read; exact, where
    Flink's pendingRecords is refreshed only every few seconds in its REST metric store) and the read / busy
    estimates of what the source can do, one per sample."""
    load.start([overload] * 35)
    collector.sample()
    arrivals.sample()
    growth: list[float] = []
    estimates: list[float] = []
    while load.running():
        time.sleep(SAMPLE_SECONDS)
        whole_interval_loaded = load.running()  # else the interval's end had no load: its arrivals read low
        snapshot = collector.sample()
        arrival = arrivals.sample()
        if snapshot is None or arrival is None or not whole_interval_loaded:
            continue
        measured = source_load(snapshot)
        growth.append(arrival - measured.consumed_rate)
        estimate = measured.sustainable_rate(1.0, 300.0)
        if estimate is not None:
            estimates.append(estimate)
        log.append(f"shedding off: arrived {arrival:.0f}/s, read {measured.consumed_rate:.0f}/s at busy "
                   f"{measured.busy_time_ms_per_second_avg} ms/s, lag {measured.lag:.0f}")
    load.wait()
    return growth, estimates


def test_shedding_bounds_lag_and_meets_the_accuracy_target(clean_jobs: Runtime, tmp_path: Path) -> None:
    runtime = clean_jobs
    bootstrap = runtime.broker.bootstrap
    topic = runtime.topic(4)
    control_topic = runtime.unique("shed-control")
    channel = ControlChannel(bootstrap, control_topic)
    channel.publish(1.0, 0)
    agg_dir = tmp_path / "agg"
    # The events sink is what keeps the enrichment (and its cost) in the plan: the window needs no category.
    job_id, _ = runtime.clickstream(topic, agg_dir=f"file://{agg_dir}", events_dir=f"file://{tmp_path / 'events'}",
                                    cost_us=200.0,
                                    window_seconds=WINDOW_SECONDS, shed_control_topic=control_topic,
                                    # Overload means backlog: no split may be declared idle and its records
                                    # dropped as late (see clickstream.configure).
                                    source_idle_timeout="0 s")
    generator = LoadGenerator(bootstrap, topic, users=2000, seed=11, window_seconds=WINDOW_SECONDS)
    load = Load(generator)
    collector = Collector(runtime.rest, job_id)
    log: list[str] = []
    try:
        # 1. measure the sustainable rate of the source vertex (the enrichment is chained into it): produce
        # more than it can take and read records / busy time once it is reading (startup on a shared
        # machine takes a while).
        stop = threading.Event()
        load.start([3000.0] * 90, stop)
        collector.sample()
        estimates: list[float] = []
        deadline = time.monotonic() + 110
        while time.monotonic() < deadline and not plateau(estimates):
            time.sleep(SAMPLE_SECONDS)
            snapshot = collector.sample()
            if snapshot is None:
                continue
            measured_load = source_load(snapshot)
            estimate = measured_load.sustainable_rate(1.0, 300.0)
            log.append(f"measuring: read {measured_load.consumed_rate:.0f}/s at busy "
                       f"{measured_load.busy_time_ms_per_second_avg} ms/s -> {estimate}")
            if estimate is not None and measured_load.consumed_rate > 0:
                estimates.append(estimate)
        stop.set()
        load.wait()
        assert len(estimates) >= 2, log
        # The read rate ramps up while the job warms up (JIT, Python, a shared machine): the best estimate
        # once it levels off is what the job can do, and 2x of it is surely an overload.
        sustainable = max(estimates[1:])
        overload = 2.0 * sustainable
        log.append(f"sustainable {sustainable:.0f}/s; overload {overload:.0f}/s")

        # 2. 2x overload, shedding off: lag grows. When the job reads well above the estimate (the machine got
        # quieter since step 1: on CI the other lane's unit tests may just have ended), 2x that estimate is no
        # overload: measure again from this phase's reads and try once more at 2x the new figure.
        arrivals = ArrivalRate(bootstrap, topic)
        for attempt in (1, 2):
            growth_off, estimates_off = overload_without_shedding(load, collector, arrivals, overload, log)
            log.append(f"shedding off (attempt {attempt}): lag growth {[round(x) for x in growth_off]}/s")
            assert len(growth_off) >= 4, log
            if sum(growth_off) / len(growth_off) > 0.25 * sustainable:
                break
            remeasured = max(estimates_off, default=0.0)
            assert attempt == 1 and remeasured > 1.2 * sustainable, log
            sustainable, overload = remeasured, 2.0 * remeasured
            log.append(f"re-measured: sustainable {sustainable:.0f}/s; overload {overload:.0f}/s")

        # 3. the same overload with the controller on: lag stops growing.
        published: list[tuple[float, int]] = []

        def publish(p: float, seq: int) -> None:
            channel.publish(p, seq)
            published.append((p, seq))

        controller = ShedController(publish, ShedSettings(target_error=TARGET_ERROR, confidence=CONFIDENCE,
                                                          window_seconds=WINDOW_SECONDS), next_seq=1)
        load.start([overload] * 45)
        lags_on = []
        growth_on: list[float] = []
        collector.sample()
        arrivals.sample()
        while load.running():
            time.sleep(SAMPLE_SECONDS)
            snapshot = collector.sample()
            arrival = arrivals.sample()
            if snapshot is not None:
                step = controller.step(snapshot, arrival)
                lags_on.append(step.load.lag)
                growth_on.append(step.load.lag_growth_rate)
                log.append(step.describe())
        load.wait()
        log.append(f"shedding on: lag {[round(x) for x in lags_on]}, published {published}")
        assert published and min(p for p, _ in published) < 0.8, log
        later = growth_on[len(growth_on) // 2:]
        # Bounded: over the second half the lag does not grow (it falls while the backlog drains).
        assert sum(later) / len(later) <= 0.1 * sustainable, log

        # 4. load gone: p back to 1, the backlog drains.
        deadline = time.monotonic() + 90
        lag = lags_on[-1]
        while time.monotonic() < deadline:
            time.sleep(SAMPLE_SECONDS)
            snapshot = collector.sample()
            arrival = arrivals.sample()
            if snapshot is not None:
                step = controller.step(snapshot, arrival)
                lag = step.load.lag
                log.append(step.describe())
                if lag == 0 and controller.keep_probability == 1.0:
                    break
        assert controller.keep_probability == 1.0, log
        assert lag == 0, log
        time.sleep(3)  # the idle timeout advances the watermark past the last window
        drain_stop(runtime, job_id)
    finally:
        load.wait()
        generator.close()
        channel.close()
        print("\n".join(log))

    rows = read_rows(agg_dir)
    assert rows
    estimated: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    for row in rows:
        entry = estimated[window_epoch(row["window_start"])]
        entry[0] += row["clicks_estimate"]
        entry[1] += row["total_bytes_estimate"]
        entry[2] += row["clicks_variance"]
        entry[3] += row["total_bytes_variance"]
        entry[4] += row["sampled"]
        entry[5] += 1
    exact: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for (_user, window), (count, size) in generator.manifest.per_window.items():
        exact[window][0] += count
        exact[window][1] += size
    assert set(estimated) == set(exact), (sorted(estimated), sorted(exact))

    z = z_for_confidence(CONFIDENCE)
    shed_windows: list[tuple[int, int, float, float, float, float]] = []
    for window, (clicks, total_bytes, clicks_var, _bytes_var, sampled, _) in sorted(estimated.items()):
        true_clicks, true_bytes = exact[window]
        if sampled == true_clicks:  # nothing shed in this window: the result is exact
            assert (round(clicks), round(total_bytes)) == (true_clicks, true_bytes), window
            continue
        clicks_error = abs(clicks - true_clicks) / true_clicks
        bytes_error = abs(total_bytes - true_bytes) / true_bytes
        stated = z * math.sqrt(clicks_var) / clicks
        shed_windows.append((window, true_clicks, sampled / true_clicks, clicks_error, bytes_error, stated))
    print("window, records, kept fraction, clicks error, bytes error, stated clicks error")
    for shed_window in shed_windows:
        print(shed_window)
    # The target applies to windows with the records the bound was computed for; the windows at the phase
    # edges hold a fraction of a window's records (the measuring rate, or the load stopping mid-window).
    full = [w for w in shed_windows if w[1] >= 0.8 * overload * WINDOW_SECONDS]
    assert len(full) >= 3, shed_windows
    # One run has a handful of windows: "95% of windows within 2%" is a claim about many windows and is tested
    # over 400 seeded windows in tests/unit/shedding. What one run shows with margin: the typical window is
    # within the target, and no window is off by twice the target (~4 standard errors, ~1e-4 per window).
    errors = sorted(max(w[3], w[4]) for w in full)
    assert errors[len(errors) // 2] <= TARGET_ERROR, full
    assert errors[-1] <= 2 * TARGET_ERROR, full
