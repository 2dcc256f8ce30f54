"""Submitting jobs: Python jobs through Flink's own ``flink run -py`` client, JARs through the REST API.

``flink run -py`` starts a JVM and the job's Python to build the job graph, then submits it over REST; it
takes 6-9 s here (flink-runtime.md, section 4). It is run with the local cluster's conf dir (so the client
sees ``python.client.executable`` and the REST port) or, for any other cluster, with ``-m host:port``.
The job id is read from the client's output; a client that fails shows the last lines of its own error.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from flinkscale.core.errors import InputError, RuntimeFailure
from flinkscale.flink.cluster import LocalCluster

_SUBMITTED = re.compile(r"JobID ([0-9a-f]{32})")
SUBMIT_TIMEOUT_SECONDS = 180.0


@dataclass(frozen=True)
class Submission:
    job_id: str
    seconds: float
    command: tuple[str, ...]


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
    if parallelism < 1:
        raise InputError("must be >= 1", field="--parallelism")
    info = cluster.info()
    url = rest_url or (info.rest_url if info else None)
    if url is None:
        raise InputError("no local cluster is running and no --rest URL was given; run `flinkscale cluster up`",
                         field="--rest")
    address = urlparse(url)
    home = Path(info.flink_home) if info else None
    if home is None:
        from flinkscale.flink.home import flink_home

        home = flink_home()
    command = ["bash", str(home / "bin" / "flink"), "run", "-d", "-m", f"{address.hostname}:{address.port or 80}",
               "-p", str(parallelism)]
    if vertex_parallelism:
        overrides = ",".join(f"{vid}:{p}" for vid, p in sorted(vertex_parallelism.items()))
        command.append(f"-Dpipeline.jobvertex-parallelism-overrides={overrides}")
    if savepoint:
        command += ["-s", savepoint]
        if allow_non_restored_state:
            command.append("--allowNonRestoredState")
    command += ["-py", str(script.resolve()), *args]
    started = time.monotonic()
    try:
        proc = subprocess.run(command, env=cluster.script_env(), capture_output=True, text=True,
                              timeout=SUBMIT_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        raise RuntimeFailure(f"`flink run` did not finish within {SUBMIT_TIMEOUT_SECONDS:.0f}s") from None
    output = proc.stdout + proc.stderr
    found = _SUBMITTED.search(output)
    if proc.returncode != 0 or not found:
        raise RuntimeFailure(f"`flink run` failed (exit {proc.returncode}): {_error_summary(output)}")
    return Submission(found.group(1), time.monotonic() - started, tuple(command))


def _error_summary(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    # The first causes name the real problem (a SQL error, a missing class); the last is "Python exited".
    causes = [line for line in lines if line.startswith("Caused by")]
    return " | ".join(causes[:2] or lines[-3:])[:600]
