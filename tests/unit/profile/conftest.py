"""Replay helpers for the profile tests: a recorded real collector run, edited copies, and a virtual clock."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flinkscale.flink.rest import FlinkRestClient
from flinkscale.flink.testing import ReplayTransport

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "rest" / "collector_clickstream_step.json"
JOB_ID = "fbe2f9fd51e8ce0812ff7fcd1b8bb3bf"


def load_exchanges() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(FIXTURE.read_text())
    return data


def vertex_details(exchanges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The recorded ``GET /jobs/:jid/vertices/:vid`` answers, in order (one per sample)."""
    return [e for e in exchanges if e["path"].count("/") == 4 and "/vertices/" in e["path"]]


def job_reads(exchanges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in exchanges if e["path"] == f"/jobs/{JOB_ID}"]


class VirtualClock:
    """time.time / time.sleep stand-ins: sleeping advances the clock, nothing waits."""

    def __init__(self, start: float = 1_795_488_521.0) -> None:
        self.now = start

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture()
def exchanges() -> list[dict[str, Any]]:
    return copy.deepcopy(load_exchanges())


@pytest.fixture()
def clock() -> VirtualClock:
    return VirtualClock()


def replay_client(exchanges: list[dict[str, Any]]) -> FlinkRestClient:
    return FlinkRestClient("http://flink.test:8081", transport=ReplayTransport(exchanges), retries=0)


ClientFactory = Callable[[str], FlinkRestClient]
