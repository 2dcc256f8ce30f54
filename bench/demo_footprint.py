"""The demo's footprint: wall time and peak memory of `flinkscale demo` (full or --quick) on this machine.

Runs the demo as a subprocess on a fresh state dir and samples, every 0.5 s, the memory in use on the
machine (``psutil.virtual_memory()``: total - available) above the idle baseline taken just before. The
Flink JobManager and TaskManagers are daemonized by Flink's scripts and the broker runs on its own, so a
process-tree sum would miss them; the machine-wide delta counts everything the demo started (run it on an
otherwise quiet machine). Prints wall time, peak memory above baseline, and the demo's own summary; the
baseline for the ratio is the idle machine's memory in use.

Run: .venv/bin/python bench/demo_footprint.py [--quick] [--output DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil


def in_use() -> int:
    memory = psutil.virtual_memory()
    return int(memory.total - memory.available)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--output", type=Path, help="demo output dir (default: a temporary one)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="flinkscale-demo-"))
    output = args.output or work / "out"
    baseline = in_use()
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.5):
            peak = max(peak, in_use())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    command = [str(Path(sys.executable).parent / "flinkscale"), "demo", "--output", str(output), "--state-dir",
               str(work / "state"), "--format", "json", "--no-dashboard"] + (["--quick"] if args.quick else [])
    started = time.monotonic()
    finished = subprocess.run(command, capture_output=True, text=True)
    wall = time.monotonic() - started
    done.set()
    sampler.join()
    print(f"demo{' --quick' if args.quick else ''}: wall {wall:.0f} s; memory in use: idle {baseline / 2**30:.2f} GiB, "
          f"peak {peak / 2**30:.2f} GiB, the demo's peak {(peak - baseline) / 2**30:.2f} GiB "
          f"({peak / baseline:.2f}x idle)")
    if finished.returncode != 0:
        print(finished.stderr[-3000:], file=sys.stderr)
        return finished.returncode
    summary = json.loads((output / "demo.json").read_text())
    print(f"  rescales {len(summary['rescales'])} ({summary['applied_scale_ups']} scale-ups applied: "
          + ", ".join(f"{r['old']}->{r['new']} in {r['seconds']} s" for r in summary["rescales"]) + ")")
    print(f"  shedding in force for {summary.get('shed_decisions', 0)} decisions, at most "
          f"{summary.get('max_shed_fraction', 0.0):.0%} of the input; {summary['produced']:,} events produced")
    print(f"  report: {summary['output_dir']}/report.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
