"""Per-job autoscaler settings, resolved from three sources, each setting remembering where it came from.

Sources, later wins:

1. defaults: the policy's own defaults (``core.policy.registry``) and the operational defaults below;
2. the config file (``--config autoscale.yaml``): its ``defaults`` section, then every ``overrides`` entry
   whose ``match`` glob(s) match the job's name, in file order;
3. the job's own configuration, as Flink returns it from ``GET /jobs/:jid/jobmanager/config`` (a list of
   ``{key, value}``): keys under ``job.autoscaler.`` (the Flink operator's names, also with its legacy
   ``kubernetes.operator.`` prefix) and ``flinkscale.``. Values there are read as Flink reads them: a
   duration written as a bare number is milliseconds.

Every key is reduced to its short form (``job.autoscaler.scaling.enabled`` -> ``scaling.enabled``) so the
three sources speak one language. A source that names a ``policy`` starts that policy's settings afresh
(settings written for another policy would mean something else); operational settings carry over.

Operational settings (the same for every policy): ``enabled`` (false: the loop leaves the job alone),
``scaling.enabled`` (false: recommend only), ``excluded.periods`` (daily ranges such as ``22:00-06:00``
and 5-field cron expressions, separated by ``;`` as the operator writes them, or a YAML list), ``quota.cpu``
and ``quota.memory`` (per job), ``vertex.max-parallelism``. The file's ``cluster`` section holds the
per-cluster ceiling: ``max-slots``, ``quota.cpu``, ``quota.memory``, and optionally the TaskManager size the
quotas are divided by (``taskmanager.cpu``, ``taskmanager.memory.process.size``, ``taskmanager.numberOfTaskSlots``);
``core.quota`` turns them into slots.

Errors: the file is validated once, strictly (pydantic, unknown keys refused), and every problem is one
``InputError`` naming the file and the key path. A job's own bad value is a ``JobSettingsError`` naming the
job and the key; ``resolve_jobs`` returns it for that job only, so the other jobs keep being served. Keys
under ``job.autoscaler.`` that flinkscale does not use (the operator has many) are listed as ignored,
never an error; an unknown ``flinkscale.`` key is an error (a typo in our own namespace).

Pure: the caller reads the file and the REST answer and hands in text and lists; excluded periods are
evaluated at a ``datetime`` the caller passes (in the timezone it wants them read in).
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from cronsim import CronSim, CronSimError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flinkscale.core.errors import InputError
from flinkscale.core.inputs import load_yaml
from flinkscale.core.memory import TaskManagerMemoryOptions, task_manager_memory
from flinkscale.core.policy.registry import POLICY_NAMES, make_policy, policy_settings
from flinkscale.core.units import parse_flink_duration, parse_size

T = TypeVar("T")

DEFAULT_POLICY = "flinkscale"
DEFAULT_SOURCE = "default"
JOB_CONFIG_SOURCE = "job-config"
JOB_CONFIG_PREFIXES = ("kubernetes.operator.job.autoscaler.", "job.autoscaler.", "flinkscale.")
OPERATION_KEYS = ("enabled", "scaling.enabled", "excluded.periods", "quota.cpu", "quota.memory",
                  "vertex.max-parallelism")


class JobSettingsError(InputError):
    """One job's settings are invalid; names the job and the key. The other jobs are unaffected."""

    def __init__(self, message: str, *, job_id: str, job_name: str, key: str) -> None:
        self.job_id = job_id
        self.job_name = job_name
        self.key = key
        super().__init__(f"job {job_name} ({job_id}): {key}: {message}")


@dataclass(frozen=True)
class Sourced(Generic[T]):
    """A resolved value and where it came from: default, file:PATH#SECTION, job-config or cli."""

    value: T
    source: str


# --- excluded periods ----------------------------------------------------------------------------

_DAILY = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?-(\d{1,2}):(\d{2})(?::(\d{2}))?$")


@dataclass(frozen=True)
class DailyPeriod:
    """Every day from ``start`` to ``end`` (seconds after midnight); crosses midnight when end < start."""

    text: str
    start: int
    end: int

    def contains(self, at: datetime) -> bool:
        second = at.hour * 3600 + at.minute * 60 + at.second
        if self.start < self.end:
            return self.start <= second < self.end
        return second >= self.start or second < self.end


