"""``flinkscale job submit | list | stop | rescale``: jobs on the embedded cluster or any Flink REST endpoint."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from flinkscale.cli._common import (
    RestTarget,
    console,
    print_json,
    resolve_bootstrap,
    resolve_rest_url,
    rest_options,
    state_dir_option,
)
from flinkscale.cli._inputs import check_choice
from flinkscale.core.errors import InputError
from flinkscale.core.keygroups import UPPER_BOUND_MAX_PARALLELISM
from flinkscale.flink.cluster import LocalCluster
from flinkscale.pipelines.clickstream_sql import SqlClickstreamOptions, render_sql
from flinkscale.pipelines.launch import (
    COST_KINDS,
    ClickstreamOptions,
    KeyedClicksJavaOptions,
    submit_clickstream,
    submit_clickstream_sql,
    submit_keyed_clicks_java,
)

job_app = typer.Typer(help="Submit, list, stop (with a savepoint) and rescale Flink jobs.", no_args_is_help=True)
# clickstream: PyFlink with a Python UDF; clickstream-sql: the same job in Flink SQL alone (Table API);
# keyed-java: a Java DataStream job (keyed process function with state; java/jobs, built by `make java`).
PIPELINES = ("clickstream", "clickstream-sql", "keyed-java")


#: A file sink's directory: a URI with a scheme (file://, s3://, ...) and no whitespace.
_DIR_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")

@job_app.command("submit")
def submit(
    pipeline: str = typer.Argument(..., help=f"Reference pipeline: {', '.join(PIPELINES)}."),
    parallelism: int = typer.Option(1, "--parallelism", "-p"),
    topic: str = typer.Option("clicks", "--topic", help="Kafka topic with the click events."),
    bootstrap: str | None = typer.Option(None, "--bootstrap", help="Default: the embedded broker."),
    cost_us: float = typer.Option(50.0, "--cost-us", help="CPU microseconds burnt per event in the enrichment "
                                  "(clickstream, keyed-java)."),
    cost_kind: str = typer.Option("spin", "--cost-kind", help="keyed-java: spin (the cost is CPU) or sleep (waiting "
                                  "on a remote lookup: busy time that takes no CPU from other tasks)."),
    cost_rounds: int = typer.Option(100, "--cost-rounds", help="clickstream-sql: the URL is repeated this many "
                                    "times and SHA-256 hashed per event (a CPU cost from Flink built-ins)."),
    shed_control_topic: str = typer.Option("", "--shed-control-topic", help="clickstream-sql, keyed-java: load "
                                           "shedding follows this control topic (`flinkscale shed set/auto`)."),
    shed_keep: float = typer.Option(1.0, "--shed-keep", help="clickstream-sql, keyed-java: initial keep "
                                    "probability."),
    print_sql: bool = typer.Option(False, "--print-sql", help="clickstream-sql: print the SQL script and exit "
                                   "(for `flinkscale lint`, `plan --sql` or a SQL client)."),
    events_dir: str = typer.Option("", "--events-dir", help="file:// URL: exactly-once sink of every event."),
    agg_dir: str = typer.Option("", "--agg-dir", help="file:// URL: exactly-once sink of per-user window counts."),
    agg_topic: str = typer.Option("", "--agg-topic", help="Kafka topic for per-user window counts."),
    window_seconds: int = typer.Option(10, "--window-seconds"),
    max_parallelism: int | None = typer.Option(None, "--max-parallelism", help="Key groups of the keyed state "
                                               "(default 120; a restore must use the savepoint's own)."),
    group: str | None = typer.Option(None, "--group", help="Kafka consumer group (default: per pipeline)."),
    savepoint: str | None = typer.Option(None, "--savepoint", "-s", help="Restore from this savepoint."),
    kafka_jars: str | None = typer.Option(None, "--kafka-jars", help="Directory (or files) with flink-connector-"
                                          "kafka*.jar and kafka-clients*.jar; default: taken from PyPI."),
    state_dir: Path = state_dir_option(),
    output: str = typer.Option("text", "--format"),
) -> None:
    """Submit a reference pipeline to the embedded cluster.

    Examples:
      flinkscale job submit clickstream --parallelism 1 --topic clicks --events-dir file:///tmp/out
      flinkscale job submit clickstream-sql --topic clicks --agg-dir file:///tmp/agg --shed-control-topic shed
      flinkscale job submit clickstream-sql --print-sql > job.sql
    """
    check_choice(output, ("text", "json"), "--format")
    if pipeline not in PIPELINES:
        raise InputError(f"unknown pipeline {pipeline!r} (one of {', '.join(PIPELINES)})", field="PIPELINE")
    if not 1 <= parallelism <= 32768:
        raise InputError(f"must be from 1 to 32768, got {parallelism}", field="--parallelism")
    if not 0 <= cost_us <= 1e9:  # also refuses nan and inf
        raise InputError(f"must be a number of microseconds from 0 to 1e9, got {cost_us}", field="--cost-us")
    kind = next((k for k in COST_KINDS if k == cost_kind), None)
    if kind is None:
        raise InputError(f"must be {' or '.join(COST_KINDS)}, got {cost_kind!r}", field="--cost-kind")
    if not 1 <= window_seconds <= 86400 * 365:
        raise InputError(f"must be from 1 to {86400 * 365}, got {window_seconds}", field="--window-seconds")
    if max_parallelism is not None and not 1 <= max_parallelism <= 32768:
        raise InputError(f"must be from 1 to 32768, got {max_parallelism}", field="--max-parallelism")
    if not 0 <= cost_rounds <= 1_000_000:
        raise InputError(f"must be from 0 to 1000000, got {cost_rounds}", field="--cost-rounds")
    from flinkscale.kafka.admin import check_topic_name  # confluent_kafka: loaded by the commands that use it

    for flag, name in (("--topic", topic), ("--agg-topic", agg_topic), ("--shed-control-topic", shed_control_topic)):
        if name or flag == "--topic":
            check_topic_name(name, flag)
    for flag, uri in (("--events-dir", events_dir), ("--agg-dir", agg_dir)):
        if uri and not _DIR_URI.fullmatch(uri):
            raise InputError(f"must be a directory URI such as file:///tmp/out, got {uri[:80]!r}", field=flag)
    # Only what was given: each pipeline keeps its own defaults otherwise.
    common: dict[str, Any] = {k: v for k, v in (("max_parallelism", max_parallelism), ("group", group))
                              if v is not None}
    if pipeline == "clickstream-sql":
        sql_options = SqlClickstreamOptions(
            bootstrap=bootstrap or "${bootstrap}" if print_sql else resolve_bootstrap(bootstrap, state_dir),
            topic=topic, cost_rounds=cost_rounds, events_dir=events_dir, agg_dir=agg_dir, agg_topic=agg_topic,
            window_seconds=window_seconds, kafka_jars=kafka_jars, shed_control_topic=shed_control_topic,
            shed_keep=shed_keep, **common)
        if print_sql:
            typer.echo(render_sql(sql_options), nl=False)
            return
    cluster = LocalCluster(state_dir)
    rest_url = resolve_rest_url(None, state_dir)
    if pipeline == "clickstream-sql":
        with console.status("Table API submission (plans the SQL in a client JVM)"):
            submission = submit_clickstream_sql(cluster, sql_options, parallelism=parallelism, savepoint=savepoint)
    elif pipeline == "keyed-java":
        if not events_dir:
            raise InputError("keyed-java writes every event to a file sink: give --events-dir file:///...",
                             field="--events-dir")
        java_options = KeyedClicksJavaOptions(
            bootstrap=resolve_bootstrap(bootstrap, state_dir), topic=topic, out=events_dir, cost_us=cost_us,
            cost_kind=kind, shed_control_topic=shed_control_topic,
            shed_keep=shed_keep, kafka_jars=kafka_jars, **common)
        with console.status("flink run -c (Java DataStream job)"):
            submission = submit_keyed_clicks_java(cluster, java_options, parallelism=parallelism, savepoint=savepoint)
    else:
        options = ClickstreamOptions(bootstrap=resolve_bootstrap(bootstrap, state_dir), topic=topic,
                                     cost_us=cost_us, events_dir=events_dir, agg_dir=agg_dir, agg_topic=agg_topic,
                                     window_seconds=window_seconds, kafka_jars=kafka_jars, **common)
        with console.status("flink run -py (builds the job graph in a client JVM, ~10 s)"):
            submission = submit_clickstream(cluster, options, parallelism=parallelism, savepoint=savepoint)
    if output == "json":
        print_json({"job_id": submission.job_id, "submit_seconds": round(submission.seconds, 1),
                    "rest_url": rest_url})
        return
    console.print(f"submitted {pipeline} as job [bold]{submission.job_id}[/bold] in {submission.seconds:.1f}s "
                  f"({rest_url}/#/job/running/{submission.job_id}/overview)")


@job_app.command("list")
@rest_options
def list_jobs(rest: RestTarget, state_dir: Path = state_dir_option(),
              output: str = typer.Option("text", "--format")) -> None:
    """Jobs with their state."""
    check_choice(output, ("text", "json"), "--format")
    jobs = rest.client(state_dir).jobs()
    if output == "json":
        print_json([j.__dict__ for j in jobs])
        return
    table = Table("job id", "name", "state")
    for job in jobs:
        table.add_row(job.id, job.name, job.state)
    console.print(table)


@job_app.command("stop")
@rest_options
def stop(job_id: str, rest: RestTarget, drain: bool = typer.Option(False, "--drain", help="Flush windows and sinks "
                                                                   "first (emits MAX_WATERMARK): for a final stop, "
                                                                   "not a restart."),
         state_dir: Path = state_dir_option()) -> None:
    """Stop a job with a savepoint and print where it is (never a bare cancel).

    Example: flinkscale job stop 8bc268616162615d507a6d5c57efc18f
    """
    client = rest.client(state_dir)
    started = time.monotonic()
    with console.status("stop-with-savepoint"):
        location = client.wait_savepoint(job_id, client.trigger_stop_with_savepoint(job_id, drain=drain))
        client.wait_job_state(job_id, ["FINISHED"])
    console.print(f"stopped {job_id} in {time.monotonic() - started:.1f}s; savepoint: {location}")


@job_app.command("rescale")
@rest_options
def rescale(job_id: str, rest: RestTarget,
            vertex: list[str] = typer.Option(..., "--vertex", help="VERTEX_ID=P (repeatable)."),
            state_dir: Path = state_dir_option(),
            wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait until the new parallelism runs.")) -> None:
    """Rescale vertices in place through the adaptive scheduler (PUT /jobs/:jid/resource-requirements).

    Example: flinkscale job rescale JOB --vertex 7fc3fc47263b6c498ac3facaf12547db=2
    """
    client = rest.client(state_dir)
    bounds = client.resource_requirements(job_id)
    max_parallelism = {v.id: v.max_parallelism for v in client.job(job_id).vertices}
    for item in vertex:
        vid, _, value = item.partition("=")
        if vid not in bounds:
            raise InputError(f"job {job_id} has no vertex {vid!r} (vertices: {', '.join(bounds)})", field="--vertex")
        if not (value.isascii() and value.isdigit()) or int(value) < 1:
            raise InputError(f"parallelism must be a positive integer, got {value[:40]!r}", field="--vertex")
        if int(value) > (most := max_parallelism.get(vid, UPPER_BOUND_MAX_PARALLELISM)):
            raise InputError(f"parallelism {value[:40]} is above the vertex's max parallelism {most} (it has "
                             f"{most} key groups; Flink runs no more subtasks than that)", field="--vertex")
        bounds[vid] = (1, int(value))
    started = time.monotonic()
    client.set_resource_requirements(job_id, bounds)
    if wait:
        with console.status("waiting for the new parallelism to run (the scheduler waits for a checkpoint)"):
            while True:
                job = client.job(job_id)
                if job.all_running and all(job.vertex(v).parallelism == hi for v, (_, hi) in bounds.items()):
                    break
                if time.monotonic() - started > 300:
                    raise InputError("the job did not reach the new parallelism within 300 s (not enough slots?)",
                                     field="--vertex")
                time.sleep(0.5)
    console.print(f"rescaled {job_id} in {time.monotonic() - started:.1f}s")


def register(app: typer.Typer) -> None:
    app.add_typer(job_app, name="job")
