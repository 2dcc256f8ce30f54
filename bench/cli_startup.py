"""How long the command line takes to start, as a ratio to a bare Python interpreter started the same way.

Each command runs as a whole process (what a user or a script waits for), several times in turn, and the
median wall time is reported next to ``python -c pass`` measured in the same run, so the ratio does not
depend on how fast or busy the machine is. The absolute goal is under 0.5 s for ``--help`` and ``decide``.
Run: ``.venv/bin/python bench/cli_startup.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = ROOT / "examples" / "snapshots" / "clickstream-p1-overloaded.json"

COMMANDS: dict[str, list[str]] = {
    "python -c pass (baseline)": [sys.executable, "-c", "pass"],
    "flinkscale --help": [sys.executable, "-m", "flinkscale", "--help"],
    "flinkscale decide --help": [sys.executable, "-m", "flinkscale", "decide", "--help"],
    "flinkscale decide --snapshot (table)": [sys.executable, "-m", "flinkscale", "decide", "--snapshot", str(SNAPSHOT)],
    "flinkscale plan SPEC": [sys.executable, "-m", "flinkscale", "plan",
                             str(ROOT / "examples" / "workloads" / "clickstream-1tb.yaml")],
}


def wall_times(argv: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    medians: dict[str, float] = {}
    for name, argv in COMMANDS.items():
        wall_times(argv, 1)  # warm the file cache
        medians[name] = statistics.median(wall_times(argv, runs))
    baseline = medians["python -c pass (baseline)"]
    print(f"{'command':40} {'median s':>9} {'x python':>9}")
    for name, median in medians.items():
        print(f"{name:40} {median:9.3f} {median / baseline:9.1f}")


if __name__ == "__main__":
    main()
