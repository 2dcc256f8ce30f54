"""Topic administration over the Kafka protocol (confluent-kafka): create, describe, offsets, lag.

Also what every Kafka client of flinkscale shares: ``check_bootstrap`` (a bootstrap that is malformed, where
nothing listens, or where something listens that does not answer a Kafka request is one line within
``CONNECT_TIMEOUT_SECONDS`` plus ``PROBE_TIMEOUT_SECONDS``, before librdkafka starts its own retries) and
``CLIENT_LOGGING`` (librdkafka's log lines go to the Python logger ``flinkscale.kafka.client``, which prints
nothing unless someone configures it: an unreachable broker is one error line, not 200 client log lines).
"""

from __future__ import annotations

import logging
import re
import socket
import struct
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from flinkscale.core.errors import EndpointError, InputError, require_at_least
from flinkscale.core.redaction import register_secret

#: Default timeout of one Kafka operation (metadata, offsets, delivery), in seconds.
KAFKA_TIMEOUT_SECONDS = 10.0
#: How long ``check_bootstrap`` waits for a TCP connection to a bootstrap address.
CONNECT_TIMEOUT_SECONDS = 3.0
#: How long ``check_bootstrap`` waits for the answer to a Kafka ApiVersions request on that connection. A broker
#: answers in milliseconds; a port that accepts and never answers would otherwise cost librdkafka's whole
#: KAFKA_TIMEOUT_SECONDS per operation.
PROBE_TIMEOUT_SECONDS = 5.0
_PROBE_CORRELATION_ID = 0x464C4B53  # "FLKS"
#: ApiVersions (key 18) v0 with client id "flinkscale", framed by its int32 size: the one request every Kafka
#: broker answers before any other, whatever its version.
_PROBE_BODY = struct.pack(">hhih", 18, 0, _PROBE_CORRELATION_ID, 10) + b"flinkscale"
_PROBE = struct.pack(">i", len(_PROBE_BODY)) + _PROBE_BODY

_CLIENT_LOG = logging.getLogger("flinkscale.kafka.client")
_CLIENT_LOG.addHandler(logging.NullHandler())
_CLIENT_LOG.propagate = False
CLIENT_LOGGING: dict[str, Any] = {"logger": _CLIENT_LOG, "log.connection.close": False}


def bootstrap_addresses(bootstrap: str) -> list[tuple[str, int]]:
    """``host:port[,host:port...]`` as pairs; ``InputError`` naming --bootstrap when it is not that."""
    addresses = []
    for item in bootstrap.split(","):
        text = item.strip()
        for prefix in ("PLAINTEXT://", "SSL://", "SASL_PLAINTEXT://", "SASL_SSL://"):
            if text.upper().startswith(prefix):
                text = text[len(prefix):]
        if "@" in text:  # user:password@host:port is not a bootstrap address; never echo what may be a password
            register_secret(text.rpartition("@")[0])
            raise InputError("holds credentials (user:password@host): a Kafka bootstrap address takes none",
                             field="--bootstrap")
        host, sep, port = text.rpartition(":")
        host = host.strip("[]")
        if (not sep or not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536
                or any(c.isspace() for c in host)):
            raise InputError(f"expected host:port (comma-separated for several), got {item.strip()[:80]!r}",
                             field="--bootstrap")
        addresses.append((host, int(port)))
    return addresses


_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")


def check_topic_name(name: str, field: str) -> str:
    """``name`` if Kafka accepts it as a topic (letters, digits, '.', '_', '-'; 1-249 of them; not '.' or '..'),
    else an ``InputError`` naming ``field``: one line here, not the broker's answer (or a topic the SQL quotes)."""
    if not name:
        raise InputError("must name a Kafka topic, got ''", field=field)
    if not _TOPIC_NAME.fullmatch(name) or name in (".", ".."):
        raise InputError(f"not a Kafka topic name (letters, digits, '.', '_' and '-', at most 249): {name[:80]!r}",
                         field=field)
    return name


def kafka_error_text(exc: BaseException) -> str:
    """librdkafka's own words for an error (``KafkaError.str()``), not its ``KafkaError{code=...}`` repr."""
    error: Any = exc.args[0] if exc.args else None
    text = error.str() if error is not None and hasattr(error, "str") else str(exc)
    return " ".join(str(text).split())[:300]


def check_bootstrap(bootstrap: str, timeout: float | None = None) -> None:
    """Fail fast, in one line, when no bootstrap address accepts a TCP connection (refused, unroutable)."""
    wait = CONNECT_TIMEOUT_SECONDS if timeout is None else timeout
    reasons = []
    for host, port in bootstrap_addresses(bootstrap):
        try:
            with socket.create_connection((host, port), timeout=wait) as conn:
                problem = _probe(conn)
        except TimeoutError:
            problem = f"did not answer within {wait:g}s"
        except OSError as exc:
            problem = exc.strerror or type(exc).__name__
        if problem is None:
            return
        reasons.append(f"{host}:{port}: {problem}")
    raise EndpointError(f"no Kafka broker listens there ({'; '.join(reasons)})", endpoint=f"kafka://{bootstrap}")


def _probe(conn: socket.socket) -> str | None:
    """Send an ApiVersions request on a fresh connection: None when a Kafka broker answers it, else why not."""
    closed = "closed the connection on a Kafka request (not a Kafka broker, or one that wants TLS?)"
    conn.settimeout(PROBE_TIMEOUT_SECONDS)
    try:
        conn.sendall(_PROBE)
        answer = b""
        while len(answer) < 8:
            chunk = conn.recv(8 - len(answer))
            if not chunk:
                return closed
            answer += chunk
    except TimeoutError:
        return f"accepted a connection but sent no answer to a Kafka request within {PROBE_TIMEOUT_SECONDS:g}s"
    except ConnectionError:
        return closed
    except OSError as exc:
        return f"{exc.strerror or type(exc).__name__} on a Kafka request"
    if struct.unpack(">i", answer[4:8])[0] != _PROBE_CORRELATION_ID:
        return "answered a Kafka request with something else (not a Kafka broker?)"
    return None


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
    def __init__(self, bootstrap: str, timeout: float | None = None) -> None:
        check_bootstrap(bootstrap)
        self.bootstrap = bootstrap
        self.timeout = timeout = KAFKA_TIMEOUT_SECONDS if timeout is None else timeout
        self._admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": int(timeout * 1000),
                                   **CLIENT_LOGGING})

    def _fail(self, exc: Exception) -> EndpointError:
        return EndpointError(kafka_error_text(exc), endpoint=f"kafka://{self.bootstrap}")

    def topics(self) -> dict[str, int]:
        """Topic name -> partition count."""
        try:
            metadata = self._admin.list_topics(timeout=self.timeout)
        except KafkaException as exc:
            raise self._fail(exc) from None
        return {name: len(t.partitions) for name, t in metadata.topics.items() if not name.startswith("__")}

    def create_topic(self, name: str, partitions: int, exist_ok: bool = True) -> None:
        check_topic_name(name, "TOPIC")
        require_at_least(partitions, 1, "--partitions")
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
                             "enable.auto.commit": False, "socket.timeout.ms": int(self.timeout * 1000),
                             **CLIENT_LOGGING})
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
