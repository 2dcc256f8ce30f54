"""The generator's pacing: every second gets exactly its target, however late the last tick wakes up."""

from __future__ import annotations

import json

from flinkscale.kafka.loadgen import LoadGenerator


class RecordingProducer:
    def __init__(self) -> None:
        self.values: list[str] = []

    def produce(self, topic: str, value: str, key: str) -> None:
        self.values.append(value)

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0


class SteppingClock:
    """Each reading is `step` seconds after the previous one: coarse ticks, as on a loaded machine."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def run(rates: list[float], step: float) -> tuple[LoadGenerator, RecordingProducer, int]:
    producer = RecordingProducer()
    generator = LoadGenerator("unused:9092", "t", users=5, seed=1, first_id=100, producer=producer)
    report = generator.run(rates, clock=SteppingClock(step), wall_ms=lambda: 1_700_000_000_000)
    return generator, producer, report.produced


def test_a_second_whose_last_tick_wakes_early_still_gets_its_whole_target() -> None:
    # 23 ms between clock readings: the last tick in a second asks for fewer records than the target
    generator, producer, produced = run([1000, 1000], step=0.023)
    assert produced == 2000 == len(producer.values)
    assert [count for _, _, count in generator.manifest.seconds] == [1000, 1000]


def test_ids_are_consecutive_and_the_manifest_counts_what_was_sent() -> None:
    generator, producer, _ = run([250, 0, 333], step=0.01)
    ids = [json.loads(v)["event_id"] for v in producer.values]
    assert ids == list(range(100, 100 + 583))
    assert sum(count for count, _ in generator.manifest.per_window.values()) == 583


def test_ten_millisecond_ticks_in_floating_point_do_not_lose_the_last_record() -> None:
    _, _, produced = run([1000] * 3, step=0.01)
    assert produced == 3000


def test_a_producer_that_cannot_keep_up_is_reported_not_caught_up_later() -> None:
    # ticks 0.6 s apart: half a second's records are missing, far beyond a last-tick shortfall
    generator, _, produced = run([1000, 1000], step=0.6)
    report_counts = [count for _, _, count in generator.manifest.seconds]
    assert all(count < 950 for count in report_counts)
    assert produced == sum(report_counts) < 2000


class StallingClock(SteppingClock):
    """10 ms ticks, and one 200 ms stall (GC, the scheduler) late in the first second."""

    def __call__(self) -> float:
        if 0.85 <= self.now < 0.86:
            self.now += 0.2
        return super().__call__()


def test_a_stall_at_the_end_of_a_second_is_caught_up() -> None:
    producer = RecordingProducer()
    generator = LoadGenerator("unused:9092", "t", users=5, seed=1, producer=producer)
    report = generator.run([1000, 1000], clock=StallingClock(0.01), wall_ms=lambda: 1_700_000_000_000)
    assert report.produced == 2000 and not report.warnings
