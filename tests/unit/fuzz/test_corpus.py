"""Every bad input of the corpus (tests/unit/fuzz/corpus.py) ends with one line naming its field, file or flag.

One test per case: exit code 2 (1 for a few failures), exactly one error line that names what is wrong, no
traceback, done within the per-case alarm (``FLINKSCALE_FUZZ_TIMEOUT``, 30 s by default; a case finishes in well
under a second here). Nothing here needs a cluster or a broker: each input is refused before the network.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.fuzz._contract import Case, check
from tests.unit.fuzz.corpus import build_corpus

_ROOT = Path(tempfile.mkdtemp(prefix="flinkscale-fuzz-"))
CASES = build_corpus(_ROOT)


@pytest.fixture(autouse=True, scope="module")
def _cleanup() -> Iterator[None]:
    yield
    shutil.rmtree(_ROOT, ignore_errors=True)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_gets_one_clear_line(case: Case) -> None:
    check(case)


def test_the_corpus_covers_every_class() -> None:
    kinds = {c.kind.split("/")[0] for c in CASES}
    assert {"file", "spec-field", "snapshot-field", "profile-field", "history-field", "scenario-field", "csv",
            "lint", "flag", "output"} <= kinds
    assert len(CASES) >= 300
