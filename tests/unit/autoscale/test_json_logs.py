"""``autoscale --log-format json``: every stderr line is one JSON object with ts, level, event, job, message and
fields, and no credential ever appears in one."""

from __future__ import annotations

import io
import json
import logging
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flinkscale.cli import main
from flinkscale.cli.autoscale import _TickLog
from flinkscale.core.errors import InputError
from flinkscale.core.logline import LogLine
from flinkscale.core.policy.base import Decision, VertexDecision
from flinkscale.core.redaction import forget_secrets, register_secret
from flinkscale.core.rundir import DecisionRecord, RunEvent
from flinkscale.flink.autoscaler import LoopStatus
from flinkscale.report.logs import EventLog, configure_logging
from flinkscale.testing import snapshot, vertex

JOB = "3f2a" + "0" * 28
PASSWORD = "s3cr3t-hunter2"
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    yield out
    configure_logging("text")  # leave the logger as the next command expects it


def records(text: str) -> list[dict[str, Any]]:
    lines = text.splitlines()
    assert lines, "nothing was logged"
    parsed = [json.loads(line) for line in lines]  # every line is one JSON object
    for record in parsed:
        assert isinstance(record, dict)
        assert TS.match(record["ts"]), record
        assert record["level"] in ("debug", "info", "warning", "error")
        assert isinstance(record["event"], str) and record["event"]
        assert isinstance(record["message"], str)
    return parsed


def test_an_event_is_one_json_object_with_its_job_and_fields(stream: io.StringIO) -> None:
    log = EventLog(configure_logging("json", stream=stream), "json")
    log.event("job.rescaling", "rescaling to {'v1': 4}", job_id=JOB, job_name="clickstream",
              target={"v1": 4}, ratio=math.inf, missing=None, reasons=("a", "b"))
    log.event("daemon.cycle", "cycle: 3 jobs", level=logging.WARNING, jobs=3)
    first, second = records(stream.getvalue())
    assert first["event"] == "job.rescaling" and first["level"] == "info"
    assert first["job_id"] == JOB and first["job_name"] == "clickstream"
    assert first["fields"] == {"target": {"v1": 4}, "ratio": "inf", "missing": None, "reasons": ["a", "b"]}
    assert second["level"] == "warning" and "job_id" not in second and second["fields"] == {"jobs": 3}


def test_no_password_reaches_the_log(stream: io.StringIO) -> None:
    log = EventLog(configure_logging("json", stream=stream), "json")
    url = f"http://admin:{PASSWORD}@jobmanager:8081"
    log.event("daemon.start", f"serving every running job; REST {url}", rest=url, nested={"urls": [url]})
    log.line(f"job clickstream ({JOB}): holding: cannot connect to {url}/jobs/overview")
    log.event("warning", "Authorization: Bearer abcdef123456 was refused", header="Authorization: Bearer abcdef123456")
    register_secret("registered-token-99")
    try:
        log.event("error", "token registered-token-99 expired", **{"registered-token-99": "as a key"})
    finally:
        forget_secrets(["registered-token-99"])
    text = stream.getvalue()
    assert PASSWORD not in text and "abcdef123456" not in text and "registered-token-99" not in text
    assert len(records(text)) == 4 and "***" in text


def test_a_daemon_line_brings_its_event_level_and_job_as_data(stream: io.StringIO) -> None:
    # Nothing is read back out of the text: a job name that looks like another job's prefix stays the name given.
    text = f"job my (odd) job ({JOB}): rescaling to {{'v1': 4}} (intent 1234abcd): scale up"
    log = EventLog(configure_logging("json", stream=stream), "json")
    log.line(LogLine(text, "job.rescaling", job_id=JOB, job_name="my (odd) job"))
    log.line(LogLine("holding every job: REST unavailable: cannot connect", "cluster.unavailable", level="warning"))
    log.line("a line from elsewhere")
    rescaling, outage, plain = records(stream.getvalue())
    assert (rescaling["event"], rescaling["level"], rescaling["message"]) == ("job.rescaling", "info", text)
    assert rescaling["job_id"] == JOB and rescaling["job_name"] == "my (odd) job"
    assert (outage["event"], outage["level"]) == ("cluster.unavailable", "warning") and "job_id" not in outage
    assert (plain["event"], plain["level"], plain["message"]) == ("daemon", "info", "a line from elsewhere")


