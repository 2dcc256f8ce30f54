"""A real Flink 2.3 standalone session cluster, started from the installed ``pyflink`` package.

FLINK_HOME is the ``pyflink`` package directory (the ``apache-flink`` wheel carries a full distribution);
flinkscale never writes there. Everything the cluster writes lives under one state directory
(``.flinkscale/`` by default): its own ``conf/config.yaml``, logs, pid files, ``io.tmp.dirs`` and the JVMs'
``java.io.tmpdir``, checkpoints and savepoints, and ``cluster.json`` (ports, TaskManager count) which the
other commands read to find the cluster. ``down`` stops every process it started and deletes the pid and temp
files, so the machine is left as it was but for the logs in the state directory.

One exception: RocksDB's working directories (``state.backend.rocksdb.localdir``) live in a short directory
under the system temp dir, named after the state dir's hash, which ``down`` removes. Flink writes each RocksDB
instance's LOG file into its log dir under a name made of the instance's whole path, flattened. It checks the
instance's own path, but a restore that merges several subtasks' incremental state opens a temporary instance
per state handle one directory deeper, unchecked: below a 53-character state dir that name was 259 characters,
over the 255 a file name may have, and every restore of a scaled-down job failed. A user's own
``state.backend.rocksdb.localdir`` is kept.

Processes are started with Flink's own daemon scripts (``jobmanager.sh start``, ``taskmanager.sh start``),
so logs and pid files have Flink's usual names and an operator used to Flink recognises them. Stopping is done
here, by pid, with SIGTERM then SIGKILL: it is faster than ``stop-cluster.sh`` (which parses the config in a JVM
first) and it also catches processes whose pid file a crash left stale.

A TaskManager can die under Python UDF jobs in process mode (flink-runtime.md, gotcha 1); a standalone cluster
does not replace it. A small supervisor process (``python -m flinkscale.flink.supervisor``) therefore keeps the
configured number of TaskManagers alive, and records each restart in ``supervisor.log``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import httpx
import yaml
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass as pydantic_dataclass

from flinkscale.core.errors import InputError, RuntimeFailure, require_at_least
from flinkscale.flink.home import flink_home, java_home
from flinkscale.flink.models import TaskManagerInfo
from flinkscale.host import (
    DEFAULT_STATE_DIR,
    PortTaken,
    StatePid,
    StateTime,
    check_ours,
    listening_ports,
    pid_alive,
    port_in_use,
    process_identity,
    read_state_file,
    start_on_port,
    terminate,
    unused_port,
)

DEFAULT_REST_PORT = 8081
STARTUP_TIMEOUT_SECONDS = 180.0

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ClusterSpec:
    """What to start. Sizes use Flink's syntax (``1728m``)."""

    task_managers: int = 1
    slots_per_task_manager: int = 2
    taskmanager_process_size: str = "1728m"
    jobmanager_process_size: str = "1200m"
    rest_port: int = DEFAULT_REST_PORT  # 0 = any free port
    checkpoint_interval: str = "5s"
    # Flink options from a user file (e.g. the config.yaml that `flinkscale plan --emit` writes) and --set.
    extra_config: Mapping[str, str] = field(default_factory=dict)


# --- the state file -----------------------------------------------------------------------------------------
_Port = Annotated[int, Field(ge=0, le=65535)]
_Text = Annotated[str, Field(min_length=1, max_length=4096)]


@pydantic_dataclass(frozen=True, config=ConfigDict(strict=True))
class ClusterInfo:
    """What ``cluster.json`` records about a started cluster, validated when it is read back (strict types,
    ranges; keys a newer version added are ignored)."""

    rest_url: _Text
    rest_port: _Port
    rpc_port: _Port
    task_managers: Annotated[int, Field(ge=0, le=10_000)]
    slots_per_task_manager: Annotated[int, Field(ge=1, le=10_000)]
    state_dir: _Text
    flink_home: _Text
    java_home: _Text
    started_at: StateTime
    supervisor_pid: StatePid | None = None
    # When the supervisor process started (psutil's create_time): `down` signals that pid only if it still is it.
    supervisor_create_time: StateTime | None = None


