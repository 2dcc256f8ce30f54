"""The load-shedding control channel: a one-partition Kafka topic whose latest message sets p.

The running job (``pipelines/clickstream.py``'s ``shed_weight`` UDF) assigns itself to partition 0 of this
topic from the last message and polls it about once a second; ``ControlChannel`` is the other end. A
message is ``ShedDecision.to_control_message(seq)``: ``{"keep_probability": p, "seq": n}``. The newest seq
wins in the job, so the publisher continues from the seq already on the topic (``latest()``) and a
restarted controller can never roll p back with a smaller seq.

The topic outlives the job, which is what makes the value survive rescales and restarts: every new UDF
instance reads the message in force when it opens. No consumer group is used (``assign``, not
``subscribe``): the embedded broker does not support groups, and every reader must see every message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from flinkscale.core.errors import EndpointError, InputError
from flinkscale.kafka import admin as kafka_admin
from flinkscale.kafka.admin import CLIENT_LOGGING, TopicAdmin, check_bootstrap, check_topic_name, kafka_error_text
from flinkscale.pipelines.shedding import ControlMessage, parse_control_message


@dataclass(frozen=True)
class PublishedControl:
    """A message as written: its value and the partition offset it got."""

    message: ControlMessage
    offset: int | None


class ControlChannel:
    """Publish and read the keep probability on ``topic`` (created with one partition if missing)."""

    def __init__(self, bootstrap: str, topic: str, *, timeout: float | None = None, create: bool = True) -> None:
        check_topic_name(topic, "--topic")
        check_bootstrap(bootstrap)
        self.bootstrap = bootstrap
        self.topic = topic
        self.timeout = timeout = kafka_admin.KAFKA_TIMEOUT_SECONDS if timeout is None else timeout
        if create:
            topics = TopicAdmin(bootstrap, timeout)
            if topic not in topics.topics():
                topics.create_topic(topic, 1)
        self._producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0,
                                   "enable.idempotence": False, "socket.timeout.ms": int(timeout * 1000),
                                   "message.timeout.ms": int(timeout * 1000), **CLIENT_LOGGING})

    def _endpoint_error(self, detail: str) -> EndpointError:
        return EndpointError(detail, endpoint=f"kafka://{self.bootstrap}/{self.topic}")

    def latest(self) -> ControlMessage | None:
        """The last valid message on partition 0, or None when the topic is empty."""
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "flinkscale-shed-publisher",
                             "enable.auto.commit": False, "socket.timeout.ms": int(self.timeout * 1000),
                             **CLIENT_LOGGING})
        try:
            partition = TopicPartition(self.topic, 0)
            low, high = consumer.get_watermark_offsets(partition, timeout=self.timeout)
            if high <= low:
                return None
            consumer.assign([TopicPartition(self.topic, 0, high - 1)])
            deadline = time.monotonic() + self.timeout
            while time.monotonic() < deadline:
                message = consumer.poll(0.2)
                if message is None or message.error() is not None:
                    continue
                try:
                    return parse_control_message(message.value() or b"")
                except InputError:
                    return None  # the job ignores a bad last message too; a new one supersedes it
            raise self._endpoint_error(f"the last control message (offset {high - 1}) was not readable in "
                                       f"{self.timeout:.0f}s")
        except KafkaException as exc:
            raise self._endpoint_error(kafka_error_text(exc)) from None
        finally:
            consumer.close()

    def latest_value(self) -> tuple[float, int] | None:
        """The latest (keep probability, seq), or None when the topic holds no valid control message."""
        latest = self.latest()
        return None if latest is None else (latest.keep_probability, latest.seq)

    def publish(self, keep_probability: float, seq: int | None = None,
                per_key: dict[str, float] | None = None) -> PublishedControl:
        """Write p (0 < p <= 1); ``seq`` defaults to one more than the seq on the topic."""
        if seq is None:
            previous = self.latest()
            seq = 0 if previous is None else previous.seq + 1
        body: dict[str, object] = {"keep_probability": keep_probability, "seq": seq}
        if per_key:
            body["per_key"] = per_key
        message = parse_control_message(body)  # validates p and seq with field names
        return self.publish_message(message)

    def publish_message(self, message: ControlMessage) -> PublishedControl:
        body: dict[str, object] = {"keep_probability": message.keep_probability, "seq": message.seq}
        if message.per_key:
            body["per_key"] = dict(message.per_key)
        offsets: list[int] = []
        errors: list[str] = []

        def delivered(error: object, record: object) -> None:
            if error is not None:
                errors.append(str(error))
            else:
                offsets.append(record.offset())  # type: ignore[attr-defined]

        try:
            self._producer.produce(self.topic, value=json.dumps(body).encode(), partition=0, on_delivery=delivered)
        except KafkaException as exc:
            raise self._endpoint_error(kafka_error_text(exc)) from None
        if self._producer.flush(self.timeout):
            raise self._endpoint_error(f"the control message was not delivered within {self.timeout:.0f}s")
        if errors:
            raise self._endpoint_error(errors[0])
        return PublishedControl(message, offsets[0] if offsets else None)

    def close(self) -> None:
        """Deliver what is queued and destroy the producer (a live handle keeps reconnecting, and logging, after
        the broker stops)."""
        if hasattr(self, "_producer"):  # closing twice is harmless
            self._producer.flush(self.timeout)
            del self._producer


class ArrivalRate:
    """The rate records arrive on a topic: the growth of the sum of its partitions' end offsets.

    This is the offered rate the shedding controller needs, exact and current. Flink's ``pendingRecords``
    would give it too (read rate + lag growth), but the REST metric store refreshes it only every few
    seconds, so lag growth over one short interval swings between 0 and twice the truth.
    """

    def __init__(self, bootstrap: str, topic: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.admin = TopicAdmin(bootstrap)
        self.topic = topic
        self.clock = clock
        self._previous: tuple[float, int] | None = None

    def end_offsets(self) -> int:
        return sum(p.high for p in self.admin.describe(self.topic).partitions)

    def sample(self) -> float | None:
        """Records/s since the previous call (None on the first)."""
        now, total = self.clock(), self.end_offsets()
        previous, self._previous = self._previous, (now, total)
        if previous is None or now <= previous[0]:
            return None
        return (total - previous[1]) / (now - previous[0])
