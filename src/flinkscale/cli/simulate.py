"""``flinkscale simulate``: run autoscaling policies on one simulated trace and compare them.

Argument handling and output only: the scenario is parsed and simulated by ``flinkscale.core.sim``, the
policies come from ``flinkscale.core.policy.registry.make_policy``, and the table / markdown / JSON / HTML
come from ``flinkscale.report.sim``. Files are read here (the scenario, and a replay trace's CSV relative to
the scenario), so the core stays pure. ``--workload SPEC.yaml [--plan plan.json]`` builds the scenario from a
workload spec and its plan instead (``flinkscale.core.sim.planned``): a day of the planned deployment.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from flinkscale.cli._inputs import check_output_file, read_json, read_text, read_yaml, write_text
from flinkscale.core.errors import InputError
from flinkscale.core.inputs import load_yaml
from flinkscale.core.policy.base import Policy

FORMATS = ("table", "json", "markdown")

HELP = (
    "Run autoscaling policies on the same simulated workload and compare them.\n\n"
    "The scenario (YAML) describes the job graph (per-subtask capacities, ship strategies, key skew, state), "
    "the offered-rate trace (constant, step, ramp, diurnal, spikes, replay of a CSV), the cluster ceiling and "
    "what a rescale costs. Each policy runs on the identical trace; the table shows core-hours (slot-hours), "
    "seconds with lag above the latency target, peak lag, rescales, downtime and records dropped.\n\n"
    "Examples:\n\n"
    "  flinkscale simulate examples/scenarios/step-small.yaml\n\n"
    "  flinkscale simulate --workload examples/workloads/clickstream-1tb.yaml   (a day of the planned deployment)\n\n"
    "  flinkscale simulate --workload SPEC.yaml --plan out/plan.json -p static,flinkscale   (a plan from "
    "`flinkscale plan --emit out/`)\n\n"
    "  flinkscale simulate examples/scenarios/clickstream-1tb-diurnal.yaml -p flinkscale,static --html day.html\n\n"
    "  flinkscale simulate SCENARIO.yaml --set flink-operator.job.autoscaler.utilization.target=0.6\n\n"
    "  flinkscale simulate SCENARIO.yaml --set scenario.duration=2h --set scenario.trace.peak_factor=1.5 "
    "--format json\n\n"
    "With --workload, the job vertices, their parallelism, the slot ceiling (TaskManagers x slots) and the "
    "checkpoint interval come from the plan (computed from the spec, or read from --plan), capacities from the "
    "spec's cost_us_per_record, and the trace is a day of the spec's volume; static is the plan as deployed.\n\n"
    "See docs/simulate.md for the scenario format and the model."
)


def _split_sets(values: list[str], policy_names: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    scenario_overrides: dict[str, Any] = {}
    policy_settings: dict[str, dict[str, str]] = {}
    for value in values:
        target, sep, raw = value.partition("=")
        name, dot, key = target.partition(".")
        if not sep or not dot or not key:
            raise InputError(f"expected NAME.KEY=VALUE (NAME = a policy or 'scenario'), got {value!r}", field="--set")
        if name == "scenario":
            scenario_overrides[key] = load_yaml(raw, f"--set {target}") if raw.strip() else raw
        elif name in policy_names:
            policy_settings.setdefault(name, {})[key] = raw
        else:
            raise InputError(f"unknown name {name!r} in {value!r} (a policy: {', '.join(policy_names)}; or 'scenario')",
                             field="--set")
    return scenario_overrides, policy_settings


def _read_scenario(path: Path) -> Any:
    return read_yaml(path, "scenario")


def _workload_scenario(spec_path: Path, plan_path: Path | None) -> dict[str, Any]:
    """The scenario mapping of a day of the spec's planned deployment (the plan from ``plan_path``, else
    planned here from the spec)."""
    from flinkscale.core.plan import build_plan, planned_deployment_from_json
    from flinkscale.core.sim.planned import workload_scenario
    from flinkscale.core.workload import parse_workload_text

    spec = parse_workload_text(read_text(spec_path, "spec"), str(spec_path))
    if plan_path is None:
        return workload_scenario(spec, build_plan(spec).deployment(), source="plan")
    deployment = planned_deployment_from_json(read_json(plan_path, "plan"), str(plan_path))
    return workload_scenario(spec, deployment, source=str(plan_path))


def simulate_command(
    scenario_path: Annotated[Path | None, typer.Argument(
        metavar="SCENARIO.yaml", help="the scenario file (or --workload)", show_default=False)] = None,
    workload_path: Annotated[Path | None, typer.Option(
        "--workload", "-w", metavar="SPEC.yaml",
        help="simulate a day of this workload spec's planned deployment instead of a scenario")] = None,
    plan_path: Annotated[Path | None, typer.Option(
        "--plan", metavar="plan.json",
        help="with --workload: the plan to deploy (`flinkscale plan --format json` or --emit), else planned now")
    ] = None,
    policies: Annotated[str | None, typer.Option(
        "--policies", "-p", help="comma-separated policies (default: the scenario's list, else all)")] = None,
    output_format: Annotated[str, typer.Option("--format", "-f", help="table | json | markdown")] = "table",
    html_path: Annotated[Path | None, typer.Option("--html", help="also write a self-contained HTML report")] = None,
    sets: Annotated[list[str] | None, typer.Option(
        "--set", help="NAME.KEY=VALUE: a policy setting (NAME = policy) or a scenario field (NAME = scenario)")
    ] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="show a progress bar")] = True,
) -> None:
    from flinkscale.core.policy.registry import POLICY_NAMES, make_policy
    from flinkscale.core.sim.compare import compare
    from flinkscale.core.sim.oracle import NAME as ORACLE
    from flinkscale.core.sim.oracle import OracleSettings, oracle_settings
    from flinkscale.core.sim.scenario import apply_overrides, parse_scenario
    from flinkscale.report.sim import comparison_json, render_html, render_markdown, render_table

    if output_format not in FORMATS:
        raise InputError(f"must be one of {', '.join(FORMATS)}, got {output_format!r}", field="--format")
    overrides, cli_settings = _split_sets(sets or [], (*POLICY_NAMES, ORACLE))
    if (scenario_path is None) == (workload_path is None):
        raise InputError("give a scenario file or --workload SPEC.yaml (one of them)", field="SCENARIO.yaml")
    if plan_path is not None and workload_path is None:
        raise InputError("--plan needs --workload SPEC.yaml (the spec the plan was made from)", field="--plan")
    if html_path is not None:
        check_output_file(html_path, "--html")
    if workload_path is not None:
        data: Any = _workload_scenario(workload_path, plan_path)
        base = workload_path.parent
    else:
        assert scenario_path is not None
        data = _read_scenario(scenario_path)
        base = scenario_path.parent
        if not isinstance(data, dict):
            kind = "empty" if data is None else f"a {type(data).__name__}"
            raise InputError(f"a scenario must be a YAML mapping, not {kind}", field=str(scenario_path))

    def read_csv(relative: str) -> str:
        path = (base / relative) if not Path(relative).is_absolute() else Path(relative)
        try:
            return read_text(path, "replay CSV")
        except InputError as exc:
            raise InputError(str(exc), field="trace.csv") from None

    scenario = parse_scenario(apply_overrides(data, overrides), read_text=read_csv)
    unknown = [name for name in scenario.peak_provisioned if name not in POLICY_NAMES]
    if unknown:
        raise InputError(f"{unknown[0][:80]!r} is not a policy (one of {', '.join(POLICY_NAMES)})",
                         field="peak_provisioning.policies")
    names = tuple(p.strip() for p in policies.split(",") if p.strip()) if policies is not None else (
        scenario.policies or (*POLICY_NAMES, ORACLE))
    if not names:
        raise InputError("names no policy; give one or more of " + ", ".join((*POLICY_NAMES, ORACLE)),
                         field="--policies")
    built: dict[str, Policy] = {}
    oracle: OracleSettings | None = None
    for name in names:
        settings = {**scenario.policy_settings.get(name, {}), **cli_settings.get(name, {})}
        if name == ORACLE:
            oracle = oracle_settings(settings)  # computed from the trace itself, not a policy of a live job
        else:
            built[name] = make_policy(name, settings)

    console = Console(stderr=True)
    if progress and console.is_terminal:
        with Progress(TextColumn("{task.description:<16}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                      TimeElapsedColumn(), console=console, transient=True) as bar:
            tasks: dict[str, TaskID] = {name: bar.add_task(name, total=1.0)
                                        for name in (*built, *((ORACLE,) if oracle else ()))}

            def advance(name: str, fraction: float) -> None:
                bar.update(tasks[name], completed=fraction)

            comparison = compare(scenario, built, progress=advance, oracle=oracle)
    else:
        comparison = compare(scenario, built, oracle=oracle)

    if output_format == "json":
        typer.echo(json.dumps(comparison_json(comparison), indent=2))
    elif output_format == "markdown":
        typer.echo(render_markdown(comparison), nl=False)
    else:
        Console(width=max(Console().width, 120)).print(render_table(comparison))
    if html_path is not None:
        write_text(html_path, render_html(comparison), "--html")
        console.print(f"wrote {html_path}")


def register(app: typer.Typer) -> None:
    app.command("simulate", help=HELP, no_args_is_help=True)(simulate_command)
