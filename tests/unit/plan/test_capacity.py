"""The capacity model's promises: monotone in volume, peak carried at target utilization, alignment rules."""

from __future__ import annotations

import copy
import itertools
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flinkscale.core.capacity import plan_capacity
from flinkscale.core.workload import parse_workload, parse_workload_text

from .conftest import BASE_SPEC

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "workloads"


def _spec(tb_per_day: float, **changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE_SPEC)
    spec["volume"]["bytes_per_day"] = f"{tb_per_day}TB"
    for section, values in changes.items():
        spec[section].update(values)
    return spec


def test_seed_case_needs_more_than_40k_events_per_second() -> None:
    spec = parse_workload_text((EXAMPLES / "seed-1tb-subsecond.yaml").read_text())
    rates = plan_capacity(spec).rates
    # 10^12 B/day / 86400 s / 1000 B = 11,574/s; x 3.5 = 40,509/s; a 0.5 s budget smooths 1 h by 0.5/3600.5.
    expected = 1e12 / 86400 / 1000 * 3.5 * 3600 / 3600.5
    assert rates.provisioned_events_per_second.value == pytest.approx(expected)
    assert rates.provisioned_events_per_second.value > 40_000


def test_a_long_latency_budget_smooths_the_peak() -> None:
    spec = parse_workload(_spec(1, targets={"latency": "1h"}))
    rates = plan_capacity(spec).rates
    assert rates.provisioned_events_per_second.value == pytest.approx(rates.peak_events_per_second.value / 2)


@settings(max_examples=40, deadline=None)
@given(small=st.floats(min_value=0.05, max_value=20), factor=st.floats(min_value=1.0, max_value=5.0))
def test_more_volume_never_yields_fewer_resources(small: float, factor: float) -> None:
    low = plan_capacity(parse_workload(_spec(small)))
    high = plan_capacity(parse_workload(_spec(small * factor)))
    assert high.cluster.task_managers.value >= low.cluster.task_managers.value
    assert high.cluster.slots.value >= low.cluster.slots.value
    assert high.cluster.cores_needed.value >= low.cluster.cores_needed.value
    assert (high.cluster.task_managers.value * high.cluster.memory.process_size
            >= low.cluster.task_managers.value * low.cluster.memory.process_size)
    for a, b in zip(low.operators, high.operators, strict=True):
        assert b.parallelism.value >= a.parallelism.value, a.operator.id
    for a_topic, b_topic in zip(low.kafka, high.kafka, strict=True):
        assert b_topic.partitions_needed.value >= a_topic.partitions_needed.value


@settings(max_examples=40, deadline=None)
@given(tb=st.floats(min_value=0.01, max_value=50), utilization=st.floats(min_value=0.3, max_value=0.95),
       cost=st.floats(min_value=1, max_value=500))
def test_parallelism_carries_the_peak_at_or_below_target_utilization(tb: float, utilization: float,
                                                                     cost: float) -> None:
    spec_dict = _spec(tb, targets={"utilization": utilization})
    spec_dict["pipeline"]["operators"][2]["cost_us_per_record"] = cost
    capacity = plan_capacity(parse_workload(spec_dict))
    assert not capacity.constraints
    for op in capacity.operators:
        rate = op.input_records_per_second.value
        p = op.parallelism.value
        # Documented check: (peak rate / parallelism) x cost per record <= target utilization.
        assert rate / p * op.operator.cost_us_per_record / 1e6 <= utilization + 1e-9, op.operator.id


@settings(max_examples=40, deadline=None)
@given(tb=st.floats(min_value=0.01, max_value=50), cost=st.floats(min_value=1, max_value=300),
       cores=st.integers(min_value=1, max_value=16))
def test_task_managers_have_the_slots_and_the_cores(tb: float, cost: float, cores: int) -> None:
    spec_dict = _spec(tb, cluster={"cores_per_task_manager": cores})
    spec_dict["pipeline"]["operators"][1]["cost_us_per_record"] = cost
    capacity = plan_capacity(parse_workload(spec_dict))
    cluster = capacity.cluster
    core_demand = sum(op.core_demand.value for op in capacity.operators)
    # Slots spread evenly (taskmanager.load-balance.mode: SLOTS), so each TM carries core_demand / TMs.
    assert core_demand / cluster.task_managers.value <= cores + 1e-6
    assert cluster.task_managers.value * cluster.slots_per_task_manager >= cluster.slots.value


@settings(max_examples=30, deadline=None)
@given(tb=st.floats(min_value=0.01, max_value=30), partitions=st.one_of(st.none(), st.integers(1, 200)))
def test_alignment_rules(tb: float, partitions: int | None) -> None:
    spec_dict = _spec(tb)
    spec_dict["pipeline"]["operators"][0]["connector"]["partitions"] = partitions
    capacity = plan_capacity(parse_workload(spec_dict))
    max_p = int(capacity.max_parallelism.value)
    source = capacity.operator("src")
    for op in capacity.operators:
        if op.keyed:
            assert max_p % int(op.parallelism.value) == 0, op.operator.id
    topic = next(t for t in capacity.kafka if t.operator_id == "src")
    if partitions is not None:
        assert source.parallelism.value <= partitions
        assert partitions % int(source.parallelism.value) == 0
    else:
        assert topic.partitions.value % source.parallelism.value == 0
        assert topic.partitions.value >= topic.partitions_needed.value
    # Forward edge src -> parse: one parallelism.
    assert capacity.operator("parse").parallelism.value == source.parallelism.value