@dataclass(frozen=True)
class CronPeriod:
    """Every minute a 5-field cron expression matches (``* 1-5 * * SAT,SUN``: 01:00-05:59 at weekends)."""

    text: str

    def contains(self, at: datetime) -> bool:
        minute = at.replace(second=0, microsecond=0)
        return next(CronSim(self.text, minute - timedelta(seconds=1))) == minute


ExcludedPeriod = DailyPeriod | CronPeriod


def _seconds_of_day(hours: str, minutes: str, seconds: str | None, text: str, field: str) -> int:
    h, m, s = int(hours), int(minutes), int(seconds or 0)
    if h > 23 or m > 59 or s > 59:
        raise InputError(f"{text!r}: not a time of day (HH:MM or HH:MM:SS, 00:00 to 23:59:59)", field=field)
    return h * 3600 + m * 60 + s


def parse_excluded_periods(value: str | Sequence[str], field: str = "excluded.periods") -> tuple[ExcludedPeriod, ...]:
    """Daily ranges (``22:00-06:00``) and 5-field cron expressions, ``;``-separated or as a list."""
    items = value.split(";") if isinstance(value, str) else list(value)
    periods: list[ExcludedPeriod] = []
    for raw in items:
        text = raw.strip()
        if not text:
            continue
        daily = _DAILY.match(text)
        if daily:
            start = _seconds_of_day(daily[1], daily[2], daily[3], text, field)
            end = _seconds_of_day(daily[4], daily[5], daily[6], text, field)
            if start == end:
                raise InputError(f"{text!r}: start and end are the same time (an empty or a whole-day range?)",
                                 field=field)
            periods.append(DailyPeriod(text, start, end))
            continue
        if len(text.split()) != 5:
            raise InputError(f"{text!r}: expected a daily range such as 22:00-06:00 or a 5-field cron expression "
                             "(minute hour day-of-month month day-of-week)", field=field)
        try:
            CronSim(text, datetime(2000, 1, 1))
        except CronSimError as exc:
            raise InputError(f"{text!r}: not a valid cron expression ({exc})", field=field) from None
        periods.append(CronPeriod(text))
    return tuple(periods)


def excluded_by(periods: Sequence[ExcludedPeriod], at: datetime) -> ExcludedPeriod | None:
    """The first period that contains ``at`` (no rescale then), or None."""
    return next((p for p in periods if p.contains(at)), None)


# --- the config file -------------------------------------------------------------------------------

SettingValue = str | int | float | bool | list[str]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class _Section(_Strict):
    policy: str | None = None
    settings: dict[str, SettingValue] = Field(default_factory=dict)


class _Override(_Section):
    name: str = Field(min_length=1)
    match: str | list[str]


class _Cluster(_Strict):
    max_slots: int | None = Field(None, alias="max-slots", gt=0)
    quota_cpu: float | None = Field(None, alias="quota.cpu", gt=0, allow_inf_nan=False)
    quota_memory: str | int | None = Field(None, alias="quota.memory")
    # The TaskManager size the quotas are divided by (default: read from each job's Flink configuration).
    task_manager_cpu: float | None = Field(None, alias="taskmanager.cpu", gt=0, allow_inf_nan=False)
    task_manager_memory: str | int | None = Field(None, alias="taskmanager.memory.process.size")
    task_manager_slots: int | None = Field(None, alias="taskmanager.numberOfTaskSlots", gt=0)


class _File(_Strict):
    defaults: _Section = Field(default_factory=_Section)
    overrides: list[_Override] = Field(default_factory=list)
    cluster: _Cluster = Field(default_factory=lambda: _Cluster.model_validate({}))


def _short(key: str) -> str:
    for prefix in JOB_CONFIG_PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def _policy_keys(policy: str) -> dict[str, str]:
    """Short key -> the policy's own (canonical) key."""
    return {_short(spec.key): spec.key for spec in policy_settings(policy)}


