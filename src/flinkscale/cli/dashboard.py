"""``flinkscale dashboard``: serve the live dashboard for a run directory until Ctrl-C.

Argument handling and output only; the server is ``flinkscale.report.dashboard.serve_dashboard``, the same
one the autoscale loop and the demo start in a background thread.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from flinkscale.core.errors import InputError

_HELP = """Watch an autoscaling run live in the browser: the job graph coloured by utilization, rate and
lag over time, parallelism per vertex and the decision log, updating every 1.5 s.

RUN_DIR is the directory the autoscale loop writes (snapshots.jsonl, decisions.jsonl and optionally
events.jsonl, see docs/monitoring.md). It may still be empty: the page fills in as the loop writes.
The server binds 127.0.0.1 unless told otherwise, and needs no internet (plotly.js is served locally).

Examples:

  flinkscale dashboard runs/2026-11-24-demo                 # http://127.0.0.1:8765/

  flinkscale dashboard runs/latest --port 0                 # any free port, printed at start

  flinkscale dashboard runs/latest --host 0.0.0.0 --port 9000 --format json   # {"url": ...} for scripts
"""


def dashboard(
    run_dir: Annotated[Path, typer.Argument(help="Run directory written by the autoscale loop.")],
    port: Annotated[int, typer.Option("--port", help="TCP port; 0 picks a free one.")] = 8765,
    host: Annotated[str, typer.Option("--host", help="Address to bind; 0.0.0.0 exposes it to the network.")
                    ] = "127.0.0.1",
    output_format: Annotated[str, typer.Option("--format", help="text (people) or json (one line for scripts).")
                             ] = "text",
) -> None:
    from flinkscale.report.dashboard import serve_dashboard

    if output_format not in ("text", "json"):
        raise InputError(f"expected text or json, got {output_format!r}", field="--format")
    if not 0 <= port <= 65535:
        raise InputError(f"must be between 0 and 65535, got {port}", field="--port")
    if not run_dir.is_dir():
        raise InputError("no such directory (start the autoscale loop with it, or create it)", field=str(run_dir))
    server = serve_dashboard(run_dir, host=host, port=port)
    if output_format == "json":
        typer.echo(json.dumps({"url": server.url, "host": server.host, "port": server.port,
                               "run_dir": str(run_dir)}))
    else:
        typer.echo(f"flinkscale dashboard for {run_dir} at {server.url}  (Ctrl-C stops it)")
    try:
        server.wait()
    finally:
        server.stop()


def register(app: typer.Typer) -> None:
    app.command("dashboard", help=_HELP, no_args_is_help=True)(dashboard)
