"""``flinkscale load`` argument handling: rates from --rate or a simulator trace, and one-line errors (exit 2).

Nothing here reaches a broker: every case fails (or is checked) before the command connects. Producing to a real
broker is in tests/integration/test_load_cli.py.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import pytest

from flinkscale.cli import main
from flinkscale.cli.load import load_command, plan_load, resolve_bootstrap
from flinkscale.core.errors import InputError
from flinkscale.kafka.broker import BrokerInfo, EmbeddedBroker
from flinkscale.kafka.loadgen import DEFAULT_LINGER_MS


@pytest.mark.parametrize(("rate", "duration", "expected"), [
    ("5k/s", "3s", [5000.0] * 3),
    ("120/min", "2s", [2.0] * 2),
    ("250", "1.5s", [250.0] * 2),    # whole seconds: a partial second is produced as a full one
])
def test_a_constant_rate_is_the_same_target_every_second(rate: str, duration: str, expected: list[float]) -> None:
    assert list(plan_load(rate, None, duration).rates) == expected


def test_a_step_trace_file_gives_before_then_after(tmp_path: Path) -> None:
    trace = tmp_path / "step.yaml"
    trace.write_text("{type: step, before: 1k/s, after: 3k/s, at: 2s}\n")
    plan = plan_load(None, trace, "4s")
    assert list(plan.rates) == [1000.0, 1000.0, 3000.0, 3000.0]
    assert plan.target_records == 8000.0


def test_a_scenario_file_lends_its_trace_and_event_size(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("event_bytes: 500\ntrace: {type: constant, rate: 1MB/s}\npipeline: {vertices: []}\n")
    # 1 MB/s of 500-byte events = 2,000 events/s; the rest of the scenario is not read.
    assert list(plan_load(None, scenario, "2s").rates) == [2000.0, 2000.0]


def test_a_replay_trace_reads_its_csv_next_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "rates.csv").write_text("seconds,rate\n0,100\n2,400\n")
    trace = tmp_path / "replay.yaml"
    trace.write_text("{type: replay, csv: rates.csv}\n")
    assert list(plan_load(None, trace, "4s").rates) == [100.0, 100.0, 400.0, 400.0]


@pytest.mark.parametrize(("rate", "profile", "duration", "field"), [
    ("5k/s", "p.yaml", "10s", "--rate"),       # both
    (None, None, "10s", "--rate"),             # neither
    ("5k/s", None, None, "--duration"),
    ("5k/s", None, "0s", "--duration"),
    ("1MB/s", None, "10s", "--rate"),          # a byte rate has no event size here
    ("fast", None, "10s", "--rate"),
])
def test_bad_rate_and_duration_name_the_flag(rate: str | None, profile: str | None, duration: str | None,
                                             field: str, tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        plan_load(rate, tmp_path / profile if profile else None, duration)
    assert caught.value.field == field


@pytest.mark.parametrize(("content", "field"), [
    ("{type: sawtooth, rate: 1k/s}", "trace.type"),
    ("{type: constant}", "trace.rate"),
    ("{type: constant, rate: 1k/s, colour: red}", "trace"),
    ("{type: constant, rate: 1MB/s}", "trace.rate"),   # a byte rate needs the scenario's event_bytes
    ("[1, 2]", "trace.yaml"),
])
def test_bad_trace_files_name_the_field(content: str, field: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "trace.yaml"
    trace.write_text(content + "\n")
    assert main(["load", "--topic", "t", "--profile", str(trace), "--duration", "5s", "--bootstrap", "x:1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("flinkscale: error:") and "\n" not in err
    assert field in err


@pytest.mark.parametrize(("args", "field"), [
    (["--rate", "1k/s", "--duration", "5s", "--format", "xml"], "--format"),
    (["--rate", "1k/s", "--duration", "5s", "--users", "0"], "--users"),
    (["--rate", "1k/s", "--duration", "5s", "--zipf", "-1"], "--zipf"),
    (["--rate", "1k/s", "--duration", "5s", "--first-id", "-5"], "--first-id"),
    (["--rate", "1k/s", "--duration", "5s", "--linger-ms", "-1"], "--linger-ms"),
    (["--rate", "1k/s", "--duration", "5s", "--linger-ms", "nan"], "--linger-ms"),
    (["--rate", "1k/s", "--duration", "5s", "--linger-ms", "1e6"], "--linger-ms"),
    (["--rate", "1k/s"], "--duration"),
])
def test_bad_flags_are_one_line_and_exit_code_2(args: list[str], field: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["load", "--topic", "t", "--state-dir", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("flinkscale: error:") and "\n" not in err
    assert field in err


def test_without_bootstrap_and_without_an_embedded_broker_it_says_how_to_get_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["load", "--topic", "t", "--rate", "1k/s", "--duration", "5s", "--state-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--bootstrap" in err and "flinkscale kafka up" in err


def test_the_embedded_brokers_bootstrap_is_the_default(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path)
    broker.dir.mkdir(parents=True)
    # What `flinkscale kafka up` records (broker.json); nothing is started.
    broker.info_file.write_text(json.dumps(dataclasses.asdict(BrokerInfo("127.0.0.1:39092", 39092, 1, 0.0))))
    assert resolve_bootstrap(None, tmp_path) == "127.0.0.1:39092"
    assert resolve_bootstrap("kafka:9092", tmp_path) == "kafka:9092"


def test_the_linger_flag_defaults_to_the_generators_own_linger() -> None:
    # The CLI cannot import the generator (and its Kafka client) at startup, so it states the default itself.
    assert inspect.signature(load_command).parameters["linger_ms"].default == DEFAULT_LINGER_MS
