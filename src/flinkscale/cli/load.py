"""``flinkscale load``: clickstream events into a Kafka topic at a constant rate or along a simulator trace.

Argument handling and output only. The rate per second comes from ``--rate`` (a constant) or from
``--profile TRACE.yaml``, read with the simulator's own ``parse_trace`` (``flinkscale.core.sim.scenario``), so a
step, ramp, diurnal, spikes or replay trace means the same thing to the load generator as to ``flinkscale
simulate``; the file is either a bare trace mapping or a whole scenario (its ``trace:`` and ``event_bytes`` are
used). The events are produced by ``flinkscale.kafka.loadgen.LoadGenerator``, which paces itself in 10 ms ticks and
reports the rate it actually achieved; this command shows target vs achieved per second, warns when the
producer cannot keep up, and ends with the achieved rate. The broker is checked (and the topic looked up) before
anything is produced: an unreachable broker is one line and exit code 2, not a producer retrying for minutes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

if TYPE_CHECKING:
    from flinkscale.core.sim.traces import Trace
    from flinkscale.kafka.loadgen import LoadGenerator, LoadReport

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from flinkscale.cli._common import resolve_bootstrap, state_dir_option
from flinkscale.cli._inputs import check_output_file, read_text, read_yaml
from flinkscale.core.errors import InputError
from flinkscale.core.units import parse_duration, parse_rate

__all__ = ["LoadPlan", "load_command", "plan_load", "register", "resolve_bootstrap"]

FORMATS = ("text", "json")
# Seconds without a reachable broker before giving up (the one-line error, exit 2).
CONNECT_TIMEOUT_SECONDS = 5.0
# The generator runs in real time; a plan holds one rate per second.
MAX_DURATION_SECONDS = 31 * 86400.0
MAX_RATE = 1e9

HELP = (
    "Produce clickstream events to a Kafka topic at a constant rate or along a trace.\n\n"
    "Events are JSON {event_id, user_id, url, size_bytes, event_time}, keyed by user; users follow a Zipf "
    "distribution (--zipf 0 = uniform). event_id counts up from --first-id without gaps, and --manifest "
    "writes the ids produced and the exact per-(user, window) counts and byte sums.\n\n"
    "The trace file uses the simulator's trace format (docs/simulate.md): a mapping such as "
    "{type: step, before: 2k/s, after: 6k/s, at: 5m}, or a whole scenario file (its trace: is used).\n\n"
    "Examples:\n\n"
    "  flinkscale load --topic clicks --rate 5k/s --duration 60s\n\n"
    "  flinkscale load --topic clicks --profile examples/scenarios/step-small.yaml --duration 10m\n\n"
    "  flinkscale load --topic clicks --bootstrap kafka:9092 --rate 20k/s --duration 5m --zipf 1.1 "
    "--manifest run.json --format json"
)


@dataclass(frozen=True)
class LoadPlan:
    """What to produce: one target rate per second, and how it was described."""

    rates: tuple[float, ...]
    description: str

    @property
    def target_records(self) -> float:
        return float(sum(self.rates))


def plan_load(rate: str | None, profile: Path | None, duration: str | None) -> LoadPlan:
    """The per-second target rates from ``--rate`` or ``--profile``, each with ``--duration``."""
    from flinkscale.core.sim.traces import ConstantTrace

    if (rate is None) == (profile is None):
        raise InputError("give exactly one of --rate (a constant) or --profile TRACE.yaml", field="--rate")
    if duration is None:
        raise InputError("is required (e.g. 60s, 10m)", field="--duration")
    seconds = parse_duration(duration, field="--duration")
    if not 1 <= seconds <= MAX_DURATION_SECONDS:
        raise InputError(f"must be from 1s to {MAX_DURATION_SECONDS // 86400:.0f}d, got {duration!r}",
                         field="--duration")
    trace: Trace
    if rate is not None:
        parsed = parse_rate(rate, field="--rate")
        if parsed.is_bytes:
            raise InputError(f"{rate!r} is a byte rate: give records per second (e.g. 5k/s)", field="--rate")
        if parsed.per_second > MAX_RATE:
            raise InputError(f"must be at most {MAX_RATE:.0e} records/s, got {rate!r}", field="--rate")
        trace = ConstantTrace(rate=parsed.per_second)
    else:
        assert profile is not None
        trace = _read_trace(profile)
    # The generator produces whole seconds; a trace is sampled at the start of each one.
    rates = trace.rates(float(math.ceil(seconds)), 1.0)
    return LoadPlan(tuple(float(r) for r in rates), trace.describe())


def _read_trace(path: Path) -> Trace:
    from flinkscale.core.sim.scenario import parse_trace

    data = read_yaml(path, "load profile")
    if not isinstance(data, dict):
        raise InputError("must be a trace mapping (type: ...) or a scenario with a trace:", field=str(path))
    event_bytes = None
    if "trace" in data:  # a whole scenario: its trace, and its event size for byte rates
        from flinkscale.core.units import parse_size

        if data.get("event_bytes") is not None:
            event_bytes = float(parse_size(data["event_bytes"], field="event_bytes"))
            if not event_bytes > 0:  # as the scenario parser says: a byte rate divides by it
                raise InputError("must be > 0", field="event_bytes")
        data = data["trace"]

    def read_csv(relative: str) -> str:
        csv_path = Path(relative) if Path(relative).is_absolute() else path.parent / relative
        try:
            return read_text(csv_path, "replay CSV")
        except InputError as exc:
            raise InputError(str(exc), field="trace.csv") from None

    return parse_trace(data, event_bytes=event_bytes, read_text=read_csv)


def load_command(
    topic: Annotated[str, typer.Option("--topic", "-t", help="the topic to produce to (must exist)")],
    rate: Annotated[str | None, typer.Option("--rate", help="a constant rate, e.g. 5k/s")] = None,
    profile: Annotated[Path | None, typer.Option(
        "--profile", metavar="TRACE.yaml", help="a simulator trace (or a scenario: its trace)")] = None,
    duration: Annotated[str | None, typer.Option("--duration", "-d", help="how long, e.g. 60s, 10m")] = None,
    bootstrap: Annotated[str | None, typer.Option(
        "--bootstrap", help="Kafka bootstrap servers (default: the embedded broker of --state-dir)")] = None,
    state_dir: Path = state_dir_option(),
    users: Annotated[int, typer.Option("--users", help="distinct users")] = 10_000,
    zipf: Annotated[float, typer.Option("--zipf", help="Zipf exponent of user popularity (0 = uniform)")] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="random seed (same seed, same events)")] = 1,
    first_id: Annotated[int, typer.Option("--first-id", help="event_id of the first event")] = 0,
    manifest: Annotated[Path | None, typer.Option(
        "--manifest", help="write the ids and per-(user, window) counts produced to this JSON file")] = None,
    linger_ms: Annotated[float, typer.Option(
        "--linger-ms", help="how long the producer fills a batch (librdkafka linger.ms): larger gives fewer, larger "
        "batches on the topic, as high-volume producers send; a source's cost per record depends on it")] = 5.0,
    output_format: Annotated[str, typer.Option("--format", "-f", help="text | json")] = "text",
) -> None:
    if output_format not in FORMATS:
        raise InputError(f"must be one of {', '.join(FORMATS)}, got {output_format!r}", field="--format")
    if users < 1:
        raise InputError(f"must be >= 1, got {users}", field="--users")
    if not 0 <= zipf <= 100:  # also refuses nan and inf
        raise InputError(f"must be a number from 0 (uniform) to 100, got {zipf}", field="--zipf")
    if not 0 <= first_id < 2**62:
        raise InputError(f"must be from 0 to 2^62, got {first_id}", field="--first-id")
    if not 0 <= seed < 2**63:
        raise InputError(f"must be from 0 to 2^63 - 1, got {seed}", field="--seed")
    if users > 10**9:
        raise InputError(f"must be at most 1e9, got {users}", field="--users")
    from flinkscale.kafka.loadgen import LoadGenerator, check_linger_ms

    check_linger_ms(linger_ms)  # before anything connects
    if manifest is not None:
        check_output_file(manifest, "--manifest")
    plan = plan_load(rate, profile, duration)
    servers = resolve_bootstrap(bootstrap, state_dir)

    from flinkscale.kafka.admin import TopicAdmin

    # One metadata request: the broker answers (else EndpointError, exit 2) and the topic exists.
    topics = TopicAdmin(servers, timeout=CONNECT_TIMEOUT_SECONDS).topics()
    if topic not in topics:
        raise InputError(f"no such topic on {servers} (create it: flinkscale kafka create {topic})", field="--topic")
    generator = LoadGenerator(servers, topic, users=users, zipf_s=zipf, seed=seed, first_id=first_id,
                              linger_ms=linger_ms)
    console = Console(stderr=True)
    try:
        report = _run(generator, plan, console, show_progress=output_format == "text")
    finally:
        generator.close()
    if manifest is not None:
        try:
            generator.manifest.save(manifest)
        except OSError as exc:
            raise InputError(f"cannot write {manifest}: {exc.strerror}", field="--manifest") from None
    target_rate = plan.target_records / len(plan.rates)
    result = {
        "topic": topic, "bootstrap": servers, "trace": plan.description, "seconds": round(report.seconds, 3),
        "target_records": round(plan.target_records), "produced": report.produced,
        "target_rate": round(target_rate, 1), "achieved_rate": round(report.achieved_rate, 1),
        "seconds_below_target": len(report.warnings), "warnings": list(report.warnings[:20]),
        "first_id": generator.manifest.first_id, "next_id": generator.manifest.next_id, "linger_ms": linger_ms,
        "manifest": str(manifest) if manifest else None,
    }
    if output_format == "json":
        typer.echo(json.dumps(result, indent=2))
        return
    out = Console()
    out.print(f"produced {report.produced:,} events to {topic} in {report.seconds:.1f}s: "
              f"achieved [bold]{report.achieved_rate:,.0f}/s[/bold] (target {target_rate:,.0f}/s, {plan.description})")
    if report.warnings:
        out.print(f"[yellow]warning[/yellow]: {len(report.warnings)} of {len(plan.rates)} seconds below 95% of the "
                  f"target: the producer could not keep up (first: {report.warnings[0]})")
    if manifest is not None:
        out.print(f"manifest: {manifest} (event ids {generator.manifest.first_id}..{generator.manifest.next_id - 1})")


def _run(generator: LoadGenerator, plan: LoadPlan, console: Console, show_progress: bool) -> LoadReport:
    """Run the generator with a progress bar (target vs achieved, live warnings) when stderr is a terminal."""
    if not (show_progress and console.is_terminal):
        return generator.run(plan.rates)
    behind = 0
    with Progress(TextColumn("[bold]load[/bold]"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f}s"),
                  TextColumn("target {task.fields[target]:>9,.0f}/s"), TextColumn("achieved {task.fields[achieved]}"),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("load", total=len(plan.rates), target=plan.rates[0], achieved="-")

        def progress(second: int, target: float, produced: int) -> None:
            nonlocal behind
            low = target > 0 and produced < 0.95 * target
            style = "red" if low else "green"
            bar.update(task, completed=second + 1, target=target, achieved=f"[{style}]{produced:>9,}/s[/{style}]")
            if low:
                behind += 1
                if behind == 1 or behind % 10 == 0:
                    bar.console.print(f"[yellow]warning[/yellow]: second {second}: produced {produced:,} of "
                                      f"{target:,.0f} (cannot keep up; {behind} second(s) so far)")

        return generator.run(plan.rates, progress=progress)


def register(app: typer.Typer) -> None:
    app.command("load", help=HELP, no_args_is_help=True)(load_command)
