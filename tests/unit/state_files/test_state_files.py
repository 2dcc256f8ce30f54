"""Damaged or old-format state files (cluster.json, broker.json) and pids that are not flinkscale's.

Every command that reads a state file says in one line which file is wrong (exit 2); `cluster down` and
`kafka down` signal a pid only when it is the process flinkscale started (its command line and start time),
and refuse in one line otherwise, leaving the process alone.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from flinkscale import host
from flinkscale.cli import main
from flinkscale.flink.cluster import LocalCluster
from flinkscale.host import pid_alive, process_identity, terminate
from flinkscale.kafka.broker import EmbeddedBroker

_CLUSTER = {"rest_url": "http://localhost:8081", "rest_port": 8081, "rpc_port": 6123, "task_managers": 1,
            "slots_per_task_manager": 2, "state_dir": "/tmp/x", "flink_home": "/opt/flink", "java_home": "/usr",
            "started_at": 1.0}
_BROKER = {"bootstrap": "127.0.0.1:39999", "port": 39999, "pid": 4194000, "started_at": 1.0}

DAMAGE: dict[str, bytes | None] = {
    "empty": b"",
    "not-json": b"{rest_url: x",
    "not-utf8": b"\xff\xfe\x00{\x00}",
    "null": b"null",
    "list": b"[]",
    "string": b'"cluster"',
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "nan": None,  # filled per file: a time of NaN
    "missing-field": None,
    "string-port": None,
    "huge-number": None,
    "negative-pid": None,
}


def _damaged(base: dict[str, object], kind: str, port_key: str, pid_key: str) -> bytes:
    raw = DAMAGE[kind]
    if raw is not None:
        return raw
    data = dict(base)
    if kind == "nan":
        data["started_at"] = float("nan")
    elif kind == "missing-field":
        del data[port_key]
    elif kind == "string-port":
        data[port_key] = str(data[port_key])
    elif kind == "huge-number":
        data[port_key] = 10**400
    elif kind == "negative-pid":
        data[pid_key] = -5
    return json.dumps(data).encode()


CLUSTER_COMMANDS = {
    "cluster-status": ["cluster", "status"],
    "cluster-down": ["cluster", "down"],
    "job-list": ["job", "list"],
    "profile": ["profile", "--window", "1s", "--interval", "1s"],
    "autoscale": ["autoscale", "--job", "0" * 32, "--dry-run"],
}
BROKER_COMMANDS = {
    "kafka-down": ["kafka", "down"],
    "kafka-topics": ["kafka", "topics"],
    "kafka-up": ["kafka", "up", "--port", "0"],
    "shed-show": ["shed", "show", "--topic", "shed-control"],
    "shed-set": ["shed", "set", "--topic", "shed-control", "--keep", "0.5"],
}


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


@pytest.mark.parametrize("kind", list(DAMAGE))
@pytest.mark.parametrize("command", list(CLUSTER_COMMANDS))
def test_a_damaged_cluster_json_is_one_line_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      command: str, kind: str) -> None:
    cluster = LocalCluster(tmp_path)
    tmp_path.mkdir(exist_ok=True)
    cluster.info_file.write_bytes(_damaged(_CLUSTER, kind, "rest_port", "supervisor_pid"))
    assert main([*CLUSTER_COMMANDS[command], "--state-dir", str(tmp_path)]) == 2
    line = _one_line(capsys)
    assert "cluster.json" in line and "flinkscale cluster state file" in line


@pytest.mark.parametrize("kind", list(DAMAGE))
@pytest.mark.parametrize("command", list(BROKER_COMMANDS))
def test_a_damaged_broker_json_is_one_line_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     command: str, kind: str) -> None:
    broker = EmbeddedBroker(tmp_path)
    broker.dir.mkdir(parents=True)
    broker.info_file.write_bytes(_damaged(_BROKER, kind, "port", "pid"))
    assert main([*BROKER_COMMANDS[command], "--state-dir", str(tmp_path)]) == 2
    line = _one_line(capsys)
    assert "broker.json" in line and "flinkscale broker state file" in line


def test_an_old_broker_json_without_process_identity_still_loads(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path)
    broker.dir.mkdir(parents=True)
    broker.info_file.write_text(json.dumps(_BROKER))
    info = broker.info()
    assert info is not None and info.bootstrap == "127.0.0.1:39999" and info.cmdline is None


@pytest.fixture
def stranger() -> Iterator[subprocess.Popen[bytes]]:
    """A process flinkscale did not start (a plain sleep), standing for whatever reuses a stale pid."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(10)


