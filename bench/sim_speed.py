"""How fast the simulator runs a day: a 20-vertex job at 2,000 subtasks vs the same job at 20 subtasks.

Target (issue 4): the 24-hour trace at 1 s resolution for the 2,000-subtask, 20-vertex job in under 30 s on
one core. Prints simulated seconds per wall second for both sizes and their ratio, measured in this run
(wall-clock figures move with the machine; the ratio shows what 100x the subtasks costs).

The job: a source with 100 partitions, then 19 vertices alternating HASH (Zipf keys), REBALANCE and
FORWARD edges, 100 subtasks each (1 each for the baseline); a diurnal trace peaking at 90% of the
capacity, so buffers, backpressure at the noisy peak and the full snapshot path are all exercised. The
policy is ``static`` from the registry, so the full decide loop runs every 60 s.

Run: .venv/bin/python bench/sim_speed.py [--hours 24]
"""

from __future__ import annotations

import argparse
import time

from flinkscale.core.policy.registry import make_policy
from flinkscale.core.sim import (
    DiurnalTrace,
    KeyDistribution,
    SimConfig,
    SimEdge,
    SimPipeline,
    SimVertex,
    simulate,
)
from flinkscale.core.sim.traces import Noise
from flinkscale.core.snapshot import ShipStrategy

VERTICES = 20
CAPACITY = 1000.0


def job(per_vertex: int) -> SimPipeline:
    vertices = tuple(SimVertex(id=f"v{i:02d}", parallelism=per_vertex, capacity=CAPACITY, max_parallelism=720,
                               is_source=i == 0, partitions=per_vertex if i == 0 else None)
                     for i in range(VERTICES))
    ships = (ShipStrategy.HASH, ShipStrategy.REBALANCE, ShipStrategy.FORWARD)
    edges = tuple(SimEdge(f"v{i:02d}", f"v{i + 1:02d}", ships[i % 3], 1.0,
                          KeyDistribution("zipf", 100_000, 0.5) if ships[i % 3] is ShipStrategy.HASH
                          else KeyDistribution())
                  for i in range(VERTICES - 1))
    return SimPipeline(vertices, edges, name=f"bench-{per_vertex * VERTICES}")


def measure(per_vertex: int, hours: float) -> tuple[int, float, float]:
    duration = hours * 3600
    pipeline = job(per_vertex)
    rates = DiurnalTrace(average=0.5 * per_vertex * CAPACITY, peak_factor=1.8,
                         noise=Noise(0.02, seed=1)).rates(duration, 1.0)
    config = SimConfig(duration_seconds=duration)
    started = time.perf_counter()
    simulate(pipeline, rates, make_policy("static", {}), config)
    wall = time.perf_counter() - started
    return pipeline_subtasks(pipeline), wall, duration / wall


def pipeline_subtasks(pipeline: SimPipeline) -> int:
    return sum(v.parallelism for v in pipeline.vertices)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    args = parser.parse_args()
    base_subtasks, base_wall, base_speed = measure(1, args.hours)
    big_subtasks, big_wall, big_speed = measure(100, args.hours)
    print(f"simulated {args.hours:g} h at 1 s steps, {VERTICES} vertices, policy static (decide every 60 s)")
    print(f"  baseline {base_subtasks:>5} subtasks: {base_wall:6.2f} s wall, {base_speed:10,.0f} simulated s / wall s")
    print(f"  target   {big_subtasks:>5} subtasks: {big_wall:6.2f} s wall, {big_speed:10,.0f} simulated s / wall s")
    print(f"  ratio: {big_subtasks // base_subtasks}x the subtasks costs {big_wall / base_wall:.2f}x the wall time")
    day = big_wall * 24 / args.hours
    verdict = "meets" if day < 30 else "MISSES"
    print(f"  a day of the {big_subtasks}-subtask job takes {day:.1f} s: {verdict} the 30 s target")


if __name__ == "__main__":
    main()
