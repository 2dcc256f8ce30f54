"""No secret from a URL (user:pass@), a header (--rest-header) or the environment (FLINKSCALE_REST_TOKEN) appears
in stdout, stderr, any file of a run dir, any dashboard answer or a written report, whatever the server does
(answers, fails, hangs, redirects, or repeats the credentials it got in its error text).

Each case also checks that the secret did reach the server, so a pass means "sent and never shown", not
"never sent".
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from tests.fakeflink import JOB_ID, FakeFlink

from flinkscale.core.redaction import redact, register_secret
from flinkscale.report.dashboard import create_app

from .corpus import run_case_in_process

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")

USER, PASSWORD = "flinkuser", "urlpass-S3CRET-1"
HEADER = "hdr-S3CRET-2"
TOKEN = "tok-S3CRET-3"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
SECRETS = (PASSWORD, HEADER, TOKEN, BASIC)


def _with_credentials(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{USER}:{PASSWORD}@{rest}"


def _assert_clean(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked in: {text[:3000]}"


def _assert_sent(fake: FakeFlink, how: str) -> None:
    headers = [r.headers for r in fake.requests]
    assert headers, "the command never reached the server"
    if how == "url":
        assert any(h.get("authorization") == f"Basic {BASIC}" for h in headers)
    else:
        assert any(h.get("authorization") == f"Bearer {TOKEN}" for h in headers)
        assert any(h.get("x-custom-auth") == HEADER for h in headers)


def _run_dir_texts(run_dir: Path) -> list[str]:
    return [p.read_text(encoding="utf-8", errors="replace") for p in sorted(run_dir.rglob("*")) if p.is_file()]


def _argv(command: list[str], url: str, how: str) -> list[str]:
    if how == "url":
        return [*command, "--rest", _with_credentials(url), "--rest-timeout", "2s"]
    return [*command, "--rest", url, "--rest-header", f"X-Custom-Auth: {HEADER}", "--rest-timeout", "2s"]


COMMANDS = {
    "job-list": ["job", "list", "--format", "json"],
    "cluster-status": ["cluster", "status", "--format", "json"],
    "job-stop": ["job", "stop", JOB_ID],
    "profile": ["profile", "--job", JOB_ID, "--window", "1s", "--interval", "1s", "--format", "json"],
}
MODES = ("flink", "echo-credentials", "redirect", "400-list", "html", "trickle", "close")


@pytest.mark.parametrize("how", ["url", "header-and-token"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_no_secret_in_any_output(command: str, mode: str, how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if how != "url":
        monkeypatch.setenv("FLINKSCALE_REST_TOKEN", TOKEN)
    with FakeFlink(mode, trickle_seconds=0.5) as fake:
        outcome = run_case_in_process(_argv(COMMANDS[command], fake.url, how))
        if mode != "close":  # that server hangs up before reading a request
            _assert_sent(fake, how)
    assert outcome.exit_code == (0 if mode == "flink" else 2), outcome.stderr
    _assert_clean(outcome.stdout, outcome.stderr)


@pytest.mark.parametrize("how", ["url", "header-and-token"])
def test_no_secret_in_a_written_profile(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if how != "url":
        monkeypatch.setenv("FLINKSCALE_REST_TOKEN", TOKEN)
    for output_format in ("json", "html"):
        output = tmp_path / f"profile.{output_format}"
        with FakeFlink("flink") as fake:
            outcome = run_case_in_process(_argv(["profile", "--job", JOB_ID, "--window", "1s", "--interval", "1s",
                                                 "--format", output_format, "--output", str(output)], fake.url, how))
            _assert_sent(fake, how)
        assert outcome.exit_code == 0, outcome.stderr
        _assert_clean(outcome.stdout, outcome.stderr, output.read_text(encoding="utf-8"))


@pytest.mark.parametrize("how", ["url", "header-and-token"])
def test_no_secret_in_the_run_dir_or_the_dashboard_of_an_autoscale_run(
        how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dry run whose sampling hits a server that repeats the credentials in its errors: the loop holds and
    records why (events.jsonl), which the dashboard serves."""
    if how != "url":
        monkeypatch.setenv("FLINKSCALE_REST_TOKEN", TOKEN)
    run_dir = tmp_path / "run"
    with FakeFlink("echo-credentials-in-sampling") as fake:
        outcome = run_case_in_process(_argv(["autoscale", "--job", JOB_ID, "--dry-run", "--duration", "2s",
                                             "--interval", "1s", "--run-dir", str(run_dir)], fake.url, how))
        _assert_sent(fake, how)
    assert outcome.exit_code == 0, outcome.stderr
    texts = _run_dir_texts(run_dir)
    assert any("credentials rejected" in t for t in texts)  # the server's words reached the run dir...
    _assert_clean(outcome.stdout, outcome.stderr, *texts)  # ...without the credentials in them

    from fastapi.testclient import TestClient

    with TestClient(create_app(run_dir)) as client:
        answers: list[Any] = [client.get(path).text for path in
                              ("/api/state", "/api/graph", "/api/timeline", "/api/decisions", "/api/events")]
    assert any("credentials rejected" in a for a in answers)
    _assert_clean(*answers)


@pytest.mark.parametrize("url", [
    f"ftp://{USER}:{PASSWORD}@flink:8081", f"{USER}:{PASSWORD}@flink:8081", f"http://{USER}:{PASSWORD}@",
    f"http://{USER}:{PASSWORD}@flink:99999", f"http://{USER}:{PASSWORD}@flink:8081/?x=1", f"flink:8081?p={PASSWORD}",
])
def test_a_rejected_rest_url_is_not_echoed_with_its_password(url: str) -> None:
    outcome = run_case_in_process(["job", "list", "--rest", url])
    assert outcome.exit_code == 2 and outcome.stderr.count("\n") == 1 and "--rest" in outcome.stderr
    if PASSWORD in url.split("?")[0]:
        _assert_clean(outcome.stderr)


@pytest.mark.parametrize("text", [
    f"GET http://{USER}:{PASSWORD}@h:1/x failed", f"Authorization: Bearer {TOKEN}", f"token={TOKEN}&a=1",
    f"password: {PASSWORD}", f"Basic {BASIC}", f"https://u:{PASSWORD}@h/ and again https://u:{PASSWORD}@h/",
])
def test_redact_removes_credentials_by_pattern_alone(text: str) -> None:
    _assert_clean(redact(text))


def test_redact_removes_a_registered_secret_anywhere() -> None:
    register_secret(HEADER, "v")
    assert redact(f"x{HEADER}y, and {HEADER}") == "x***y, and ***"
    assert redact("nothing secret here, overview") == "nothing secret here, overview"  # "v" is too short to mask
