"""Fixtures for the state store tests: a SQLite store in a temp dir, opened with a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from store_helpers import FakeClock

from flinkscale.store import StateStore


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state' / 'flinkscale.db'}"


@pytest.fixture
def store(url: str, clock: FakeClock) -> Iterator[StateStore]:
    with StateStore.open(url, clock=clock) as opened:
        yield opened
