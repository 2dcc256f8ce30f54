"""Processes and ports on this machine: the common ground of the embedded Flink cluster and the embedded broker.

Both launchers pick free ports (and retry when another process takes one first), keep a state file naming
what they started, and must never signal a process they did not start: ``check_ours`` compares a pid's
command line and start time with what the state file recorded, and ``terminate`` stops what they started
(SIGTERM, then SIGKILL after a timeout). The I/O packages that launch daemons
(``flinkscale.flink``, ``flinkscale.kafka``) both build on this module and stay independent of each other.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, TypeVar

import psutil
from pydantic import Field, TypeAdapter, ValidationError

from flinkscale.core.errors import InputError, RuntimeFailure

DEFAULT_STATE_DIR = Path(".flinkscale")

_S = TypeVar("_S")

#: Field types of the state files (``cluster.json``, ``broker.json``): a pid Linux can hand out, and a time
#: (``time.time()`` or psutil's create_time) that is finite and before the year 5138.
StatePid = Annotated[int, Field(ge=1, le=2**22)]
StateTime = Annotated[float, Field(ge=0, le=1e11, allow_inf_nan=False)]


def read_state_file(path: Path, model: type[_S], what: str) -> _S | None:
    """A state file validated as ``model`` (a strict pydantic dataclass or model); None when there is none;
    one ``InputError`` line naming the file (and the first bad field) when it is damaged, not UTF-8, not JSON
    or from an incompatible version."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror or exc}", field=str(path)) from None
    hint = f"it is damaged or from another flinkscale version; stop what it started by hand and delete {path.name}"
    try:  # parsed and validated in one pass, in JSON mode: strict types, and a JSON array may fill a tuple
        return TypeAdapter(model).validate_json(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        if first["type"] == "json_invalid":  # not UTF-8, not JSON, or nested too deeply: one message for all
            raise InputError(f"not a {what} (not UTF-8 JSON): {hint}", field=str(path)) from None
        where = ".".join(str(p) for p in first["loc"]) or "the file"
        raise InputError(f"not a {what} ({where}: {first['msg'][:120]}): {hint}", field=str(path)) from None


#: How long an empty command line is read again before it counts: a process that is exiting has none for an instant
#: (its memory is released before it becomes a zombie), and a CI run under load read a supervisor just then.
EXITING_SETTLE_SECONDS = 1.0


def process_identity(pid: int) -> tuple[float, list[str], dict[str, str]] | None:
    """(create time, command line, environment) of a live process; None when it is gone (or a zombie, or it
    exits within ``EXITING_SETTLE_SECONDS`` of showing an empty command line)."""
    deadline = time.monotonic() + EXITING_SETTLE_SECONDS
    try:
        process = psutil.Process(pid)
        while True:
            if process.status() == psutil.STATUS_ZOMBIE:
                return None
            create_time, cmdline = process.create_time(), process.cmdline()
            if cmdline or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.Error:
        return (0.0, [], {})  # alive but not ours to inspect: it cannot be shown to be ours
    try:
        environ = process.environ()
    except psutil.Error:
        environ = {}
    return create_time, cmdline, environ


def check_ours(pid: int, source: Path, *, markers: tuple[str, ...] = (), env_marker: tuple[str, str] | None = None,
               create_time: float | None = None, not_before: float | None = None,
               cmdline: list[str] | None = None) -> bool:
    """True when ``pid`` is the live process ``source`` says flinkscale started, False when it is gone.

    A live process that does not match (its command line lacks the markers, it started at another time, it is
    not ours to inspect) raises ``RuntimeFailure``: a pid in a stale state file may belong to anything now,
    and flinkscale never signals a process it cannot show it started."""
    identity = process_identity(pid)
    if identity is None:
        return False
    started, argv, environ = identity
    text = " ".join(argv)
    why = None
    if not argv:
        why = "its command line cannot be read"
    elif (cmdline is not None and argv != cmdline) or (markers and not all(m in text for m in markers) and not (
            env_marker is not None and environ.get(env_marker[0]) == env_marker[1])):
        why = f"its command line is {text[:120]!r}"
    elif create_time is not None and abs(started - create_time) > 1.0:
        why = "it started at another time than the one recorded"
    elif not_before is not None and started < not_before - 5.0:
        why = "it is older than the state file"
    if why is None:
        return True
    raise RuntimeFailure(f"pid {pid} named in {source} is not the process flinkscale started ({why}); not "
                         f"signalled. If what flinkscale started is gone, delete {source}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unused_port() -> int:
    """A port free now (free_port()'s pick, skipped while something has bound it again since)."""
    while port_in_use(port := free_port()):
        pass
    return port


#: Ports picked automatically are tried this many times (another process can take one before the daemon binds).
AUTO_PORT_ATTEMPTS = 3


_T = TypeVar("_T")


class PortTaken(Exception):
    """A daemon exited at start-up because a port picked for it was taken in the meantime."""


def start_on_port(start: Callable[[int], _T], port: int, what: str,
                  on_retry: Callable[[str], None] = lambda _: None) -> _T:
    """``start(port)``, or with ``port`` 0 ``start(unused_port())`` retried on new ports (AUTO_PORT_ATTEMPTS in
    all) while it raises PortTaken. A port the user chose is not swapped for another one."""
    for attempt in range(1, AUTO_PORT_ATTEMPTS + 1):
        try:
            return start(port or unused_port())
        except PortTaken as exc:
            if port or attempt == AUTO_PORT_ATTEMPTS:
                raise RuntimeFailure(f"{what} could not bind its port in {attempt} attempt(s) ({exc})") from None
            on_retry(f"a picked port was taken meanwhile ({exc}); retrying on new ports")
    raise AssertionError("unreachable")


def listening_ports(pid: int) -> set[int]:
    """The TCP ports process ``pid`` listens on (empty when it is gone or not ours to inspect)."""
    try:
        connections = psutil.Process(pid).net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return set()
    return {c.laddr.port for c in connections if c.status == psutil.CONN_LISTEN and c.laddr}


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); it is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def terminate(pids: Sequence[int], timeout: float) -> None:
    """Stop processes flinkscale started (checked by the caller with ``check_ours``): SIGTERM, wait up to
    ``timeout`` seconds, then SIGKILL whatever is left; those that are children of this process are reaped."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in pids:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for pid in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
