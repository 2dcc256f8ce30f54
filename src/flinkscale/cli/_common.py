"""What several commands share: where the embedded cluster lives, which REST URL to use, how to print JSON.

Every command that talks to Flink REST takes the same options, declared once here by ``rest_options``:
``--rest URL`` (default: the embedded cluster of ``--state-dir``), ``--rest-header 'Name: value'``
(repeatable), ``--rest-ca FILE``, ``--rest-insecure``, ``--rest-timeout`` (the overall deadline of one REST
call) and a bearer token from the environment variable ``FLINKSCALE_REST_TOKEN``. The decorated command
receives them as one ``RestTarget``. Header values, the token and ``user:pass@`` in the URL are registered
as secrets (``core.redaction``) the moment they are read, so no message or file shows them.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import os
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer
from rich.console import Console

from flinkscale.cli._inputs import parse_number_or_percentage
from flinkscale.core.errors import EndpointError, InputError
from flinkscale.core.redaction import redact, register_secret
from flinkscale.core.units import parse_duration
from flinkscale.flink.cluster import LocalCluster
from flinkscale.flink.collector import fetch_interval_warning
from flinkscale.flink.rest import (
    DEFAULT_DEADLINE_SECONDS,
    FIRST_CONTACT_SECONDS,
    FlinkRestClient,
    RestAccess,
    ssl_context,
)
from flinkscale.host import DEFAULT_STATE_DIR
from flinkscale.kafka.broker import EmbeddedBroker

console = Console()
err_console = Console(stderr=True)

STATE_DIR_HELP = "Where the embedded cluster and broker keep their state (env FLINKSCALE_STATE_DIR)."


def state_dir_option() -> Any:
    return typer.Option(Path(os.environ.get("FLINKSCALE_STATE_DIR", str(DEFAULT_STATE_DIR))), "--state-dir",
                        help=STATE_DIR_HELP)


def check_rest_url(rest: str) -> str:
    """``rest`` if it is an http(s) URL with a host (and a valid port), else an ``InputError`` naming --rest."""
    shown = redact(rest)[:200]
    if any(c.isspace() for c in rest):
        raise InputError(f"holds whitespace: {shown!r}", field="--rest")
    if not rest.lower().startswith(("http://", "https://")):
        raise InputError(f"must be an http(s) URL such as http://localhost:8081, got {shown!r}", field="--rest")
    try:
        url = httpx.URL(rest)
        host, port = url.host, url.port
    except (httpx.InvalidURL, ValueError, TypeError):
        raise InputError(f"not a valid URL: {shown!r}", field="--rest") from None
    if not host:
        raise InputError(f"names no host: {shown!r}", field="--rest")
    if not host.isascii() or ".." in host or any(len(label) > 63 for label in host.split(".")):
        try:  # what the HTTP client does with the name, where a label over 63 characters is a UnicodeError
            host.encode("idna")
        except UnicodeError:
            raise InputError(f"not a valid host name (a part is empty or longer than 63 characters): {shown!r}",
                             field="--rest") from None
    if port is not None and not 0 < port < 65536:
        raise InputError(f"port out of range: {shown!r}", field="--rest")
    if url.query or url.fragment:
        raise InputError(f"must be the cluster's base URL, without ?query or #fragment: {shown!r}", field="--rest")
    return rest.rstrip("/")


def resolve_rest_url(rest: str | None, state_dir: Path) -> str:
    """``--rest`` if given, else the embedded cluster started from ``state_dir``."""
    if rest is not None:
        return check_rest_url(rest)
    info = LocalCluster(state_dir).info()
    if info is None:
        raise InputError(f"no embedded cluster in {state_dir}: run `flinkscale cluster up` or pass --rest URL",
                         field="--rest")
    return info.rest_url


REST_TOKEN_ENV = "FLINKSCALE_REST_TOKEN"
_REST_HELP = "Flink REST URL (default: the embedded cluster of --state-dir)."


def parse_rest_headers(items: list[str]) -> dict[str, str]:
    """``['Name: value', ...]`` as a dict; every value is registered as a secret before anything else."""
    headers: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition(":")
        register_secret(value.strip())
        name = name.strip()
        if not sep or not name or not value.strip():
            raise InputError("expected 'Name: value'", field="--rest-header")
        if not name.isascii() or not all(c.isalnum() or c in "!#$%&'*+-.^_`|~" for c in name):
            raise InputError(f"not a valid header name: {name[:60]!r}", field="--rest-header")
        if any(c in value for c in "\r\n\0"):
            raise InputError(f"the value of {name} holds a line break", field="--rest-header")
        if not value.isascii():  # HTTP sends header values as ASCII
            raise InputError(f"the value of {name} is not ASCII text", field="--rest-header")
        headers[name] = value.strip()
    return headers


def rest_access(headers: list[str] | None, ca: Path | None, insecure: bool, timeout: str | None) -> RestAccess:
    """The --rest-* options (and ``FLINKSCALE_REST_TOKEN``) as a ``RestAccess``; bad ones name their flag."""
    parsed = parse_rest_headers(headers or [])
    token = os.environ.get(REST_TOKEN_ENV, "").strip()
    if token:
        register_secret(token)
        if any(c in token for c in "\r\n\0 "):
            raise InputError("holds whitespace or a line break", field=REST_TOKEN_ENV)
        if not token.isascii():
            raise InputError("is not ASCII text (HTTP sends it in a header)", field=REST_TOKEN_ENV)
        if not any(name.lower() == "authorization" for name in parsed):
            parsed["Authorization"] = f"Bearer {token}"
    if ca is not None and insecure:
        raise InputError("--rest-ca and --rest-insecure exclude each other", field="--rest-insecure")
    verify: bool | str = True
    if ca is not None:
        if not ca.is_file():
            raise InputError("no such file", field=f"--rest-ca {ca}")
        verify = str(ca)
        ssl_context(verify)  # a file that is not a CA bundle fails here, naming the flag
    elif insecure:
        verify = False
    if timeout is None:  # the defaults: the deadline, and a shorter one until the endpoint first answers
        return RestAccess(headers=parsed, verify=verify)
    seconds = parse_duration(timeout, field="--rest-timeout")
    if not math.isfinite(seconds) or not 0 < seconds <= 86400:
        raise InputError(f"must be between 0 and 1 day, got {timeout!r}", field="--rest-timeout")
    return RestAccess(headers=parsed, verify=verify, deadline_seconds=seconds, first_contact_seconds=None)


@dataclass(frozen=True)
class RestTarget:
    """``--rest`` as given plus how to reach it; ``client(state_dir)`` resolves the URL and connects."""

    url: str | None
    access: RestAccess

    def resolve(self, state_dir: Path) -> str:
        return resolve_rest_url(self.url, state_dir)

    def client(self, state_dir: Path, **kwargs: Any) -> FlinkRestClient:
        return self.access.client(self.resolve(state_dir), **kwargs)


_F = TypeVar("_F", bound=Callable[..., Any])


def _register_url_credentials(url: str | None) -> None:
    """Register the ``user:pass`` part of a URL as secrets before the URL is even checked: the error for a bad
    URL (no scheme, ftp://, no host) must not show them either."""
    if not url or "@" not in url:
        return
    authority = url.split("://", 1)[-1].split("/", 1)[0]
    userinfo = authority.rpartition("@")[0]
    if userinfo:
        register_secret(userinfo, userinfo.partition(":")[2])
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        return
    if parsed.userinfo:  # percent-decoded, as the client sends it
        register_secret(parsed.password, parsed.userinfo.decode("ascii", "replace"))


def rest_options(func: _F) -> _F:
    """Give a command the REST options; it receives them as ``rest: RestTarget`` (declared in its signature)."""
    hints = typing.get_type_hints(func, include_extras=True)
    signature = inspect.signature(func)
    if "rest" not in signature.parameters:
        raise TypeError(f"{func.__name__} must declare a `rest: RestTarget` parameter")
    kept = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()
            if p.name != "rest"]
    keyword = inspect.Parameter.KEYWORD_ONLY
    added = [
        inspect.Parameter("rest", keyword, default=None, annotation=Annotated[
            str | None, typer.Option("--rest", help=_REST_HELP)]),
        inspect.Parameter("rest_header", keyword, default=None, annotation=Annotated[
            list[str] | None, typer.Option("--rest-header", help="Extra HTTP header for Flink REST, 'Name: value' "
                                           "(repeatable; values never appear in messages or logs).")]),
        inspect.Parameter("rest_ca", keyword, default=None, annotation=Annotated[
            Path | None, typer.Option("--rest-ca", help="CA bundle (PEM) that signed the REST endpoint's "
                                      "certificate.")]),
        inspect.Parameter("rest_insecure", keyword, default=False, annotation=Annotated[
            bool, typer.Option("--rest-insecure", help="Do not verify the REST endpoint's TLS certificate.")]),
        inspect.Parameter("rest_timeout", keyword, default=None, annotation=Annotated[
            str | None, typer.Option("--rest-timeout", help=(
                f"Overall deadline of one REST call, retries included (default {DEFAULT_DEADLINE_SECONDS:g}s, and "
                f"{FIRST_CONTACT_SECONDS:g}s until the endpoint first answers; bearer token: env "
                f"{REST_TOKEN_ENV}).")),
        ]),
    ]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        url = kwargs.pop("rest")
        _register_url_credentials(url)
        access = rest_access(kwargs.pop("rest_header"), kwargs.pop("rest_ca"), kwargs.pop("rest_insecure"),
                             kwargs.pop("rest_timeout"))
        return func(*args, rest=RestTarget(url, access), **kwargs)

    wrapper.__signature__ = signature.replace(parameters=[*kept, *added])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in [*kept, *added]}
    return typing.cast(_F, wrapper)


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
    """'2%' -> 0.02, '0.02' -> 0.02, '95%' -> 0.95, strictly between 0 and 1; InputError names the option."""
    value = parse_number_or_percentage(text, field)
    if not 0.0 < value < 1.0:
        raise InputError(f"must be between 0 and 1 (or 0% and 100%), got {text!r}", field=field)
    return value


def warn_if_metrics_stale(client: FlinkRestClient, interval_seconds: float,
                          warn: Callable[[str], None] | None = None) -> None:
    """Warn on stderr (or through ``warn``) when the cluster refreshes its REST metrics less often than we sample.

    Advisory only: a cluster that does not show its configuration (an HTTP error) is sampled as it is."""
    try:
        warning = fetch_interval_warning(client.config(), interval_seconds)
    except EndpointError as exc:
        if exc.status is None:  # no answer, or not Flink's: the sampling that follows would fail the same way
            raise
        return
    except InputError as exc:
        warning = f"cannot read the cluster's metric fetch interval ({exc}); rates may be stale"
    if warning:
        if warn is not None:
            warn(warning)
        else:
            typer.echo(f"warning: {warning}", err=True)


def check_job(client: FlinkRestClient, job_id: str, interval_seconds: float,
              warn: Callable[[str], None] | None = None) -> None:
    """Before a command samples a job every ``interval_seconds``: an unknown job or a bad endpoint fails here
    (the lookup is one phase with the deadline of one call), then ``warn_if_metrics_stale``."""
    with client.phase(client.deadline, "finding the job"):
        client.job(job_id)
    warn_if_metrics_stale(client, interval_seconds, warn)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))
