"""Per-job settings: defaults < config file (defaults, then matching overrides) < the job's own config."""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta

import pytest

from flinkscale.core.errors import InputError
from flinkscale.core.job_settings import (
    AutoscaleConfig,
    CronPeriod,
    DailyPeriod,
    JobRef,
    JobSettingsError,
    Sourced,
    excluded_by,
    parse_config_text,
    parse_excluded_periods,
    resolve_job_settings,
    resolve_jobs,
)
from flinkscale.core.policy.registry import make_policy

PATH = "/etc/flinkscale/autoscale.yaml"
JOB = "a" * 32

CONFIG = textwrap.dedent("""\
    defaults:
      policy: flinkscale
      settings:
        utilization.target: 0.7
        scale-down.interval: 30m
        excluded.periods: ["22:00-06:00"]
        quota.cpu: 8
    overrides:
      - name: etl
        match: "etl-*"
        settings:
          utilization.target: 0.6
          quota.memory: 32gb
      - name: etl-nightly
        match: ["etl-nightly-*", "batch-*"]
        settings:
          scaling.enabled: false
      - name: operator-style
        match: "legacy-*"
        policy: flink-operator
        settings:
          job.autoscaler.utilization.target: 0.5
    cluster:
      max-slots: 40
      quota.cpu: 64
      quota.memory: 256gb
""")


def config() -> AutoscaleConfig:
    return parse_config_text(CONFIG, PATH)


def job_config(**keys: str) -> list[dict[str, str]]:
    entries = [{"key": "taskmanager.numberOfTaskSlots", "value": "2"}]  # unrelated keys are skipped
    return entries + [{"key": key, "value": value} for key, value in keys.items()]


# --- which source wins ---------------------------------------------------------------------------------

def test_without_a_file_or_job_keys_every_setting_is_a_default() -> None:
    settings = resolve_job_settings(JOB, "clicks", AutoscaleConfig())
    assert settings.policy.value == "flinkscale"
    assert set(settings.sources().values()) == {"default"}
    assert settings.policy_settings["utilization.target"].value == "0.8"
    assert settings.scaling_enabled.value is True and settings.excluded_periods.value == ()
    assert settings.policy_values() == {}


def test_the_file_defaults_apply_to_every_job() -> None:
    settings = resolve_job_settings(JOB, "clicks", config())
    assert settings.policy_settings["utilization.target"].value == "0.7"
    assert settings.sources()["utilization.target"] == f"file:{PATH}#defaults"
    assert settings.sources()["metrics.window"] == "default"
    assert settings.quota_cpu == Sourced(8.0, f"file:{PATH}#defaults")


def test_matching_overrides_apply_in_file_order_and_later_wins() -> None:
    settings = resolve_job_settings(JOB, "etl-nightly-orders", config())
    assert settings.policy_settings["utilization.target"].value == "0.6"
    assert settings.sources()["utilization.target"] == f"file:{PATH}#etl"
    assert settings.scaling_enabled.value is False
    assert settings.sources()["scaling.enabled"] == f"file:{PATH}#etl-nightly"
    assert settings.quota_memory_bytes.value == 32 * 10**9
    assert settings.quota_cpu.value == 8.0  # from the defaults, untouched by the overrides
    other = resolve_job_settings(JOB, "batch-hourly", config())
    assert other.scaling_enabled.value is False and other.sources()["utilization.target"].endswith("#defaults")


def test_the_jobs_own_keys_win_over_the_file() -> None:
    settings = resolve_job_settings(JOB, "etl-orders", config(), job_config(**{
        "job.autoscaler.utilization.target": "0.9",
        "flinkscale.quota.memory": "8gb",
        "kubernetes.operator.job.autoscaler.scaling.enabled": "false"}))
    assert settings.policy_settings["utilization.target"].value == "0.9"
    assert settings.sources()["utilization.target"] == "job-config"
    assert settings.quota_memory_bytes.value == 8 * 10**9 and settings.quota_memory_bytes.source == "job-config"
    assert settings.scaling_enabled.value is False and settings.scaling_enabled.source == "job-config"
    assert settings.sources()["scale-down.interval"] == f"file:{PATH}#defaults"
    policy = make_policy(settings.policy.value, settings.policy_values())
    assert policy.name == "flinkscale"


def test_an_override_that_switches_policy_starts_its_settings_afresh() -> None:
    settings = resolve_job_settings(JOB, "legacy-billing", config())
    assert settings.policy.value == "flink-operator"
    assert settings.policy.source == f"file:{PATH}#operator-style"
    assert settings.policy_settings["job.autoscaler.utilization.target"].value == "0.5"
    assert "utilization.target" not in settings.policy_settings  # flinkscale's key does not leak across
    assert settings.excluded_periods.value == (DailyPeriod("22:00-06:00", 22 * 3600, 6 * 3600),)  # operations carry
    make_policy(settings.policy.value, settings.policy_values())


