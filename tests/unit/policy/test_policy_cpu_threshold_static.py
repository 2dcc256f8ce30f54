"""cpu-threshold (double at >= 75% for 15 min, halve at < 10% for 6 h) and static (never rescales)."""

from __future__ import annotations

import pytest
from policy_snapshots import clickstream, history_of, job, vertex

from flinkscale.core.errors import InputError
from flinkscale.core.policy import History, make_policy, required_history_seconds
from flinkscale.core.policy.cpu_threshold import CpuThresholdPolicy, CpuThresholdSettings
from flinkscale.core.policy.flink_operator import FlinkOperatorPolicy, FlinkOperatorSettings
from flinkscale.core.policy.flinkscale import FlinkscalePolicy, FlinkscaleSettings
from flinkscale.core.snapshot import MetricsSnapshot


def busy_job(ts: float, busy: float, p: int = 4, partitions: int | None = None, max_p: int = 128,
             slots: int | None = None) -> MetricsSnapshot:
    return job(ts, vertex("src", p, rate_in=1000.0, busy_max=busy, partitions=partitions, max_p=max_p, source=True),
               vertex("agg", p, rate_in=1000.0, busy_max=busy / 2, max_p=max_p),
               edges=(("src", "agg", "HASH"),), slots=slots)


def run(busy_at: object, until: float, step: float = 60.0, **kwargs: object) -> dict[str, int]:
    assert callable(busy_at)
    snaps = [busy_job(t, busy_at(t), **kwargs) for t in [step * i for i in range(int(until / step) + 1)]]  # type: ignore[arg-type]
    policy = make_policy("cpu-threshold")
    history = history_of(*snaps[:-1], keep_seconds=required_history_seconds(policy))
    return policy.decide(snaps[-1], history).parallelism()


@pytest.mark.parametrize(("until", "expected"), [(840.0, 4), (900.0, 8)])
def test_doubles_after_15_minutes_at_or_above_75_percent(until: float, expected: int) -> None:
    assert run(lambda t: 800.0, until) == {"src": expected, "agg": expected}


def test_a_dip_below_the_threshold_restarts_the_clock() -> None:
    # the dip at 600 s restarts the 15 minutes: nothing until 600 + 60 + 900 = 1560 s
    assert run(lambda t: 500.0 if t == 600.0 else 800.0, 1500.0)["src"] == 4
    assert run(lambda t: 500.0 if t == 600.0 else 800.0, 1560.0)["src"] == 8


@pytest.mark.parametrize(("until", "expected"), [(21540.0, 4), (21600.0, 2)])
def test_halves_after_6_hours_under_10_percent(until: float, expected: int) -> None:
    # utilization = the busiest vertex's busy ratio: 0.05
    assert run(lambda t: 50.0, until, step=600.0 if until % 600 == 0 else 60.0)["src"] == expected


def test_doubling_respects_partitions_max_parallelism_and_slots() -> None:
    assert run(lambda t: 800.0, 900.0, partitions=6)["src"] == 6
    assert run(lambda t: 800.0, 900.0, max_p=5) == {"src": 5, "agg": 5}
    assert run(lambda t: 800.0, 900.0, slots=6) == {"src": 6, "agg": 6}


def test_mean_aggregate_is_weighted_by_parallelism() -> None:
    snaps = [busy_job(60.0 * i, 800.0) for i in range(16)]  # src 0.8, agg 0.4 -> mean 0.6 < 0.75
    policy = make_policy("cpu-threshold", {"utilization.aggregate": "mean"})
    assert not policy.decide(snaps[-1], history_of(*snaps[:-1])).rescale


def test_without_history_nothing_has_lasted() -> None:
    assert not make_policy("cpu-threshold").decide(busy_job(0.0, 990.0), History()).rescale


def test_a_history_kept_only_two_hours_cannot_show_six_hours() -> None:
    snaps = [busy_job(600.0 * i, 50.0) for i in range(37)]
    policy = make_policy("cpu-threshold")
    assert required_history_seconds(policy) >= 6 * 3600
    assert not policy.decide(snaps[-1], history_of(*snaps[:-1], keep_seconds=7200.0)).rescale


def test_settings_are_checked() -> None:
    with pytest.raises(InputError) as info:
        make_policy("cpu-threshold", {"utilization.aggregate": "median"})
    assert info.value.field == "utilization.aggregate"
    policy = make_policy("cpu-threshold", {"scale-up.threshold": "0.5", "scale-up.duration": "5m"})
    snaps = [busy_job(60.0 * i, 600.0) for i in range(6)]
    assert policy.decide(snaps[-1], history_of(*snaps[:-1])).parallelism()["src"] == 8


def test_static_never_rescales_and_takes_no_settings() -> None:
    snap = clickstream(0.0, arrival=60000.0, lag=1e7)
    decision = make_policy("static").decide(snap, History())
    assert not decision.rescale
    assert decision.parallelism() == {"src": 1, "win": 1, "sink": 1}
    with pytest.raises(InputError) as info:
        make_policy("static", {"utilization.target": "0.5"})
    assert info.value.field == "utilization.target"


def test_unknown_policy_is_an_input_error() -> None:
    with pytest.raises(InputError) as info:
        make_policy("dhalion")
    assert info.value.field == "policy"


@pytest.mark.parametrize(("policy", "settings"), [(CpuThresholdPolicy, CpuThresholdSettings),
                                                  (FlinkOperatorPolicy, FlinkOperatorSettings),
                                                  (FlinkscalePolicy, FlinkscaleSettings)])
def test_a_policy_given_no_settings_takes_the_parsed_defaults(
        policy: type[CpuThresholdPolicy | FlinkOperatorPolicy | FlinkscalePolicy],
        settings: type[CpuThresholdSettings | FlinkOperatorSettings | FlinkscaleSettings]) -> None:
    # Each default is written once, in the SETTINGS row make_policy parses; a bare policy starts from the same.
    assert policy().settings == settings.from_mapping({})
