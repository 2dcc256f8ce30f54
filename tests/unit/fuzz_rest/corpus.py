"""The REST fuzz corpus: every command that talks to Flink REST, against every misbehaviour of the fake server.

A case is (command, mode): ``mode`` is a global misbehaviour (``fakeflink.MODES``: every answer is wrong) or
a ``fakeflink.MUTATIONS`` entry (healthy but for one endpoint). Mutations are paired with commands that read
the mutated endpoint, two commands per mutation (rotating), so every endpoint and every command is covered
without running the full product. ``run_case`` runs one case in-process and reports what users see.
"""

from __future__ import annotations

import io
import itertools
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

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
                    {"resource-requirements", "job"}),
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


def iter_outcomes(certificate: tuple[Path, Path] | None, *,
                  deadline: str | None) -> Iterator[tuple[Case, Outcome, str]]:
    """Every case against a fresh fake server, in this process (whichever flinkscale it imports), each given
    up on after the limit (a hung case's thread is left behind; closing its server usually ends it)."""
    from tests.fakeflink import FakeFlink

    for case in cases():
        with FakeFlink(case.mode, certificate=certificate if case.mode == "tls-self-signed" else None) as fake:
            outcome = run_case_in_process(case.argv(fake.url, deadline=deadline), limit=LIMIT_SECONDS + 2)
            yield case, outcome, f"127.0.0.1:{fake.port}"


def _kind(problem: str) -> str:
    for kind in ("still running", "traceback", "lines on stderr", "exit code", "took", "does not name"):
        if kind in problem:
            return kind
    return problem


def main() -> None:
    """``PYTHONPATH=SRC:. python -m tests.unit.fuzz_rest.corpus [--no-deadline]``: count the cases that keep
    the promise, for the flinkscale found on the path (``--no-deadline`` for code without --rest-timeout)."""
    import argparse
    import collections
    import tempfile

    from tests.fakeflink import self_signed_certificate

    parser = argparse.ArgumentParser()
    parser.add_argument("--no-deadline", action="store_true", help="do not pass --rest-timeout (older code)")
    args = parser.parse_args()
    kinds: collections.Counter[str] = collections.Counter()
    failing: list[str] = []
    total = passed = 0
    with tempfile.TemporaryDirectory() as tmp:
        certificate = self_signed_certificate(Path(tmp))
        for case, outcome, endpoint in iter_outcomes(certificate, deadline=None if args.no_deadline else DEADLINE):
            total += 1
            found = problems(outcome, endpoint)
            if not found:
                passed += 1
            for problem in found:
                kinds[_kind(problem)] += 1
            if found:
                failing.append(f"{case.id}: {', '.join(found)}")
            # sys.__stdout__: a case still hanging at its limit keeps sys.stdout redirected to its own buffer.
            print(f"{case.id}: {'ok' if not found else '; '.join(found)}", file=sys.__stdout__, flush=True)
    print(f"\n{passed}/{total} cases keep the promise; problems: {dict(kinds)}", file=sys.__stdout__, flush=True)


if __name__ == "__main__":
    main()
