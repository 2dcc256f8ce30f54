"""State advice: backend by state per TaskManager, incremental and duration rules, TTL growth, managed memory."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flinkscale.core.capacity import HASHMAP_OBJECT_OVERHEAD, HASHMAP_STATE_LIMIT_PER_TASK_MANAGER
from flinkscale.core.errors import InputError
from flinkscale.core.snapshot import CheckpointStats, ClusterResources, MetricsSnapshot, Vertex
from flinkscale.core.state_advice import (
    FORST_STATE_PER_TASK_MANAGER,
    ROCKSDB_MANAGED_FRACTION,
    Severity,
    StateSettings,
    advise_state,
    recommended_backend,
)
from flinkscale.core.units import GiB, MiB


def snapshot(state_bytes: int | None, task_managers: int = 2, *, timestamp: float = 0.0,
             max_duration_ms: float | None = 500.0, interval_ms: float | None = 10_000.0,
             alignment_ms: float | None = None) -> MetricsSnapshot:
    return MetricsSnapshot(
        timestamp=timestamp, job_id="j", job_name="job",
        vertices=(Vertex("v", "Source -> Window", 2, 120, is_source=True),),
        cluster=ClusterResources(task_managers, task_managers, 0, 1),
        checkpoints=CheckpointStats(completed=3, state_size_bytes=state_bytes, max_duration_ms=max_duration_ms,
                                    avg_duration_ms=max_duration_ms, interval_ms=interval_ms,
                                    avg_alignment_ms=alignment_ms))


def by_topic(advice: tuple, topic: str) -> list:  # type: ignore[type-arg]
    return [a for a in advice if a.topic == topic]


@pytest.mark.parametrize(("state_per_tm", "backend"), [
    (10 * MiB, "hashmap"),
    (HASHMAP_STATE_LIMIT_PER_TASK_MANAGER, "hashmap"),
    (HASHMAP_STATE_LIMIT_PER_TASK_MANAGER + 1, "rocksdb"),
    (50 * GiB, "rocksdb"),
    (FORST_STATE_PER_TASK_MANAGER + 1, "forst"),
])
@pytest.mark.parametrize("task_managers", [1, 3])
def test_backend_follows_state_per_task_manager(state_per_tm: int, backend: str, task_managers: int) -> None:
    advice = advise_state(snapshot(state_per_tm * task_managers, task_managers))
    (choice,) = by_topic(advice, "backend")
    assert choice.config == {"state.backend.type": backend}
    assert choice.severity is Severity.RECOMMEND


def test_current_backend_that_fits_is_confirmed_not_changed() -> None:
    advice = advise_state(snapshot(20 * MiB), StateSettings(backend="hashmap"))
    (choice,) = by_topic(advice, "backend")
    assert choice.severity is Severity.INFO and choice.config == {}


def test_small_heap_moves_hashmap_state_to_rocksdb() -> None:
    # 200 MiB of state costs 2.5 x 200 = 500 MiB of heap objects: more than half of a 512 MiB heap.
    state = 200 * MiB
    assert HASHMAP_OBJECT_OVERHEAD * state > 512 * MiB / 2
    assert recommended_backend(state, 512 * MiB)[0] == "rocksdb"
    assert recommended_backend(state, 4 * GiB)[0] == "hashmap"


@given(st.integers(min_value=0, max_value=10**15), st.integers(min_value=0, max_value=10**15))
def test_backend_order_is_monotone_in_state(a: int, b: int) -> None:
    order = {"hashmap": 0, "rocksdb": 1, "forst": 2}
    small, large = sorted((a, b))
    assert order[recommended_backend(small)[0]] <= order[recommended_backend(large)[0]]


def test_incremental_checkpoints_for_large_rocksdb_state_unless_on() -> None:
    big = snapshot(8 * GiB, 2)
    (incremental,) = by_topic(advise_state(big), "incremental-checkpoints")
    assert incremental.config == {"execution.checkpointing.incremental": "true"}
    assert by_topic(advise_state(big, StateSettings(backend="rocksdb", incremental=True)),
                    "incremental-checkpoints") == []
    assert by_topic(advise_state(snapshot(10 * MiB)), "incremental-checkpoints") == []


@pytest.mark.parametrize(("max_ms", "interval_ms", "flagged"), [(4_000, 10_000, False), (5_000, 10_000, False),
                                                                 (6_000, 10_000, True), (30_000, 10_000, True)])
def test_checkpoint_duration_above_half_the_interval_is_a_warning(max_ms: float, interval_ms: float,
                                                                 flagged: bool) -> None:
    advice = by_topic(advise_state(snapshot(10 * MiB, max_duration_ms=max_ms, interval_ms=interval_ms)),
                      "checkpoint-duration")
    assert bool(advice) is flagged
    if flagged:
        assert advice[0].severity is Severity.WARN
        # The new interval is twice the longest checkpoint.
        assert advice[0].config["execution.checkpointing.interval"].startswith(f"{2 * max_ms / 1000:.1f}")


def test_long_alignment_recommends_unaligned_checkpoints() -> None:
    (advice,) = by_topic(advise_state(snapshot(10 * MiB, max_duration_ms=8_000, alignment_ms=6_000)),
                         "checkpoint-duration")
    assert advice.config["execution.checkpointing.unaligned.enabled"] == "true"


def test_growing_state_without_ttl_warns_with_the_growth_rate() -> None:
    before = snapshot(100 * MiB, timestamp=0.0)
    after = snapshot(160 * MiB, timestamp=1800.0)
    (ttl,) = by_topic(advise_state(after, previous=before), "ttl")
    assert ttl.severity is Severity.WARN
    assert "120.00 MiB/h" in ttl.explanation  # (160 - 100) MiB / 0.5 h
    assert "table.exec.state.ttl" in ttl.config
    assert by_topic(advise_state(after, StateSettings(ttl_configured=True), previous=before), "ttl") == []
    assert by_topic(advise_state(before, previous=after), "ttl") == []  # shrinking state is bounded


@pytest.mark.parametrize(("state", "fraction"), [(10 * MiB, 0.0), (8 * GiB, ROCKSDB_MANAGED_FRACTION)])
def test_managed_memory_fraction_follows_the_backend(state: int, fraction: float) -> None:
    advice = by_topic(advise_state(snapshot(state), StateSettings(managed_fraction=0.25)), "managed-memory")
    assert advice[0].config == {"taskmanager.memory.managed.fraction": str(fraction)}
    assert by_topic(advise_state(snapshot(state), StateSettings(managed_fraction=fraction)), "managed-memory") == []


def test_no_checkpoint_yet_says_the_state_size_is_unknown() -> None:
    (only,) = advise_state(snapshot(None))
    assert only.severity is Severity.INFO and "unknown" in only.title


@pytest.mark.parametrize(("settings", "field"), [({"backend": "memory"}, "backend"),
                                                 ({"managed_fraction": 1.5}, "managed_fraction"),
                                                 ({"task_manager_heap_bytes": 0}, "task_manager_heap_bytes")])
def test_bad_settings_name_the_field(settings: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as error:
        StateSettings(**settings)  # type: ignore[arg-type]
    assert error.value.field == field
