"""The keyed reference jobs get every option as the flag their own parser reads (salted counts: its argparse
parser; the Java job: ``--name value`` pairs with --bootstrap, --topic and --out present)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flinkscale.pipelines import salted_counts
from flinkscale.pipelines.launch import KeyedClicksJavaOptions, SaltedCountsOptions


def _pairs(argv: list[str]) -> dict[str, str]:
    assert len(argv) % 2 == 0 and all(flag.startswith("--") for flag in argv[::2]), argv
    pairs = dict(zip(argv[::2], argv[1::2], strict=True))
    assert len(pairs) == len(argv) // 2, f"a flag given twice: {argv}"
    return pairs


@pytest.mark.parametrize("given", [{}, {"group": "g", "name": "n", "cost_us": 12.5, "max_parallelism": 64,
                                       "salts": 4, "window_seconds": 3}])
def test_salted_counts_reads_back_what_it_was_given(given: dict[str, object]) -> None:
    options = SaltedCountsOptions(bootstrap="127.0.0.1:9092", topic="clicks-a", out="file:///tmp/out", **given)
    parsed = salted_counts.parse_args(options.argv([Path("/jars/kafka.jar")]))
    assert (parsed.bootstrap, parsed.topic, parsed.out) == ("127.0.0.1:9092", "clicks-a", "file:///tmp/out")
    assert (parsed.group, parsed.name) == (options.group, options.name)
    assert (parsed.cost_us, parsed.max_parallelism) == (options.cost_us, options.max_parallelism)
    assert (parsed.salts, parsed.window_seconds) == (options.salts, options.window_seconds)
    assert parsed.jars == "file:///jars/kafka.jar"


def test_the_java_job_gets_each_option_once_under_its_flag() -> None:
    options = KeyedClicksJavaOptions(bootstrap="127.0.0.1:9092", topic="keyed", out="file:///tmp/out", cost_us=40.0,
                                     cost_kind="sleep", max_parallelism=32, shed_control_topic="control",
                                     shed_keep=0.5)
    assert _pairs(options.argv()) == {
        "--bootstrap": "127.0.0.1:9092", "--topic": "keyed", "--out": "file:///tmp/out",
        "--group": "flinkscale-keyed-java", "--name": "keyed-clicks-java", "--cost-us": "40.0",
        "--cost-kind": "sleep", "--max-parallelism": "32", "--checkpoint-interval-ms": "5000",
        "--shed-keep": "0.5", "--shed-control-topic": "control"}


def test_the_java_job_leaves_out_an_unset_control_topic() -> None:
    argv = KeyedClicksJavaOptions(bootstrap="b:1", topic="t", out="file:///o").argv()
    assert "--shed-control-topic" not in _pairs(argv)
