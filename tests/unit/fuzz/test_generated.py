"""Hypothesis-generated bad inputs: random bytes as files, hostile values anywhere in a spec, a snapshot or a
scenario, and arbitrary text in numeric flags.

A generated input may happen to be valid (exit 0); the contract is that it never ends any other way than exit 0,
or exit 2 with one line on stderr that starts ``flinkscale: error:`` and is not an internal error: no traceback,
no bug report, no hang.
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.fuzz._contract import Case, Outcome, run_cli, violations
from tests.unit.fuzz.corpus import SCENARIO, SNAPSHOT, SPEC

_SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_TMP = Path(tempfile.mkdtemp(prefix="flinkscale-fuzz-gen-"))


@pytest.fixture(autouse=True, scope="module")
def _cleanup() -> Iterator[None]:
    yield
    shutil.rmtree(_TMP, ignore_errors=True)

# Values a careless or hostile user writes where a number, size, rate or duration belongs.
HOSTILE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 1e-320, 0.0, -0.0, 2**63, -(2**63), 10**30, -1]),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.booleans(),
    st.none(),
    st.text(max_size=12),
    st.sampled_from(["1e400TB", "1e400/s", "1e400s", "inf", "nan", ".inf", "-5s", "1e300TB/day", "0/s",
                     "100000d", "5k/fortnight", "12 parsecs", "1e308kB"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def _assert_contract(outcome: Outcome, argv: tuple[str, ...]) -> None:
    """Exit 0, or the one-line contract with exit 2; never an internal error."""
    if outcome.exit_code == 0 and outcome.escaped is None and not outcome.timed_out:
        return
    problems = violations(Case("generated", argv, ()), outcome)
    assert not problems, f"{problems}: {list(argv)}\n{outcome.stderr[:2000]}\n{outcome.escaped or ''}"
    line = outcome.error_lines[0]
    assert line.startswith("flinkscale: error: "), line
    assert "internal error" not in line, line


def _leaves(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in _leaves(v, (*path, k))] or [path]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in _leaves(v, (*path, i))] or [path]
    return [path]


def _replace(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    result = copy.deepcopy(data)
    if not path:
        return value
    node = result
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return result


_SPEC = yaml.safe_load(SPEC.read_text())
_SNAPSHOT = json.loads(SNAPSHOT.read_text())
_SCENARIO = {**yaml.safe_load(SCENARIO.read_text()), "duration": "10m", "policies": ["static"]}


@_SETTINGS
@given(data=st.data(), value=HOSTILE)
def test_a_hostile_value_anywhere_in_a_spec(data: st.DataObject, value: Any) -> None:
    path = data.draw(st.sampled_from(_leaves(_SPEC)))
    spec_file = _TMP / "spec.yaml"
    spec_file.write_text(yaml.safe_dump(_replace(_SPEC, path, value)))
    argv = ("plan", str(spec_file), "--format", "json")
    _assert_contract(run_cli(argv), argv)


@_SETTINGS
@given(data=st.data(), value=HOSTILE)
def test_a_hostile_value_anywhere_in_a_snapshot(data: st.DataObject, value: Any) -> None:
    path = data.draw(st.sampled_from(_leaves(_SNAPSHOT)))
    snapshot_file = _TMP / "snapshot.json"
    snapshot_file.write_text(json.dumps(_replace(_SNAPSHOT, path, value)))  # NaN/Infinity written as JSON allows
    argv = ("decide", "--snapshot", str(snapshot_file), "--format", "json")
    _assert_contract(run_cli(argv), argv)


@_SETTINGS
@given(data=st.data(), value=HOSTILE)
def test_a_hostile_value_anywhere_in_a_scenario(data: st.DataObject, value: Any) -> None:
    path = data.draw(st.sampled_from(_leaves(_SCENARIO)))
    scenario_file = _TMP / "scenario.yaml"
    scenario_file.write_text(yaml.safe_dump(_replace(_SCENARIO, path, value)))
    argv = ("simulate", str(scenario_file), "--no-progress", "--format", "json")
    _assert_contract(run_cli(argv), argv)


_FILE_COMMANDS = [
    ("spec.yaml", lambda p: ("plan", p)),
    ("profile.json", lambda p: ("plan", "--from-profile", p, "--target", "1TB/day")),
    ("snapshot.json", lambda p: ("decide", "--snapshot", p)),
    ("scenario.yaml", lambda p: ("simulate", p, "--no-progress")),
    ("config.yaml", lambda p: ("cluster", "up", "--config", p, "--state-dir", str(_TMP / "state"), "--slots", "0")),
]


@_SETTINGS
@given(command=st.sampled_from(_FILE_COMMANDS),
       content=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode),
                         st.sampled_from([b"[" * 5000, b"a: &a [1]\nb: [*a, *a]\n", b"- - - - -", b"{{{{",
                                          b"\xef\xbb\xbf", b"\x00", b"key: value\n---\nkey: 2"])))
def test_random_bytes_as_any_input_file(command: Any, content: bytes) -> None:
    name, argv_for = command
    path = _TMP / f"random-{name}"
    path.write_bytes(content)
    argv = argv_for(str(path))
    outcome = run_cli(argv)
    # Random bytes are never a valid plan, snapshot or scenario (and `--slots 0` stops `cluster up` before Flink).
    problems = violations(Case("random", argv, ()), outcome)
    assert not problems, f"{problems}: {content[:80]!r}\n{outcome.stderr[:2000]}\n{outcome.escaped or ''}"
    assert "internal error" not in outcome.error_lines[0]


_FLAGS = [
    ("--target", lambda v: ("plan", "--from-profile", str(SNAPSHOT), "--target", v)),
    ("--duration", lambda v: ("load", "--topic", "t", "--rate", "1k/s", "-d", v, "--bootstrap", "127.0.0.1:9")),
    ("--rate", lambda v: ("load", "--topic", "t", "--rate", v, "-d", "0s", "--bootstrap", "127.0.0.1:9")),
    ("--window", lambda v: ("profile", "--window", v, "--interval", "0s", "--state-dir", str(_TMP / "state"))),
    ("--zipf", lambda v: ("load", "--topic", "t", "--rate", "1k/s", "-d", "0s", "--zipf", v,
                          "--bootstrap", "127.0.0.1:9")),
    ("--keep", lambda v: ("shed", "set", "--topic", "c", "--keep", v, "--bootstrap", "127.0.0.1:9")),
    ("--set", lambda v: ("simulate", str(SCENARIO), "--no-progress", "--set", f"scenario.step={v}",
                         "--set", "scenario.duration=0")),
]


@_SETTINGS
@given(flag=st.sampled_from(_FLAGS),
       value=st.one_of(st.text(max_size=16), st.floats().map(repr),
                       st.sampled_from(["1e400", "-1e400", "nan", "inf", "1e400/s", "1e400s", "100000d", "[1,",
                                        "*x", "{a: ", "'", "0x10", "1_000", "½", "٣"])))
def test_arbitrary_text_in_a_numeric_flag(flag: Any, value: str) -> None:
    name, argv_for = flag
    argv = argv_for(value)
    outcome = run_cli(argv)
    if name == "--target" and outcome.exit_code == 0:
        # `plan` does no real work to guard against: a valid volume ("1", "1_000") is a plan, printed in full.
        assert "Traceback" not in outcome.stderr and outcome.stdout.strip(), f"--target={value!r}: {outcome.stderr}"
        return
    # Each other command above is also given a second value that is always wrong, so it never starts real work.
    problems = violations(Case("flag", argv, ()), outcome)
    assert not problems, f"{problems}: {name}={value!r}\n{outcome.stderr[:2000]}\n{outcome.escaped or ''}"
    assert "internal error" not in outcome.error_lines[0]
