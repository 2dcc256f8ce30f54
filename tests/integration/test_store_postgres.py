"""The state store on a real PostgreSQL server, started from Debian's packages for this module and stopped after.

The server runs as the unprivileged ``postgres`` user (initdb refuses root) in a temp dir, listening on a
free loopback port with password (SCRAM) authentication, so the tests also see that a wrong password is
reported without the password. Start-up waits on ``pg_ctl -w`` with a generous timeout for a busy machine.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from flinkscale.core.errors import EndpointError, RuntimeFailure
from flinkscale.core.policy.base import RescaleRecord
from flinkscale.host import unused_port
from flinkscale.store import LeaseHeld, Outcome, Retention, StateStore

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PASSWORD = "s3cret-Pg-pass"
START_TIMEOUT_S = 180


def _pg_bin() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    found = shutil.which("pg_ctl")
    return Path(found).resolve().parent if found else None


def _install_postgres() -> Path:
    """Debian's PostgreSQL server, installed when missing (a fresh CI machine has none); its service is not started."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"]
    done = subprocess.run(install, env=env, capture_output=True, text=True, check=False, timeout=600)
    if done.returncode != 0:  # a stale package list is the usual cause: refresh once and retry
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False, timeout=600)
        done = subprocess.run(install, env=env, capture_output=True, text=True, check=False, timeout=600)
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.fail(f"Debian's postgresql could not be installed (apt-get exit {done.returncode}: "
                    f"{done.stderr.strip()[-300:]})")
    return bin_dir


def _run_as(user: str | None, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, user=user, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    bin_dir = _pg_bin() or _install_postgres()
    # Not under pytest's tmp dir: its parents are private to root, and the server runs as another user.
    root = Path(tempfile.mkdtemp(prefix="flinkscale-pg-"))
    try:
        yield from _serve(bin_dir, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _serve(bin_dir: Path, root: Path) -> Iterator[str]:
    user: str | None = None
    if os.geteuid() == 0:  # initdb refuses to run as root: hand the directory to the postgres user
        user = "postgres"
        account = pwd.getpwnam(user)
        os.chmod(root, 0o755)
        os.chown(root, account.pw_uid, account.pw_gid)
    data, password_file = root / "data", root / "pwfile"
    password_file.write_text(PASSWORD + "\n")
    if user is not None:
        os.chown(password_file, pwd.getpwnam(user).pw_uid, -1)
    init = _run_as(user, [str(bin_dir / "initdb"), "-D", str(data), "-U", "flinkscale", "--auth=scram-sha-256",
                          f"--pwfile={password_file}", "--no-sync"], timeout=START_TIMEOUT_S)
    assert init.returncode == 0, init.stderr[-2000:]
    port = 0
    for _attempt in range(3):  # a free port may be taken between the pick and the bind: try another
        port = unused_port()
        started = _run_as(user, [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w",
                                 "-t", str(START_TIMEOUT_S), "-o",
                                 f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start"],
                          timeout=START_TIMEOUT_S + 30)
        if started.returncode == 0:
            break
    else:
        log = (root / "server.log").read_text(errors="replace")[-2000:] if (root / "server.log").exists() else ""
        pytest.fail(f"PostgreSQL did not start: {started.stderr[-1000:]} {log}")
    try:
        yield f"postgresql+psycopg://flinkscale:{PASSWORD}@127.0.0.1:{port}/postgres"
    finally:
        stopped = _run_as(user, [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "120", "stop"],
                          timeout=180)
        if stopped.returncode != 0 and (data / "postmaster.pid").exists():
            pid = int((data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, 9)  # the server this fixture started, by its own pid file


def test_a_postgres_store_migrates_round_trips_and_refuses_a_second_writer(postgres_url: str) -> None:
    now = [1_800_000_000.0]
    with StateStore.open(postgres_url, clock=lambda: now[0]) as store:
        assert store.schema_revision() == "0002"
        assert PASSWORD not in store.url
        store.acquire_lease("daemon-a", ttl_seconds=60)
        with store.batch():
            store.upsert_job("j1", "clicks")
            store.add_rescale("j1", RescaleRecord(now[0], now[0] + 45, {"v0": 2}, {"v0": 4}))
            store.record_load("j1", now[0], 120.0)
            store.set_timer("j1", "v0", 2, due_at=now[0] + 3600)
            store.record_intent("j1", {"v0": 4}, {"v0": 2})
        with StateStore.open(postgres_url, clock=lambda: now[0]) as second:
            with pytest.raises(LeaseHeld, match="in use by daemon-a"):
                second.acquire_lease("daemon-b", ttl_seconds=60)
            job = second.job("j1")
            assert job is not None and job.restart_cost_seconds == 45.0
            assert [s.source_rate for s in second.load_history("j1")] == [120.0]
            result = second.reconcile("j1", {"v0": 2}, retry_window_seconds=600)
            assert result.outcome is Outcome.APPLIED and second.timers("j1") == ()
        now[0] += 30 * 86400
        store.mark_gone("j1", now=now[0] - 20 * 86400)
        assert store.prune(Retention()).jobs == 1
        store.release_lease()


def _set_revision(url: str, revision: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("update alembic_version set version_num = :v"), {"v": revision})
    finally:
        engine.dispose()


def test_a_postgres_store_of_a_newer_schema_is_refused(postgres_url: str) -> None:
    StateStore.open(postgres_url).close()
    _set_revision(postgres_url, "0099")
    try:
        with pytest.raises(RuntimeFailure, match="schema version 0099, newer") as caught:
            StateStore.open(postgres_url)
        assert PASSWORD not in str(caught.value) and "***" in str(caught.value)
    finally:
        _set_revision(postgres_url, "0002")


def test_a_wrong_password_is_reported_without_any_password(postgres_url: str) -> None:
    wrong = postgres_url.replace(PASSWORD, "not-the-Password-42")
    with pytest.raises((EndpointError, RuntimeFailure)) as caught:
        StateStore.open(wrong)
    message = str(caught.value)
    assert "password authentication failed" in message and "\n" not in message
    assert "not-the-Password-42" not in message and PASSWORD not in message
