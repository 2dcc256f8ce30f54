"""A log line that also says what it is about: people read the text, a log pipeline reads the data.

The multi-job daemon hands its ``log`` callback one ``LogLine`` an event. It is a ``str`` (the line people
read, as before: callers that print or search lines need nothing new) that also carries the event's stable
dotted name, its level and the job it concerns. ``report.logs.EventLog.line`` writes those as JSON fields, so
the JSON log never reads the job or the event back out of the text.
"""

from __future__ import annotations

from typing import Literal

Level = Literal["info", "warning", "error"]


class LogLine(str):
    """``text`` with ``event`` (e.g. ``job.rescaling``), ``level`` and, for a job's event, its id and name."""

    event: str
    level: Level
    job_id: str | None
    job_name: str | None

    def __new__(cls, text: str, event: str, *, level: Level = "info", job_id: str | None = None,
                job_name: str | None = None) -> LogLine:
        line = super().__new__(cls, text)
        line.event, line.level, line.job_id, line.job_name = event, level, job_id, job_name
        return line


__all__ = ["Level", "LogLine"]
