"""Reading a run directory: tailing JSONL files (partial lines, rewrites, bad lines) and the views built from it."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flinkscale.core.snapshot import MetricsSnapshot
from flinkscale.report.dashboard import (
    UNKNOWN_COLOUR,
    UTILIZATION_COLORSCALE,
    DecisionRecord,
    JsonlTail,
    RunDirFeed,
    decision_view,
    graph_layout,
    timeline_view,
    utilization_colour,
)

from .conftest import SINK, SOURCE, WINDOW, FakeRunWriter, clickstream_snapshot, scale_decision


def test_an_empty_or_missing_run_dir_gives_an_empty_state(tmp_path: Path) -> None:
    for run_dir in (tmp_path, tmp_path / "not-yet-created"):
        feed = RunDirFeed(run_dir)
        feed.refresh()
        state = feed.state()
        assert state["job"] is None and state["graph"] is None
        assert state["counts"] == {"snapshots": 0, "decisions": 0, "events": 0}
        assert state["timeline"]["timestamps"] == [] and state["decisions"] == [] and state["problems"] == []


def test_graph_shows_each_vertex_with_parallelism_utilization_and_edges(writer: FakeRunWriter) -> None:
    writer.snapshot(clickstream_snapshot(100.0, parallelism=3, busy_ms=850.0))
    feed = RunDirFeed(writer.run_dir)
    feed.refresh()
    graph = feed.state()["graph"]
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert set(nodes) == {SOURCE, WINDOW, SINK}
    assert nodes[WINDOW]["parallelism"] == 3
    # utilization = busy_time_ms_per_second_max / 1000
    assert nodes[WINDOW]["utilization"] == pytest.approx(0.85)
    assert nodes[SOURCE]["utilization"] == pytest.approx(0.3)
    assert nodes[WINDOW]["colour"] == utilization_colour(0.85)
    assert nodes[SINK]["utilization"] is None and nodes[SINK]["colour"] == UNKNOWN_COLOUR
    assert {(e["source"], e["target"], e["ship_strategy"]) for e in graph["edges"]} == {
        (SOURCE, WINDOW, "HASH"), (WINDOW, SINK, "FORWARD")}


def test_layout_puts_each_vertex_one_column_after_its_furthest_input() -> None:
    positions = graph_layout(clickstream_snapshot(0.0))
    assert [positions[v][0] for v in (SOURCE, WINDOW, SINK)] == [0.0, 1.0, 2.0]


def test_a_half_written_line_waits_until_its_newline(writer: FakeRunWriter) -> None:
    feed = RunDirFeed(writer.run_dir)
    decision = scale_decision(10.0, 1, 2, "utilization 1.0 above target 0.7")
    text = writer.decision(decision, applied=True, rescale_seconds=12.5)
    (writer.run_dir / "decisions.jsonl").write_text(text + text[:40], encoding="utf-8")
    feed.refresh()
    assert len(feed.decisions) == 1 and feed.problems == []
    writer.raw("decisions.jsonl", text[40:])
    feed.refresh()
    assert len(feed.decisions) == 2 and feed.problems == []
    assert feed.decisions[1] == DecisionRecord(10.0, decision, True, 12.5, None)


def test_a_bad_line_is_reported_with_file_and_line_and_the_rest_still_reads(writer: FakeRunWriter) -> None:
    writer.snapshot(clickstream_snapshot(1.0))
    writer.raw("snapshots.jsonl", "{not json\n")
    bad_snapshot = clickstream_snapshot(2.0).to_dict()
    bad_snapshot["vertices"][1]["metrics"]["busy"] = 1.0
    writer.line("snapshots.jsonl", bad_snapshot)
    writer.snapshot(clickstream_snapshot(3.0))
    writer.line("decisions.jsonl", {"timestamp": 4.0})
    feed = RunDirFeed(writer.run_dir)
    feed.refresh()
    assert [s.timestamp for s in feed.snapshots] == [1.0, 3.0]
    assert feed.problems[0].startswith("snapshots.jsonl:2: not valid JSON")
    assert feed.problems[1].startswith("snapshots.jsonl:3: vertices[1].metrics.busy: unknown field")
    assert feed.problems[2] == "decisions.jsonl:1: decision: is required"


def test_a_rewritten_file_is_read_again_from_the_start(writer: FakeRunWriter) -> None:
    for t in (1.0, 2.0, 3.0):
        writer.snapshot(clickstream_snapshot(t))
    feed = RunDirFeed(writer.run_dir)
    feed.refresh()
    (writer.run_dir / "snapshots.jsonl").write_text("", encoding="utf-8")
    writer.snapshot(clickstream_snapshot(9.0))
    feed.refresh()
    assert [s.timestamp for s in feed.snapshots] == [9.0]


def test_version_changes_only_when_a_file_grew(writer: FakeRunWriter) -> None:
    feed = RunDirFeed(writer.run_dir)
    first = feed.refresh()
    assert feed.refresh() == first
    writer.event(1.0, "phase", "steady 2000/s")
    second = feed.refresh()
    assert second != first
    assert feed.refresh() == second


def test_timeline_sums_sources_and_leaves_gaps_for_vanished_vertices() -> None:
    early = clickstream_snapshot(1.0, parallelism=1, rate=2000.0, lag=500.0)
    later = clickstream_snapshot(2.0, parallelism=2, rate=6000.0, lag=9000.0)
    # The job was resubmitted: the sink got a new vertex id.
    resubmitted = later.to_dict()
    resubmitted["vertices"][2]["id"] = "new-sink"
    resubmitted["edges"][1]["target"] = "new-sink"
    timeline = timeline_view([early, later, MetricsSnapshot.from_dict(resubmitted)])
    assert timeline["timestamps"] == [1.0, 2.0, 2.0]
    assert timeline["source_records_in_per_second"] == [2000.0, 6000.0, 6000.0]
    assert timeline["source_lag_records"] == [500.0, 9000.0, 9000.0]
    assert timeline["vertices"][WINDOW]["parallelism"] == [1, 2, 2]
    assert timeline["vertices"][SINK]["parallelism"] == [1, 1, None]
    assert timeline["vertices"]["new-sink"]["parallelism"] == [None, None, 1]


def test_lag_is_a_gap_not_zero_when_no_source_reports_it() -> None:
    data = clickstream_snapshot(1.0).to_dict()
    data["vertices"][0]["metrics"]["pending_records"] = None
    assert timeline_view([MetricsSnapshot.from_dict(data)])["source_lag_records"] == [None]


@pytest.mark.parametrize(("applied", "error", "blocked", "old", "new", "outcome"), [
    (True, None, None, 1, 2, "applied"),
    (False, None, None, 1, 2, "not applied"),
    (False, "REST 500 on /jobs/x/rescaling", None, 1, 2, "failed"),
    (False, None, "cooldown: 40 s of 300 s since the last rescale", 1, 2, "blocked"),
    (False, None, None, 2, 2, "no change"),
])
def test_decision_outcome_says_what_the_loop_did(applied: bool, error: str | None, blocked: str | None,
                                                 old: int, new: int, outcome: str) -> None:
    record = DecisionRecord(5.0, scale_decision(5.0, old, new, "why", blocked_reason=blocked), applied, None, error)
    view = decision_view(record)
    assert view["outcome"] == outcome
    assert view["blocked_reason"] == blocked and view["error"] == error
    window = next(v for v in view["vertices"] if v["vertex_id"] == WINDOW)
    assert (window["current_parallelism"], window["new_parallelism"], window["reason"]) == (old, new, "why")


def test_decision_numbers_that_are_not_finite_stay_valid_json() -> None:
    decision = scale_decision(1.0, 1, 2, "r", numbers={"lag_seconds": float("inf"), "tpr": float("nan"), "u": 0.5})
    window = decision_view(DecisionRecord(1.0, decision, True))["vertices"][0]
    assert window["numbers"] == {"lag_seconds": "inf", "tpr": None, "u": 0.5}


def test_decisions_and_events_come_newest_first(writer: FakeRunWriter) -> None:
    for t in (1.0, 2.0, 3.0):
        writer.decision(scale_decision(t, 1, 2, f"step {t}"), applied=True)
        writer.event(t, "phase", f"phase {t}")
    feed = RunDirFeed(writer.run_dir)
    feed.refresh()
    state = feed.state()
    assert [d["timestamp"] for d in state["decisions"]] == [3.0, 2.0, 1.0]
    assert [e["message"] for e in state["events"]] == ["phase 3.0", "phase 2.0", "phase 1.0"]


@pytest.mark.parametrize(("stop", "colour"), UTILIZATION_COLORSCALE)
def test_colour_at_each_stop_is_the_stop_colour(stop: float, colour: str) -> None:
    assert utilization_colour(stop) == colour


@pytest.mark.parametrize(("utilization", "expected"), [
    (-0.5, UTILIZATION_COLORSCALE[0][1]), (3.0, UTILIZATION_COLORSCALE[-1][1]),
    (None, UNKNOWN_COLOUR), (float("nan"), UNKNOWN_COLOUR)])
def test_colour_clamps_and_marks_unknown(utilization: float | None, expected: str) -> None:
    assert utilization_colour(utilization) == expected


@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_redder_when_busier(low: float, high: float) -> None:
    low, high = sorted((low, high))
    # Every stop on the scale has more red than green the further right it is: the red-minus-green channel
    # difference of the interpolated colour must not decrease with utilization.
    def red_minus_green(u: float) -> int:
        colour = utilization_colour(u)
        return int(colour[1:3], 16) - int(colour[3:5], 16)

    assert red_minus_green(low) <= red_minus_green(high) + 1  # +1: rounding to whole channel values


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="abc{}:\" 0123456789é", min_size=1, max_size=12).map(str.strip)
                .filter(bool), min_size=1, max_size=8),
       st.lists(st.integers(1, 15), min_size=1, max_size=30))
def test_tail_returns_each_complete_line_once_in_order_however_the_writes_are_split(
        tmp_path_factory: pytest.TempPathFactory, lines: list[str], cuts: list[int]) -> None:
    path = tmp_path_factory.mktemp("tail") / "f.jsonl"
    data = "".join(line + "\n" for line in lines).encode()
    path.write_bytes(b"")
    tail = JsonlTail(path)
    seen: list[str] = []
    position = 0
    for cut in itertools.cycle(cuts):
        if position >= len(data):
            break
        with path.open("ab") as stream:
            stream.write(data[position:position + cut])
        position += cut
        seen.extend(line.text for line in tail.read_new().lines)
    assert seen == lines
