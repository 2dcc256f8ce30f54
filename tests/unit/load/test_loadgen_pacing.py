"""The generator's pacing: every second gets exactly its target, however late the last tick wakes up.

The fakes model where the time goes: the clocks give wall time (coarse ticks; a stall spends wall time with no CPU,
as the scheduler of a loaded machine or GC does) and the producer's CPU time is what its records cost."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flinkscale.core.errors import InputError
from flinkscale.kafka import loadgen
from flinkscale.kafka.loadgen import LoadGenerator, LoadReport


class SteppingClock:
    """Each reading is `step` seconds after the previous one: coarse ticks, as on a loaded machine."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


class RecordingProducer:
    """Each record costs `cpu_seconds_per_record` of wall and CPU time; record number `stall_at` is descheduled for
    `stall` seconds of wall time with no CPU spent (the scheduler of a loaded machine, GC)."""

    def __init__(self, clock: SteppingClock, cpu_seconds_per_record: float = 0.0,
                 stall_at: int = -1, stall: float = 0.0) -> None:
        self.values: list[str] = []
        self.clock = clock
        self.cost = cpu_seconds_per_record
        self.stall_at, self.stall = stall_at, stall
        self.cpu_seconds = 0.0

    def produce(self, topic: str, value: str, key: str) -> None:
        if len(self.values) == self.stall_at:
            self.clock.now += self.stall
        self.values.append(value)
        self.clock.now += self.cost
        self.cpu_seconds += self.cost

    def cpu(self) -> float:
        return self.cpu_seconds

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0


def run(rates: list[float], step: float, cpu_seconds_per_record: float = 0.0, stall_at: int = -1,
        stall: float = 0.0) -> tuple[LoadGenerator, RecordingProducer, LoadReport]:
    clock = SteppingClock(step)
    producer = RecordingProducer(clock, cpu_seconds_per_record, stall_at, stall)
    generator = LoadGenerator("unused:9092", "t", users=5, seed=1, first_id=100, producer=producer)
    report = generator.run(rates, clock=clock, wall_ms=lambda: 1_700_000_000_000, cpu_clock=producer.cpu)
    assert report.produced == len(producer.values)
    return generator, producer, report


def test_a_second_whose_last_tick_wakes_early_still_gets_its_whole_target() -> None:
    # 23 ms between clock readings: the last tick in a second asks for fewer records than the target
    generator, _, report = run([1000, 1000], step=0.023)
    assert report.produced == 2000
    assert [count for _, _, count in generator.manifest.seconds] == [1000, 1000]


def test_ids_are_consecutive_and_the_manifest_counts_what_was_sent() -> None:
    generator, producer, _ = run([250, 0, 333], step=0.01)
    ids = [json.loads(v)["event_id"] for v in producer.values]
    assert ids == list(range(100, 100 + 583))
    assert sum(count for count, _ in generator.manifest.per_window.values()) == 583


def test_ten_millisecond_ticks_in_floating_point_do_not_lose_the_last_record() -> None:
    _, _, report = run([1000] * 3, step=0.01)
    assert report.produced == 3000


def test_a_producer_that_cannot_keep_up_is_reported_not_caught_up_later() -> None:
    # 1.2 ms of CPU a record: at most 833 records a second, far beyond a last-tick shortfall
    generator, _, report = run([1000, 1000], step=0.01, cpu_seconds_per_record=0.0012)
    report_counts = [count for _, _, count in generator.manifest.seconds]
    assert all(count < 950 for count in report_counts)
    assert report.produced == sum(report_counts) < 2000 and len(report.warnings) == 2


def test_a_stall_at_the_end_of_a_second_is_caught_up() -> None:
    # 200 ms off the CPU while producing the record due at 0.85 s
    _, _, report = run([1000, 1000], step=0.01, stall_at=850, stall=0.2)
    assert report.produced == 2000 and not report.warnings


def test_a_stall_longer_than_half_the_second_is_caught_up_too() -> None:
    # A loaded CI machine: the generator was off the CPU from 0.45 s to past the end of the second: not slowness
    generator, _, report = run([1000, 1000], step=0.01, stall_at=450, stall=0.6)
    assert report.produced == 2000 and not report.warnings
    assert [count for _, _, count in generator.manifest.seconds] == [1000, 1000]


@pytest.mark.parametrize("linger_ms", [0.0, 5.0, 100.0])
def test_the_producer_batches_for_the_linger_asked_for(monkeypatch: pytest.MonkeyPatch, linger_ms: float) -> None:
    configs: list[dict[str, Any]] = []

    def producer(config: dict[str, Any]) -> RecordingProducer:
        configs.append(config)
        return RecordingProducer(SteppingClock(0.01))

    monkeypatch.setattr(loadgen, "Producer", producer)
    LoadGenerator("unused:9092", "t", linger_ms=linger_ms)
    assert configs[0]["linger.ms"] == linger_ms


@pytest.mark.parametrize("linger_ms", [-1.0, float("nan"), float("inf"), 900_001.0])
def test_a_linger_out_of_librdkafkas_range_names_the_flag(linger_ms: float) -> None:
    with pytest.raises(InputError, match="--linger-ms"):
        LoadGenerator("unused:9092", "t", linger_ms=linger_ms, producer=RecordingProducer(SteppingClock(0.01)))
