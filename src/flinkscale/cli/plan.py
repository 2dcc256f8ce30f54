"""``flinkscale plan``: a workload spec (or a measured profile) in, a sized and explained deployment out.

Argument handling and output only: the spec and profile files are read here and handed to the pure
core (``parse_workload_text``, ``workload_from_profile``, ``build_plan``); rendering is in
``flinkscale.report.plan``. Bad input surfaces as ``InputError`` with the field path (exit code 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flinkscale.cli._inputs import check_output_dir, read_json, read_text, read_yaml, write_text
from flinkscale.core.deployment import Target
from flinkscale.core.errors import InputError
from flinkscale.core.plan import build_plan
from flinkscale.core.sql_graph import pipeline_from_sql
from flinkscale.core.units import parse_rate
from flinkscale.core.workload import (
    WorkloadSpec,
    parse_workload,
    parse_workload_text,
    profile_snapshot,
    workload_from_profile,
)
from flinkscale.report.plan import FORMATS, flink_config_yaml, flink_deployment_yaml, render, render_markdown

_HELP = """Size a Flink deployment from a workload spec, explaining every number.

Examples:

  flinkscale plan examples/workloads/clickstream-1tb.yaml

  flinkscale plan examples/workloads/clickstream-10tb.yaml --format json

  flinkscale plan spec.yaml --emit out/   (config.yaml, plan.md, plan.json; flinkdeployment.yaml when
  deployment.target is kubernetes: docs/kubernetes.md)

  flinkscale plan --from-profile profile.json --target 1TB/day [spec.yaml for targets and cluster]

  flinkscale plan --sql job.sql spec.yaml   (operators, keyed edges and state from the SQL; costs by id
                                            from the spec's pipeline.operators, which may be left out)

The spec format is documented in docs/workload-spec.md; the model in docs/plan.md.
"""


def load_sql_spec(sql_path: Path, spec_path: Path | None) -> WorkloadSpec:
    """A spec whose pipeline comes from a SQL script; the YAML gives volume, targets, state, cluster, costs."""
    if spec_path is None:
        raise InputError("--sql needs a spec file for the volume, targets and per-operator costs", field="SPEC")
    data = read_yaml(spec_path, "spec")
    if not isinstance(data, dict):
        raise InputError("must be a YAML mapping", field=str(spec_path))
    pipeline = data.get("pipeline") or {}
    spec_operators = pipeline.get("operators") if isinstance(pipeline, dict) else None
    data = {**data, "pipeline": pipeline_from_sql(read_text(sql_path, "--sql"), str(sql_path), spec_operators)}
    return parse_workload(data)


def load_spec(spec_path: Path | None, profile: Path | None, target: str | None) -> WorkloadSpec:
    """The spec to plan: from YAML, or from a profile plus a target (the spec then gives the rest)."""
    base = parse_workload_text(read_text(spec_path, "spec"), str(spec_path)) if spec_path else None
    if profile is None:
        if target is not None:
            raise InputError("--target needs --from-profile", field="--target")
        if base is None:
            raise InputError("give a spec file, or --from-profile FILE --target RATE", field="SPEC")
        return base
    if target is None:
        raise InputError("--from-profile needs --target (e.g. 1TB/day or 50k/s)", field="--target")
    rate = parse_rate(target, field="--target")
    data = read_json(profile, "profile")
    try:
        snapshot = profile_snapshot(data)
    except InputError as exc:
        raise InputError(str(exc), field=str(profile)) from None
    return workload_from_profile(snapshot, rate, base)


def register(app: typer.Typer) -> None:
    @app.command("plan", help=_HELP)
    def plan_command(
        spec: Annotated[Path | None, typer.Argument(help="Workload spec (YAML).", show_default=False)] = None,
        output_format: Annotated[str, typer.Option("--format", "-f", help=f"One of {', '.join(FORMATS)}.")] = "table",
        emit: Annotated[Path | None, typer.Option(
            "--emit", help="Directory for config.yaml, flinkdeployment.yaml, plan.md, plan.json.")] = None,
        from_profile: Annotated[Path | None, typer.Option(
            "--from-profile", help="Profile JSON (a MetricsSnapshot, or one under 'snapshot').")] = None,
        target: Annotated[str | None, typer.Option(
            "--target", help="Target volume for --from-profile: 1TB/day, 50k/s, ...")] = None,
        sql: Annotated[Path | None, typer.Option(
            "--sql", help="A Flink SQL script: the operator graph (keyed edges, state) comes from it.")] = None,
    ) -> None:
        if output_format not in FORMATS:
            raise InputError(f"must be one of {', '.join(FORMATS)}", field="--format")
        if sql is not None and from_profile is not None:
            raise InputError("give either --sql or --from-profile", field="--sql")
        if emit is not None:
            check_output_dir(emit, "--emit")
        plan = build_plan(load_sql_spec(sql, spec) if sql is not None else load_spec(spec, from_profile, target))
        if emit is not None:
            files = {"config.yaml": flink_config_yaml(plan)}
            if plan.spec.deployment.target is Target.KUBERNETES:
                files["flinkdeployment.yaml"] = flink_deployment_yaml(plan)
            files.update({"plan.md": render_markdown(plan), "plan.json": render(plan, "json")})
            for name, text in files.items():
                write_text(emit / name, text, "--emit")
        typer.echo(render(plan, output_format), nl=False)
        if emit is not None and output_format == "table":
            typer.echo(f"wrote {', '.join(str(emit / n) for n in files)}")
            if "flinkdeployment.yaml" not in files:
                typer.echo(f"no flinkdeployment.yaml: deployment.target is {plan.spec.deployment.target.value} "
                           "(set deployment.target: kubernetes and durable storage for one; docs/kubernetes.md)")
