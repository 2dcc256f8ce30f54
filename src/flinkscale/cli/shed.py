"""``flinkscale shed set | show | auto``: load shedding of a running job through its Kafka control topic.

``set`` writes one keep probability; ``auto`` runs the control step without an autoscaling policy
(``flinkscale.flink.shedder.ShedLoop`` over ``flinkscale.core.control.step``) on live collector snapshots
until Ctrl-C. The job must have been started with the control topic
(``--shed-control-topic``, see pipelines/clickstream.py); it picks every new value up within about a second.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from flinkscale.app.shedding import open_shed_channel
from flinkscale.cli._common import (
    RestTarget,
    check_job,
    console,
    err_console,
    parse_fraction,
    print_json,
    resolve_bootstrap,
    rest_options,
    state_dir_option,
)
from flinkscale.cli._inputs import check_choice, check_number, parse_number_or_percentage
from flinkscale.core.errors import InputError
from flinkscale.flink.collector import Collector
from flinkscale.flink.shedder import ShedLoop, ShedSettings
from flinkscale.kafka.control import ControlChannel

shed_app = typer.Typer(help="Load shedding with a stated accuracy bound, through the job's control topic.",
                       no_args_is_help=True)


def parse_keep(text: str) -> float:
    value = parse_number_or_percentage(text, "--keep")
    if not 0.0 < value <= 1.0:
        raise InputError(f"must be in (0, 1] (1 = shedding off), got {text!r}", field="--keep")
    return value


@shed_app.command("set")
def set_keep(
    topic: str = typer.Option(..., "--topic", help="The job's control topic."),
    keep: str = typer.Option(..., "--keep", help="Keep probability: 0.5, 50%; 1 switches shedding off."),
    bootstrap: str | None = typer.Option(None, "--bootstrap", help="Kafka bootstrap (default: embedded broker)."),
    output: str = typer.Option("table", "--format", help="table or json."),
    state_dir: Path = state_dir_option(),
) -> None:
    """Publish one keep probability to the control topic (seq = last seq on the topic + 1).

    Examples:
      flinkscale shed set --topic shed-control --keep 0.5
      flinkscale shed set --topic shed-control --keep 1      # stop shedding
    """
    check_choice(output, ("table", "json"), "--format")  # before anything is published
    p = parse_keep(keep)
    channel = ControlChannel(resolve_bootstrap(bootstrap, state_dir), topic)
    try:
        published = channel.publish(p)
    finally:
        channel.close()
    if output == "json":
        print_json({"topic": topic, "keep_probability": p, "seq": published.message.seq,
                    "offset": published.offset})
    else:
        console.print(f"{topic}: keep_probability = {p:.4f} (shed {1 - p:.2%}), seq {published.message.seq}, "
                      f"offset {published.offset}")


@shed_app.command("show")
def show(
    topic: str = typer.Option(..., "--topic", help="The job's control topic."),
    bootstrap: str | None = typer.Option(None, "--bootstrap", help="Kafka bootstrap (default: embedded broker)."),
    output: str = typer.Option("table", "--format", help="table or json."),
    state_dir: Path = state_dir_option(),
) -> None:
    """The keep probability in force (the last message on the control topic).

    Example: flinkscale shed show --topic shed-control --format json
    """
    check_choice(output, ("table", "json"), "--format")
    channel = ControlChannel(resolve_bootstrap(bootstrap, state_dir), topic, create=False)
    try:
        latest = channel.latest()
    finally:
        channel.close()
    data = None if latest is None else {"keep_probability": latest.keep_probability, "seq": latest.seq}
    if output == "json":
        print_json({"topic": topic, "control": data})
    elif latest is None:
        console.print(f"{topic}: no control message (the job uses its initial --shed-keep)")
    else:
        console.print(f"{topic}: keep_probability = {latest.keep_probability:.4f}, seq {latest.seq}")


@shed_app.command("auto")
@rest_options
def auto(
    rest: RestTarget,
    job: str = typer.Option(..., "--job", help="Job id."),
    control_topic: str = typer.Option(..., "--control-topic", help="The job's control topic."),
    topic: str | None = typer.Option(
        None, "--topic", help="The job's input topic: offered rate from its end offsets (exact) instead of "
                              "read rate + lag growth (Flink refreshes lag every few seconds)."),
    target_error: str = typer.Option("2%", "--target-error", help="Relative error bound: 2% = 98% accuracy."),
    confidence: str = typer.Option("95%", "--confidence", help="Confidence of the bound."),
    window_seconds: float = typer.Option(10.0, "--window-seconds", help="The job's window length."),
    records_per_group: float | None = typer.Option(
        None, "--records-per-group",
        help="Records per group per window that must meet the target (default: offered x window = totals)."),
    sustainable_rate: float | None = typer.Option(
        None, "--sustainable-rate", help="Records/s the job sustains unshed (from `profile`); default: measured."),
    interval: float = typer.Option(5.0, "--interval", help="Seconds between samples."),
    headroom: float = typer.Option(0.9, "--headroom", help="Use this fraction of the sustainable rate."),
    value_cv: float = typer.Option(
        0.0, "--value-cv", help="Coefficient of variation of the values the job sums (e.g. event sizes; 0 = "
                                "counts only): sums need a higher p than counts for the same bound."),
    duration: float | None = typer.Option(None, "--duration", help="Stop after this many seconds (default: Ctrl-C)."),
    bootstrap: str | None = typer.Option(None, "--bootstrap", help="Kafka bootstrap (default: embedded broker)."),
    output: str = typer.Option("table", "--format", help="table (progress lines) or json (one object per step)."),
    state_dir: Path = state_dir_option(),
) -> None:
    """Keep the job on time under overload: shed only the excess, never below the accuracy bound.

    Every --interval seconds: offered = read rate + lag growth; sustainable = read rate / busy x p (or
    --sustainable-rate); p = max(headroom x sustainable / offered, p_min) with p_min from the target
    error, confidence and records per window; published when it changes. p returns to 1 (shedding off)
    once the job sustains the offered rate. Ctrl-C stops the loop (the last p stays in force; run
    `flinkscale shed set --keep 1` to switch shedding off).

    Example:
      flinkscale shed auto --job 3f2a... --control-topic shed-control --topic clicks --target-error 2% --confidence 95%
    """
    check_number(window_seconds, "--window-seconds", above=0, maximum=86400 * 365)
    if records_per_group is not None:
        check_number(records_per_group, "--records-per-group", above=0, maximum=1e15)
    if sustainable_rate is not None:
        check_number(sustainable_rate, "--sustainable-rate", above=0, maximum=1e15)
    check_number(interval, "--interval", above=0, maximum=86400)
    check_number(headroom, "--headroom", above=0, maximum=1)
    check_number(value_cv, "--value-cv", minimum=0, maximum=1e6)
    if duration is not None:
        check_number(duration, "--duration", above=0, maximum=86400 * 365 * 10)
    settings = ShedSettings(target_error=parse_fraction(target_error, "--target-error"),
                            confidence=parse_fraction(confidence, "--confidence"), window_seconds=window_seconds,
                            records_per_group=records_per_group, sustainable_rate=sustainable_rate, headroom=headroom,
                            value_cv=value_cv)
    if interval <= 0:
        raise InputError("must be > 0", field="--interval")
    check_choice(output, ("table", "json"), "--format")
    client = rest.client(state_dir)
    check_job(client, job, interval)  # before the control topic is touched
    shed = open_shed_channel(resolve_bootstrap(bootstrap, state_dir), control_topic, settings, topic)
    controller, arrivals = shed.controller, shed.arrivals
    loop = ShedLoop(controller, interval)
    collector = Collector(client, job)
    collector.sample()
    if arrivals is not None:
        arrivals.sample()
    started = time.monotonic()
    try:
        while duration is None or time.monotonic() - started < duration:
            time.sleep(interval)
            snapshot = collector.sample()
            arrival = arrivals.sample() if arrivals is not None else None
            if snapshot is None:
                err_console.print(f"skipped: {collector.skipped[-1] if collector.skipped else 'first sample'}")
                continue
            result = loop.tick(snapshot, arrival)
            step = result.shed
            if step is None:
                err_console.print(f"hold: {result.held or 'nothing to decide'}")
                continue
            if output == "json":
                print_json({"timestamp": step.timestamp, "offered_rate": step.load.offered_rate,
                            "consumed_rate": step.load.consumed_rate, "lag": step.load.lag,
                            "sustainable_rate": step.sustainable_rate, "sustainable_basis": step.sustainable_basis,
                            "keep_probability": controller.keep_probability, "published_seq": step.published_seq,
                            "achievable": step.decision.achievable, "reason": step.decision.reason,
                            "numbers": dict(step.decision.numbers), "formula": step.decision.formula})
            else:
                console.print(f"{time.strftime('%H:%M:%S')} {step.describe()}")
    except KeyboardInterrupt:
        err_console.print(f"stopped; keep_probability {controller.keep_probability:.4f} stays in force")
    finally:
        shed.close()


def register(app: typer.Typer) -> None:
    app.add_typer(shed_app, name="shed")
