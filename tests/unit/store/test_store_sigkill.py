"""A daemon SIGKILLed in the middle of its writes: the store opens, every cycle is whole or absent.

A child process writes cycles (5 jobs: a snapshot, a decision and a load sample each, plus an intent
recorded and finished) as fast as it can, one transaction per cycle, and prints each cycle it committed.
The parent kills it with SIGKILL at some moment, opens the store as a restarted daemon would and checks
that nothing is half-written, nothing committed is lost, and the lease is handled as documented.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flinkscale.store import LeaseHeld, StateStore

JOBS = 5
CHILD = textwrap.dedent("""
    import sys, time
    sys.path[:0] = [sys.argv[2], sys.argv[3]]
    from store_helpers import decision, snapshot
    from flinkscale.store import StateStore
    store = StateStore.open(sys.argv[1])
    store.acquire_lease("daemon-1", ttl_seconds=3600)
    cycle = 0
    while True:
        now = 1_800_000_000.0 + 60 * cycle  # a minute apart: one load row per cycle and job
        with store.batch():
            for job in range({jobs}):
                job_id = f"{{job:032x}}"
                store.add_snapshot(job_id, snapshot(now, job_id=job_id))
                store.add_decision(job_id, decision(now))
                store.record_load(job_id, now, 10.0)
                intent = store.record_intent(job_id, {{"v0": 2}}, {{"v0": 3}}, now=now)
                store.finish_intent(intent.intent_id, "done", now=now)
        cycle += 1
        print(cycle, flush=True)
""").format(jobs=JOBS)


@pytest.mark.parametrize("kill_after_cycles", [1, 3, 8])
def test_a_sigkill_mid_write_leaves_whole_cycles_only(tmp_path: Path, kill_after_cycles: int) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    here = str(Path(__file__).resolve().parent)
    src = str(Path(__file__).resolve().parents[3] / "src")
    child = subprocess.Popen([sys.executable, "-c", CHILD, url, here, src], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    committed = 0
    try:
        assert child.stdout is not None
        while committed < kill_after_cycles:
            line = child.stdout.readline()
            assert line, f"the writer stopped early: {child.stderr.read() if child.stderr else ''}"
            committed = int(line)
    finally:
        os.kill(child.pid, signal.SIGKILL)  # the child this test started, mid-cycle (it never pauses)
        child.wait(timeout=120)
    assert child.returncode == -signal.SIGKILL

    with StateStore.open(url) as restarted:
        counts = restarted.row_counts()
        assert counts["snapshots"] == counts["decisions"] == counts["load_history"] == counts["intents"]
        assert counts["snapshots"] % JOBS == 0 and counts["snapshots"] >= committed * JOBS
        for job in range(JOBS):
            assert restarted.pending_intent(f"{job:032x}") is None  # each intent was finished in its cycle
        with pytest.raises(LeaseHeld, match="daemon-1"):
            restarted.acquire_lease("daemon-2")  # the killed daemon's lease is still live ...
        restarted.acquire_lease("daemon-1")  # ... and its restart (same owner id) takes it back