def _as_text(value: SettingValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(value)
    return str(value)


@dataclass(frozen=True)
class Layer:
    """One source's settings: short key -> (the key as written, the text value)."""

    source: str
    policy: str | None
    values: Mapping[str, tuple[str, str]]


@dataclass(frozen=True)
class Override:
    name: str
    patterns: tuple[str, ...]
    layer: Layer

    def matches(self, job_name: str) -> bool:
        return any(fnmatch.fnmatchcase(job_name, pattern) for pattern in self.patterns)


@dataclass(frozen=True)
class ClusterSettings:
    """The per-cluster ceiling for elastic clusters: configured, not observed."""

    max_slots: Sourced[int | None] = field(default_factory=lambda: Sourced(None, DEFAULT_SOURCE))
    quota_cpu: Sourced[float | None] = field(default_factory=lambda: Sourced(None, DEFAULT_SOURCE))
    quota_memory_bytes: Sourced[int | None] = field(default_factory=lambda: Sourced(None, DEFAULT_SOURCE))
    # The TaskManager size stated in the file (None: each job's Flink configuration, then Flink's defaults).
    task_manager_cpu: float | None = None
    task_manager_memory_bytes: int | None = None
    task_manager_slots: int | None = None

    def with_max_slots(self, max_slots: int | None, source: str = "cli") -> ClusterSettings:
        """``--max-slots`` on the command line wins over the file."""
        if max_slots is None:
            return self
        if max_slots < 1:
            raise InputError(f"must be >= 1, got {max_slots}", field="--max-slots")
        return replace(self, max_slots=Sourced(max_slots, source))

    def with_quotas(self, quota_cpu: str | None, quota_memory: str | None, source: str = "cli") -> ClusterSettings:
        """``--quota-cpu`` / ``--quota-memory`` on the command line win over the file."""
        result = self
        if quota_cpu is not None:
            try:
                cores = float(quota_cpu)
            except ValueError:
                raise InputError(f"expected a number of cores, got {quota_cpu!r}", field="--quota-cpu") from None
            if not math.isfinite(cores) or cores <= 0:
                raise InputError(f"must be > 0, got {quota_cpu!r}", field="--quota-cpu")
            result = replace(result, quota_cpu=Sourced(cores, source))
        if quota_memory is not None:
            memory = parse_size(quota_memory, field="--quota-memory")
            if memory <= 0:
                raise InputError(f"must be > 0, got {quota_memory!r}", field="--quota-memory")
            result = replace(result, quota_memory_bytes=Sourced(memory, source))
        return result


@dataclass(frozen=True)
class AutoscaleConfig:
    """The parsed config file (or none: ``AutoscaleConfig()`` is all defaults)."""

    path: str | None = None
    defaults: Layer = field(default_factory=lambda: Layer(DEFAULT_SOURCE, None, {}))
    overrides: tuple[Override, ...] = ()
    cluster: ClusterSettings = field(default_factory=ClusterSettings)


def _pydantic_message(error: Mapping[str, Any]) -> tuple[str, str]:
    path = ""
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    if error["type"] == "extra_forbidden":
        return path, "unknown key"
    if error["type"] == "missing":
        return path, "required key missing"
    return path, str(error["msg"])


def parse_config_text(text: str, path: str) -> AutoscaleConfig:
    """The config file's text (``path`` names it in errors and in each setting's source)."""
    data = load_yaml(text, path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping with defaults, overrides and cluster")
    try:
        parsed = _File.model_validate(data)
    except ValidationError as exc:
        key_path, message = _pydantic_message(exc.errors()[0])
        raise InputError(f"{path}: {key_path}: {message}") from None

    default_policy = parsed.defaults.policy or DEFAULT_POLICY
    defaults = _file_layer(parsed.defaults, f"file:{path}#defaults", "defaults", default_policy, path)
    overrides: list[Override] = []
    names: set[str] = set()
    for index, entry in enumerate(parsed.overrides):
        where = f"overrides[{index}]"
        if entry.name in names:
            raise InputError(f"{path}: {where}.name: {entry.name!r} is used twice")
        names.add(entry.name)
        patterns = (entry.match,) if isinstance(entry.match, str) else tuple(entry.match)
        if not patterns or any(not p for p in patterns):
            raise InputError(f"{path}: {where}.match: give at least one non-empty job-name glob")
        layer = _file_layer(entry, f"file:{path}#{entry.name}", where, entry.policy or default_policy, path)
        overrides.append(Override(entry.name, patterns, layer))
    return AutoscaleConfig(path, defaults, tuple(overrides), _cluster(parsed.cluster, path))


def _file_layer(section: _Section, source: str, where: str, policy: str, path: str) -> Layer:
    if policy not in POLICY_NAMES:
        raise InputError(f"{path}: {where}.policy: unknown policy {policy!r} (choose from {', '.join(POLICY_NAMES)})")
    known = _policy_keys(policy)
    values: dict[str, tuple[str, str]] = {}
    for key, raw in section.settings.items():
        short = _short(key)
        field_path = f"{where}.settings.{key}"
        if isinstance(raw, list) and short != "excluded.periods":
            raise InputError(f"{path}: {field_path}: a list is only accepted for excluded.periods")
        if short not in OPERATION_KEYS and short not in known:
            raise InputError(f"{path}: {field_path}: unknown setting for policy {policy!r} "
                             f"(known: {', '.join(sorted(set(known) | set(OPERATION_KEYS)))})")
        if short in values:
            raise InputError(f"{path}: {field_path}: given twice (also as {values[short][0]!r})")
        values[short] = (key, _as_text(raw))
    layer = Layer(source, section.policy, values)
    try:  # each section must be valid on its own: an error names the file, not a job
        _operations(layer.values, {}, lambda key, message: InputError(message, field=key))
        _check_policy(policy, {short: text for short, (_, text) in values.items()})
    except InputError as exc:
        raise InputError(f"{path}: {where}.settings.{exc.field or ''}: {_strip_field(exc)}") from None
    return layer


def _strip_field(exc: InputError) -> str:
    text = str(exc)
    return text[len(exc.field) + 2:] if exc.field and text.startswith(f"{exc.field}: ") else text


def _check_policy(policy: str, short_values: Mapping[str, str]) -> None:
    known = _policy_keys(policy)
    make_policy(policy, {known[short]: text for short, text in short_values.items() if short in known})


def _cluster(section: _Cluster, path: str) -> ClusterSettings:
    source = f"file:{path}#cluster"
    memory = tm_memory = None
    if section.quota_memory is not None:
        memory = parse_size(section.quota_memory, field=f"{path}: cluster.quota.memory")
        if memory <= 0:
            raise InputError(f"{path}: cluster.quota.memory: must be > 0, got {section.quota_memory!r}")
    if section.task_manager_memory is not None:
        tm_memory = parse_size(section.task_manager_memory, field=f"{path}: cluster.taskmanager.memory.process.size")
        try:  # Flink's memory model: a size it would refuse to start is refused here
            task_manager_memory(TaskManagerMemoryOptions(process_size=tm_memory))
        except InputError as exc:
            raise InputError(f"{path}: cluster.taskmanager.memory.process.size: {_strip_field(exc)}") from None
    return ClusterSettings(Sourced(section.max_slots, source if section.max_slots is not None else DEFAULT_SOURCE),
                           Sourced(section.quota_cpu, source if section.quota_cpu is not None else DEFAULT_SOURCE),
                           Sourced(memory, source if memory is not None else DEFAULT_SOURCE),
                           section.task_manager_cpu, tm_memory, section.task_manager_slots)


# --- resolution ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class JobSettings:
    """Everything the loop needs to serve one job, each value with its source."""

    job_id: str
    job_name: str
    policy: Sourced[str]
    # The policy's settings by its own key, defaults included, as text (``make_policy`` parses them).
    policy_settings: Mapping[str, Sourced[str]]
    enabled: Sourced[bool]
    scaling_enabled: Sourced[bool]
    excluded_periods: Sourced[tuple[ExcludedPeriod, ...]]
    quota_cpu: Sourced[float | None]
    quota_memory_bytes: Sourced[int | None]
    vertex_max_parallelism: Sourced[int | None]
    # Job-config keys under job.autoscaler.* that flinkscale does not use.
    ignored: tuple[str, ...] = ()

    def policy_values(self) -> dict[str, str]:
        """Only what a source set (defaults are the policy's own), ready for ``make_policy``."""
        return {key: s.value for key, s in self.policy_settings.items() if s.source != DEFAULT_SOURCE}

    def sources(self) -> dict[str, str]:
        """Where every setting came from, for the decision log and ``status``."""
        operations: dict[str, Sourced[Any]] = {
            "policy": self.policy, "enabled": self.enabled, "scaling.enabled": self.scaling_enabled,
            "excluded.periods": self.excluded_periods, "quota.cpu": self.quota_cpu,
            "quota.memory": self.quota_memory_bytes, "vertex.max-parallelism": self.vertex_max_parallelism}
        return {**{key: s.source for key, s in self.policy_settings.items()},
                **{key: s.source for key, s in operations.items()}}


class _ConfigEntry(_Strict):
    key: str
    value: str


def job_config_layer(entries: Sequence[Mapping[str, Any]] | None, *, job_id: str, job_name: str) -> Layer:
    """The ``job.autoscaler.*`` / ``flinkscale.*`` keys of a ``jobmanager/config`` answer as a layer."""
    values: dict[str, tuple[str, str]] = {}
    policy: str | None = None
    for index, raw in enumerate(entries or ()):
        try:
            entry = _ConfigEntry.model_validate(raw)
        except ValidationError as exc:
            key_path, message = _pydantic_message(exc.errors()[0])
            raise JobSettingsError(message, job_id=job_id, job_name=job_name,
                                   key=f"jobmanager/config[{index}].{key_path}") from None
        if not entry.key.startswith(JOB_CONFIG_PREFIXES):
            continue
        short = _short(entry.key)
        if short == "policy":
            policy = entry.value.strip()
            continue
        if short in values:
            raise JobSettingsError(f"given twice (also as {values[short][0]!r})", job_id=job_id, job_name=job_name,
                                   key=entry.key)
        values[short] = (entry.key, entry.value)
    return Layer(JOB_CONFIG_SOURCE, policy, values)


def resolve_job_settings(job_id: str, job_name: str, config: AutoscaleConfig,
                         job_config: Sequence[Mapping[str, Any]] | None = None) -> JobSettings:
    """The job's settings; ``JobSettingsError`` naming the job and the key if its own configuration is bad."""
    layers = [config.defaults, *(o.layer for o in config.overrides if o.matches(job_name)),
              job_config_layer(job_config, job_id=job_id, job_name=job_name)]
    policy = Sourced(DEFAULT_POLICY, DEFAULT_SOURCE)
    for layer in layers:
        if layer.policy is not None:
            policy = Sourced(layer.policy, layer.source)
    if policy.value not in POLICY_NAMES:
        raise JobSettingsError(f"unknown policy {policy.value!r} (choose from {', '.join(POLICY_NAMES)})",
                               job_id=job_id, job_name=job_name, key="flinkscale.policy")
    known = _policy_keys(policy.value)

    chosen: dict[str, tuple[str, str, str]] = {}  # short -> (key as written, text, source)
    ignored: list[str] = []
    for layer in layers:
        if layer.policy is not None:  # a new policy starts its settings afresh
            chosen = {k: v for k, v in chosen.items() if k in OPERATION_KEYS}
        for short, (written, text) in layer.values.items():
            if short in OPERATION_KEYS or short in known:
                if layer.source == JOB_CONFIG_SOURCE and short in known:
                    text = _as_flink_reads_it(policy.value, known[short], text)
                chosen[short] = (written, text, layer.source)
            elif layer.source == JOB_CONFIG_SOURCE and not written.startswith("flinkscale."):
                ignored.append(written)
            else:
                raise JobSettingsError(f"unknown setting for policy {policy.value!r}", job_id=job_id,
                                       job_name=job_name, key=written)

    def job_error(key: str, message: str) -> JobSettingsError:
        written = chosen[key][0] if key in chosen else key
        return JobSettingsError(message, job_id=job_id, job_name=job_name, key=written)

    operations = _operations({k: (w, t) for k, (w, t, _) in chosen.items()},
                             {k: s for k, (_, _, s) in chosen.items()}, job_error)
    policy_texts = {short: text for short, (_, text, _) in chosen.items() if short in known}
    try:
        _check_policy(policy.value, policy_texts)
    except InputError as exc:
        short = next((s for s, canonical in known.items() if canonical == exc.field), exc.field or "")
        raise job_error(short, _strip_field(exc)) from None
    settings = {canonical: Sourced(chosen[short][1], chosen[short][2]) if short in chosen
                else Sourced(_default(policy.value, canonical), DEFAULT_SOURCE)
                for short, canonical in known.items()}
    return JobSettings(job_id, job_name, policy, settings, *operations, ignored=tuple(ignored))


_BARE_NUMBER = re.compile(r"^\s*\d+(\.\d+)?\s*$")


def _as_flink_reads_it(policy: str, key: str, text: str) -> str:
    """A duration in a job's Flink configuration that is a bare number means milliseconds there (Flink's
    rule), seconds in flinkscale's flags: spell it with its unit so both read it the same."""
    kind = next(spec.kind for spec in policy_settings(policy) if spec.key == key)
    if kind == "duration" and _BARE_NUMBER.match(text):
        return f"{parse_flink_duration(text.strip()):g}s"
    return text


def _default(policy: str, key: str) -> str:
    return next(spec.default for spec in policy_settings(policy) if spec.key == key)


_Operations = tuple[Sourced[bool], Sourced[bool], Sourced[tuple[ExcludedPeriod, ...]], Sourced[float | None],
                    Sourced[int | None], Sourced[int | None]]


def _operations(values: Mapping[str, tuple[str, str]], sources: Mapping[str, str], error: Any) -> _Operations:
    """Parse the operational keys; ``error(short_key, message)`` builds the exception to raise."""

    def source(key: str) -> str:
        return sources.get(key, DEFAULT_SOURCE)

    def text(key: str) -> str | None:
        return values[key][1].strip() if key in values else None

    def flag(key: str) -> Sourced[bool]:
        raw = text(key)
        if raw is None:
            return Sourced(True, DEFAULT_SOURCE)
        if raw.lower() in ("true", "false"):
            return Sourced(raw.lower() == "true", source(key))
        raise error(key, f"expected true or false, got {raw!r}")

    periods_text = text("excluded.periods")
    try:
        periods = parse_excluded_periods(periods_text or "", field="excluded.periods")
    except InputError as exc:
        raise error("excluded.periods", _strip_field(exc)) from None

    cpu_text = text("quota.cpu")
    cpu: float | None = None
    if cpu_text is not None:
        try:
            cpu = float(cpu_text)
        except ValueError:
            raise error("quota.cpu", f"expected a number of cores, got {cpu_text!r}") from None
        if not math.isfinite(cpu) or cpu <= 0:
            raise error("quota.cpu", f"must be > 0, got {cpu_text!r}")

    memory_text = text("quota.memory")
    memory: int | None = None
    if memory_text is not None:
        try:
            memory = parse_size(memory_text)
        except InputError as exc:
            raise error("quota.memory", str(exc)) from None
        if memory <= 0:
            raise error("quota.memory", f"must be > 0, got {memory_text!r}")

    max_text = text("vertex.max-parallelism")
    max_parallelism: int | None = None
    if max_text is not None:
        if not max_text.isdigit() or int(max_text) < 1:
            raise error("vertex.max-parallelism", f"expected a whole number >= 1, got {max_text!r}")
        max_parallelism = int(max_text)

    return (flag("enabled"), flag("scaling.enabled"), Sourced(periods, source("excluded.periods")),
            Sourced(cpu, source("quota.cpu")), Sourced(memory, source("quota.memory")),
            Sourced(max_parallelism, source("vertex.max-parallelism")))


@dataclass(frozen=True)
class JobRef:
    job_id: str
    job_name: str
    config: Sequence[Mapping[str, Any]] | None = None


def resolve_jobs(jobs: Sequence[JobRef], config: AutoscaleConfig) -> dict[str, JobSettings | JobSettingsError]:
    """Each job's settings or its own error; one job's bad configuration never affects another."""
    results: dict[str, JobSettings | JobSettingsError] = {}
    for job in jobs:
        try:
            results[job.job_id] = resolve_job_settings(job.job_id, job.job_name, config, job.config)
        except JobSettingsError as exc:
            results[job.job_id] = exc
    return results
