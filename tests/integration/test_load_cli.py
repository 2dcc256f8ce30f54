"""``flinkscale load`` against the session broker: exact offsets and manifest; an unreachable broker is exit 2."""

from __future__ import annotations

import collections
import json
import socket
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from flinkscale.cli import main
from tests.integration.conftest import Runtime

pytestmark = pytest.mark.integration


def test_load_produces_exactly_what_the_manifest_says(runtime: Runtime, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    topic = runtime.topic(partitions=2, prefix="load")
    bootstrap = runtime.broker.bootstrap
    manifest_path = tmp_path / "manifest.json"
    code = main(["load", "--topic", topic, "--bootstrap", bootstrap, "--rate", "1k/s", "--duration", "2s",
                 "--users", "50", "--zipf", "1.0", "--first-id", "1000", "--manifest", str(manifest_path),
                 "--format", "json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["produced"] == 2000 and result["target_records"] == 2000
    assert result["first_id"] == 1000 and result["next_id"] == 3000

    # The offsets and records really in the topic. Read back rather than taken from describe(): Tansu answers
    # ListOffsets(latest) with the LAST BATCH's base offset + 1, short of the true end by that batch's size.
    end_offsets, ids, users = _read_back(bootstrap, topic, partitions=2, expected=2000)
    assert sum(end_offsets) == 2000
    assert sorted(ids) == list(range(1000, 3000))     # every id once, no gap, no duplicate
    info = runtime.admin.describe(topic)
    assert all(p.high <= end for p, end in zip(info.partitions, end_offsets, strict=True))

    manifest = json.loads(manifest_path.read_text())
    assert manifest["topic"] == topic
    assert (manifest["first_id"], manifest["next_id"], manifest["produced"]) == (1000, 3000, 2000)
    # Per-(user, window) counts add up to every event produced, and no user outside the 50 asked for.
    assert sum(count for _, _, count, _ in manifest["per_window"]) == 2000
    per_user: collections.Counter[str] = collections.Counter()
    for user, _, count, _ in manifest["per_window"]:
        per_user[user] += count
    assert per_user == users                          # the manifest's counts are what the topic holds
    assert {user for user, _, _, _ in manifest["per_window"]} <= {f"u{i}" for i in range(50)}
    assert [target for _, target, _ in manifest["seconds"]] == [1000.0, 1000.0]


def test_an_unreachable_broker_is_one_line_and_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    # A port held bound but not listening: connections are refused and nothing else can take it meanwhile.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        assert main(["load", "--topic", "t", "--bootstrap", f"127.0.0.1:{port}", "--rate", "1k/s",
                     "--duration", "1s"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("flinkscale: error:") and "\n" not in err
    assert str(port) in err


def _read_back(bootstrap: str, topic: str, partitions: int, expected: int,
               timeout: float = 60.0) -> tuple[list[int], list[int], collections.Counter[str]]:
    """(end offset per partition, event ids, events per user) of everything in the topic.

    Reads until ``expected`` records came, then 3 s more for any extra: a quiet spell alone is no end on a busy
    machine (a CI run stopped at 1,769 of 2,000 after 3 s without a record).
    """
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-back-{time.time()}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    ends = [0] * partitions
    ids: list[int] = []
    users: collections.Counter[str] = collections.Counter()
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline and (len(ids) < expected or time.monotonic() - quiet_since < 3.0):
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            quiet_since = time.monotonic()
            partition, offset, value = message.partition(), message.offset(), message.value()
            assert partition is not None and offset is not None and value is not None
            ends[partition] = max(ends[partition], offset + 1)
            event = json.loads(value)
            ids.append(event["event_id"])
            users[event["user_id"]] += 1
    finally:
        consumer.close()
    return ends, ids, users
