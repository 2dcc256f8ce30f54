"""``flinkscale cluster up | down | status``: the embedded Flink 2.3 standalone cluster."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import typer
from rich.table import Table

from flinkscale.cli._common import RestTarget, console, print_json, rest_options, state_dir_option
from flinkscale.cli._inputs import check_choice, check_port, parse_set_options, read_yaml
from flinkscale.core.errors import EndpointError, InputError
from flinkscale.core.units import parse_size
from flinkscale.flink.cluster import ClusterSpec, LocalCluster, config_options
from flinkscale.flink.rest import FlinkRestClient

cluster_app = typer.Typer(help="Start, inspect and stop the embedded Flink 2.3 cluster (from the apache-flink wheel).",
                          no_args_is_help=True)


def _read_flink_config(path: Path) -> dict[str, str]:
    """A user's Flink config.yaml (nested or flat) as flat string options; every problem names the file."""
    data = read_yaml(path, "Flink config file")
    if not isinstance(data, Mapping):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise InputError(f"a Flink config file must be a YAML mapping, not {kind}", field=str(path))
    return config_options(data)


#: Integer options the embedded cluster is often given by --set or --config, with the ranges Flink accepts.
_INT_OPTIONS = {"taskmanager.numberOfTaskSlots": (1, 1000), "parallelism.default": (1, 32768),
                "pipeline.max-parallelism": (1, 32768), "rest.port": (0, 65535)}


def _process_size(given: str | None, flag_value: str, flag: str, key: str) -> str:
    """A process size from --set/--config (``key``) or the flag, checked as a size and by Flink's memory model
    (a TaskManager of 1k, a JobManager of 0 fail here, in one line, not in a JVM that never starts); the text
    Flink gets."""
    from flinkscale.core.memory import (
        JobManagerMemoryOptions,
        TaskManagerMemoryOptions,
        job_manager_memory,
        task_manager_memory,
    )

    text, field = (given, key) if given is not None else (flag_value, flag)
    size = int(parse_size(text, field=field))
    if key.startswith("taskmanager."):
        task_manager_memory(TaskManagerMemoryOptions(process_size=size))
    else:
        job_manager_memory(JobManagerMemoryOptions(process_size=size))
    return text


def _check_int_options(options: Mapping[str, str]) -> None:
    for key, (low, high) in _INT_OPTIONS.items():
        value = options.get(key)
        if value is not None and not (value.strip().isascii() and value.strip().isdigit()
                                      and low <= int(value) <= high):
            raise InputError(f"must be a whole number from {low} to {high}, got {value[:40]!r}", field=key)