def _fake_broker(port: int) -> subprocess.Popen[bytes]:
    """A stand-in for the broker `kafka up` starts: a process whose command line names tansu and its listener.

    Returns once the child has exec'd: between fork and exec its command line is empty or the parent's, and a
    test that recorded that (or checked it) would fail on a busy machine."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "tansu", "broker",
                             "--listener-url", f"tcp://127.0.0.1:{port}"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        identity = process_identity(proc.pid)
        if identity is not None and "tansu" in identity[1]:
            return proc
        time.sleep(0.01)
    proc.kill()
    proc.wait(10)
    raise AssertionError("the stand-in broker did not start within 30 s")


def test_kafka_down_refuses_to_signal_a_pid_that_is_not_the_broker(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], stranger: subprocess.Popen[bytes]) -> None:
    broker = EmbeddedBroker(tmp_path)
    broker.dir.mkdir(parents=True)
    broker.info_file.write_text(json.dumps({**_BROKER, "pid": stranger.pid, "started_at": time.time()}))
    assert main(["kafka", "down", "--state-dir", str(tmp_path)]) == 1
    line = _one_line(capsys)
    assert f"pid {stranger.pid}" in line and "not signalled" in line and "broker.json" in line
    time.sleep(0.2)
    assert stranger.poll() is None  # still running: never signalled


def test_kafka_down_refuses_a_recycled_pid_even_with_a_matching_command_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proc = _fake_broker(39999)
    try:
        identity = process_identity(proc.pid)
        assert identity is not None
        broker = EmbeddedBroker(tmp_path)
        broker.dir.mkdir(parents=True)
        # What `kafka up` recorded for an earlier process with this pid: same command line, other start time.
        broker.info_file.write_text(json.dumps({**_BROKER, "pid": proc.pid, "started_at": identity[0] - 100,
                                                "create_time": identity[0] - 100, "cmdline": identity[1]}))
        assert main(["kafka", "down", "--state-dir", str(tmp_path)]) == 1
        assert "another time" in _one_line(capsys)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait(10)


@pytest.mark.parametrize("recorded", [True, False], ids=["identity-recorded", "old-format"])
def test_kafka_down_stops_the_process_it_started(tmp_path: Path, recorded: bool) -> None:
    proc = _fake_broker(39999)
    try:
        identity = process_identity(proc.pid)
        assert identity is not None
        state: dict[str, object] = {**_BROKER, "pid": proc.pid, "started_at": identity[0]}
        if recorded:
            state.update(create_time=identity[0], cmdline=identity[1])
        broker = EmbeddedBroker(tmp_path)
        broker.dir.mkdir(parents=True)
        broker.info_file.write_text(json.dumps(state))
        assert broker.down(timeout=5) == proc.pid
        assert proc.wait(10) is not None
        assert not broker.info_file.exists()
    finally:
        proc.kill()
        proc.wait(10)


def test_cluster_down_refuses_a_supervisor_pid_that_is_not_the_supervisor(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], stranger: subprocess.Popen[bytes]) -> None:
    cluster = LocalCluster(tmp_path)
    cluster.info_file.write_text(json.dumps({**_CLUSTER, "state_dir": str(tmp_path), "started_at": time.time(),
                                             "supervisor_pid": stranger.pid}))
    assert main(["cluster", "down", "--state-dir", str(tmp_path)]) == 1
    line = _one_line(capsys)
    assert f"pid {stranger.pid}" in line and "not signalled" in line
    time.sleep(0.2)
    assert stranger.poll() is None


def test_cluster_down_refuses_a_daemon_pid_file_naming_another_process(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], stranger: subprocess.Popen[bytes]) -> None:
    cluster = LocalCluster(tmp_path)
    cluster.pid_dir.mkdir(parents=True)
    (cluster.pid_dir / "flink-user-standalonesession.pid").write_text(f"{stranger.pid}\n")
    assert main(["cluster", "down", "--state-dir", str(tmp_path)]) == 1
    assert "not signalled" in _one_line(capsys)
    time.sleep(0.2)
    assert stranger.poll() is None and pid_alive(stranger.pid)


@pytest.fixture
def task_manager(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A stand-in TaskManager of the cluster in ``tmp_path``: a process whose command line names the cluster's
    conf dir, named in the cluster's pid file as Flink's daemon scripts write it."""
    cluster = LocalCluster(tmp_path)
    cluster.pid_dir.mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "--configDir",
                             str(cluster.conf_dir)])
    try:
        (cluster.pid_dir / "flink-user-taskexecutor.pid").write_text(f"{proc.pid}\n")
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_cluster_down_stops_a_daemon_whose_command_line_names_its_conf_dir(
        tmp_path: Path, task_manager: subprocess.Popen[bytes]) -> None:
    assert task_manager.pid in LocalCluster(tmp_path).down(timeout=5)
    task_manager.wait(10)  # raises if the process were still sleeping
    assert not pid_alive(task_manager.pid)


