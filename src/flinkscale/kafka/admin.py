"""Topic administration over the Kafka protocol (confluent-kafka): create, describe, offsets, lag."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from flinkscale.core.errors import EndpointError, InputError


@dataclass(frozen=True)
class PartitionOffsets:
    partition: int
    low: int
    high: int
    committed: int | None = None

    @property
    def lag(self) -> int | None:
        return None if self.committed is None else max(0, self.high - max(self.committed, self.low))


@dataclass(frozen=True)
class TopicInfo:
    name: str
    partitions: tuple[PartitionOffsets, ...]

    @property
    def messages(self) -> int:
        return sum(p.high - p.low for p in self.partitions)


class TopicAdmin:
    def __init__(self, bootstrap: str, timeout: float = 10.0) -> None:
        self.bootstrap = bootstrap
        self.timeout = timeout
        self._admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": int(timeout * 1000),
                                   "log_level": 2})

    def _fail(self, exc: Exception) -> EndpointError:
        return EndpointError(str(exc), endpoint=f"kafka://{self.bootstrap}")

    def topics(self) -> dict[str, int]:
        """Topic name -> partition count."""
        try:
            metadata = self._admin.list_topics(timeout=self.timeout)
        except KafkaException as exc:
            raise self._fail(exc) from None
        return {name: len(t.partitions) for name, t in metadata.topics.items() if not name.startswith("__")}

    def create_topic(self, name: str, partitions: int, exist_ok: bool = True) -> None:
        if partitions < 1:
            raise InputError("must be >= 1", field="--partitions")
        existing = self.topics()
        if name in existing:
            if exist_ok and existing[name] == partitions:
                return
            raise InputError(f"topic exists with {existing[name]} partitions", field=name)
        futures = self._admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        try:
            futures[name].result(timeout=self.timeout)
        except KafkaException as exc:
            raise self._fail(exc) from None

    def delete_topic(self, name: str) -> None:
        futures = self._admin.delete_topics([name])
        try:
            futures[name].result(timeout=self.timeout)
        except KafkaException as exc:
            raise self._fail(exc) from None

    def describe(self, topic: str, group: str | None = None) -> TopicInfo:
        """Offsets per partition, and the committed offsets (hence lag) of ``group`` if given."""
        count = self.topics().get(topic)
        if count is None:
            raise InputError(f"no such topic on {self.bootstrap}", field=topic)
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group or "flinkscale-admin",
                             "enable.auto.commit": False, "log_level": 2})
        try:
            parts = [TopicPartition(topic, p) for p in range(count)]
            committed = {tp.partition: tp.offset for tp in consumer.committed(parts, timeout=self.timeout)} \
                if group else {}
            rows = []
            for p in range(count):
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=self.timeout)
                offset = committed.get(p)
                rows.append(PartitionOffsets(p, low, high, offset if offset is not None and offset >= 0 else None))
        except KafkaException as exc:
            raise self._fail(exc) from None
        finally:
            consumer.close()
        return TopicInfo(topic, tuple(rows))
