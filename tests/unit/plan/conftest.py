"""Shared spec builders for the plan tests: a small valid spec as a dict, to mutate per test."""

from __future__ import annotations

import copy
from typing import Any

import pytest

BASE_SPEC: dict[str, Any] = {
    "name": "test",
    "volume": {"bytes_per_day": "1TB", "event_size": "1kB", "peak_factor": 3.5},
    "targets": {"latency": "500ms", "rpo": "1m", "rto": "5m", "catch_up": "30m", "utilization": 0.7},
    "state": {"keys": 1e6, "bytes_per_key": "200B", "ttl": "1d"},
    "pipeline": {"operators": [
        {"id": "src", "role": "source", "cost_us_per_record": 5,
         "connector": {"type": "kafka", "topic": "in", "partition_throughput": "10MB/s"}},
        {"id": "parse", "inputs": ["src"], "cost_us_per_record": 20},
        {"id": "agg", "inputs": [{"from": "parse", "ship": "hash"}], "cost_us_per_record": 40,
         "keyed_state": True, "selectivity": 0.1, "output_event_size": "200B"},
        {"id": "out", "role": "sink", "inputs": [{"from": "agg", "ship": "rebalance"}], "cost_us_per_record": 10,
         "connector": {"type": "kafka", "topic": "out"}},
    ]},
    "cluster": {"cores_per_task_manager": 4},
}


@pytest.fixture
def spec_dict() -> dict[str, Any]:
    return copy.deepcopy(BASE_SPEC)