def test_cluster_down_stops_its_daemons_when_the_supervisor_pid_is_another_process(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], stranger: subprocess.Popen[bytes],
        task_manager: subprocess.Popen[bytes]) -> None:
    # The supervisor died and its pid went to something else: that pid is never signalled, but the JVMs the
    # cluster's pid files name are still ours and must not be left running.
    cluster = LocalCluster(tmp_path)
    cluster.info_file.write_text(json.dumps({**_CLUSTER, "state_dir": str(tmp_path), "started_at": time.time() - 60,
                                             "supervisor_pid": stranger.pid}))
    assert main(["cluster", "down", "--state-dir", str(tmp_path)]) == 1
    line = _one_line(capsys)
    assert "stopped 1 process(es)" in line and f"pid {stranger.pid}" in line and "not signalled" in line
    task_manager.wait(10)  # raises if the TaskManager were still sleeping
    time.sleep(0.2)
    assert stranger.poll() is None  # still running: never signalled
    assert cluster.info_file.exists()  # the state stays for the user to look at


def test_terminate_kills_what_ignores_sigterm_and_passes_over_a_pid_already_gone() -> None:
    # The same stop for the cluster's daemons and the broker (host.terminate): SIGTERM, then SIGKILL.
    stubborn = subprocess.Popen([sys.executable, "-c", "import signal, sys, time; "
                                 "signal.signal(signal.SIGTERM, signal.SIG_IGN); print(flush=True); time.sleep(120)"],
                                stdout=subprocess.PIPE)
    gone = int(Path("/proc/sys/kernel/pid_max").read_text())  # every pid is below it: no process has it
    try:
        assert stubborn.stdout is not None and stubborn.stdout.readline()  # its SIGTERM handler is in place
        terminate([gone, stubborn.pid], timeout=0.5)
        # It ignores SIGTERM and sleeps 120 s, so gone within 10 s means SIGKILLed. terminate reaps the children it
        # stops: when it reaps this one first, Popen finds no exit status left and reports 0 (under load 3 runs in 8
        # that asserted -SIGKILL alone failed on that 0).
        assert stubborn.wait(10) in (-signal.SIGKILL, 0)
        assert not pid_alive(stubborn.pid)
    finally:
        if stubborn.poll() is None:
            stubborn.kill()
            stubborn.wait(10)


class _ExitingProcess:
    """A psutil.Process stand-in for a process caught while it exits: its command line is empty ``empty_reads``
    times, then it is gone (or, with ``exits=False``, it stays alive with an empty command line for good)."""

    def __init__(self, empty_reads: int, exits: bool) -> None:
        self.reads, self.empty_reads, self.exits = 0, empty_reads, exits

    def status(self) -> str:
        return psutil.STATUS_RUNNING

    def create_time(self) -> float:
        return 1.0

    def cmdline(self) -> list[str]:
        self.reads += 1
        if self.reads > self.empty_reads and self.exits:
            raise psutil.NoSuchProcess(4242)
        return []

    def environ(self) -> dict[str, str]:
        return {}


@pytest.mark.parametrize("empty_reads", [1, 5])
def test_a_process_caught_exiting_is_gone_not_unreadable(monkeypatch: pytest.MonkeyPatch, empty_reads: int) -> None:
    # CI under load: `cluster down` read the supervisor's command line while it exited, found it empty, and refused
    # to go on ("its command line cannot be read"). An empty command line is read again until the process is gone.
    fake = _ExitingProcess(empty_reads, exits=True)
    monkeypatch.setattr(psutil, "Process", lambda pid: fake)
    assert process_identity(4242) is None
    assert fake.reads == empty_reads + 1


def test_a_live_process_with_no_command_line_stays_unreadable(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _ExitingProcess(0, exits=False)
    monkeypatch.setattr(psutil, "Process", lambda pid: fake)
    monkeypatch.setattr(host, "EXITING_SETTLE_SECONDS", 0.2)
    assert process_identity(4242) == (1.0, [], {})  # check_ours then refuses it: it cannot be shown to be ours
    assert fake.reads >= 2
