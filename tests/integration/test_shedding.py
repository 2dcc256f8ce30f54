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

A second test runs the SQL reference pipeline with the Java shedding library through the same phases under the
same controller, after a profile at about 80% of its capacity, and checks the profile's capacity against
the saturated job and the bound each window states over at least 20 windows (see the comment above it).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from flinkscale.cli import main as cli_main
from flinkscale.core.shedding import z_for_confidence
from flinkscale.flink.collector import Collector
from flinkscale.flink.shedder import ShedController, ShedSettings, SourceLoad, source_load
from flinkscale.kafka.control import ArrivalRate, ControlChannel
from flinkscale.kafka.loadgen import LoadGenerator, LoadReport
from flinkscale.pipelines.clickstream_sql import SqlClickstreamOptions
from flinkscale.pipelines.launch import submit_clickstream_sql

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


def saturate(load: Load, collector: Collector, log: list[str], rate: float = 3000.0) -> list[SourceLoad]:
    """Offers ``rate`` (more than the job takes) until the read / busy estimates level off (``plateau``), at most
    110 s; returns what the sources saw in each sample in which they read."""
    stop = threading.Event()
    load.start([rate] * 90, stop)
    collector.sample()
    loads: list[SourceLoad] = []
    estimates: list[float] = []
    deadline = time.monotonic() + 110
    while time.monotonic() < deadline and not plateau(estimates):
        time.sleep(SAMPLE_SECONDS)
        snapshot = collector.sample()
        if snapshot is None:
            continue
        measured = source_load(snapshot)
        estimate = measured.sustainable_rate(1.0, 300.0)
        log.append(f"measuring: read {measured.consumed_rate:.0f}/s at busy {measured.busy_time_ms_per_second_avg} "
                   f"ms/s, lag {measured.lag:.0f} -> {estimate}")
        if measured.consumed_rate > 0:
            loads.append(measured)
            if estimate is not None:
                estimates.append(estimate)
    stop.set()
    load.wait()
    return loads


def read_rows(directory: Path) -> list[dict[str, Any]]:
    rows = []
    for path in directory.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows


def window_epoch(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("T", " ")).replace(tzinfo=UTC).timestamp())


class WindowTotals(NamedTuple):
    """One window: the sums over its per-user rows, and the truth from the load generator's manifest."""

    clicks: float
    total_bytes: float
    clicks_variance: float
    total_bytes_variance: float
    sampled: int
    true_clicks: int
    true_bytes: int


def window_totals(agg_dir: Path, generator: LoadGenerator) -> dict[int, WindowTotals]:
    """Window start -> its totals, in window order; every window produced has rows."""
    sums: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0, 0.0])
    for row in read_rows(agg_dir):
        entry = sums[window_epoch(row["window_start"])]
        for index, column in enumerate(("clicks_estimate", "total_bytes_estimate", "clicks_variance",
                                        "total_bytes_variance", "sampled")):
            entry[index] += row[column]
    exact: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for (_user, window), (count, size) in generator.manifest.per_window.items():
        exact[window][0] += count
        exact[window][1] += size
    assert sums and set(sums) == set(exact), (sorted(sums), sorted(exact))
    return {w: WindowTotals(c, b, cv, bv, round(n), *exact[w]) for w, (c, b, cv, bv, n) in sorted(sums.items())}


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


def shed_under_the_controller(load: Load, collector: Collector, arrivals: ArrivalRate, controller: ShedController,
                              rates: list[float], log: list[str]) -> tuple[list[float], list[float]]:
    """The load at ``rates`` with the controller stepping every sample; the lag and its growth by sample."""
    load.start(rates)
    lags: list[float] = []
    growth: list[float] = []
    collector.sample()
    arrivals.sample()
    while load.running():
        time.sleep(SAMPLE_SECONDS)
        snapshot = collector.sample()
        arrival = arrivals.sample()
        if snapshot is not None:
            step = controller.step(snapshot, arrival)
            lags.append(step.load.lag)
            growth.append(step.load.lag_growth_rate)
            log.append(step.describe())
    load.wait()
    return lags, growth


