"""One run-directory schema: what the loop writes, the dashboard and the demo report read back unchanged."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flinkscale.app.demo import _read_decisions, _read_snapshots
from flinkscale.core.errors import InputError
from flinkscale.core.policy.base import Decision, VertexDecision
from flinkscale.core.rundir import (
    DECISIONS_FILE,
    EVENTS_FILE,
    SNAPSHOTS_FILE,
    DecisionRecord,
    RunEvent,
    file_for,
    parse_line,
    to_line,
)
from flinkscale.flink.autoscaler import RunDirectory
from flinkscale.report.dashboard import RunDirFeed
from flinkscale.testing import load_snapshots

EXAMPLES = Path(__file__).parents[3] / "examples"
RECORDED = load_snapshots(EXAMPLES / "snapshots" / "clickstream-p1-overload-history.jsonl")


def decision(t: float, tpr: float = math.inf) -> Decision:
    return Decision(t, "flinkscale", (VertexDecision("v", "Source", 1, 2, "busy 90%",
                                                     {"true_processing_rate": tpr, "busy": 0.9}),),
                    blocked_reason=None, shed_fraction=0.25)


def test_what_the_loop_writes_the_dashboard_and_the_demo_read_back(tmp_path: Path) -> None:
    records = [RECORDED[0], DecisionRecord(RECORDED[0].timestamp, decision(RECORDED[0].timestamp), True, 12.5),
               RunEvent(RECORDED[0].timestamp, "shed", "published p=0.75 (seq 0)"), RECORDED[1],
               DecisionRecord(RECORDED[1].timestamp, decision(RECORDED[1].timestamp, 1234.5), False, None, "boom")]
    run = RunDirectory(tmp_path)
    for record in records:
        run.write(record)
    run.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted((SNAPSHOTS_FILE, DECISIONS_FILE, EVENTS_FILE))

    feed = RunDirFeed(tmp_path)
    feed.refresh()
    assert feed.problems == []
    assert feed.snapshots == [r for r in records if file_for(r) == SNAPSHOTS_FILE]
    assert feed.decisions == [r for r in records if isinstance(r, DecisionRecord)]
    assert feed.events == [r for r in records if isinstance(r, RunEvent)]
    assert _read_snapshots(tmp_path / SNAPSHOTS_FILE) == feed.snapshots
    assert _read_decisions(tmp_path / DECISIONS_FILE) == feed.decisions


@given(st.floats(allow_nan=False, allow_infinity=True), st.booleans(),
       st.one_of(st.none(), st.floats(min_value=0, max_value=1e6)), st.one_of(st.none(), st.text(max_size=40)),
       st.floats(min_value=0, max_value=0.99))
def test_a_decision_record_survives_its_line(tpr: float, applied: bool, seconds: float | None, error: str | None,
                                             shed: float) -> None:
    record = DecisionRecord(10.0, Decision(10.0, "p", (VertexDecision("v", "v", 1, 3, "why", {"tpr": tpr}),),
                                           shed_fraction=shed), applied, seconds, error)
    assert parse_line(DECISIONS_FILE, to_line(record)) == record


def test_a_bad_line_names_what_it_is_not() -> None:
    with pytest.raises(InputError, match="not valid JSON"):
        parse_line(EVENTS_FILE, "{")
    with pytest.raises(InputError, match="timestamp"):
        parse_line(DECISIONS_FILE, '{"decision": {}}')
    with pytest.raises(InputError, match="not a run directory file"):
        parse_line("other.jsonl", "{}")
