"""The load generator: clickstream events to a Kafka topic at a rate profile, with Zipf-skewed users.

Rates come from the simulator's traces (constant, step, ramp, diurnal, spikes, replay), sampled once a second,
so the load a real job sees and the load a simulated job sees are described the same way. Within a second the
generator paces itself in 10 ms ticks and reports the rate it actually achieved; when the producer cannot keep
up (achieved below 95% of the target for a second) it says so instead of silently producing less.

Events are JSON: ``{"event_id", "user_id", "url", "size_bytes", "event_time"}``. ``event_id`` counts up from
``first_id`` without gaps, and the ``Manifest`` records the ids produced and, per (user, tumbling window), the
exact count and byte sum: what tests and the shedding accuracy check compare the pipeline's output against.
Users are drawn from a Zipf distribution with exponent ``zipf_s`` over ``users`` users (0 = uniform) with a
fixed seed; messages are keyed by user, so a hot user is also a hot partition, as in production.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from confluent_kafka import KafkaException, Producer

from flinkscale.core.errors import EndpointError, InputError, require_at_least

TICK_SECONDS = 0.01
# A second's shortfall is caught up when the producer spent less than CATCH_UP_MAX_BUSY of it on the CPU (a stall,
# not slowness), or when it is at most CATCH_UP_TOLERANCE of the rate (the last tick's share).
CATCH_UP_MAX_BUSY = 0.5
CATCH_UP_TOLERANCE = 0.05
# How long the producer waits to fill a batch (librdkafka's linger.ms; its own maximum is 900,000). The batches on
# the topic are what the job's source reads: a larger linger gives fewer, larger batches, as producers at terabytes
# a day send, and a Flink source then spends less time per record (docs/sql-and-java.md).
DEFAULT_LINGER_MS = 5.0
MAX_LINGER_MS = 900_000.0
_URLS = ("/", "/search?q=flink", "/products/{n}", "/cart", "/checkout", "/help/{n}", "/blog/{n}")


@dataclass
class Manifest:
    """What the generator produced: the id range and exact per-(user, window) counts and byte sums."""

    topic: str
    first_id: int
    next_id: int
    window_seconds: int
    per_window: dict[tuple[str, int], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    # (wall-clock start of the second in epoch seconds, target rate, records produced in it)
    seconds: list[tuple[float, float, int]] = field(default_factory=list)

    @property
    def produced(self) -> int:
        return self.next_id - self.first_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic, "first_id": self.first_id, "next_id": self.next_id, "produced": self.produced,
            "window_seconds": self.window_seconds,
            "per_window": [[u, w, c, b] for (u, w), (c, b) in sorted(self.per_window.items())],
            "seconds": self.seconds,
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict()))


@dataclass(frozen=True)
class LoadReport:
    produced: int
    seconds: float
    target_records: float
    warnings: tuple[str, ...]

    @property
    def achieved_rate(self) -> float:
        return self.produced / self.seconds if self.seconds else 0.0


def zipf_weights(users: int, zipf_s: float) -> np.ndarray:  # type: ignore[type-arg]
    ranks = np.arange(1, users + 1, dtype=np.float64)
    weights = ranks ** -zipf_s if zipf_s > 0 else np.ones(users)
    return weights / weights.sum()  # type: ignore[no-any-return]


def check_linger_ms(linger_ms: float) -> None:
    if not 0 <= linger_ms <= MAX_LINGER_MS:  # also refuses nan
        raise InputError(f"must be from 0 to {MAX_LINGER_MS:,.0f} ms, got {linger_ms}", field="--linger-ms")


class ProducerLike(Protocol):
    """The part of confluent_kafka.Producer the generator uses (tests pass a recording fake)."""

    def produce(self, topic: str, value: str, key: str) -> None: ...
    def poll(self, timeout: float) -> int: ...
    def flush(self, timeout: float) -> int: ...


class LoadGenerator:
    def __init__(self, bootstrap: str, topic: str, *, users: int = 10_000, zipf_s: float = 0.0, seed: int = 1,
                 first_id: int = 0, window_seconds: int = 10, mean_bytes: int = 400,
                 linger_ms: float = DEFAULT_LINGER_MS, producer: ProducerLike | None = None) -> None:
        require_at_least(users, 1, "--users")
        if zipf_s < 0:
            raise InputError("must be >= 0 (0 = uniform)", field="--zipf")
        check_linger_ms(linger_ms)
        self.topic = topic
        self.bootstrap = bootstrap
        self._rng = np.random.default_rng(seed)
        self._cdf = np.cumsum(zipf_weights(users, zipf_s))
        self._mean_bytes = mean_bytes
        self.manifest = Manifest(topic, first_id, first_id, window_seconds)
        self._errors: list[str] = []
        self._producer: ProducerLike = producer if producer is not None else Producer({
            "bootstrap.servers": bootstrap, "linger.ms": linger_ms, "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 1_000_000, "acks": "all", "enable.idempotence": False,
            "error_cb": lambda err: self._errors.append(str(err)), "log.connection.close": False,
            "log_level": 2,  # errors reach error_cb and are raised; librdkafka's own stderr lines are noise
        })

    def _batch(self, count: int, now_ms: int) -> None:
        users = np.searchsorted(self._cdf, self._rng.random(count))
        users = np.minimum(users, len(self._cdf) - 1)
        sizes = self._rng.integers(self._mean_bytes // 2, self._mean_bytes * 3 // 2, count)
        pages = self._rng.integers(0, 1000, count)
        window = now_ms // 1000 // self.manifest.window_seconds * self.manifest.window_seconds
        produce = self._producer.produce
        for user_index, size, page in zip(users.tolist(), sizes.tolist(), pages.tolist(), strict=True):
            event_id = self.manifest.next_id
            user = f"u{user_index}"
            url = _URLS[page % len(_URLS)].format(n=page)
            value = (f'{{"event_id":{event_id},"user_id":"{user}","url":"{url}","size_bytes":{size},'
                     f'"event_time":{now_ms}}}')
            while True:
                try:
                    produce(self.topic, value=value, key=user)
                    break
                except BufferError:  # local queue full: let the producer drain
                    self._producer.poll(0.05)
            self.manifest.next_id += 1
            counts = self.manifest.per_window[(user, window)]
            counts[0] += 1
            counts[1] += size
        self._producer.poll(0)

    def run(self, rates: Sequence[float], *, progress: Callable[[int, float, int], None] | None = None,
            stop: threading.Event | None = None, clock: Callable[[], float] = time.monotonic,
            wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
            cpu_clock: Callable[[], float] = time.thread_time) -> LoadReport:
        """Produce ``rates[i]`` records during second ``i``; returns what was achieved.

        ``cpu_clock`` is this thread's CPU time: what tells the producer's own slowness (CPU spent producing)
        from a stall (the scheduler of a loaded machine, GC), which costs wall time but no CPU."""
        warnings: list[str] = []
        start = clock()
        produced_before = self.manifest.produced
        for second, rate in enumerate(rates):
            if stop is not None and stop.is_set():
                break
            second_start = self.manifest.produced
            wall_second_start = wall_ms() / 1000
            begin = start + second
            sent_this_second = 0
            cpu_start = cpu_clock()
            while (now := clock()) < begin + 1.0:
                due = int(rate * min(1.0, now - begin + TICK_SECONDS)) - sent_this_second
                if due > 0:
                    self._batch(due, wall_ms())
                    sent_this_second += due
                else:
                    self._producer.poll(0)
                time.sleep(max(0.0, min(TICK_SECONDS, begin + 1.0 - clock())))
            self._catch_up(int(rate) - sent_this_second, rate, cpu_clock() - cpu_start, wall_ms)
            produced = self.manifest.produced - second_start
            self.manifest.seconds.append((wall_second_start, rate, produced))
            if rate > 0 and produced < 0.95 * rate:
                warnings.append(f"second {second}: produced {produced} of {rate:.0f} records (cannot keep up)")
            if self._errors:
                raise EndpointError(self._errors[0], endpoint=f"kafka://{self.bootstrap}")
            if progress:
                progress(second, rate, produced)
        remaining = self._producer.flush(30)
        if remaining:
            raise EndpointError(f"{remaining} records were not delivered within 30 s", endpoint=f"kafka://{self.bootstrap}")
        return LoadReport(self.manifest.produced - produced_before, clock() - start, float(sum(rates)),
                          tuple(warnings))

    def _catch_up(self, missing: int, rate: float, cpu_seconds: float, wall_ms: Callable[[], int]) -> None:
        """Send what a second still owes when the shortfall is not the producer's own slowness.

        The last tick can end short of the second (0.99 + 0.01 < 1.0 in floating point) or a stall (GC, the
        scheduler on a loaded machine) can swallow ticks: that shortfall is still due in this second. A producer
        that spent most of the second on the CPU cannot keep up; catching up beyond a last-tick share would only
        push the debt into the following seconds, so that is reported instead (the caller's warning). A stalled
        run that catches up takes longer than its seconds, which the report's achieved rate shows."""
        if missing <= 0:
            return
        if cpu_seconds < CATCH_UP_MAX_BUSY or missing <= CATCH_UP_TOLERANCE * rate + 1:
            self._batch(missing, wall_ms())

    def produce_count(self, count: int) -> None:
        """Produce exactly ``count`` records as fast as possible (for backlogs and tests)."""
        while count > 0:
            batch = min(count, 10_000)
            self._batch(batch, int(time.time() * 1000))
            count -= batch
        if self._producer.flush(60):
            raise EndpointError("records were not delivered within 60 s", endpoint=f"kafka://{self.bootstrap}")

    def close(self) -> None:
        """Deliver what is queued and destroy the producer (a live handle keeps reconnecting after the broker
        stops); the manifest stays readable."""
        if hasattr(self, "_producer"):  # closing twice is harmless
            self._producer.flush(10)
            del self._producer


def check_reachable(bootstrap: str, timeout: float = 5.0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "socket.timeout.ms": int(timeout * 1000)})
    try:
        producer.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise EndpointError(f"no Kafka broker answers ({exc})", endpoint=f"kafka://{bootstrap}") from None
