"""The ``flink run`` command lines flinkscale builds, and how a client's failure reads (no Flink needed: the
client process is replaced by a recorded answer)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from flinkscale.core.errors import InputError, RuntimeFailure
from flinkscale.flink import submit
from flinkscale.flink.cluster import LocalCluster

JOB_ID = "0123456789abcdef0123456789abcdef"


class _Client:
    """Stands in for ``subprocess.run``: records the command, answers with the given exit code and output."""

    def __init__(self, returncode: int, output: str) -> None:
        self.returncode = returncode
        self.output = output
        self.commands: list[list[str]] = []

    def __call__(self, command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        self.commands.append(command)
        return subprocess.CompletedProcess(command, self.returncode, self.output, "")


@pytest.fixture
def job_file(tmp_path: Path) -> Path:
    path = tmp_path / "job.py"
    path.write_text("print('job')\n")
    return path


def test_python_job_command_names_the_cluster_the_overrides_and_the_savepoint(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, job_file: Path) -> None:
    client = _Client(0, f"Job has been submitted with JobID {JOB_ID}\n")
    monkeypatch.setattr(submit.subprocess, "run", client)
    done = submit.submit_python_job(LocalCluster(tmp_path / "state"), job_file, ["--topic", "t"], parallelism=2,
                                    rest_url="http://flink.example:8081", vertex_parallelism={"b": 3, "a": 1},
                                    savepoint="file:///sp/1", allow_non_restored_state=True)
    assert done.job_id == JOB_ID
    command = client.commands[0]
    assert command[0] == "bash" and command[1].endswith("/bin/flink")
    assert command[2:] == ["run", "-d", "-m", "flink.example:8081", "-p", "2",
                           "-Dpipeline.jobvertex-parallelism-overrides=a:1,b:3",
                           "-s", "file:///sp/1", "--allowNonRestoredState",
                           "-py", str(job_file.resolve()), "--topic", "t"]
    assert done.command == tuple(command)


def test_jar_job_command_puts_the_entry_class_and_classpath_before_the_jar(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    jar, extra = tmp_path / "job.jar", tmp_path / "connector.jar"
    jar.write_bytes(b"PK")
    client = _Client(0, f"Job has been submitted with JobID {JOB_ID}\n")
    monkeypatch.setattr(submit.subprocess, "run", client)
    submit.submit_jar_job(LocalCluster(tmp_path / "state"), jar, "dev.Job", ["x"], classpath=[extra],
                          rest_url="http://localhost:8081")
    assert client.commands[0][2:] == ["run", "-d", "-m", "localhost:8081", "-p", "1", "-c", "dev.Job",
                                      "-C", f"file://{extra.resolve()}", str(jar.resolve()), "x"]


def test_a_failed_client_is_one_line_with_its_first_causes(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, job_file: Path) -> None:
    output = "log line\nCaused by: java.lang.ClassNotFoundException: Foo\nmore\nCaused by: second\nthird\n"
    monkeypatch.setattr(submit.subprocess, "run", _Client(1, output))
    with pytest.raises(RuntimeFailure) as info:
        submit.submit_python_job(LocalCluster(tmp_path / "state"), job_file, [], rest_url="http://localhost:8081")
    assert str(info.value) == ("`flink run` failed (exit 1): Caused by: java.lang.ClassNotFoundException: Foo | "
                               "Caused by: second")


def test_no_cluster_and_no_rest_url_names_the_flag(tmp_path: Path, job_file: Path) -> None:
    with pytest.raises(InputError) as info:
        submit.submit_python_job(LocalCluster(tmp_path / "state"), job_file, [])
    assert info.value.field == "--rest"


class _SlowClient:
    """Stands in for ``subprocess.run`` as a client that outlives its timeout, having printed ``output``."""

    def __init__(self, output: bytes | None) -> None:
        self.output = output
        self.timeouts: list[float] = []

    def __call__(self, command: list[str], *, timeout: float, **_: Any) -> subprocess.CompletedProcess[str]:
        self.timeouts.append(timeout)
        raise subprocess.TimeoutExpired(command, timeout, output=self.output, stderr=None)


@pytest.mark.parametrize(("printed", "says"), [
    (b"Starting execution of program\nCaused by: java.net.ConnectException: refused\n",
     "its last output: Caused by: java.net.ConnectException: refused"),
    (None, "it printed nothing"),
])
def test_a_client_past_its_timeout_says_what_it_printed_and_a_jar_gets_the_sql_planning_allowance(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, printed: bytes | None, says: str) -> None:
    jar = tmp_path / "job.jar"
    jar.write_bytes(b"PK")
    client = _SlowClient(printed)
    monkeypatch.setattr(submit.subprocess, "run", client)
    with pytest.raises(RuntimeFailure) as info:
        submit.submit_jar_job(LocalCluster(tmp_path / "state"), jar, "dev.Job", [], rest_url="http://localhost:8081")
    assert client.timeouts == [submit.SQL_SUBMIT_TIMEOUT_SECONDS]
    assert str(info.value) == f"`flink run` did not finish within 480s; {says}"
