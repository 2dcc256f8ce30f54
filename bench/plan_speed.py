"""How planning time grows with pipeline size: a 200-operator pipeline against a 10-operator baseline.

Both pipelines are chains of keyed and stateless operators with a few fan-outs, planned in the same run
(best of several repetitions), so the ratio is independent of the machine. Run:
``.venv/bin/python bench/plan_speed.py``.
"""

from __future__ import annotations

import time
from typing import Any

from flinkscale.core.plan import build_plan
from flinkscale.core.workload import parse_workload


def spec_with(operators: int) -> dict[str, Any]:
    ops: list[dict[str, Any]] = [{"id": "op0", "role": "source", "cost_us_per_record": 5,
                                  "connector": {"type": "kafka", "topic": "in"}}]
    for i in range(1, operators - 1):
        upstream = f"op{i - 1}" if i % 7 else f"op{max(0, i - 3)}"
        ship = "hash" if i % 3 == 0 else "rebalance" if i % 3 == 1 else "forward"
        ops.append({"id": f"op{i}", "inputs": [{"from": upstream, "ship": ship}], "cost_us_per_record": 5 + i % 40,
                    "keyed_state": ship == "hash", "selectivity": 1.0})
    ops.append({"id": f"op{operators - 1}", "role": "sink", "inputs": [f"op{operators - 2}"],
                "cost_us_per_record": 10, "connector": {"type": "kafka", "topic": "out"}})
    return {"name": f"bench-{operators}", "volume": {"bytes_per_day": "10TB", "event_size": "1kB",
                                                     "peak_factor": 3},
            "state": {"keys": 1e8, "bytes_per_key": "200B", "ttl": "1d"}, "pipeline": {"operators": ops}}


def best_time(operators: int, repeats: int = 5) -> float:
    spec = parse_workload(spec_with(operators))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        build_plan(spec)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    baseline = best_time(10)
    large = best_time(200)
    print(f"plan 10 operators:  {baseline * 1000:8.2f} ms (best of 5)")
    print(f"plan 200 operators: {large * 1000:8.2f} ms (best of 5)")
    print(f"ratio 200/10: {large / baseline:.1f}x for 20x the operators")


if __name__ == "__main__":
    main()
