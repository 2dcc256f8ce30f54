"""Replays of one real job recorded on the embedded cluster (tests/fixtures/rest/rescale_sql, record_rescale.py).

The job is pure Flink SQL (datagen -> keyed tumbling window -> blackhole), checkpointing every 5 s, on a cluster
keeping Flink 2.3's rescale history. ``startup_checkpointed.json`` polls it while it deploys (job RUNNING with
its window task INITIALIZING, then every IO counter flagged ``*-complete: false`` at 0 with all tasks RUNNING,
then complete counters); ``rescale_checkpointed.json`` polls it through an in-place rescale of the window vertex
1 -> 2. Each poll is one ``GET /jobs/:jid`` followed by one ``GET /jobs/:jid/vertices/:vid`` per vertex.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / "fixtures" / "rest" / "rescale_sql"
JOB_ID = "d7935ed42ac1ea80d3b7eb3bb4d70fa7"  # checkpointed
OTHER_JOB_ID = "b255f66d5dd43a78ab2e340bb84a2a27"  # no checkpoints
SOURCE, WINDOW = "cbc357ccb763df2852fee8c4fc7d55f2", "90bea66de1c231edf33913ecd54406c1"


def load(name: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((DATA / name).read_text())
    return data


def polls(name: str) -> list[list[dict[str, Any]]]:
    """The recording's polls, each [job, vertex, vertex] exchanges, in order."""
    out: list[list[dict[str, Any]]] = []
    for exchange in load(name):
        if exchange["method"] != "GET":
            continue
        if exchange["path"] == f"/jobs/{JOB_ID}":
            out.append([exchange])
        elif "/vertices/" in exchange["path"] and out:
            out[-1].append(exchange)
    return out


def exchange(path: str, body: Any, *, method: str = "GET", query: str = "", status: int = 200) -> dict[str, Any]:
    return {"method": method, "path": path, "query": query, "status": status, "body": body}


def recorded(name: str, path: str) -> list[dict[str, Any]]:
    """Every recorded exchange of ``path`` in ``name``, in order."""
    return [e for e in load(name) if e["path"] == path]


def collector_support() -> list[dict[str, Any]]:
    """What a collector asks besides the job and its vertices, as this cluster answered (the overview and the
    checkpoints recorded with the job; no Kafka source, so no lag metric names; no TaskManager metric)."""
    return [
        *recorded("config.json", "/overview"),
        *recorded("config.json", f"/jobs/{JOB_ID}/checkpoints"),
        exchange(f"/jobs/{JOB_ID}/vertices/{SOURCE}/subtasks/metrics", []),
        exchange("/taskmanagers/metrics", [],
                 query="get=Status.JVM.Memory.Heap.Used%2CStatus.JVM.Memory.Heap.Max%2C"
                       "Status.JVM.GarbageCollector.All.TimeMsPerSecond&agg=max"),
    ]
