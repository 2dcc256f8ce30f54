"""Kafka commands against a broker that is not there, or not a broker: one line naming it, exit 2, bounded time,
and none of librdkafka's own log lines (`shed show` once printed ~200 of them before its error)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.fakeflink import FakeFlink

from flinkscale.cli import main
from flinkscale.kafka import admin


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port bound but not listening: connections are refused, and nothing else can take it meanwhile."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


COMMANDS = {
    "shed-show": ["shed", "show", "--topic", "shed-control"],
    "shed-set": ["shed", "set", "--topic", "shed-control", "--keep", "0.5"],
    "kafka-topics": ["kafka", "topics"],
    "kafka-describe": ["kafka", "topics", "clicks", "--group", "g"],
    "kafka-create": ["kafka", "create", "clicks", "--partitions", "2"],
}


def _run(argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str, float]:
    started = time.monotonic()
    code = main(argv)
    seconds = time.monotonic() - started
    time.sleep(0.2)  # anything librdkafka's threads would still print lands in the capture
    captured = capfd.readouterr()
    return code, captured.err, seconds


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_refused_bootstrap_is_one_line_at_once(command: str, refused_port: int, tmp_path: Path,
                                                capfd: pytest.CaptureFixture[str]) -> None:
    bootstrap = f"127.0.0.1:{refused_port}"
    code, err, seconds = _run([*COMMANDS[command], "--bootstrap", bootstrap, "--state-dir", str(tmp_path)], capfd)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"flinkscale: error: kafka://{bootstrap}: no Kafka broker")
    assert seconds < 10


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_port_that_accepts_and_never_answers_fails_at_the_probe_not_the_kafka_timeout(
        command: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    # The defaults, not a shortened timeout: a silent port once took KAFKA_TIMEOUT_SECONDS (10 s) and more.
    with FakeFlink("silent") as silent:
        bootstrap = f"127.0.0.1:{silent.port}"
        code, err, seconds = _run([*COMMANDS[command], "--bootstrap", bootstrap, "--state-dir", str(tmp_path)],
                                  capfd)
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"flinkscale: error: kafka://{bootstrap}"), err
    assert f"sent no answer to a Kafka request within {admin.PROBE_TIMEOUT_SECONDS:g}s" in err
    assert "%3|" not in err and "rdkafka" not in err
    assert seconds < admin.KAFKA_TIMEOUT_SECONDS


@pytest.mark.parametrize("mode", ["html", "close"])
def test_a_server_that_is_not_kafka_is_named_at_once(mode: str, tmp_path: Path,
                                                     capfd: pytest.CaptureFixture[str]) -> None:
    with FakeFlink(mode) as server:
        bootstrap = f"127.0.0.1:{server.port}"
        code, err, seconds = _run(["kafka", "topics", "--bootstrap", bootstrap, "--state-dir", str(tmp_path)],
                                  capfd)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"flinkscale: error: kafka://{bootstrap}: no Kafka broker listens there")
    assert "not a Kafka broker" in err
    assert seconds < admin.PROBE_TIMEOUT_SECONDS + admin.CONNECT_TIMEOUT_SECONDS


@pytest.mark.parametrize("bootstrap", ["nonsense", "host:port", "127.0.0.1:70000", "127.0.0.1:", ":9092",
                                       "a b:9092", "127.0.0.1:9092,,"])
def test_a_malformed_bootstrap_names_the_flag(bootstrap: str, tmp_path: Path,
                                              capfd: pytest.CaptureFixture[str]) -> None:
    code, err, _ = _run(["kafka", "topics", "--bootstrap", bootstrap, "--state-dir", str(tmp_path)], capfd)
    assert code == 2 and err.count("\n") == 1 and err.startswith("flinkscale: error: --bootstrap: ")
