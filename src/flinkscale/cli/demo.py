"""``flinkscale demo``: the whole product on the embedded cluster in ten minutes (``--quick``: about three)."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Annotated

import typer

from flinkscale.app.demo import run_demo
from flinkscale.cli._common import console, state_dir_option
from flinkscale.cli._inputs import check_choice


def demo(
    quick: Annotated[bool, typer.Option("--quick", help="A short version (about 3 minutes).")] = False,
    output: Annotated[Path, typer.Option("--output", help="Where the report goes.")] = Path("demo-output"),
    state_dir: Path = state_dir_option(),
    no_dashboard: Annotated[bool, typer.Option("--no-dashboard", help="Do not serve the live dashboard.")] = False,
    output_format: Annotated[str, typer.Option("--format", help="text or json (the summary).")] = "text",
) -> None:
    """Start Flink and a broker, run the reference pipeline through steady load, a 3x step, a spike beyond what
    this machine can scale to and back down while flinkscale autoscales it; profile it, plan it for 1 TB/day,
    stop everything and write OUTPUT/report.html. Ctrl-C stops cleanly, leaving nothing running.

    Example: flinkscale demo --quick --output /tmp/demo
    """
    check_choice(output_format, ("text", "json"), "--format")  # before anything is started
    stop, interrupted = threading.Event(), threading.Event()

    def on_ctrl_c(*_: object) -> None:
        interrupted.set()  # ``stop`` alone cannot tell: the demo sets it itself when its story ends
        stop.set()

    previous = signal.signal(signal.SIGINT, on_ctrl_c)
    started = time.monotonic()
    try:
        result = run_demo(output.resolve(), state_dir, quick=quick, stop=stop, serve_dashboard=not no_dashboard,
                          say=lambda m: console.print(f"[dim]{time.monotonic() - started:6.1f}s[/dim] {m}"))
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted.is_set():
        console.print("stopped early on Ctrl-C; everything started was stopped")
    if output_format == "json":
        typer.echo(json.dumps(result.__dict__, indent=2, default=str))
        return
    console.print(f"demo done in {result.wall_seconds:.0f}s: {len(result.rescales)} rescale(s), "
                  f"{result.applied_scale_ups} scale-up(s) applied; report: {output / 'report.html'}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