def test_text_mode_writes_the_message_alone(stream: io.StringIO) -> None:
    log = EventLog(configure_logging("text", stream=stream))
    log.event("daemon.cycle", f"cycle: 3 jobs via http://u:{PASSWORD}@h:1", jobs=3)
    assert stream.getvalue() == "cycle: 3 jobs via http://***@h:1\n"


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(InputError, match="--log-format"):
        configure_logging("xml")


def test_the_single_job_loop_logs_each_tick_event_and_decision_once(stream: io.StringIO) -> None:
    log = EventLog(configure_logging("json", stream=stream), "json")
    tick_log = _TickLog(log, JOB)
    snap = snapshot([vertex("src", 2, busy_ms=900.0, source=True), vertex("agg", 2, busy_ms=900.0)],
                    edges=[("src", "agg")], timestamp=1_700_000_000.0, job_id=JOB)
    status = LoopStatus(JOB, "flinkscale", snap)
    status.events.append(RunEvent(1_700_000_000.0, "start", "policy flinkscale, interval 15s"))
    decision = Decision(1_700_000_000.0, "flinkscale", (VertexDecision("src", "src", 2, 4, "busy 90% > 70%"),))
    status.decisions.append(DecisionRecord(1_700_000_000.0, decision, applied=True, rescale_seconds=7.5))
    tick_log(status)
    tick_log(status)  # nothing new: only the tick again
    status.events.append(RunEvent(1_700_000_015.0, "rescale-failed", f"PUT http://a:{PASSWORD}@jm:8081 refused"))
    tick_log(status)
    text = stream.getvalue()
    got = records(text)
    assert [r["event"] for r in got] == ["loop.start", "loop.decision", "loop.tick", "loop.tick",
                                         "loop.rescale-failed", "loop.tick"]
    assert all(r["job_id"] == JOB for r in got)
    decided = got[1]["fields"]
    assert decided["parallelism"] == {"src": 4} and decided["applied"] is True and decided["rescale_seconds"] == 7.5
    assert decided["reasons"] == {"src": "busy 90% > 70%"}
    assert got[2]["fields"]["parallelism"] == {"src": 2, "agg": 2}
    assert got[4]["level"] == "error" and PASSWORD not in text


def test_the_command_writes_only_json_to_stderr_even_for_its_error(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    # Nothing listens on port 9: the daemon's first REST call fails; the failure is a JSON line too.
    code = main(["autoscale", "--all-jobs", "--log-format", "json", "--state", f"sqlite:///{tmp_path / 's.db'}",
                 "--rest", f"http://admin:{PASSWORD}@127.0.0.1:9", "--interval", "1s", "--duration", "1s"])
    captured = capsys.readouterr()
    assert code in (1, 2)
    got = records(captured.err)
    assert got[-1]["event"] == "error" and got[-1]["level"] == "error" and got[-1]["fields"]["exit_code"] == code
    assert "127.0.0.1:9" in got[-1]["message"]
    assert PASSWORD not in captured.err + captured.out


def test_bad_input_in_json_mode_is_one_json_line_and_exit_2(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["autoscale", "--all-jobs", "--log-format", "json", "--quota-cpu", "lots",
                 "--state", f"sqlite:///{tmp_path / 's.db'}"])
    assert code == 2
    (record,) = records(capsys.readouterr().err)
    assert "--quota-cpu" in record["message"] and record["fields"] == {"exit_code": 2}
