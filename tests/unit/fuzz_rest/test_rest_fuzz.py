"""Every REST-using command against every misbehaviour of a fake Flink: one line naming the endpoint, exit 1 or 2,
no traceback, done within 10 s (the commands get a 2 s deadline per REST call, as a user can with --rest-timeout).

The healthy fake answers with the recordings from the real cluster, and every command succeeds against it:
that is what makes each failing case a test of the misbehaviour, not of a broken fixture.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.fakeflink import MODES, MUTATIONS, FakeFlink

from .corpus import COMMANDS, LIMIT_SECONDS, Case, cases, problems, run_case_in_process

CASES = cases()


def test_the_corpus_covers_every_command_mode_and_mutation() -> None:
    assert len(CASES) >= 120
    assert {c.command for c in CASES} == set(COMMANDS)
    assert {c.mode for c in CASES} == set(MODES) | set(MUTATIONS)


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "shed-auto"])
def test_every_command_works_against_the_healthy_fake(command: str) -> None:
    with FakeFlink("flink") as fake:
        outcome = run_case_in_process(Case(command, "flink").argv(fake.url))
    assert outcome.exit_code == 0, outcome.stderr
    assert "Traceback" not in outcome.stderr


def test_shed_auto_gets_past_rest_against_the_healthy_fake() -> None:
    # It then needs a Kafka broker; the one named does not listen, which is its own one-line error.
    with FakeFlink("flink") as fake:
        outcome = run_case_in_process(Case("shed-auto", "flink").argv(fake.url))
    assert outcome.exit_code == 2
    assert "kafka://127.0.0.1:9" in outcome.stderr and "Traceback" not in outcome.stderr


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_misbehaving_flink_gives_one_line_naming_the_endpoint(case: Case, certificate: tuple[Path, Path]) -> None:
    with FakeFlink(case.mode, certificate=certificate if case.mode == "tls-self-signed" else None) as fake:
        outcome = run_case_in_process(case.argv(fake.url), limit=LIMIT_SECONDS + 20)
        endpoint = f"127.0.0.1:{fake.port}"
    assert problems(outcome, endpoint) == [], f"{case.id}: {outcome.stderr[-2000:]}"
    assert outcome.stderr.startswith("flinkscale: error: ")
