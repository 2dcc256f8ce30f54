"""``flinkscale load`` against the session broker: exact offsets and manifest; an unreachable broker is exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flinkscale.cli import main
from flinkscale.flink.cluster import free_port
from tests.integration.conftest import Runtime

pytestmark = pytest.mark.integration


def test_load_produces_exactly_what_the_manifest_says(runtime: Runtime, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    topic = runtime.topic(partitions=2, prefix="load")
    bootstrap = runtime.broker.bootstrap
    manifest_path = tmp_path / "manifest.json"
    code = main(["load", "--topic", topic, "--bootstrap", bootstrap, "--rate", "1k/s", "--duration", "2s",
                 "--users", "50", "--zipf", "1.0", "--first-id", "1000", "--manifest", str(manifest_path),
                 "--format", "json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["produced"] == 2000 and result["target_records"] == 2000
    assert result["first_id"] == 1000 and result["next_id"] == 3000

    info = runtime.admin.describe(topic)
    assert info.messages == 2000
    assert sum(p.high for p in info.partitions) == 2000

    manifest = json.loads(manifest_path.read_text())
    assert manifest["topic"] == topic
    assert (manifest["first_id"], manifest["next_id"], manifest["produced"]) == (1000, 3000, 2000)
    # Per-(user, window) counts add up to every event produced, and no user outside the 50 asked for.
    assert sum(count for _, _, count, _ in manifest["per_window"]) == 2000
    assert {user for user, _, _, _ in manifest["per_window"]} <= {f"u{i}" for i in range(50)}
    assert [target for _, target, _ in manifest["seconds"]] == [1000.0, 1000.0]


def test_an_unreachable_broker_is_one_line_and_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()   # nothing listens there
    assert main(["load", "--topic", "t", "--bootstrap", f"127.0.0.1:{port}", "--rate", "1k/s",
                 "--duration", "1s"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("flinkscale: error:") and "\n" not in err
    assert str(port) in err
