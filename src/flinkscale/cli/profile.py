"""``flinkscale profile`` and ``flinkscale skew``: sample a running job over REST, analyse it, print it.

Argument handling and output only: sampling is ``flink.collector`` (``Collector``, ``collect_window``,
``merge_window``), the analysis ``core.profile.analyze_profile`` / ``core.skew.analyze_skew``, the rendering
``report.profile``. The REST URL defaults to the embedded cluster of ``--state-dir`` (its cluster.json); ``--job``
may be left out when exactly one job runs. Ctrl-C during sampling ends the window early and still reports what
was sampled (a second Ctrl-C aborts). An unreachable REST URL or an unknown job id is one line on stderr and exit 2
(``EndpointError`` / ``NotFoundError`` through ``cli.main``).

``make_client``, ``CLOCK`` and ``SLEEP`` are module attributes so that tests can replay recorded REST answers
on a virtual clock.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from flinkscale.cli._common import RestTarget, rest_options, warn_if_metrics_stale
from flinkscale.cli._inputs import check_choice, check_output_file, open_output, write_text
from flinkscale.core.errors import InputError, RuntimeFailure
from flinkscale.core.profile import analyze_profile, looks_like_sql_job, profile_document
from flinkscale.core.skew import DEFAULT_SKEW_THRESHOLD, analyze_skew
from flinkscale.core.snapshot import MetricsSnapshot
from flinkscale.core.units import parse_duration
from flinkscale.flink.collector import Collector, collect_window, merge_window
from flinkscale.flink.rest import FlinkRestClient, RestAccess
from flinkscale.host import DEFAULT_STATE_DIR
from flinkscale.report.profile import render_html, render_json, render_skew_table, render_table

CLOCK: Callable[[], float] = time.time
SLEEP: Callable[[float], None] = time.sleep


def make_client(rest_url: str, access: RestAccess) -> FlinkRestClient:
    # Two retries: an unreachable URL answers "no" within about a second instead of hanging the command.
    return access.client(rest_url, timeout=10.0, retries=2, backoff_seconds=0.25)


_PROFILE_HELP = """Measure a running Flink job: per-vertex rates, busy / backpressured / idle time, true processing
rate, skew, checkpoints; its bottleneck, maximum sustainable source rate and headroom.

Samples the job's counters every --interval over --window (Ctrl-C ends the window early and still reports).
The JSON output (schema flinkscale.profile/v1, docs/profile-schema.md) feeds `flinkscale plan --from-profile`.

Examples:

  flinkscale profile                       # the one job on the local cluster, 2 minutes, a table

  flinkscale profile --job 3f2a... --window 1m --format html --output profile.html

  flinkscale profile --rest http://flink:8081 --format json --output profile.json

  flinkscale plan --from-profile profile.json --target 1TB/day
"""

_SKEW_HELP = """Skew of every vertex of a running job: how uneven its subtasks are (busy time, else records),
how much the key-group layout explains (parallelism vs max parallelism), the hot-key remainder, and the remedies
with their expected gain (align parallelism, two-phase aggregation, salting, rebalance / adaptive partitioner).

Examples:

  flinkscale skew --job 3f2a...

  flinkscale skew --window 1m --format json
"""


# A profile samples in real time: a window longer than a week is a typo, not a measurement.
MAX_WINDOW_SECONDS = 7 * 86400.0


def _seconds(text: str, field: str) -> float:
    seconds = parse_duration(text, field=field)
    if not 0 < seconds <= MAX_WINDOW_SECONDS:
        raise InputError(f"must be > 0 and at most 7d, got {text!r}", field=field)
    return seconds


def _find_job(client: FlinkRestClient, job: str | None) -> str:
    """The job to sample; the lookup is one phase with the deadline of one call (retries included)."""
    with client.phase(client.deadline, "finding the job"):
        return _job_id(client, job)


def _job_id(client: FlinkRestClient, job: str | None) -> str:
    if job:
        client.job(job)  # NotFoundError (exit 2) for an unknown id, EndpointError when unreachable
        return job
    running = client.running_jobs()
    if len(running) != 1:
        names = ", ".join(f"{j.id} ({j.name})" for j in running) or "none"
        raise InputError(f"{len(running)} jobs are running ({names}); name one with --job", field="--job")
    return running[0].id


@contextmanager
def _interruptible() -> Iterator[threading.Event]:
    """First Ctrl-C sets the event (the window ends early), a second one aborts."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(_signum: int, _frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def sample_job(client: FlinkRestClient, job_id: str, window_seconds: float, interval_seconds: float, *,
               quiet: bool = False) -> tuple[list[MetricsSnapshot], Collector]:
    """Samples with a progress bar on stderr; returns the snapshots and the collector (calls, skipped)."""
    warn_if_metrics_stale(client, interval_seconds)
    collector = Collector(client, job_id, clock=CLOCK, sleep=SLEEP)
    console = Console(stderr=True)
    with _interruptible() as stop, Progress(
            TextColumn("sampling {task.fields[job]}"), BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f}s"),
            TimeElapsedColumn(), TextColumn("{task.fields[status]}"), console=console,
            disable=quiet or not console.is_terminal) as progress:
        task = progress.add_task("sample", total=window_seconds, job=job_id[:8], status="")

        def sleep(seconds: float) -> None:
            # Short naps so that Ctrl-C ends the wait at once; the collector then takes its last sample.
            deadline = CLOCK() + seconds
            while not stop.is_set() and CLOCK() < deadline:
                SLEEP(min(0.2, max(deadline - CLOCK(), 0.0)))

        def report(elapsed: float, snapshot: MetricsSnapshot | None) -> None:
            status = "" if snapshot else "sample skipped"
            progress.update(task, completed=min(elapsed, window_seconds),
                            status="stopping early (Ctrl-C)" if stop.is_set() else status)

        snapshots = collect_window(collector, window_seconds, interval_seconds, progress=report, sleep=sleep,
                                   should_stop=stop.is_set)
    if not snapshots:
        why = "; ".join(collector.skipped) or "the window ended before a second read"
        raise RuntimeFailure(f"no complete sample of job {job_id} in the window ({why})")
    return snapshots, collector


