"""Run the CLI in-process on one bad input and check the one-line contract.

The contract (README, "Commands"): a bad input ends with exit code 2 (bad input) or 1 (a failure), the
error output is ONE line that names the field, file or flag at fault, there is no traceback, and the
command finishes in bounded time. ``run_cli`` calls ``flinkscale.cli.main(argv)`` with stdout and stderr
captured and a wall-clock alarm; ``violations`` lists every way an outcome breaks the contract, so the
tests assert it is empty and ``count.py`` tallies the same checks over the whole corpus.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

# Generous: the contract is 10 s on an idle machine; a loaded 2-core CI box must not turn a pass into a hang.
DEFAULT_TIMEOUT_SECONDS = float(os.environ.get("FLINKSCALE_FUZZ_TIMEOUT", "30"))


class CaseTimeout(BaseException):
    """Raised by the alarm; a BaseException so no ``except Exception`` in the code under test swallows it."""


@dataclass(frozen=True)
class Case:
    """One bad input: the argv, what the one error line must mention (any of ``names``), and a label."""

    id: str
    argv: tuple[str, ...]
    names: tuple[str, ...]
    kind: str = ""
    # Exit codes the case may end with (bad input: 2; some are failures: 1).
    exit_codes: tuple[int, ...] = (2,)


@dataclass
class Outcome:
    exit_code: int | None
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False
    escaped: str | None = None  # the uncaught exception's traceback, if one escaped main()
    notes: list[str] = field(default_factory=list)

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def _alarm(_signum: int, _frame: FrameType | None) -> None:
    raise CaseTimeout()


def run_cli(argv: list[str] | tuple[str, ...], timeout: float = DEFAULT_TIMEOUT_SECONDS,
            cwd: Path | None = None) -> Outcome:
    """``flinkscale ARGV`` in this process; an exception escaping ``main`` is recorded, not raised."""
    from flinkscale.cli import main

    out, err = io.StringIO(), io.StringIO()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    started = time.monotonic()
    old_cwd = os.getcwd()
    outcome: Outcome
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code: int | None = main(list(argv))
                outcome = Outcome(code, "", "", 0.0)
            except CaseTimeout:
                outcome = Outcome(None, "", "", 0.0, timed_out=True)
            except SystemExit as exc:
                outcome = Outcome(exc.code if isinstance(exc.code, int) else 1, "", "", 0.0)
            except BaseException:
                outcome = Outcome(None, "", "", 0.0, escaped=traceback.format_exc())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        os.chdir(old_cwd)
    outcome.seconds = time.monotonic() - started
    outcome.stdout, outcome.stderr = out.getvalue(), err.getvalue()
    return outcome


def violations(case: Case, outcome: Outcome) -> list[str]:
    """Every way ``outcome`` breaks the one-line contract for ``case`` (empty = it holds)."""
    problems: list[str] = []
    if outcome.timed_out:
        return ["hang"]
    if outcome.escaped is not None or "Traceback (most recent call last)" in outcome.stderr + outcome.stdout:
        return ["traceback"]
    if outcome.exit_code not in case.exit_codes:
        problems.append(f"exit code {outcome.exit_code} (expected {case.exit_codes})")
    lines = outcome.error_lines
    if len(lines) != 1:
        problems.append(f"{len(lines)} error lines")
    elif len(lines[0]) > 2000:
        problems.append(f"a {len(lines[0])}-character error line")
    elif case.names and not any(name.lower() in lines[0].lower() for name in case.names):
        problems.append(f"the error does not name any of {case.names}")
    return problems


def check(case: Case, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> Outcome:
    """Run ``case`` and fail (AssertionError with the output) when it breaks the contract."""
    outcome = run_cli(case.argv, timeout=timeout)
    problems = violations(case, outcome)
    assert not problems, (f"{case.id}: {'; '.join(problems)}\nargv: {list(case.argv)}\n"
                          f"exit: {outcome.exit_code}\nstderr: {outcome.stderr[:3000]!r}\n"
                          f"{outcome.escaped or ''}"[:6000])
    return outcome