def test_the_job_may_choose_its_policy_and_use_the_operators_names() -> None:
    settings = resolve_job_settings(JOB, "clicks", config(), job_config(**{
        "flinkscale.policy": "flink-operator", "job.autoscaler.utilization.target": "0.55"}))
    assert settings.policy.value == "flink-operator" and settings.policy.source == "job-config"
    assert settings.policy_settings["job.autoscaler.utilization.target"].value == "0.55"


def test_operator_keys_flinkscale_does_not_use_are_ignored_not_errors() -> None:
    settings = resolve_job_settings(JOB, "clicks", AutoscaleConfig(), job_config(**{
        "job.autoscaler.memory.tuning.enabled": "true", "job.autoscaler.metrics.window": "10m"}))
    assert settings.ignored == ("job.autoscaler.memory.tuning.enabled",)
    assert settings.policy_settings["metrics.window"].value == "10m"


def test_a_bare_number_duration_in_the_jobs_config_is_milliseconds_as_flink_reads_it() -> None:
    settings = resolve_job_settings(JOB, "clicks", AutoscaleConfig(), job_config(**{
        "job.autoscaler.stabilization.interval": "300000", "job.autoscaler.metrics.window": "10 min"}))
    assert settings.policy_settings["stabilization.interval"].value == "300s"
    assert settings.policy_settings["metrics.window"].value == "10 min"
    file_config = parse_config_text("defaults:\n  settings:\n    stabilization.interval: 300\n", PATH)
    from_file = resolve_job_settings(JOB, "clicks", file_config)
    assert from_file.policy_settings["stabilization.interval"].value == "300"  # flinkscale's own rule: seconds
    policy = make_policy(settings.policy.value, settings.policy_values())
    assert policy.settings.stabilization_interval == 300.0  # type: ignore[attr-defined]


