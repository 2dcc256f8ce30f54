"""How fast the load generator can produce: ``LoadGenerator.produce_count(500_000)`` into its own broker.

The ceiling for ``flinkscale load`` and for the calibration step (bench/sim_calibration.py): a target rate above
it is reported as "cannot keep up". Starts its own embedded broker (free port, temporary state dir) and stops it
in ``finally``. Prints records/s for the whole call (JSON encoding, Zipf user draws, manifest bookkeeping and the
final flush included) and, as the baseline measured in the same run, the rate of a 50,000-record call.

Run: .venv/bin/python bench/loadgen_speed.py [--count 500000]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from flinkscale.kafka.admin import TopicAdmin
from flinkscale.kafka.broker import EmbeddedBroker
from flinkscale.kafka.loadgen import LoadGenerator


def timed(bootstrap: str, topic: str, count: int, zipf: float) -> float:
    generator = LoadGenerator(bootstrap, topic, zipf_s=zipf, seed=3)
    try:
        started = time.perf_counter()
        generator.produce_count(count)
        return time.perf_counter() - started
    finally:
        generator.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500_000)
    parser.add_argument("--zipf", type=float, default=1.0)
    args = parser.parse_args()
    state_dir = Path(tempfile.mkdtemp(prefix="flinkscale-loadgen-"))
    broker = EmbeddedBroker(state_dir)
    try:
        bootstrap = broker.up(port=0).bootstrap
        admin = TopicAdmin(bootstrap)
        admin.create_topic("speed", 4)
        admin.create_topic("baseline", 4)
        baseline_count = max(1, args.count // 10)
        baseline = timed(bootstrap, "baseline", baseline_count, args.zipf)
        seconds = timed(bootstrap, "speed", args.count, args.zipf)
        delivered = admin.describe("speed").messages
        time.sleep(2.0)  # the high watermarks as the broker reports them a little later
        delivered_later = admin.describe("speed").messages
        print(f"produce_count({args.count:,}) to {bootstrap} (4 partitions, zipf {args.zipf:g}): {seconds:.2f} s, "
              f"{args.count / seconds:,.0f} records/s; {delivered:,} records in the topic at once, "
              f"{delivered_later:,} 2 s later")
        print(f"baseline produce_count({baseline_count:,}): {baseline:.2f} s, {baseline_count / baseline:,.0f} "
              f"records/s; ratio {(args.count / seconds) / (baseline_count / baseline):.2f}")
    finally:
        broker.down()
        shutil.rmtree(state_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
