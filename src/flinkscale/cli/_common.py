"""What several commands share: where the embedded cluster lives, which REST URL to use, how to print JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from flinkscale.core.errors import EndpointError, InputError
from flinkscale.flink.cluster import DEFAULT_STATE_DIR, LocalCluster
from flinkscale.flink.collector import fetch_interval_warning
from flinkscale.flink.rest import FlinkRestClient
from flinkscale.kafka.broker import EmbeddedBroker

console = Console()
err_console = Console(stderr=True)

STATE_DIR_HELP = "Where the embedded cluster and broker keep their state (env FLINKSCALE_STATE_DIR)."


def state_dir_option() -> Any:
    return typer.Option(Path(os.environ.get("FLINKSCALE_STATE_DIR", str(DEFAULT_STATE_DIR))), "--state-dir",
                        help=STATE_DIR_HELP)


def resolve_rest_url(rest: str | None, state_dir: Path) -> str:
    """``--rest`` if given, else the embedded cluster started from ``state_dir``."""
    if rest:
        if not rest.startswith(("http://", "https://")):
            raise InputError("must be an http(s) URL such as http://localhost:8081", field="--rest")
        return rest.rstrip("/")
    info = LocalCluster(state_dir).info()
    if info is None:
        raise InputError(f"no embedded cluster in {state_dir}: run `flinkscale cluster up` or pass --rest URL",
                         field="--rest")
    return info.rest_url


def resolve_bootstrap(bootstrap: str | None, state_dir: Path) -> str:
    """--bootstrap as given, else the embedded broker's address from the state dir."""
    if bootstrap:
        return bootstrap
    info = EmbeddedBroker(state_dir).info()
    if info is None:
        raise InputError(f"no embedded broker in {state_dir}: run `flinkscale kafka up` or pass --bootstrap",
                         field="--bootstrap")
    return info.bootstrap


def parse_fraction(text: str, field: str) -> float:
    """'2%' -> 0.02, '0.02' -> 0.02, '95%' -> 0.95; InputError names the option."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError:
        raise InputError(f"not a number or percentage: {text!r}", field=field) from None
    if not 0.0 < value < 1.0:
        raise InputError(f"must be between 0 and 1 (or 0% and 100%), got {text!r}", field=field)
    return value


def warn_if_metrics_stale(client: FlinkRestClient, interval_seconds: float) -> None:
    """Warn on stderr when the cluster refreshes its REST metrics less often than we sample.

    Advisory only: a cluster that does not show its configuration is sampled as it is."""
    try:
        warning = fetch_interval_warning(client.config(), interval_seconds)
    except EndpointError:
        return
    except InputError as exc:
        warning = f"cannot read the cluster's metric fetch interval ({exc}); rates may be stale"
    if warning:
        typer.echo(f"warning: {warning}", err=True)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))
