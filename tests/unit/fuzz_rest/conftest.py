from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.fakeflink import self_signed_certificate

from flinkscale.core.redaction import forget_secrets


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.fail("the TLS cases need the openssl command line to make a self-signed certificate")
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No embedded cluster or broker state and no token from the developer's environment."""
    monkeypatch.setenv("FLINKSCALE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("FLINKSCALE_REST_TOKEN", raising=False)
    monkeypatch.delenv("FLINKSCALE_DEBUG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    forget_secrets()  # secrets registered by one test must not redact (or pass) another's output
    yield
    forget_secrets()