def test_max_task_managers_binds_and_says_by_how_much() -> None:
    capacity = plan_capacity(parse_workload(_spec(50, cluster={"max_task_managers": 2})))
    needed = capacity.cluster.task_managers_unconstrained
    assert needed > 2
    binding = [c for c in capacity.constraints if c.name == "max_task_managers"]
    assert len(binding) == 1
    assert binding[0].required == needed and binding[0].available == 2
    assert binding[0].shortfall == pytest.approx(needed / 2 - 1)
    assert capacity.cluster.task_managers.value == 2
    assert capacity.carried_fraction.value == pytest.approx(2 / needed)
    # The capped plan never asks for more subtasks than the allowed TaskManagers have slots.
    slots = 2 * capacity.cluster.slots_per_task_manager
    assert all(op.parallelism.value <= slots for op in capacity.operators)
    assert capacity.cluster.slots.value <= slots


def test_too_few_partitions_bind_the_source() -> None:
    spec_dict = _spec(20)
    spec_dict["pipeline"]["operators"][0]["connector"]["partitions"] = 2
    capacity = plan_capacity(parse_workload(spec_dict))
    names = {c.name for c in capacity.constraints}
    assert "source_partitions" in names or "partition_throughput" in names
    assert capacity.operator("src").parallelism.value <= 2


def test_catch_up_headroom_follows_rto_over_catch_up() -> None:
    capacity = plan_capacity(parse_workload(_spec(1)))
    op = capacity.operator("agg")
    rate = op.input_records_per_second.value
    assert op.required_records_per_second.value == pytest.approx(rate / 0.7 + rate * 300 / 1800)


def test_large_state_moves_to_rocksdb_and_ttl_bounds_growth() -> None:
    capacity = plan_capacity(parse_workload(_spec(1, state={"keys": 1e9, "bytes_per_key": "1kB",
                                                           "new_keys_per_day": 1e7})))
    assert capacity.state.backend == "rocksdb"
    assert capacity.state.managed_fraction.value == 0.4
    assert capacity.state.projected_bytes.value < capacity.state.projected_bytes_without_ttl.value
    small = plan_capacity(parse_workload(_spec(1)))
    assert small.state.backend == "hashmap" and small.state.managed_fraction.value == 0.0


def test_checkpoint_interval_respects_the_rpo() -> None:
    capacity = plan_capacity(parse_workload(_spec(1)))
    ckpt = capacity.checkpoints
    assert ckpt.interval_seconds.value + ckpt.duration_seconds.value <= 60 + 1e-9
    assert ckpt.kafka_transaction_timeout_seconds is not None
    assert ckpt.kafka_transaction_timeout_seconds.value > ckpt.interval_seconds.value + ckpt.timeout_seconds.value


@pytest.mark.parametrize("name", ["clickstream-1tb", "clickstream-10tb", "seed-1tb-subsecond"])
def test_examples_plan_without_binding_constraints(name: str) -> None:
    capacity = plan_capacity(parse_workload_text((EXAMPLES / f"{name}.yaml").read_text()))
    assert not capacity.constraints
    assert math.isclose(sum(capacity.cluster.memory.components().values()), capacity.cluster.memory.process_size)


def test_an_operator_wider_than_flink_allows_is_capped_and_named() -> None:
    """1 EB/day needs millions of subtasks: the plan caps each operator at Flink's 32,768 and names every one that
    needs more (this input once kept the memory fit trying TaskManager counts for minutes)."""
    capacity = plan_capacity(parse_workload(_spec(1_000_000)))
    binding = {c.message.split()[0]: c for c in capacity.constraints if c.name == "flink_parallelism"}
    over = {op.operator.id for op in capacity.operators if op.parallelism_for_cpu.value > 32_768}
    assert over and set(binding) == over
    assert all(c.available == 32_768 and c.required > 32_768 for c in binding.values())
    assert all(op.parallelism.value <= 32_768 for op in capacity.operators)
    worst = max(c.required for c in binding.values())
    assert capacity.carried_fraction.value == pytest.approx(32_768 / worst)


def test_task_manager_counts_are_exact_for_64_then_grow_by_5_percent() -> None:
    from flinkscale.core.capacity import _task_manager_counts

    assert list(_task_manager_counts(3, 24)) == list(range(3, 25))
    assert list(_task_manager_counts(10, 81)) == [*range(10, 75), 78]  # 64 exact, then ceil(74 x 1.05) = 78
    wide = list(_task_manager_counts(5_000, 40_001))
    assert wide[:65] == list(range(5_000, 5_065)) and wide[-1] <= 40_001
    assert all(a < b <= math.ceil(a * 1.05) for a, b in itertools.pairwise(wide))
    assert len(wide) < 150
