"""Ports picked automatically can be taken by another process between the pick and the daemon's bind (the
kernel hands the same ephemeral port to someone else). The embedded broker and cluster then start again on new
ports instead of failing the whole run. The race is forced here: the first port handed out is held by a
listening socket, as if someone had bound it a moment after the pick."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flinkscale import host
from flinkscale.flink.cluster import ClusterSpec, LocalCluster
from flinkscale.host import port_in_use
from flinkscale.kafka.broker import EmbeddedBroker

pytestmark = pytest.mark.integration


@pytest.fixture()
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def picks_taken_first(taken: int, real: Callable[[], int]) -> Callable[[], int]:
    handed = iter([taken])
    return lambda: next(handed, None) or real()


def test_the_broker_starts_on_a_new_port_when_the_picked_one_was_taken(
        tmp_path: Path, taken_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host, "unused_port", picks_taken_first(taken_port, host.unused_port))
    broker = EmbeddedBroker(tmp_path)
    try:
        info = broker.up(port=0)
        assert info.port != taken_port
        assert "in use" in (broker.dir / "broker.log").read_text().lower()  # the first attempt's bind failed
        with socket.create_connection(("127.0.0.1", info.port), timeout=2):
            pass
    finally:
        broker.down()
    assert broker.info() is None


def test_the_cluster_starts_on_new_ports_when_a_picked_one_was_taken(
        tmp_path: Path, taken_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host, "unused_port", picks_taken_first(taken_port, host.unused_port))
    cluster = LocalCluster(tmp_path)
    messages: list[str] = []
    try:
        info = cluster.up(ClusterSpec(task_managers=1, slots_per_task_manager=1, rest_port=0), messages.append)
        assert info.rest_port != taken_port
        assert any("retrying on new ports" in m for m in messages), messages
    finally:
        cluster.down()
    assert not cluster.is_running() and not port_in_use(info.rest_port)
