"""The PyFlink job linter on a corpus of small job files with hand-annotated expected findings.

Each ``tests/fixtures/lint/bad_*.py`` line that must be reported ends in ``# expect: FSL00N [FSL00N ...]``;
``clean_*.py`` files must produce nothing. ``# lint-partitions: N`` passes the topic's partition count.
"""

from __future__ import annotations

import gc
import re
from collections import Counter
from pathlib import Path

import pytest

from flinkscale.core.errors import InputError
from flinkscale.core.lint import RULES, lint_source

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "lint"
EXPECT = re.compile(r"#\s*expect:\s*((?:FSL\d{3}\s*)+)")
PARTITIONS = re.compile(r"#\s*lint-partitions:\s*(\d+)")


def expected_findings(text: str) -> Counter[tuple[int, str]]:
    expected: Counter[tuple[int, str]] = Counter()
    for number, line in enumerate(text.splitlines(), start=1):
        match = EXPECT.search(line)
        if match:
            expected.update((number, rule) for rule in match.group(1).split())
    return expected


def lint_fixture(path: Path) -> tuple[str, Counter[tuple[int, str]]]:
    text = path.read_text()
    match = PARTITIONS.search(text)
    findings = lint_source(text, path.name, partitions=int(match.group(1)) if match else None)
    return text, Counter((f.line, f.rule_id) for f in findings)


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("bad_*.py")), ids=lambda p: p.name)
def test_bad_jobs_report_exactly_the_annotated_findings(path: Path) -> None:
    text, found = lint_fixture(path)
    assert found == expected_findings(text)


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("clean_*.py")), ids=lambda p: p.name)
def test_clean_jobs_have_no_findings(path: Path) -> None:
    _, found = lint_fixture(path)
    assert found == Counter()


def test_the_corpus_covers_every_rule() -> None:
    covered: set[str] = set()
    for path in FIXTURES.glob("bad_*.py"):
        covered.update(rule for _, rule in expected_findings(path.read_text()))
    assert covered == set(RULES)


def test_each_finding_says_why_and_how_to_fix() -> None:
    path = FIXTURES / "bad_counter_map.py"
    for finding in lint_source(path.read_text(), str(path)):
        assert finding.path == str(path) and finding.line > 0
        assert finding.why == RULES[finding.rule_id].why and finding.fix == RULES[finding.rule_id].fix
        text = finding.format_text()
        assert text.startswith(f"{path}:{finding.line}:") and finding.rule_id in text and "fix:" in text


def test_suppression_comment_silences_one_rule_on_its_line() -> None:
    source = (FIXTURES / "bad_counter_map.py").read_text().replace(
        "self.count += 1  # expect: FSL001", "self.count += 1  # flinkscale: ignore[FSL001]")
    found = Counter((f.line, f.rule_id) for f in lint_source(source, "x.py"))
    assert found == expected_findings(source)


def test_source_rule_needs_the_partition_count() -> None:
    text = (FIXTURES / "bad_source_partitions.py").read_text()
    assert not [f for f in lint_source(text, "s.py") if f.rule_id == "FSL006"]
    assert len([f for f in lint_source(text, "s.py", partitions=8) if f.rule_id == "FSL006"]) == 0
    assert len([f for f in lint_source(text, "s.py", partitions=6) if f.rule_id == "FSL006"]) == 1


def test_syntax_error_is_an_input_error_with_file_and_line() -> None:
    with pytest.raises(InputError) as info:
        lint_source("def broken(:\n    pass\n", "job.py")
    assert info.value.field == "job.py:1"


def test_files_without_pyflink_are_quiet() -> None:
    source = "import concurrent.futures as f\n\ndef go(pool):\n    return list(pool.map(str, [1, 2]))\n"
    assert lint_source(source, "tool.py") == ()


def test_methods_named_like_operators_inside_functions_and_on_self_are_not_operators() -> None:
    source = '''
import pandas as pd
from pyflink.table import DataTypes
from pyflink.table.udf import udf


@udf(result_type=DataTypes.DOUBLE(), func_type="pandas")
def normalise(prices: pd.Series) -> pd.Series:
    return prices.map(lambda p: p / 100).apply(float)


class Control:
    def apply_all(self, messages):
        return [self.apply(m) for m in messages]

    def apply(self, message):
        return message
'''
    assert [f for f in lint_source(source, "udfs.py") if f.rule_id == "FSL003"] == []


def test_window_scoped_state_needs_no_ttl() -> None:
    source = '''
from pyflink.common import Types
from pyflink.datastream.state import ValueStateDescriptor
from pyflink.datastream.window import Trigger


class EveryHundred(Trigger):
    def __init__(self):
        self.count_descriptor = ValueStateDescriptor("count", Types.LONG())

    def on_element(self, element, timestamp, window, ctx):
        count = ctx.get_partitioned_state(self.count_descriptor)
        count.update((count.value() or 0) + 1)
'''
    assert [f for f in lint_source(source, "trigger.py") if f.rule_id == "FSL002"] == []


def test_a_uid_counts_only_for_its_receiver_and_only_on_a_later_line() -> None:
    source = '''from pyflink.datastream import StreamExecutionEnvironment
env = StreamExecutionEnvironment.get_execution_environment()
early.uid("too-early")
parsed = env.from_collection([1]).map(parse)
early = parsed.map(enrich)
other = parsed.filter(keep)
parsed.uid("parse")
parsed.uid("parse-again")
'''
    found = [(f.line, f.rule_id) for f in lint_source(source, "uids.py") if f.rule_id == "FSL003"]
    assert found == [(5, "FSL003"), (6, "FSL003")]


def test_subclasses_of_the_jobs_own_function_classes_count_in_any_declaration_order() -> None:
    source = '''from pyflink.datastream import MapFunction
class Leaf(Middle):
    def map(self, value):
        self.last = value
        return value
class Middle(Base):
    pass
class Base(MapFunction):
    pass
class Unrelated(Leafy):
    def map(self, value):
        self.last = value
'''
    found = [(f.line, f.rule_id) for f in lint_source(source, "classes.py")]
    assert found == [(4, "FSL001")]


def test_a_function_handed_to_several_operators_is_reported_once_per_write() -> None:
    source = '''from pyflink.datastream import StreamExecutionEnvironment
seen = set()
def remember(value):
    seen.add(value)
    return value
env = StreamExecutionEnvironment.get_execution_environment()
env.set_max_parallelism(120)
env.from_collection([1]).map(remember).uid("a").filter(remember).uid("b").map(remember).uid("c")
'''
    found = [(f.line, f.rule_id) for f in lint_source(source, "twice.py") if f.rule_id == "FSL001"]
    assert found == [(4, "FSL001")]


@pytest.mark.parametrize("enabled", [True, False])
def test_the_cycle_collector_is_left_as_it_was(enabled: bool) -> None:
    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        lint_source((FIXTURES / "bad_counter_map.py").read_text(), "a.py")
        assert gc.isenabled() is enabled
        with pytest.raises(InputError):
            lint_source("def broken(:\n", "b.py")
        assert gc.isenabled() is enabled
    finally:
        gc.enable() if was else gc.disable()
