"""The root Typer application; each command group module adds itself in ``_register``."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="flinkscale",
    help="Right-size, profile, autoscale and load-shed Apache Flink pipelines, on real Flink.\n\n"
    "Start with `flinkscale cluster up`, then `flinkscale kafka up` and `flinkscale job submit clickstream`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)



@app.callback()
def _root() -> None:
    # A callback keeps `flinkscale <command>` a group even while only one command is registered
    # (Typer otherwise collapses a one-command app into that command).
    pass


# Command group modules, each exposing `register(app)`. Add yours here.
_COMMAND_MODULES: tuple[str, ...] = (
    "demo",
    "cluster",
    "kafka",
    "load",
    "job",
    "plan",
    "profile",
    "autoscale",
    "decide",
    "dashboard",
    "simulate",
    "shed",
    "lint",
)


def _register() -> None:
    for name in _COMMAND_MODULES:
        importlib.import_module(f"flinkscale.cli.{name}").register(app)


_register()
