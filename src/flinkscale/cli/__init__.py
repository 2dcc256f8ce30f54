"""The ``flinkscale`` command line: one module per command group, argument handling and output only.

``main`` is the console entry point and the last line of defence for the one-line contract (README,
"Commands"): whatever goes wrong, the user sees ONE line on stderr and an exit code, never a traceback.

- ``FlinkscaleError``: its own message (field path, file or endpoint) and exit code (2 bad input or an
  unreachable endpoint, 1 a failure).
- click/Typer usage errors (unknown option, a value of the wrong type): one line naming the flag, exit 2.
- ``OSError`` that no command turned into an ``InputError`` (a disk filling up mid-write): one line with the
  file, exit 1 (a failure of the environment, not of flinkscale).
- ``RecursionError``/``MemoryError``: an input too large or too deeply nested for what was asked, exit 1.
- anything else is a bug in flinkscale, not a user error, and it is not hidden: one line that says so, names
  the exception type and message and asks for a report (with ``FLINKSCALE_DEBUG=1`` for the traceback),
  exit 1. Inputs are validated at the boundary, so a user can fix their input only when told what is wrong;
  pretending a bug were bad input (exit 2) would send them hunting for a mistake they did not make.

``FLINKSCALE_DEBUG=1`` re-raises every error with its traceback.
"""

from __future__ import annotations

import os
import sys

import typer

from flinkscale.cli import _app
from flinkscale.core.errors import FlinkscaleError
from flinkscale.core.inputs import one_line
from flinkscale.core.redaction import redact

app = _app.app

_BUG_REPORT = "this is a bug in flinkscale: please report it (FLINKSCALE_DEBUG=1 shows the traceback)"


def _say(message: str) -> None:
    print(f"flinkscale: {one_line(redact(message), 1000)}", file=sys.stderr)  # no secret in any message


def main(argv: list[str] | None = None) -> int:
    debug = os.environ.get("FLINKSCALE_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off")
    nul = _nul_argument(sys.argv[1:] if argv is None else argv)
    if nul is not None:
        _say(f"error: {nul}: contains a NUL byte, which no file name, URL or value may hold (see --help)")
        return 2
    try:
        # Without standalone mode click returns a command's `typer.Exit(code)` instead of raising it.
        returned = app(args=argv, prog_name="flinkscale", standalone_mode=False)
        if isinstance(returned, int) and not isinstance(returned, bool):
            return returned
    except FlinkscaleError as exc:
        if debug:
            raise
        _say(f"error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        print("flinkscale: interrupted", file=sys.stderr)
        return 130
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        print("flinkscale: aborted", file=sys.stderr)
        return 1
    except _CLICK_ERRORS as exc:  # usage errors: unknown option, missing argument, bad value
        if type(exc).__name__ == "NoArgsIsHelpError":  # `flinkscale decide` alone: the help text is the answer
            exc.show()  # type: ignore[attr-defined]
            return int(exc.exit_code)  # type: ignore[attr-defined]
        _say(f"error: {exc.format_message()} (see --help)")  # type: ignore[attr-defined]
        return int(exc.exit_code)  # type: ignore[attr-defined]
    except (RecursionError, MemoryError) as exc:
        if debug:
            raise
        what = "nested too deeply" if isinstance(exc, RecursionError) else "too large"
        _say(f"error: an input is {what} for this command ({type(exc).__name__}); {_BUG_REPORT} if it is not")
        return 1
    except OSError as exc:
        if debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        _say(f"error: {where}{exc.strerror or exc}")
        return 1
    except Exception as exc:
        if debug:
            raise
        _say(f"internal error: {type(exc).__name__}: {exc}; {_BUG_REPORT}")
        return 1
    return 0


def _nul_argument(argv: list[str]) -> str | None:
    """The option whose value holds a NUL byte, or such an argument itself with the byte shown as ``\\0`` (as
    ``cli._inputs.read_bytes`` names a path), if any: a process never gets one in its argv, but an in-process
    call can pass one, and Typer 0.28 takes every path to ``os.stat`` (a ValueError) before a command's own
    checks run."""
    for i, arg in enumerate(argv):
        if "\0" not in arg:
            continue
        flag, equals, _ = arg.partition("=")
        if flag.startswith("-") and equals and "\0" not in flag:
            return flag  # --option=value
        if i > 0 and argv[i - 1].startswith("-"):
            return argv[i - 1]  # --option value
        return arg.replace("\0", "\\0")
    return None


def _click_errors() -> tuple[type[Exception], ...]:
    """Usage errors come from the copy of click that Typer >= 0.26 vendors as ``typer._click``, or from click
    itself under an older Typer (importing click when Typer does not use it cost ~11 ms of every start)."""
    try:
        from typer._click.exceptions import ClickException as TyperClickException
    except ImportError:
        import click

        return (click.ClickException,)
    return (TyperClickException,)


_CLICK_ERRORS = _click_errors()
