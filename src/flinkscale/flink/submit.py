"""Submitting jobs: Python jobs through ``flink run -py``, SQL scripts through the Table API, JARs via ``flink run``.

``flink run -py`` starts a JVM and the job's Python to build the job graph, then submits it over REST; it
takes 6-9 s here (flink-runtime.md, section 4). It is run with the local cluster's conf dir (so the client
sees ``python.client.executable`` and the REST port) or, for any other cluster, with ``-m host:port``.
The job id is read from the client's output; a client that fails shows the last lines of its own error.
A SQL script is submitted by ``pipelines/sql_runner.py`` in a child Python (a TableEnvironment with
``execution.target: remote``); a Java job's jar by ``flink run -c CLASS`` with ``-C`` URLs for extra jars (the
Kafka connector), which Flink adds to the job's class loader on every node.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from flinkscale.core.errors import InputError, RuntimeFailure, require_at_least
from flinkscale.core.manifest import OVERRIDES_KEY, format_overrides
from flinkscale.flink.cluster import LocalCluster

_SUBMITTED = re.compile(r"JobID ([0-9a-f]{32})")
SUBMIT_TIMEOUT_SECONDS = 180.0


@dataclass(frozen=True)
class Submission:
    job_id: str
    seconds: float
    command: tuple[str, ...]


def _run_client(command: list[str], env: dict[str, str], what: str,
                timeout: float = SUBMIT_TIMEOUT_SECONDS) -> tuple[str, float]:
    started = time.monotonic()
    try:
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as timed_out:
        so_far = _text(timed_out.stdout) + _text(timed_out.stderr)
        tail = f"; its last output: {_error_summary(so_far)}" if so_far.strip() else "; it printed nothing"
        raise RuntimeFailure(f"{what} did not finish within {timeout:.0f}s{tail}") from None
    output = proc.stdout + proc.stderr
    found = _SUBMITTED.search(output)
    if proc.returncode != 0 or not found:
        raise RuntimeFailure(f"{what} failed (exit {proc.returncode}): {_error_summary(output)}")
    return found.group(1), time.monotonic() - started


def _text(output: str | bytes | None) -> str:
    """What a timed-out child printed so far (bytes when the timeout cut a text stream short)."""
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def _rest_url(cluster: LocalCluster, rest_url: str | None) -> str:
    info = cluster.info()
    url = rest_url or (info.rest_url if info else None)
    if url is None:
        raise InputError("no local cluster is running and no --rest URL was given; run `flinkscale cluster up`",
                         field="--rest")
    return url


def _flink_run(cluster: LocalCluster, rest_url: str | None, parallelism: int) -> list[str]:
    """``flink run -d -m host:port -p parallelism`` with the cluster's Flink distribution (the wheel's if no
    cluster runs here)."""
    address = urlparse(_rest_url(cluster, rest_url))
    info = cluster.info()
    home = Path(info.flink_home) if info else None
    if home is None:
        from flinkscale.flink.home import flink_home

        home = flink_home()
    return ["bash", str(home / "bin" / "flink"), "run", "-d", "-m", f"{address.hostname}:{address.port or 80}",
            "-p", str(parallelism)]


def _error_summary(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    # The first causes name the real problem (a SQL error, a missing class); the last is "Python exited".
    causes = [line for line in lines if line.startswith("Caused by")]
    return " | ".join(causes[:2] or lines[-3:])[:600]


def submit_python_job(cluster: LocalCluster, script: Path, args: Sequence[str], *, parallelism: int = 1,
                      savepoint: str | None = None, rest_url: str | None = None,
                      vertex_parallelism: Mapping[str, int] | None = None,
                      allow_non_restored_state: bool = False) -> Submission:
    """Run ``flink run -d -py script args`` against ``rest_url`` (default: the local cluster).

    To restart a job from a savepoint at new parallelism, keep ``parallelism`` as it was and pass the new
    per-vertex values in ``vertex_parallelism`` (``pipeline.jobvertex-parallelism-overrides``, as the Flink
    Kubernetes Operator does): a different ``-p`` can change operator chaining, and with it the operator ids
    that SQL jobs generate, so the savepoint would no longer map onto the job.
    """
    if not script.is_file():
        raise InputError("no such job file", field=str(script))
    require_at_least(parallelism, 1, "--parallelism")
    command = _flink_run(cluster, rest_url, parallelism)
    if vertex_parallelism:
        command.append(f"-D{OVERRIDES_KEY}={format_overrides(vertex_parallelism)}")
    if savepoint:
        command += ["-s", savepoint]
        if allow_non_restored_state:
            command.append("--allowNonRestoredState")
    command += ["-py", str(script.resolve()), *args]
    job_id, seconds = _run_client(command, cluster.script_env(), "`flink run`")
    return Submission(job_id, seconds, tuple(command))


SQL_RUNNER = Path(__file__).resolve().parent.parent / "pipelines" / "sql_runner.py"
# The Table API client starts PyFlink's gateway JVM and plans the script in it: ~15 s on an idle machine, but
# measured 65 s for the JVM and 25 s more to plan at a load average of 24 on 2 cores.
SQL_SUBMIT_TIMEOUT_SECONDS = 480.0


def submit_sql_script(cluster: LocalCluster, script: Path, jars: Sequence[Path], *, parallelism: int = 1,
                      savepoint: str | None = None, rest_url: str | None = None,
                      vertex_parallelism: Mapping[str, int] | None = None) -> Submission:
    """Submit a SQL script (``SET``, DDL, ``INSERT`` / ``EXECUTE STATEMENT SET``) through the Table API."""
    if not script.is_file():
        raise InputError("no such SQL file", field=str(script))
    require_at_least(parallelism, 1, "--parallelism")
    command = [sys.executable, str(SQL_RUNNER), str(script.resolve()), "--rest-url", _rest_url(cluster, rest_url),
               "--parallelism", str(parallelism), "--jars", ";".join(f"file://{j}" for j in jars)]
    if savepoint:
        command += ["--savepoint", savepoint]
    if vertex_parallelism:
        command += ["--vertex-parallelism", format_overrides(vertex_parallelism)]
    env = cluster.script_env()
    # The child imports flinkscale (the script splitter) from wherever this process did.
    package_root = str(Path(__file__).resolve().parent.parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    job_id, seconds = _run_client(command, env, "the SQL submission (Table API)", SQL_SUBMIT_TIMEOUT_SECONDS)
    return Submission(job_id, seconds, tuple(command))


def submit_jar_job(cluster: LocalCluster, jar: Path, entry_class: str, args: Sequence[str], *,
                   classpath: Sequence[Path] = (), parallelism: int = 1, savepoint: str | None = None,
                   rest_url: str | None = None) -> Submission:
    """``flink run -d -c entry_class [-C file://extra.jar ...] jar args`` against the cluster."""
    if not jar.is_file():
        raise InputError("no such jar", field=str(jar))
    command = [*_flink_run(cluster, rest_url, parallelism), "-c", entry_class]
    for extra in classpath:
        command += ["-C", f"file://{extra.resolve()}"]
    if savepoint:
        command += ["-s", savepoint]
    command += [str(jar.resolve()), *args]
    # A jar's main() may plan SQL in the client, as the keyed Java job does (its Kafka source is a Table API DDL):
    # it gets the SQL submission's allowance. A CI run measured more than 180 s there, beside a saturating lane.
    job_id, seconds = _run_client(command, cluster.script_env(), "`flink run`", SQL_SUBMIT_TIMEOUT_SECONDS)
    return Submission(job_id, seconds, tuple(command))
