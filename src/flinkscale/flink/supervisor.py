"""Keeps the embedded cluster's TaskManagers alive: ``python -m flinkscale.flink.supervisor STATE_DIR``.

A standalone Flink cluster never replaces a TaskManager that died, and with Python UDFs in process mode one
can die on a cancel or a rescale (flink-runtime.md, gotcha 1); the job then waits for slots forever. Every
``POLL_SECONDS`` this loop compares the live ``taskexecutor`` pids with the count in ``cluster.json`` (which
the executor changes when it grows or shrinks the cluster), forgets dead pids and starts replacements. It
exits when the JobManager is gone or on SIGTERM (``cluster down`` stops it first).
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from flinkscale.core.errors import FlinkscaleError
from flinkscale.flink.cluster import LocalCluster
from flinkscale.host import pid_alive

POLL_SECONDS = 2.0


def supervise(cluster: LocalCluster) -> None:
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    while not stopping and cluster.is_running():
        try:
            info = cluster.info()
        except FlinkscaleError as exc:
            print(f"cannot read the cluster's state ({exc}); stopping supervision", flush=True)
            break
        if info is None:
            break
        live = [p for p in cluster.pids("taskexecutor") if pid_alive(p)]
        if len(live) < info.task_managers:
            dead = [p for p in cluster.pids("taskexecutor") if not pid_alive(p)]
            print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} TaskManager(s) {dead or '?'} gone; "
                  f"starting {info.task_managers - len(live)}", flush=True)
            cluster._forget_dead_pids("taskexecutor")
            try:
                cluster.start_task_managers(info.task_managers - len(live))
            except Exception as exc:  # keep supervising; the next poll retries
                print(f"restart failed: {exc}", flush=True)
        time.sleep(POLL_SECONDS)


if __name__ == "__main__":
    supervise(LocalCluster(Path(sys.argv[1])))