# --- bad input: one line naming the file and key path, or the job and the key -------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("defaults:\n  polcy: flinkscale\n", f"{PATH}: defaults.polcy: unknown key"),
    ("overrides:\n  - name: a\n    match: x\n    setings: {}\n", f"{PATH}: overrides[0].setings: unknown key"),
    ("overrides:\n  - match: x\n", f"{PATH}: overrides[0].name: required key missing"),
    ("cluster:\n  max-slots: -3\n", f"{PATH}: cluster.max-slots: Input should be greater than 0"),
    ("cluster:\n  max-slots: '40'\n", f"{PATH}: cluster.max-slots: Input should be a valid integer"),
    ("surprise: 1\n", f"{PATH}: surprise: unknown key"),
    ("defaults:\n  settings:\n    utilization.targt: 0.5\n",
     f"{PATH}: defaults.settings.utilization.targt: unknown setting for policy 'flinkscale'"),
    ("defaults:\n  settings:\n    utilization.target: 1.5\n",
     f"{PATH}: defaults.settings.utilization.target: must be between 0 and 1"),
    ("overrides:\n  - name: a\n    match: x\n    settings:\n      excluded.periods: '25:00-01:00'\n",
     f"{PATH}: overrides[0].settings.excluded.periods: '25:00-01:00': not a time of day"),
    ("overrides:\n  - name: a\n    match: x\n    policy: magic\n", f"{PATH}: overrides[0].policy: unknown policy"),
    ("overrides:\n  - {name: a, match: x}\n  - {name: a, match: y}\n", f"{PATH}: overrides[1].name: 'a' is used twice"),
    ("defaults: [1, 2\n", f"{PATH}: not valid YAML at line"),
    ("- a\n- b\n", f"{PATH}: expected a mapping"),
])
def test_a_bad_config_file_is_one_line_naming_the_file_and_key_path(text: str, expected: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_config_text(text, PATH)
    assert str(caught.value).startswith(expected), str(caught.value)
    assert "\n" not in str(caught.value) and caught.value.exit_code == 2


def test_an_empty_file_is_all_defaults() -> None:
    assert resolve_job_settings(JOB, "x", parse_config_text("", PATH)).policy.source == "default"


@pytest.mark.parametrize(("key", "value", "message"), [
    ("job.autoscaler.utilization.target", "lots", "expected a number"),
    ("flinkscale.scaling.enabled", "maybe", "expected true or false"),
    ("job.autoscaler.quota.cpu", "-2", "must be > 0"),
    ("job.autoscaler.vertex.max-parallelism", "0", "expected a whole number >= 1"),
    ("job.autoscaler.excluded.periods", "every night", "expected a daily range"),
    ("flinkscale.utilisation.target", "0.5", "unknown setting for policy 'flinkscale'"),
    ("flinkscale.policy", "magic", "unknown policy 'magic'"),
])
def test_a_jobs_bad_key_names_the_job_and_the_key(key: str, value: str, message: str) -> None:
    with pytest.raises(JobSettingsError) as caught:
        resolve_job_settings(JOB, "clicks", config(), job_config(**{key: value}))
    text = str(caught.value)
    assert text.startswith(f"job clicks ({JOB}): {key}: "), text
    assert message in text and "\n" not in text


def test_one_jobs_bad_value_does_not_affect_the_others() -> None:
    jobs = [JobRef("1" * 32, "clicks", job_config(**{"job.autoscaler.utilization.target": "lots"})),
            JobRef("2" * 32, "etl-orders", job_config()),
            JobRef("3" * 32, "legacy-billing", None)]
    results = resolve_jobs(jobs, config())
    assert isinstance(results["1" * 32], JobSettingsError)
    ok = results["2" * 32]
    assert not isinstance(ok, JobSettingsError) and ok.policy_settings["utilization.target"].value == "0.6"
    assert not isinstance(results["3" * 32], JobSettingsError)


def test_a_malformed_config_entry_names_the_job_and_the_entry() -> None:
    with pytest.raises(JobSettingsError, match=r"jobmanager/config\[1\]\.value"):
        resolve_job_settings(JOB, "clicks", AutoscaleConfig(), [{"key": "a", "value": "b"}, {"key": "c", "value": 3}])


def test_cluster_settings_from_the_file_and_max_slots_from_the_command_line() -> None:
    cluster = config().cluster
    assert cluster.max_slots.value == 40 and cluster.quota_cpu.value == 64.0
    assert cluster.quota_memory_bytes.value == 256 * 10**9
    assert cluster.max_slots.source == f"file:{PATH}#cluster"
    overridden = cluster.with_max_slots(100)
    assert overridden.max_slots.value == 100 and overridden.max_slots.source == "cli"
    assert cluster.with_max_slots(None) is cluster
    with pytest.raises(InputError, match="--max-slots"):
        cluster.with_max_slots(0)


# --- excluded periods ------------------------------------------------------------------------------------

def test_a_daily_range_across_midnight() -> None:
    (period,) = parse_excluded_periods("22:00-06:00")
    day = datetime(2026, 3, 14)
    inside = [day.replace(hour=22), day.replace(hour=23, minute=59, second=59), day, day.replace(hour=5, minute=59)]
    outside = [day.replace(hour=6), day.replace(hour=12), day.replace(hour=21, minute=59, second=59)]
    assert all(period.contains(t) for t in inside)
    assert not any(period.contains(t) for t in outside)


def test_a_daily_range_within_a_day_with_seconds() -> None:
    (period,) = parse_excluded_periods("9:30:30-10:50:20")
    day = datetime(2026, 3, 14)
    assert period.contains(day.replace(hour=9, minute=30, second=30))
    assert not period.contains(day.replace(hour=9, minute=30, second=29))
    assert not period.contains(day.replace(hour=10, minute=50, second=20))


def test_cron_periods_match_whole_minutes() -> None:
    (period,) = parse_excluded_periods("* 1-5 * * SAT,SUN")
    saturday = datetime(2026, 3, 14)  # a Saturday
    assert period.contains(saturday.replace(hour=1, second=1)) and period.contains(saturday.replace(hour=5, minute=59))
    assert not period.contains(saturday.replace(hour=6)) and not period.contains(saturday - timedelta(days=1, hours=-2))
    (quarter,) = parse_excluded_periods("0,15,30,45 * * * *")
    assert quarter.contains(saturday.replace(minute=15, second=59))
    assert not quarter.contains(saturday.replace(minute=16))


def test_several_periods_separated_as_the_operator_writes_them() -> None:
    periods = parse_excluded_periods("22:00-06:00; 0 12 * * *;")
    assert [type(p) for p in periods] == [DailyPeriod, CronPeriod]
    noon = datetime(2026, 3, 16, 12, 0, 30)
    assert excluded_by(periods, noon) == periods[1]
    assert excluded_by(periods, noon.replace(hour=23)) == periods[0]
    assert excluded_by(periods, noon.replace(hour=13)) is None


def test_excluded_periods_over_a_whole_week_minute_by_minute() -> None:
    periods = parse_excluded_periods(["23:30-00:30", "*/20 3 * * MON"])
    start = datetime(2026, 3, 16)  # a Monday
    hits = 0
    for minute in range(7 * 1440):
        at = start + timedelta(minutes=minute)
        expected = (at.hour == 23 and at.minute >= 30) or (at.hour == 0 and at.minute < 30) or (
            at.weekday() == 0 and at.hour == 3 and at.minute in (0, 20, 40))
        assert (excluded_by(periods, at) is not None) == expected, at
        hits += expected
    assert hits == 7 * 60 + 3


@pytest.mark.parametrize(("text", "message"), [
    ("22:00-22:00", "the same time"),
    ("24:00-01:00", "not a time of day"),
    ("* * * *", "expected a daily range"),
    ("61 * * * *", "not a valid cron expression"),
    ("0 0 31 2 *", "not a valid cron expression"),
])
def test_bad_periods_name_the_period(text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_excluded_periods(text)
    assert message in str(caught.value) and str(caught.value).startswith("excluded.periods: ")
