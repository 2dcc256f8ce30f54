"""Large inputs stay linear: `plan` with 10k operators, `decide` with 5k vertices, `decide --history` with a week of
1-minute snapshots, `simulate` with 1k vertices over 24 h, `lint` on a 200k-line file.

Each input is generated at size N/2 and N (same shape, only more of it) and run through the CLI in this process
(``flinkscale.cli.main``); the table prints both times and their ratio. Linear work doubles (ratio ~2); quadratic
work quadruples (ratio ~4). The goal: every full-size run under 10 s, ratios near 2.

    python bench/large_inputs.py [--quick]     # --quick: a tenth of each size, for a smoke run
    python bench/large_inputs.py --only simulate --sim-vertices 1000 --sim-hours 2 --sim-policy static

Wall and CPU seconds are both printed: on a machine shared with other work the CPU seconds (this process's
``process_time``) are the comparable figure. ``--sim-policy static`` times the simulator with decisions that
cost next to nothing; with the default ``flinkscale`` policy its decide step is most of a large run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from flinkscale.cli import main


def plan_spec(operators: int) -> str:
    """A source and ``operators - 2`` operators in a chain with a fan-out every 10th, one sink."""
    ops: list[dict[str, object]] = [{"id": "op0", "role": "source", "cost_us_per_record": 5}]
    for i in range(1, operators - 1):
        upstream = f"op{i - 1}" if i % 10 else f"op{max(0, i - 10)}"
        ops.append({"id": f"op{i}", "inputs": [{"from": upstream, "ship": "hash" if i % 3 == 0 else "forward"}],
                    "cost_us_per_record": 1 + i % 7, "selectivity": 1.0, "keyed_state": i % 3 == 0})
    ops.append({"id": f"op{operators - 1}", "role": "sink", "inputs": [f"op{operators - 2}"]})
    spec = {"name": f"wide-{operators}", "volume": {"bytes_per_day": "1TB", "event_size": "1kB", "peak_factor": 2},
            "pipeline": {"operators": ops}}
    return yaml.safe_dump(spec, sort_keys=False)


def snapshot(vertices: int) -> str:
    """A chain of ``vertices`` vertices with busy, backpressure and lag metrics (an overloaded middle)."""
    vs = []
    for i in range(vertices):
        busy = 900.0 if i == vertices // 2 else 300.0 + (i % 5) * 50
        vs.append({"id": f"{i:032x}", "name": f"v{i}", "parallelism": 1 + i % 4, "max_parallelism": 128,
                   "is_source": i == 0, "partitions": 64 if i == 0 else None,
                   "metrics": {"num_records_in_per_second": 5000.0, "num_records_out_per_second": 5000.0,
                               "busy_time_ms_per_second_max": busy, "busy_time_ms_per_second_avg": busy * 0.9,
                               "back_pressured_time_ms_per_second_max": 100.0 if i < vertices // 2 else 0.0,
                               "back_pressured_time_ms_per_second_avg": 50.0 if i < vertices // 2 else 0.0,
                               "idle_time_ms_per_second_avg": 1000 - busy,
                               "pending_records": 10000.0 if i == 0 else None,
                               "pending_records_per_second": 100.0 if i == 0 else None}})
    edges = [{"source": f"{i:032x}", "target": f"{i + 1:032x}", "ship_strategy": "HASH" if i % 2 else "FORWARD"}
             for i in range(vertices - 1)]
    return json.dumps({"schema_version": 1, "timestamp": 1.7e9, "job_id": "a" * 32, "job_name": "big",
                       "window_seconds": 60.0, "vertices": vs, "edges": edges,
                       "cluster": {"task_managers": 100, "slots_total": 10000, "slots_available": 5000,
                                   "slots_per_task_manager": 100}})


def history(snapshots: int) -> tuple[str, str]:
    """``snapshots`` snapshots of a 5-vertex chain one minute apart under a daily wave (JSONL), and one more
    (the snapshot to decide)."""
    base = json.loads(snapshot(5))
    lines = []
    for i in range(snapshots + 1):
        rate = 5000.0 * (1.4 + math.sin(2 * math.pi * i / 1440))
        for vertex in base["vertices"]:
            vertex["metrics"]["num_records_in_per_second"] = vertex["metrics"]["num_records_out_per_second"] = rate
        lines.append(json.dumps({**base, "timestamp": 1.7e9 + 60.0 * i}))
    return "\n".join(lines[:-1]) + "\n", lines[-1]


def scenario(vertices: int, hours: float = 24.0) -> str:
    """``vertices`` vertices in a chain under a diurnal day at 1 s steps, for ``hours``."""
    vs = [{"id": "v0", "source": True, "partitions": 64, "parallelism": 4, "capacity": "3k/s"}]
    vs += [{"id": f"v{i}", "parallelism": 2 + i % 3, "capacity": f"{4 + i % 5}k/s"} for i in range(1, vertices)]
    edges = [{"from": f"v{i}", "to": f"v{i + 1}", "ship": "HASH" if i % 2 else "REBALANCE"}
             for i in range(vertices - 1)]
    return yaml.safe_dump({"name": f"chain-{vertices}", "duration": f"{hours:g}h", "step": "1s",
                           "decision_interval": "60s",
                           "trace": {"type": "diurnal", "average": "5k/s", "peak_factor": 1.8},
                           "pipeline": {"max_parallelism": 128, "vertices": vs, "edges": edges},
                           "cluster": {"max_slots": 100_000}}, sort_keys=False)


def lint_file(lines: int) -> str:
    """A PyFlink-looking job repeated until it has ``lines`` lines (findings included)."""
    block = [
        "from pyflink.datastream import StreamExecutionEnvironment",
        "env = StreamExecutionEnvironment.get_execution_environment()",
        "stream = env.from_collection([1, 2, 3])",
        "keyed = stream.key_by(lambda x: x % 10)",
        "def f{i}(value):",
        "    total = value + {i}",
        "    return total * 2",
        "result = keyed.map(f{i})",
        "result.print()",
        "",
    ]
    out = []
    for i in range(lines // len(block) + 1):
        out.extend(line.format(i=i) for line in block)
    return "\n".join(out[:lines]) + "\n"


def _run(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one in-process CLI run (CPU time says more on a machine shared by others)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
        code = main(argv)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if code not in (0, 1):
        raise SystemExit(f"{argv[0]} failed with exit code {code}: {err.getvalue()[:500]}")
    return seconds, cpu


def main_bench() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of each size")
    parser.add_argument("--only", default="", help="run only the inputs whose name contains this")
    parser.add_argument("--sim-vertices", type=int, default=1000, help="simulate: vertices at full size")
    parser.add_argument("--sim-hours", type=float, default=24.0, help="simulate: hours simulated at 1 s steps")
    parser.add_argument("--sim-policy", default="flinkscale",
                        help="simulate: the policy (static: the simulator alone, its decisions cost next to nothing)")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    tmp = Path(tempfile.mkdtemp(prefix="flinkscale-large-"))

    def plan_case(n: int) -> list[str]:
        path = tmp / f"plan-{n}.yaml"
        path.write_text(plan_spec(n))
        return ["plan", str(path), "--format", "json"]

    def decide_case(n: int) -> list[str]:
        path = tmp / f"snap-{n}.json"
        path.write_text(snapshot(n))
        return ["decide", "--snapshot", str(path), "--format", "json"]

    def history_case(n: int) -> list[str]:
        earlier, last = history(n)
        (tmp / f"history-{n}.jsonl").write_text(earlier)
        (tmp / f"last-{n}.json").write_text(last)
        return ["decide", "--snapshot", str(tmp / f"last-{n}.json"), "--history", str(tmp / f"history-{n}.jsonl"),
                "--format", "json"]

    def simulate_case(n: int) -> list[str]:
        path = tmp / f"scenario-{n}.yaml"
        path.write_text(scenario(n, args.sim_hours))
        return ["simulate", str(path), "--no-progress", "--format", "json", "-p", args.sim_policy]

    def lint_case(n: int) -> list[str]:
        path = tmp / f"job-{n}.py"
        path.write_text(lint_file(n))
        return ["lint", str(path), "--format", "json"]

    cases: list[tuple[str, int, Callable[[int], list[str]]]] = [
        ("plan (operators)", 10_000 // scale, plan_case),
        ("decide (vertices)", 5_000 // scale, decide_case),
        ("decide --history (1-minute snapshots)", 10_080 // scale, history_case),
        (f"simulate {args.sim_hours:g}h, {args.sim_policy} policy (vertices)", args.sim_vertices // scale,
         simulate_case),
        ("lint (lines)", 200_000 // scale, lint_case),
    ]
    print(f"{'input':44s} {'N/2':>8s} {'time':>8s} {'N':>8s} {'time':>8s} {'ratio':>6s} {'cpu N/2':>8s} "
          f"{'cpu N':>8s} {'ratio':>6s}  (linear ~2, quadratic ~4)")
    worst = 0.0
    for name, n, make in cases:
        if args.only not in name:
            continue
        half, half_cpu = _run(make(n // 2))
        full, full_cpu = _run(make(n))
        worst = max(worst, full)
        print(f"{name:44s} {n // 2:>8,} {half:>7.2f}s {n:>8,} {full:>7.2f}s {full / half:>6.2f} {half_cpu:>7.2f}s "
              f"{full_cpu:>7.2f}s {full_cpu / half_cpu:>6.2f}")
    print(f"slowest full-size run: {worst:.2f}s (goal: under 10 s)")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main_bench())
