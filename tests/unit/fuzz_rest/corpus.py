"""The REST fuzz corpus: every command that talks to Flink REST, against every misbehaviour of the fake server.

A case is (command, mode): ``mode`` is a global misbehaviour (``fakeflink.MODES``: every answer is wrong) or
a ``fakeflink.MUTATIONS`` entry (healthy but for one endpoint). Mutations are paired with commands that read
the mutated endpoint, two commands per mutation (rotating), so every endpoint and every command is covered
without running the full product. ``run_case`` runs one case in-process and reports what users see.
"""

from __future__ import annotations

import io
import itertools
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass

from tests.fakeflink import JOB_ID, MODES, MUTATIONS, VERTEX_ID

#: The deadline per REST call the corpus gives every command (its own default is 30 s).
DEADLINE = "2s"
#: What a case may take, at most, on a busy machine.
LIMIT_SECONDS = 10.0

_SAMPLING = {"job", "config", "vertex-detail", "metric-names", "pending", "overview", "checkpoints", "tm-metrics"}
_WINDOW = ["--window", "1s", "--interval", "1s"]

# name -> (arguments; {URL}, the endpoints it reads before it can finish)
COMMANDS: dict[str, tuple[list[str], set[str]]] = {
    "job-list": (["job", "list"], {"jobs-overview"}),
    "cluster-status": (["cluster", "status"], {"overview", "taskmanagers", "jobs-overview"}),
    "profile": (["profile", "--job", JOB_ID, *_WINDOW, "--format", "json"], _SAMPLING),
    "profile-one-job": (["profile", *_WINDOW, "--format", "json"], {"jobs-overview"} | _SAMPLING),
    "skew": (["skew", "--job", JOB_ID, *_WINDOW, "--format", "json"], _SAMPLING),
    "rebalance": (["rebalance", "--job", JOB_ID, *_WINDOW, "--format", "json"], _SAMPLING),
    "autoscale": (["autoscale", "--job", JOB_ID, "--dry-run", "--duration", "1s", "--interval", "1s"],
                  {"job", "config"}),
    "job-stop": (["job", "stop", JOB_ID], {"job", "stop", "savepoint-status"}),
    "job-rescale": (["job", "rescale", JOB_ID, "--vertex", f"{VERTEX_ID}=2", "--no-wait"],
                    {"resource-requirements"}),
    "shed-auto": (["shed", "auto", "--job", JOB_ID, "--control-topic", "shed-control", "--bootstrap",
                   "127.0.0.1:9", "--interval", "1"], {"job"}),
}


@dataclass(frozen=True)
class Case:
    command: str
    mode: str

    @property
    def id(self) -> str:
        return f"{self.command}-{self.mode}"

    def argv(self, url: str, *, deadline: str | None = DEADLINE) -> list[str]:
        args, _ = COMMANDS[self.command]
        extra = ["--rest", url] + (["--rest-timeout", deadline] if deadline else [])
        return [*args, *extra]


def cases() -> list[Case]:
    found = [Case(command, mode) for mode in MODES for command in COMMANDS]
    rotation = itertools.cycle(COMMANDS)
    for name, (endpoint, _) in MUTATIONS.items():
        readers = [c for c in COMMANDS if endpoint in COMMANDS[c][1]]
        picked: list[str] = []
        for _ in range(len(COMMANDS) * 2):
            command = next(rotation)
            if command in readers and command not in picked:
                picked.append(command)
            if len(picked) == min(2, len(readers)):
                break
        found += [Case(command, name) for command in picked]
    return found


@dataclass(frozen=True)
class Outcome:
    exit_code: int | None  # None: still running at the limit
    stdout: str
    stderr: str
    seconds: float


def run_case_in_process(argv: list[str], limit: float = LIMIT_SECONDS + 20) -> Outcome:
    """``flinkscale.cli.main(argv)`` in a worker thread, its output captured; gives up after ``limit`` s."""
    from flinkscale.cli import main

    out, err = io.StringIO(), io.StringIO()
    result: list[int] = []

    def run() -> None:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                result.append(main(argv))
            except BaseException as exc:
                import traceback

                err.write("Traceback (most recent call last):\n" + "".join(traceback.format_exception(exc)))
                result.append(-1)

    started = time.monotonic()
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(limit)
    return Outcome(result[0] if result else None, out.getvalue(), err.getvalue(), time.monotonic() - started)


def problems(outcome: Outcome, endpoint: str) -> list[str]:
    """What is wrong with an outcome, by the README's promise (empty: the case passes)."""
    found = []
    if outcome.exit_code is None:
        found.append(f"still running after {outcome.seconds:.0f}s")
    elif outcome.exit_code not in (1, 2):
        found.append(f"exit code {outcome.exit_code}")
    if "Traceback" in outcome.stderr + outcome.stdout:
        found.append("traceback")
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    if len(lines) != 1:
        found.append(f"{len(lines)} lines on stderr")
    elif endpoint not in lines[0]:
        found.append("the error does not name the endpoint")
    if outcome.seconds >= LIMIT_SECONDS:
        found.append(f"took {outcome.seconds:.1f}s")
    return found


def iter_outcomes(certificate: tuple[str, str] | None, *, deadline: str | None) -> Iterator[tuple[Case, Outcome, str]]:
    """Every case against a fresh fake server, in a subprocess each (so that a hang cannot stop the count)."""
    import subprocess
    from pathlib import Path

    from tests.fakeflink import FakeFlink

    for case in cases():
        cert = (Path(certificate[0]), Path(certificate[1])) if certificate and case.mode == "tls-self-signed" else None
        with FakeFlink(case.mode, certificate=cert) as fake:
            code = ("import sys; from flinkscale.cli import main; sys.exit(main(sys.argv[1:]))")
            started = time.monotonic()
            try:
                proc = subprocess.run([sys.executable, "-c", code, *case.argv(fake.url, deadline=deadline)],
                                      capture_output=True, text=True, timeout=LIMIT_SECONDS + 2,
                                      env={**os.environ, "COLUMNS": "200"})
                outcome = Outcome(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)
            except subprocess.TimeoutExpired as exc:
                outcome = Outcome(None, str(exc.stdout or ""), str(exc.stderr or ""), time.monotonic() - started)
            yield case, outcome, f"127.0.0.1:{fake.port}"
