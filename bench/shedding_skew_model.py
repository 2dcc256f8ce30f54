"""Model-level figures for load shedding (issue 7) and salting (issue 8), without a cluster.

1. Shedding accuracy: at 1x, 1.5x, 2x and 3x overload, ``choose_keep_probability`` picks p for windows of
   N records per group (target 2% at 95%); Monte-Carlo windows (numpy, fixed seed) then measure how many
   windows land within the 2% target and within the error the window itself states. The real-cluster
   table (throughput, lag) is bench/shedding, run by the lead.
2. Salting: Zipf(1.2) user keys placed on subtasks as Flink places a PyFlink ``key_by`` STRING key
   (murmur(Row(key).hashCode) % maxP, then kg x p / maxP); the busiest subtask's load over the mean,
   unsalted vs salted (salt = crc32(event id) % salts), as a ratio against the unsalted baseline.

Run: .venv/bin/python bench/shedding_skew_model.py [--windows 2000]
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np

from flinkscale.core.keygroups import layout_imbalance, subtask_for_pyflink_string_key
from flinkscale.core.shedding import choose_keep_probability, z_for_confidence
from flinkscale.pipelines.salting import salt_for, salted_key


def shedding_table(windows: int) -> None:
    target, confidence = 0.02, 0.95
    z = z_for_confidence(confidence)
    rng = np.random.default_rng(42)
    print(f"shedding: target {target:.0%} at {confidence:.0%} confidence, {windows} windows per row")
    print(f"{'overload':>8} {'N/window':>9} {'p':>7} {'achievable':>10} {'within 2%':>9} {'within stated':>13}")
    for population in (10_000, 100_000, 1_000_000):
        for overload in (1.0, 1.5, 2.0, 3.0):
            decision = choose_keep_probability(overload * 1000.0, 1000.0, population, target, confidence)
            p = decision.keep_probability
            kept = rng.binomial(population, p, size=windows)
            estimate = kept / p
            error = np.abs(estimate - population) / population
            stated = np.where(kept > 0, z * np.sqrt((1 - p) / np.maximum(kept, 1)), np.inf)
            print(f"{overload:>7.1f}x {population:>9,} {p:>7.4f} {decision.achievable!s:>10} "
                  f"{(error <= target).mean():>9.3f} {(error <= stated + 1e-12).mean():>13.3f}")


def salting_table(records: int) -> None:
    rng = np.random.default_rng(7)
    keys = [f"user-{k}" for k in rng.zipf(1.2, size=records)]
    event_ids = [f"evt-{i}" for i in range(records)]
    print(f"\nsalting: {records:,} Zipf(1.2) records, max parallelism 128; max/mean subtask load")
    print(f"{'p':>4} {'layout':>7} {'unsalted':>9} {'salted':>7} {'salts':>5} {'after/before':>12}")
    for parallelism, salts in ((4, 4), (4, 16), (4, 32), (8, 32), (3, 12), (96, 96), (96, 384)):
        def ratio(loads: Counter[int], parallelism: int = parallelism) -> float:
            values = [loads.get(i, 0) for i in range(parallelism)]
            return max(values) / (sum(values) / parallelism)

        before = Counter(subtask_for_pyflink_string_key(k, 128, parallelism) for k in keys)
        after = Counter(subtask_for_pyflink_string_key(salted_key(k, salt_for(e, salts)), 128, parallelism)
                        for k, e in zip(keys, event_ids, strict=True))
        print(f"{parallelism:>4} {layout_imbalance(128, parallelism):>7.3f} {ratio(before):>9.3f} "
              f"{ratio(after):>7.3f} {salts:>5} {ratio(after) / ratio(before):>12.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--windows", type=int, default=2000)
    parser.add_argument("--records", type=int, default=200_000)
    args = parser.parse_args()
    shedding_table(args.windows)
    salting_table(args.records)


if __name__ == "__main__":
    main()