def assert_lag_stops_growing(growth: list[float], rate: float, log: list[str]) -> None:
    """Over the second half of a shedding phase the lag does not grow (it falls while a backlog drains): its mean
    growth is at most 10% of ``rate``."""
    later = growth[len(growth) // 2:]
    assert sum(later) / len(later) <= 0.1 * rate, log


def drain_and_stop(runtime: Runtime, job_id: str, collector: Collector, arrivals: ArrivalRate,
                   controller: ShedController, log: list[str], timeout: float = 90.0) -> None:
    """The load gone: the controller steps until p is back to 1 and the lag is 0 (asserted, within ``timeout``),
    then the job stops with drain, which flushes every window to the exactly-once sink."""
    deadline = time.monotonic() + timeout
    lag = math.inf
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
        estimates = [e for e in (m.sustainable_rate(1.0, 300.0) for m in saturate(load, collector, log))
                     if e is not None]
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
        lags_on, growth_on = shed_under_the_controller(load, collector, arrivals, controller, [overload] * 45, log)
        log.append(f"shedding on: lag {[round(x) for x in lags_on]}, published {published}")
        assert published and min(p for p, _ in published) < 0.8, log
        assert_lag_stops_growing(growth_on, sustainable, log)

        # 4. load gone: p back to 1, the backlog drains, every window is flushed.
        drain_and_stop(runtime, job_id, collector, arrivals, controller, log)
    finally:
        load.wait()
        generator.close()
        channel.close()
        print("\n".join(log))

    z = z_for_confidence(CONFIDENCE)
    shed_windows: list[tuple[int, int, float, float, float, float]] = []
    for window, w in window_totals(agg_dir, generator).items():
        if w.sampled == w.true_clicks:  # nothing shed in this window: the result is exact
            assert (round(w.clicks), round(w.total_bytes)) == (w.true_clicks, w.true_bytes), window
            continue
        clicks_error = abs(w.clicks - w.true_clicks) / w.true_clicks
        bytes_error = abs(w.total_bytes - w.true_bytes) / w.true_bytes
        stated = z * math.sqrt(w.clicks_variance) / w.clicks
        shed_windows.append((window, w.true_clicks, w.sampled / w.true_clicks, clicks_error, bytes_error, stated))
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


# --- the SQL pipeline with the Java shedding library --------------------------------------------------------------
# One SQL job (``clickstream-sql``: the cost is SHA-256 rounds of Flink built-ins in the source vertex's WHERE, the
# shedding function first in it) checks two claims the SQL path makes, as a user would see them:
#
# 1. profile accuracy: ``flinkscale profile`` at about 80% of a subtask's capacity predicts the maximum
#    sustainable rate within 15% of the read rate measured by saturating the job (records waiting, the source busy);
# 2. shedding at 2x that rate under the ShedController (the one `shed auto` and the autoscale loop run): the lag
#    stops growing, and the windows' estimates lie within the bound the job's rows state (z x sqrt(variance) at
#    SQL_CONFIDENCE) for at least 95% of at least SQL_MIN_WINDOWS windows. At 99.5% a window misses 1 time in 200:
#    "95% of 20" (at most one miss) fails by chance in 1 run in 220 (binomial P(2+ misses of 20) = 0.0045).
#
# 5 s windows keep the phase short. The controller's target (4% at 99.5%) is what such a window can meet at
# p ~ 0.5: a 2% target would hold p above what the capacity allows (about 18,000 records per window would be
# needed), and the lag would grow by design (bench/shedding.py shows both).
SQL_COST_ROUNDS = 20_000
# ev/s: ~80% of what one subtask read here saturated (1,460-1,540 ev/s, quiet), within the operator's default
# utilization band (0.7 +- 0.15); on a loaded machine the profile itself may run saturated. Lower, the prediction
# falls short: 0.92 and 0.86 at 800 ev/s, 0.87 at 1,000. A source reading small batches spends more busy time per
# record than a saturated one reading full batches, and the profile's rate / busy assumes a constant cost per record
# (docs/sql-and-java.md).
SQL_PROFILE_RATE = 1_200.0
SQL_WINDOW_SECONDS = 5
SQL_CONFIDENCE = 0.995
SQL_TARGET_ERROR = 0.04
SQL_SHED_SECONDS = 110
SQL_MIN_WINDOWS = 20
SQL_MIN_WINDOW_RECORDS = 1_000  # the bound is a normal approximation: windows at the phases' edges hold a few


def test_sql_profile_predicts_its_capacity_and_shedding_at_2x_holds_the_stated_bound(
        clean_jobs: Runtime, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runtime = clean_jobs
    bootstrap = runtime.broker.bootstrap
    topic = runtime.topic(4)
    control_topic = runtime.unique("shed-control")
    channel = ControlChannel(bootstrap, control_topic)
    channel.publish(1.0, 0)
    agg_dir = tmp_path / "agg"
    options = SqlClickstreamOptions(bootstrap=bootstrap, topic=topic, group=runtime.unique("sql-shed"),
                                    agg_dir=f"file://{agg_dir}", cost_rounds=SQL_COST_ROUNDS,
                                    window_seconds=SQL_WINDOW_SECONDS, shed_control_topic=control_topic,
                                    shed_confidence=SQL_CONFIDENCE, source_idle_timeout="0 s")
    job_id = submit_clickstream_sql(runtime.cluster, options).job_id
    runtime.wait_running(job_id)
    generator = LoadGenerator(bootstrap, topic, users=2000, seed=13, window_seconds=SQL_WINDOW_SECONDS)
    load = Load(generator)
    collector = Collector(runtime.rest, job_id)
    arrivals = ArrivalRate(bootstrap, topic)
    log: list[str] = []
    try:
        # 1. the profile at about 80% of the job's capacity (SQL_PROFILE_RATE says why).
        stop = threading.Event()
        load.start([SQL_PROFILE_RATE] * 120, stop)
        time.sleep(12)  # past the first (stale) metric reads and the first checkpoint
        capsys.readouterr()
        assert cli_main(["profile", "--rest", runtime.info.rest_url, "--job", job_id, "--window", "20s",
                         "--interval", "5s", "--format", "json"]) == 0
        analysis = json.loads(capsys.readouterr().out)["analysis"]
        predicted = analysis["max_sustainable_source_rate"]["value"]
        stop.set()
        load.wait()
        # 2. saturated: what it reads with records waiting and the source busy.
        saturated = [m for m in saturate(load, collector, log)
                     if (m.busy_time_ms_per_second_avg or 0.0) >= 800.0 and m.lag > 0]
        assert len(saturated) >= 2, log
        measured = sum(m.consumed_rate for m in saturated[-2:]) / 2
        log.append(f"profile at {SQL_PROFILE_RATE:.0f} ev/s predicted {predicted:.0f} ev/s; saturated, the job read "
                   f"{measured:.0f} ev/s: ratio {predicted / measured:.2f}")
        assert 0.85 <= predicted / measured <= 1.15, log

        # 3. 2x that rate with the controller on.
        overload = 2.0 * measured
        controller = ShedController(lambda p, seq: channel.publish(p, seq),
                                    ShedSettings(target_error=SQL_TARGET_ERROR, confidence=SQL_CONFIDENCE,
                                                 window_seconds=SQL_WINDOW_SECONDS), next_seq=1)
        lags, growth = shed_under_the_controller(load, collector, arrivals, controller,
                                                 [overload] * SQL_SHED_SECONDS, log)
        log.append(f"shedding on at {overload:.0f}/s: lag {[round(x) for x in lags]}")
        assert_lag_stops_growing(growth, measured, log)

        # 4. load gone: p back to 1, the backlog drains, every window is flushed.
        drain_and_stop(runtime, job_id, collector, arrivals, controller, log)
    finally:
        load.wait()
        generator.close()
        channel.close()
        print("\n".join(log))

    z = z_for_confidence(SQL_CONFIDENCE)
    shed: list[tuple[int, int, float, bool]] = []
    for window, w in window_totals(agg_dir, generator).items():
        if w.sampled == w.true_clicks:  # nothing shed: exact
            assert round(w.clicks) == w.true_clicks, window
        elif w.true_clicks >= SQL_MIN_WINDOW_RECORDS:
            error = abs(w.clicks - w.true_clicks)
            shed.append((window, w.true_clicks, error / w.true_clicks, error <= z * math.sqrt(w.clicks_variance)))
    print("window, records, relative error, within the stated bound")
    print("\n".join(str(w) for w in shed))
    assert len(shed) >= SQL_MIN_WINDOWS, shed
    assert sum(w[3] for w in shed) >= 0.95 * len(shed), shed