# --- processes flinkscale started ---------------------------------------------------------------------------
def flatten_config(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flink's nested ``config.yaml`` as flat dotted keys (Flink reads both forms)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_config(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def config_options(data: Mapping[str, Any]) -> dict[str, str]:
    """A parsed Flink config (nested or flat) as flat dotted keys with Flink's text for each value."""
    return {str(key): _config_value_text(value) for key, value in flatten_config(data).items()}


def _config_value_text(value: Any) -> str:
    """A YAML value as Flink writes it in a flat option: ``true``/``false``, lists joined with ``;``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(_config_value_text(v) for v in value)
    return str(value)


def _bind_failed(log: Path | str) -> bool:
    path = Path(log)
    if not path.is_file():
        return False
    text = path.read_text(errors="replace")
    return "BindException" in text or "Address already in use" in text


def pid_of_task_manager(tm: TaskManagerInfo, ports: Mapping[int, set[int]]) -> int | None:
    """Which of ``ports`` (pid -> listening ports) is this TaskManager: the one listening on its data port or
    on the RPC port in its resource id. None unless exactly one matches."""
    wanted = {tm.data_port} if tm.data_port else set()
    head = tm.id.split("-", 1)[0]
    if ":" in head and head.rsplit(":", 1)[1].isdigit():
        wanted.add(int(head.rsplit(":", 1)[1]))
    matches = [pid for pid, listening in ports.items() if listening & wanted]
    return matches[0] if len(matches) == 1 else None


class LocalCluster:
    """Start, inspect and stop the embedded cluster that lives in ``state_dir``."""

    def __init__(self, state_dir: Path = DEFAULT_STATE_DIR) -> None:
        self.state_dir = state_dir.resolve()
        self.conf_dir = self.state_dir / "conf"
        self.log_dir = self.state_dir / "log"
        self.pid_dir = self.state_dir / "pid"
        self.tmp_dir = self.state_dir / "tmp"
        self.checkpoint_dir = self.state_dir / "checkpoints"
        self.savepoint_dir = self.state_dir / "savepoints"
        self.info_file = self.state_dir / "cluster.json"
        self.lib_dir = self.state_dir / "lib"
        # Short and unique per state dir (see the module docstring): /tmp/fs-rocksdb-<12 hex>.
        digest = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:12]
        self.rocksdb_dir = Path(tempfile.gettempdir()) / f"fs-rocksdb-{digest}"

    # --- queries ---------------------------------------------------------------------------------
    def info(self) -> ClusterInfo | None:
        return read_state_file(self.info_file, ClusterInfo, "flinkscale cluster state file")

    def pids(self, daemon: str) -> list[int]:
        """Pids Flink's daemon script recorded for ``standalonesession`` or ``taskexecutor``."""
        pids: list[int] = []
        for pid_file in self.pid_dir.glob(f"flink-*-{daemon}.pid"):
            try:
                text = pid_file.read_text(encoding="ascii", errors="replace")
            except OSError:
                continue
            pids += [int(word) for word in text.split() if word.isdigit() and 0 < int(word) < 2**22]
        return pids

    def supervised_task_managers(self) -> int | None:
        """TaskManagers the supervisor keeps alive; None when no cluster runs from this state dir."""
        info = self.info()
        return None if info is None else info.task_managers

    def task_manager_pid(self, task_manager: TaskManagerInfo) -> int | None:
        """The process of a registered TaskManager: the one of ours listening on its data port (or on the RPC
        port in its standalone resource id ``host:port-suffix``). Never a guess: no single match, None."""
        ports = {pid: listening_ports(pid) for pid in self.pids("taskexecutor")}
        return pid_of_task_manager(task_manager, ports)

    def _daemon_is_ours(self, pid: int) -> bool:
        """Whether a pid from a pid file is a live daemon of this cluster (its command line names our conf dir);
        ``RuntimeFailure`` when it is alive but something else."""
        info = self.info()
        return check_ours(pid, self.pid_dir, markers=(str(self.conf_dir),),
                          env_marker=("FLINK_CONF_DIR", str(self.conf_dir)),
                          not_before=info.started_at if info else None)

    def _supervisor_is_ours(self, info: ClusterInfo) -> bool:
        if info.supervisor_pid is None:
            return False
        return check_ours(info.supervisor_pid, self.info_file,
                          markers=("flinkscale.flink.supervisor", str(self.state_dir)),
                          create_time=info.supervisor_create_time, not_before=info.started_at)

    def live_pids(self) -> list[int]:
        info = self.info()
        supervisor = [info.supervisor_pid] if info and info.supervisor_pid else []
        return [p for p in self.pids("standalonesession") + self.pids("taskexecutor") + supervisor if pid_alive(p)]

    def is_running(self) -> bool:
        return any(pid_alive(p) for p in self.pids("standalonesession"))

    # --- start -----------------------------------------------------------------------------------
    def up(self, spec: ClusterSpec, progress: Progress = lambda _: None) -> ClusterInfo:
        """Start the cluster. Ports picked automatically (``rest_port`` 0) are retried on new ones when another
        process binds a picked port between the pick and the JobManager's bind."""
        if self.is_running():
            info = self.info()
            raise InputError(f"a cluster is already running from this state dir ({info.rest_url if info else '?'}); "
                             "run `flinkscale cluster down` first", field=str(self.state_dir))
        _check_spec(spec)
        if spec.rest_port and port_in_use(spec.rest_port):
            raise InputError(f"port {spec.rest_port} is already in use; choose another with --rest-port "
                             "(0 picks a free one)", field="rest.port")
        return start_on_port(lambda rest_port: self._start(spec, rest_port, progress), spec.rest_port,
                             f"the JobManager (logs in {self.log_dir})", progress)

    def _start(self, spec: ClusterSpec, rest_port: int, progress: Progress) -> ClusterInfo:
        home, java = flink_home(), java_home()
        self._prepare_dirs()
        rpc_port = unused_port()
        self._write_config(spec, home, rest_port, rpc_port)
        self._link_lib(home)
        info = ClusterInfo(
            rest_url=f"http://localhost:{rest_port}", rest_port=rest_port, rpc_port=rpc_port,
            task_managers=spec.task_managers, slots_per_task_manager=spec.slots_per_task_manager,
            state_dir=str(self.state_dir), flink_home=str(home), java_home=str(java), started_at=time.time())
        self._write_info(info)
        try:  # whatever fails from here on (a TaskManager that does not start, too), nothing stays behind
            progress("starting JobManager")
            self._run_script("jobmanager.sh", "start")
            progress(f"starting {spec.task_managers} TaskManager(s)")
            self.start_task_managers(spec.task_managers)
            self._wait_ready(info, spec, progress)
        except BaseException:
            self.down()
            raise
        supervisor = self._start_supervisor()
        identity = process_identity(supervisor)
        info = ClusterInfo(**{**asdict(info), "supervisor_pid": supervisor,
                              "supervisor_create_time": identity[0] if identity else None})
        self._write_info(info)
        return info

    def start_task_managers(self, count: int) -> None:
        """Start ``count`` more TaskManagers (in parallel; each script spends ~1 s in a JVM parsing config)."""
        scripts = [self._spawn_script("taskmanager.sh", "start") for _ in range(count)]
        for script in scripts:
            _, err = script.communicate(timeout=120)
            if script.returncode != 0:
                raise RuntimeFailure(f"taskmanager.sh start failed: {err.strip()[-400:]}")

    def set_task_manager_count(self, count: int) -> None:
        """Record the TaskManager count the supervisor keeps alive (the executor grows or shrinks the cluster)."""
        info = self.info()
        if info is None:
            raise RuntimeFailure("no cluster is running from this state dir")
        self._write_info(ClusterInfo(**{**asdict(info), "task_managers": count}))

    def stop_task_manager(self, pid: int) -> None:
        if self._daemon_is_ours(pid):
            terminate([pid], timeout=20.0)
        self._forget_dead_pids("taskexecutor")

    def _prepare_dirs(self) -> None:
        for directory in (self.conf_dir, self.log_dir, self.pid_dir, self.tmp_dir, self.checkpoint_dir,
                          self.savepoint_dir):
            directory.mkdir(parents=True, exist_ok=True)
        for stale in self.pid_dir.glob("*.pid"):
            stale.unlink()
        self.rocksdb_dir.mkdir(mode=0o700, exist_ok=True)
        if self.rocksdb_dir.stat().st_uid != os.getuid():
            raise RuntimeFailure(f"{self.rocksdb_dir} (RocksDB's working dir for this state dir) belongs to another "
                                 "user; remove it or set state.backend.rocksdb.localdir in --config")

    def _write_config(self, spec: ClusterSpec, home: Path, rest_port: int, rpc_port: int) -> None:
        shipped = home / "conf"
        for name in os.listdir(shipped):
            if name.startswith(("log4j", "logback")):
                shutil.copy(shipped / name, self.conf_dir / name)
        (self.conf_dir / "masters").write_text(f"localhost:{rest_port}\n")
        (self.conf_dir / "workers").write_text("localhost\n" * spec.task_managers)
        base = flatten_config(yaml.safe_load((shipped / "config.yaml").read_text()) or {})
        config: dict[str, Any] = {
            **base,
            "jobmanager.scheduler": "adaptive",
            "jobmanager.memory.process.size": spec.jobmanager_process_size,
            "taskmanager.memory.process.size": spec.taskmanager_process_size,
            "taskmanager.numberOfTaskSlots": spec.slots_per_task_manager,
            "parallelism.default": 1,
            "cluster.evenly-spread-out-slots": True,
            "execution.checkpointing.interval": spec.checkpoint_interval,
            "metrics.fetcher.update-interval": 2000,
            "python.execution-mode": "thread",
            "classloader.parent-first-patterns.additional": "pemja.",
            "state.backend.rocksdb.localdir": str(self.rocksdb_dir),
            **spec.extra_config,
            **self._local_options(rest_port, rpc_port),
        }
        # java.io.tmpdir keeps Flink's temp files in the state dir; -XX:-UsePerfData stops every JVM from writing
        # /tmp/hsperfdata_<user>/<pid>, which a killed JVM leaves behind.
        java_opts = f"{base.get('env.java.opts.all', '')} -Djava.io.tmpdir={self.tmp_dir} -XX:-UsePerfData".strip()
        config["env.java.opts.all"] = java_opts
        (self.conf_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=True, width=10_000))

    def _link_lib(self, home: Path) -> None:
        """The distribution's lib/ plus opt/flink-python, so pemja is loaded once per TaskManager.

        With Python UDFs in thread mode, pemja loads CPython into the TaskManager JVM. If each job brought
        flink-python in its own user classloader, the second job on a TaskManager would find the native library
        already loaded by another classloader, and pemja's fallback fails on Java 17 (NoSuchFieldException:
        loadedLibraryNames): every job after the first would restart forever. Loading flink-python from the
        parent classloader (lib/) with ``pemja.`` parent-first avoids that.
        """
        shutil.rmtree(self.lib_dir, ignore_errors=True)
        self.lib_dir.mkdir(parents=True)
        for jar in [*(home / "lib").iterdir(), *(home / "opt").glob("flink-python*.jar")]:
            (self.lib_dir / jar.name).symlink_to(jar)

    def _local_options(self, rest_port: int, rpc_port: int) -> dict[str, Any]:
        """Options a local cluster must own, whatever a user's config says: addresses, ports, directories."""
        return {
            "jobmanager.rpc.address": "localhost", "jobmanager.bind-host": "localhost",
            "jobmanager.rpc.port": rpc_port, "taskmanager.host": "localhost", "taskmanager.bind-host": "localhost",
            "rest.address": "localhost", "rest.bind-address": "localhost", "rest.port": rest_port,
            "io.tmp.dirs": str(self.tmp_dir), "web.tmpdir": str(self.tmp_dir / "web"),
            "env.log.dir": str(self.log_dir), "env.pid.dir": str(self.pid_dir),
            "execution.checkpointing.dir": f"file://{self.checkpoint_dir}",
            "execution.checkpointing.savepoint-dir": f"file://{self.savepoint_dir}",
            "python.executable": sys.executable, "python.client.executable": sys.executable,
        }

    def script_env(self) -> dict[str, str]:
        """Environment for Flink's scripts and the ``flink`` CLI: our conf dir, Java 17, our Python first."""
        info = self.info()
        env = dict(os.environ)
        env.update({
            "FLINK_CONF_DIR": str(self.conf_dir), "FLINK_LOG_DIR": str(self.log_dir),
            "FLINK_PID_DIR": str(self.pid_dir), "TMPDIR": str(self.tmp_dir), "FLINK_LIB_DIR": str(self.lib_dir),
            "JAVA_HOME": info.java_home if info else str(java_home()),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "PYFLINK_CLIENT_EXECUTABLE": sys.executable,
        })
        env.pop("FLINK_HOME", None)
        return env

    def _spawn_script(self, script: str, *args: str) -> subprocess.Popen[str]:
        home = Path(self.info().flink_home) if self.info() else flink_home()  # type: ignore[union-attr]
        return subprocess.Popen(["bash", str(home / "bin" / script), *args], env=self.script_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)

    def _run_script(self, script: str, *args: str) -> None:
        proc = self._spawn_script(script, *args)
        _, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise RuntimeFailure(f"{script} {' '.join(args)} failed: {err.strip()[-400:]}")

    def _wait_ready(self, info: ClusterInfo, spec: ClusterSpec, progress: Progress) -> None:
        want_slots = spec.task_managers * spec.slots_per_task_manager
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        last = ""
        while time.monotonic() < deadline:
            if not self.is_running():
                log = self._newest_log("standalonesession")
                if _bind_failed(log):
                    raise PortTaken(f"rest {info.rest_port} or rpc {info.rpc_port}")
                raise RuntimeFailure(f"the JobManager exited during start-up; see {log}")
            try:
                overview = httpx.get(f"{info.rest_url}/overview", timeout=2.0).json()
            except (httpx.HTTPError, ValueError):
                overview = None
            if overview is not None:
                message = f"REST up; {overview.get('taskmanagers', 0)}/{spec.task_managers} TaskManagers, " \
                          f"{overview.get('slots-total', 0)}/{want_slots} slots"
                if message != last:
                    progress(message)
                    last = message
                if overview.get("taskmanagers") == spec.task_managers and overview.get("slots-total") == want_slots:
                    return
            time.sleep(0.5)
        raise RuntimeFailure(f"the cluster did not register {want_slots} slots within {STARTUP_TIMEOUT_SECONDS:.0f}s; "
                             f"see logs in {self.log_dir}")

    def _newest_log(self, daemon: str) -> Path | str:
        logs = sorted(self.log_dir.glob(f"flink-*-{daemon}-*.log"), key=lambda p: p.stat().st_mtime)
        return logs[-1] if logs else self.log_dir

    def _start_supervisor(self) -> int:
        log = open(self.state_dir / "supervisor.log", "a")  # noqa: SIM115 - the child keeps the handle
        proc = subprocess.Popen([sys.executable, "-m", "flinkscale.flink.supervisor", str(self.state_dir)],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=self.script_env())
        log.close()
        return proc.pid

    def _write_info(self, info: ClusterInfo) -> None:
        tmp = self.info_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(info), indent=2))
        tmp.replace(self.info_file)

    def _forget_dead_pids(self, daemon: str) -> None:
        for pid_file in self.pid_dir.glob(f"flink-*-{daemon}.pid"):
            alive = [line for line in pid_file.read_text().split() if line.isdigit() and pid_alive(int(line))]
            if alive:
                pid_file.write_text("".join(f"{p}\n" for p in alive))
            else:
                pid_file.unlink()

    # --- stop ------------------------------------------------------------------------------------
    def down(self, timeout: float = 30.0) -> list[int]:
        """Stop the supervisor, TaskManagers and JobManager; remove pid files and temp files. Returns stopped pids."""
        info = self.info()
        # Every pid is checked before anything is signalled. One that is not ours (a stale file's pid reused by
        # another process, one we may not inspect) is never signalled, and the state files stay for the user to
        # look at; what is ours is stopped all the same, so no JVM of ours is left behind.
        refused: list[str] = []
        supervisor = info.supervisor_pid if info and _ours(partial(self._supervisor_is_ours, info), refused) else None
        daemons = {daemon: [p for p in self.pids(daemon) if _ours(partial(self._daemon_is_ours, p), refused)]
                   for daemon in ("taskexecutor", "standalonesession")}
        stopped: list[int] = []
        if supervisor is not None:
            terminate([supervisor], timeout=5.0)
            stopped.append(supervisor)
        for pids in daemons.values():
            terminate(pids, timeout=timeout)
            stopped += pids
        stopped += self._kill_strays()
        if refused:
            raise RuntimeFailure(f"stopped {len(stopped)} process(es) of this cluster; " + "; ".join(refused))
        for pid_file in self.pid_dir.glob("*.pid"):
            pid_file.unlink()
        for directory in (self.tmp_dir, self.rocksdb_dir):
            if directory.exists():
                shutil.rmtree(directory, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            self.info_file.unlink()
        return stopped

    def _kill_strays(self) -> list[int]:
        """JVMs or Python workers whose command line names this state dir but no pid file (a crashed start)."""
        marker = str(self.conf_dir)
        strays = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if marker in cmdline or f"FLINK_CONF_DIR={marker}".encode() in environ.split(b"\0"):
                strays.append(int(entry.name))
        terminate(strays, timeout=10.0)
        return strays


def _ours(check: Callable[[], bool], refused: list[str]) -> bool:
    """``check()``, with a refusal (a live pid that is not the process flinkscale started) noted, not raised."""
    try:
        return check()
    except RuntimeFailure as exc:
        refused.append(str(exc))
        return False


def _check_spec(spec: ClusterSpec) -> None:
    require_at_least(spec.task_managers, 1, "--task-managers")
    require_at_least(spec.slots_per_task_manager, 1, "--slots")
    if not 0 <= spec.rest_port < 65536:
        raise InputError("must be a port number (0 for any free port)", field="--rest-port")