def _write(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text)
        return
    write_text(output, text if text.endswith("\n") else text + "\n", "--output")
    typer.echo(f"wrote {output}", err=True)


_JobOption = Annotated[str | None, typer.Option("--job", help="Job id (32 hex); optional when one job runs.")]
_StateDirOption = Annotated[Path, typer.Option("--state-dir", help="Local cluster state dir.")]
_WindowOption = Annotated[str, typer.Option("--window", help="How long to sample: 2m, 90s, ...")]
_IntervalOption = Annotated[str, typer.Option("--interval", help="Time between samples.")]


def _sample(rest: RestTarget, state_dir: Path, job: str | None, window: str,
            interval: str) -> tuple[list[MetricsSnapshot], Collector]:
    """The options ``profile`` and ``skew`` share: which job, how long and how often to sample it."""
    window_seconds, interval_seconds = _seconds(window, "--window"), _seconds(interval, "--interval")
    with make_client(rest.resolve(state_dir), rest.access) as client:
        return sample_job(client, _find_job(client, job), window_seconds, interval_seconds)


@rest_options
def profile(
    rest: RestTarget,
    job: _JobOption = None,
    state_dir: _StateDirOption = DEFAULT_STATE_DIR,
    window: _WindowOption = "2m",
    interval: _IntervalOption = "10s",
    output_format: Annotated[str, typer.Option("--format", help="table (people), json (scripts), html.")] = "table",
    output: Annotated[Path | None, typer.Option("--output", help="Write to this file instead of stdout.")] = None,
) -> None:
    check_choice(output_format, ("table", "json", "html"), "--format")
    if output is not None:
        check_output_file(output, "--output")
    snapshots, collector = _sample(rest, state_dir, job, window, interval)
    merged = merge_window(snapshots)
    analysis = analyze_profile(merged)
    document = profile_document(merged, snapshots, analysis, calls_per_sample=collector.calls_per_sample,
                                skipped=collector.skipped)
    if output_format == "json":
        _write(render_json(document), output)
    elif output_format == "html":
        _write(render_html(document, analysis), output)
    else:
        console = Console(file=open_output(output, "--output") if output else sys.stdout, width=200)
        console.print(render_table(analysis, collector.skipped))
        if output:
            console.file.close()


@rest_options
def skew(
    rest: RestTarget,
    job: _JobOption = None,
    state_dir: _StateDirOption = DEFAULT_STATE_DIR,
    window: _WindowOption = "30s",
    interval: _IntervalOption = "10s",
    threshold: Annotated[float, typer.Option(
        "--threshold", help="max/mean at or above which a vertex is skewed.")] = DEFAULT_SKEW_THRESHOLD,
    output_format: Annotated[str, typer.Option("--format", help="table (people) or json (scripts).")] = "table",
) -> None:
    check_choice(output_format, ("table", "json"), "--format")
    if not 1.0 < threshold < math.inf:  # also refuses nan
        raise InputError(f"must be > 1 (a max/mean ratio), got {threshold}", field="--threshold")
    snapshots, collector = _sample(rest, state_dir, job, window, interval)
    merged = merge_window(snapshots)
    report = analyze_skew(merged, threshold=threshold, sql_job=looks_like_sql_job(merged))
    if output_format == "json":
        typer.echo(json.dumps({**report.to_dict(), "window_seconds": merged.window_seconds,
                               "skipped": collector.skipped}, indent=2, allow_nan=False))
    else:
        Console(width=200).print(render_skew_table(report))


def register(app: typer.Typer) -> None:
    app.command("profile", help=_PROFILE_HELP)(profile)
    app.command("skew", help=_SKEW_HELP)(skew)
