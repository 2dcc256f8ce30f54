"""The example config in examples/autoscale/ parses and resolves as its comments say."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from flinkscale.core.job_settings import excluded_by, parse_config_text, resolve_job_settings

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "autoscale" / "autoscale.yaml"


def test_the_example_config_resolves_as_documented() -> None:
    config = parse_config_text(EXAMPLE.read_text(), str(EXAMPLE))
    payments = resolve_job_settings("p" * 32, "payments-eu", config)
    assert payments.scaling_enabled.value is False and payments.vertex_max_parallelism.value == 32
    assert payments.policy_settings["utilization.target"].value == "0.7"
    etl = resolve_job_settings("e" * 32, "backfill-2026", config)
    assert etl.policy_settings["utilization.target"].source.endswith("#etl")
    legacy = resolve_job_settings("l" * 32, "legacy-orders", config)
    assert legacy.policy.value == "flink-operator"
    monday_3am = datetime(2026, 3, 16, 3, 30)
    periods = etl.excluded_periods.value
    assert excluded_by(periods, monday_3am) == periods[1]  # the Monday maintenance hour (cron)
    assert excluded_by(periods, monday_3am.replace(day=17)) is None  # a Tuesday
    assert excluded_by(periods, monday_3am.replace(hour=1)) == periods[0]  # the nightly window, past midnight
    assert config.cluster.max_slots.value == 120 and config.cluster.quota_memory_bytes.value == 10**12