@cluster_app.command("up")
def up(
    task_managers: int = typer.Option(1, "--task-managers", "-n", help="Number of TaskManagers."),
    slots: int = typer.Option(2, "--slots", help="Task slots per TaskManager. Use 1 for jobs whose Python UDFs "
                              "run in thread mode: they share one interpreter (one GIL) per TaskManager."),
    taskmanager_memory: str = typer.Option("1728m", "--tm-memory", help="taskmanager.memory.process.size."),
    jobmanager_memory: str = typer.Option("1200m", "--jm-memory", help="jobmanager.memory.process.size."),
    rest_port: int = typer.Option(8081, "--rest-port", help="REST port; 0 picks a free one."),
    config: Path | None = typer.Option(None, "--config", help="A Flink config.yaml (e.g. from `flinkscale plan "
                                       "--emit`); addresses, ports and directories stay local."),
    settings: list[str] = typer.Option([], "--set", help="Extra Flink option, key=value (repeatable)."),
    state_dir: Path = state_dir_option(),
    output: str = typer.Option("text", "--format", help="text or json."),
) -> None:
    """Start JobManager + TaskManagers, wait until every slot is registered, print the REST URL.

    Example: flinkscale cluster up --task-managers 2 --slots 1 --rest-port 0
    """
    check_choice(output, ("text", "json"), "--format")  # before a cluster is started
    check_port(rest_port, "--rest-port")
    if not 1 <= task_managers <= 1000:
        raise InputError(f"must be from 1 to 1000, got {task_managers}", field="--task-managers")
    if not 1 <= slots <= 1000:
        raise InputError(f"must be from 1 to 1000, got {slots}", field="--slots")
    extra = _read_flink_config(config) if config else {}
    extra.update(parse_set_options(settings))
    tm_size = _process_size(extra.pop("taskmanager.memory.process.size", None), taskmanager_memory, "--tm-memory",
                            "taskmanager.memory.process.size")
    jm_size = _process_size(extra.pop("jobmanager.memory.process.size", None), jobmanager_memory, "--jm-memory",
                            "jobmanager.memory.process.size")
    _check_int_options(extra)
    spec = ClusterSpec(task_managers=task_managers, slots_per_task_manager=slots, taskmanager_process_size=tm_size,
                       jobmanager_process_size=jm_size, rest_port=rest_port, extra_config=extra)
    started = time.monotonic()
    with console.status("starting the Flink cluster") as status:
        info = LocalCluster(state_dir).up(spec, progress=lambda m: status.update(f"{m}"))
    seconds = time.monotonic() - started
    if output == "json":
        print_json({**info.__dict__, "startup_seconds": round(seconds, 1)})
        return
    console.print(f"Flink cluster up in {seconds:.1f}s: {info.task_managers} TaskManager(s) x "
                  f"{info.slots_per_task_manager} slot(s)")
    console.print(f"REST / web UI: [bold]{info.rest_url}[/bold]   state dir: {info.state_dir}")


@cluster_app.command("down")
def down(state_dir: Path = state_dir_option()) -> None:
    """Stop everything the cluster started (supervisor, TaskManagers, JobManager); remove pid and temp files.

    Running jobs die with the cluster: stop them first with `flinkscale job stop` to keep a savepoint.
    """
    cluster = LocalCluster(state_dir)
    info = cluster.info()
    if info is not None and cluster.is_running():
        try:
            running = FlinkRestClient(info.rest_url, retries=0, timeout=3, deadline=5).running_jobs()
        except EndpointError:
            running = []
        if running:
            console.print(f"[yellow]note:[/yellow] {len(running)} job(s) still running will stop without a "
                          "savepoint: " + ", ".join(j.id for j in running))
    stopped = cluster.down()
    console.print(f"stopped {len(stopped)} process(es)" if stopped else "no cluster was running")


@cluster_app.command("status")
@rest_options
def status(rest: RestTarget, state_dir: Path = state_dir_option(),
           output: str = typer.Option("text", "--format")) -> None:
    """TaskManagers, slots and jobs of the embedded cluster (or, with --rest, of any Flink cluster)."""
    check_choice(output, ("text", "json"), "--format")
    if rest.url is None:
        cluster = LocalCluster(state_dir)
        info = cluster.info()
        if info is None or not cluster.is_running():
            if output == "json":
                print_json({"running": False})
            else:
                console.print("no cluster is running from " + str(state_dir))
            raise typer.Exit(1)
    client = rest.client(state_dir)
    rest_url = client.base_url
    overview, tms, jobs = client.overview(), client.task_managers(), client.jobs()
    if output == "json":
        print_json({"running": True, "rest_url": rest_url, "flink_version": overview.flink_version,
                    "task_managers": [{"id": t.id, "slots": t.slots, "free_slots": t.free_slots} for t in tms],
                    "jobs": [j.__dict__ for j in jobs]})
        return
    console.print(f"Flink {overview.flink_version} at {rest_url}: {overview.task_managers} TaskManager(s), "
                  f"{overview.slots_total - overview.slots_available}/{overview.slots_total} slots in use")
    table = Table("job id", "name", "state")
    for job in jobs:
        table.add_row(job.id, job.name, job.state)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(cluster_app, name="cluster")
