"""The ``flinkscale`` command line: one module per command group, argument handling and output only.

``main`` is the console entry point. It turns every ``FlinkscaleError`` into one line on stderr and
the error's exit code (2 for bad input or an unreachable endpoint, 1 for a failure), so users never see
a traceback for something they can fix. ``FLINKSCALE_DEBUG=1`` shows the traceback anyway.
"""

from __future__ import annotations

import os
import sys

import typer

from flinkscale.cli import _app
from flinkscale.core.errors import FlinkscaleError
from flinkscale.core.redaction import redact

app = _app.app


def main(argv: list[str] | None = None) -> int:
    try:
        # Without standalone mode click returns a command's `typer.Exit(code)` instead of raising it.
        returned = app(args=argv, prog_name="flinkscale", standalone_mode=False)
        if isinstance(returned, int) and not isinstance(returned, bool):
            return returned
    except FlinkscaleError as exc:
        if os.environ.get("FLINKSCALE_DEBUG"):
            raise
        print("flinkscale: error: " + " ".join(redact(str(exc)).split()), file=sys.stderr)
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
        exc.show()  # type: ignore[attr-defined]
        return int(exc.exit_code)  # type: ignore[attr-defined]
    return 0


def _click_errors() -> tuple[type[Exception], ...]:
    """Usage errors come from click, or from the copy of click that Typer >= 0.29 vendors as ``typer._click``."""
    import click

    errors: list[type[Exception]] = [click.ClickException]
    try:
        from typer._click.exceptions import ClickException as TyperClickException
    except ImportError:
        pass
    else:
        errors.append(TyperClickException)
    return tuple(errors)


_CLICK_ERRORS = _click_errors()
