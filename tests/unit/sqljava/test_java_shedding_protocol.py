"""The Java shedding library speaks the Python path's protocol: same keep decisions, weights and messages.

Runs the library's ``ProtocolCheck`` (a stdin/stdout twin of ``ShedControl``) in a JVM once per test and
compares every answer with ``flinkscale.pipelines.shedding`` (the PyFlink path): the hash rule
``crc32(key) % 10000 < round(p x 10000)`` (Python's round-half-even), the weight 10000 / threshold, and
which control messages are applied (valid, newer seq) or ignored. The jar is built by ``make java``.
"""

from __future__ import annotations

import json
import random
import subprocess

import pytest

from flinkscale.flink.home import flink_home, java_home
from flinkscale.pipelines.jars import shedding_jar
from flinkscale.pipelines.shedding import HASH_BUCKETS, ShedControl, keep_by_key_hash, key_hash_threshold


def run_check(lines: list[str], initial: float = 1.0) -> list[str]:
    classpath = f"{shedding_jar()}:{flink_home() / 'lib'}/*"
    proc = subprocess.run([str(java_home() / "bin" / "java"), "-cp", classpath,
                           "dev.flinkscale.shedding.ProtocolCheck", str(initial)],
                          input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=120, check=True)
    return proc.stdout.splitlines()


def test_thresholds_round_half_to_even_like_python() -> None:
    probabilities = [0.00004, 0.00005, 0.00015, 0.00025, 0.5, 0.12345, 0.99995, 1.0, 0.3, 1 / 3, 2.5e-4]
    rng = random.Random(3)
    probabilities += [rng.random() for _ in range(300)]
    answers = run_check([f"T {p!r}" for p in probabilities])
    assert [int(a) for a in answers] == [key_hash_threshold(p) for p in probabilities]


def test_keep_decisions_and_weights_match_for_ids_and_text_keys() -> None:
    keys = [str(i) for i in range(2_000)] + [f"u{i}" for i in range(500)] + ["ü-ñ-日本", "", "a b"]
    rates = [0.5, 0.1, 0.0137, 0.9]
    lines: list[str] = []
    for seq, p in enumerate(rates):  # one JVM: each rate arrives as a control message, then the keys
        lines.append("M " + json.dumps({"keep_probability": p, "seq": seq}))
        lines += [f"K {k}" for k in keys]
    answers = iter(run_check(lines))
    for p in rates:
        assert next(answers).startswith("1 ")  # the message was applied
        threshold = key_hash_threshold(p)
        kept_count = 0
        for key in keys:
            kept, weight = next(answers).split()
            assert (kept == "1") == keep_by_key_hash(key, p), (key, p)
            assert float(weight) == pytest.approx(HASH_BUCKETS / threshold)
            kept_count += kept == "1"
        assert 0 < kept_count < len(keys)


def test_control_messages_are_applied_or_ignored_as_in_python() -> None:
    messages: list[object] = [
        {"keep_probability": 0.5, "seq": 0},
        {"keep_probability": 0.25, "seq": 0},  # not newer
        {"keep_probability": 0.25, "seq": 2},
        {"keep_probability": 1.5, "seq": 3},  # out of range
        {"keep_probability": 0, "seq": 4},
        {"keep_probability": True, "seq": 5},  # a boolean is not a number
        {"keep_probability": "0.3", "seq": 6},  # a string is not a number
        {"keep_probability": 0.3, "seq": 6.0},  # seq must be an integer
        {"keep_probability": 0.3, "seq": True},
        {"keep_probability": 0.3},
        {"seq": 7},
        [0.3, 7],
        "not json",
        {"keep_probability": 0.3, "seq": 7, "per_key": {"u1": 0.5}},
        {"keep_probability": 0.2, "seq": 8, "per_key": {"u1": 2}},  # a bad per-key rate rejects the message
        {"keep_probability": 0.2, "seq": 9, "per_key": "x"},
        {"keep_probability": 1, "seq": 10},
        {"keep_probability": 0.7, "seq": 9},  # older than the one in force
    ]
    raw = [m if isinstance(m, str) else json.dumps(m) for m in messages]
    answers = run_check([f"M {r}" for r in raw])
    python = ShedControl()
    for message, answer in zip(raw, answers, strict=True):
        applied_py = python.apply_message(message)
        applied, seq, p, threshold = answer.split()
        assert (applied == "1") == applied_py, message
        assert (int(seq), float(p)) == (python.seq, python.keep_probability), message
        assert int(threshold) == key_hash_threshold(python.keep_probability)
