"""``flinkscale dashboard``: serve the live dashboard for a run directory until Ctrl-C.

Argument handling and output only; the server is ``flinkscale.report.dashboard.serve_dashboard``, the same
one the autoscale loop and the demo start in a background thread.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flinkscale.cli._common import state_dir_option
from flinkscale.cli._inputs import check_choice
from flinkscale.core.errors import InputError

if TYPE_CHECKING:
    from flinkscale.store import StateStore

_HELP = """Watch an autoscaling run live in the browser: the job graph coloured by utilization, rate and
lag over time, parallelism per vertex and the decision log, updating every 1.5 s.

RUN_DIR is the directory the autoscale loop writes (snapshots.jsonl, decisions.jsonl and optionally
events.jsonl, see docs/monitoring.md). It may still be empty: the page fills in as the loop writes.

Without RUN_DIR it shows every job of the multi-job daemon (autoscale --all-jobs) from its state store
(--state URL, default sqlite:///STATE_DIR/autoscale.db): a job list with each job's phase, parallelism and
last decision, and a page per job with the same graph, charts and decision log.
The server binds 127.0.0.1 unless told otherwise, and needs no internet (plotly.js is served locally).

Examples:

  flinkscale dashboard runs/2026-11-24-demo                 # http://127.0.0.1:8765/

  flinkscale dashboard runs/latest --port 0                 # any free port, printed at start

  flinkscale dashboard                                      # every job of `autoscale --all-jobs`

  flinkscale dashboard --state postgresql+psycopg://flinkscale@db/flinkscale

  flinkscale dashboard runs/latest --host 0.0.0.0 --port 9000 --format json   # {"url": ...} for scripts
"""


def dashboard(
    run_dir: Annotated[Path | None, typer.Argument(
        help="Run directory written by the autoscale loop; omit for every job in the daemon's state store.")]
        = None,
    state: Annotated[str | None, typer.Option(
        "--state", help="The multi-job daemon's state store URL (default sqlite:///STATE_DIR/autoscale.db).")]
        = None,
    state_dir: Path = state_dir_option(),
    port: Annotated[int, typer.Option("--port", help="TCP port; 0 picks a free one.")] = 8765,
    host: Annotated[str, typer.Option("--host", help="Address to bind; 0.0.0.0 exposes it to the network.")
                    ] = "127.0.0.1",
    output_format: Annotated[str, typer.Option("--format", help="text (people) or json (one line for scripts).")
                             ] = "text",
) -> None:
    from flinkscale.report.dashboard import create_jobs_app, serve_dashboard

    check_choice(output_format, ("text", "json"), "--format")
    if not 0 <= port <= 65535:
        raise InputError(f"must be between 0 and 65535, got {port}", field="--port")
    if not host.strip() or any(c.isspace() for c in host):  # '' binds every interface, and without saying so
        raise InputError(f"must be an address to bind (127.0.0.1, or 0.0.0.0 for every interface), got {host!r}",
                         field="--host")
    with contextlib.ExitStack() as stack:
        if run_dir is not None:
            if state is not None:
                raise InputError("give a run directory or --state, not both", field="--state")
            if not run_dir.is_dir():
                raise InputError("no such directory (start the autoscale loop with it, or create it)",
                                 field=str(run_dir))
            server = serve_dashboard(run_dir, host=host, port=port)
            shown = str(run_dir)
        else:
            store = stack.enter_context(_open_store(state, state_dir))
            server = serve_dashboard(None, host=host, port=port, app=create_jobs_app(store, _describe))
            shown = f"every job in {store.url}"
        stack.callback(server.stop)
        if output_format == "json":
            typer.echo(json.dumps({"url": server.url, "host": server.host, "port": server.port,
                                   "run_dir": str(run_dir) if run_dir is not None else None,
                                   "state": None if run_dir is not None else shown[len("every job in "):]}))
        else:
            typer.echo(f"flinkscale dashboard for {shown} at {server.url}  (Ctrl-C stops it)")
        server.wait()


def _open_store(state: str | None, state_dir: Path) -> StateStore:
    from flinkscale.app.multijob import default_state_url
    from flinkscale.store import StateStore

    if state is None and not (state_dir / "autoscale.db").exists():
        raise InputError(f"no RUN_DIR and no state store at {state_dir / 'autoscale.db'}; give a run directory, "
                         "or --state URL of an `autoscale --all-jobs` daemon", field="--state")
    return StateStore.open(state if state is not None else default_state_url(state_dir))


def _describe(store: StateStore) -> list[dict[str, Any]]:
    """Each job's phase for the job list (the daemon's own ``autoscale status``)."""
    from flinkscale.app.multijob import job_statuses

    return [status.to_dict() for status in job_statuses(store)]


def register(app: typer.Typer) -> None:
    app.command("dashboard", help=_HELP)(dashboard)
