"""The REST options every Flink-facing command shares (cli._common.rest_options) and what the client does with
them: TLS with a self-signed certificate, headers and a token reaching the server, bad values as one line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from tests.fakeflink import JOB_ID, VERTEX_ID, FakeFlink

from flinkscale.core.errors import EndpointError
from flinkscale.flink import rest as rest_module
from flinkscale.flink.rest import FlinkRestClient

from .corpus import run_case_in_process


def test_tls_with_the_clusters_ca_works(certificate: tuple[Path, Path]) -> None:
    with FakeFlink("flink", certificate=certificate) as fake:
        outcome = run_case_in_process(["job", "list", "--rest", fake.url, "--rest-ca", str(certificate[0])])
    assert outcome.exit_code == 0, outcome.stderr
    assert "fbe2f9fd51e8ce0812ff7fcd1b8bb3bf" in outcome.stdout


def test_tls_without_verification_works_when_asked_for(certificate: tuple[Path, Path]) -> None:
    with FakeFlink("flink", certificate=certificate) as fake:
        outcome = run_case_in_process(["cluster", "status", "--rest", fake.url, "--rest-insecure"])
    assert outcome.exit_code == 0, outcome.stderr


def test_a_self_signed_certificate_is_reported_as_tls_not_as_flink_down(certificate: tuple[Path, Path]) -> None:
    with FakeFlink("flink", certificate=certificate) as fake:
        outcome = run_case_in_process(["job", "list", "--rest", fake.url])
    assert outcome.exit_code == 2
    assert "TLS certificate verify failed" in outcome.stderr and "--rest-ca" in outcome.stderr
    assert "is Flink running" not in outcome.stderr


def test_http_against_a_tls_port_and_https_against_a_plain_one_are_one_line(certificate: tuple[Path, Path]) -> None:
    with FakeFlink("flink", certificate=certificate) as tls, FakeFlink("flink") as plain:
        for url in (tls.url.replace("https://", "http://"), plain.url.replace("http://", "https://")):
            outcome = run_case_in_process(["job", "list", "--rest", url, "--rest-timeout", "3s"])
            assert outcome.exit_code == 2 and outcome.stderr.count("\n") == 1, outcome.stderr
            assert url.split("//")[1] in outcome.stderr


def test_headers_and_the_token_reach_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLINKSCALE_REST_TOKEN", "t0ken")
    with FakeFlink("flink") as fake:
        outcome = run_case_in_process(["job", "list", "--rest", fake.url, "--rest-header", "X-Tenant: blue",
                                       "--rest-header", "X-Trace:  42 "])
        headers = fake.requests[0].headers
    assert outcome.exit_code == 0, outcome.stderr
    assert (headers["authorization"], headers["x-tenant"], headers["x-trace"]) == ("Bearer t0ken", "blue", "42")


def test_an_explicit_authorization_header_wins_over_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLINKSCALE_REST_TOKEN", "t0ken")
    with FakeFlink("flink") as fake:
        run_case_in_process(["job", "list", "--rest", fake.url, "--rest-header", "Authorization: Basic abc="])
        assert fake.requests[0].headers["authorization"] == "Basic abc="


@pytest.mark.parametrize(("args", "field"), [
    (["--rest-header", "no-colon"], "--rest-header"),
    (["--rest-header", ": value"], "--rest-header"),
    (["--rest-header", "Bad Name: v"], "--rest-header"),
    (["--rest-header", "X-Empty:"], "--rest-header"),
    (["--rest-ca", "/nonexistent/ca.pem"], "--rest-ca"),
    (["--rest-ca", __file__], "--rest-ca"),
    (["--rest-ca", __file__, "--rest-insecure"], "--rest-insecure"),
    (["--rest-timeout", "soon"], "--rest-timeout"),
    (["--rest-timeout", "0s"], "--rest-timeout"),
    (["--rest-timeout", "1e400s"], "--rest-timeout"),
    (["--rest-timeout", "-5s"], "--rest-timeout"),
])
def test_bad_rest_options_are_one_line_naming_the_flag(args: list[str], field: str) -> None:
    outcome = run_case_in_process(["job", "list", "--rest", "http://127.0.0.1:9", *args])
    assert outcome.exit_code == 2
    assert outcome.stderr.count("\n") == 1 and field in outcome.stderr, outcome.stderr


@pytest.mark.parametrize("url", ["ftp://flink:8081", "flink:8081", "localhost", "http://", "http://:8081",
                                 "http://flink:0", "http://flink:99999", "http://fl ink:8081", "https://[::1",
                                 "http://flink:8081/#x", "", "   ", "http://" + "a" * 300 + ":8081",
                                 "http://a..b:8081"])
def test_a_rest_url_that_is_not_http_is_one_line(url: str) -> None:
    outcome = run_case_in_process(["job", "list", "--rest", url])
    assert outcome.exit_code == 2
    assert outcome.stderr.startswith("flinkscale: error: --rest: ") and outcome.stderr.count("\n") == 1


def test_the_token_must_be_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLINKSCALE_REST_TOKEN", "abc\ndef")
    outcome = run_case_in_process(["job", "list", "--rest", "http://127.0.0.1:9"])
    assert outcome.exit_code == 2 and "FLINKSCALE_REST_TOKEN" in outcome.stderr and "def" not in outcome.stderr


def test_a_token_that_is_not_ascii_is_one_line_without_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLINKSCALE_REST_TOKEN", "t\u00f6k\u2603")
    outcome = run_case_in_process(["job", "list", "--rest", "http://127.0.0.1:9"])
    assert outcome.exit_code == 2 and outcome.stderr.count("\n") == 1
    assert "FLINKSCALE_REST_TOKEN" in outcome.stderr and "\u2603" not in outcome.stderr


def test_the_deadline_ends_a_trickle_that_per_read_timeouts_never_would() -> None:
    # One byte every 0.5 s: every read succeeds well within the 10 s read timeout, forever.
    with FakeFlink("trickle", trickle_seconds=0.5) as fake:
        client = FlinkRestClient(fake.url, timeout=10.0, deadline=1.5)
        started = time.monotonic()
        with pytest.raises(EndpointError, match=r"no complete answer within 1.5s"):
            client.jobs()
        assert time.monotonic() - started < 8  # the deadline plus a generous margin for a loaded machine


def test_a_phase_deadline_covers_several_calls() -> None:
    with FakeFlink("trickle", trickle_seconds=0.5) as fake:
        client = FlinkRestClient(fake.url, deadline=30.0)
        with pytest.raises(EndpointError, match=r"the deadline for finding the job"), \
                client.phase(1.0, "finding the job"):
            client.jobs()


def test_credentials_in_the_url_become_basic_auth_and_leave_the_reported_url() -> None:
    with FakeFlink("flink") as fake:
        client = FlinkRestClient(fake.url.replace("://", "://alice:s3cr%40t@"))
        assert client.base_url == fake.url
        assert [j.id for j in client.jobs()] == ["fbe2f9fd51e8ce0812ff7fcd1b8bb3bf"]
        import base64

        assert fake.requests[0].headers["authorization"] == "Basic " + base64.b64encode(b"alice:s3cr@t").decode()


def test_a_redirect_is_reported_not_followed() -> None:
    with FakeFlink("redirect") as fake:
        with pytest.raises(EndpointError, match=r"redirect \(HTTP 302\) to https://login.example/sso"):
            FlinkRestClient(fake.url).jobs()
        assert len(fake.requests) == 1


@pytest.mark.parametrize(("value", "says"), [
    ("99999999", "above the vertex's max parallelism"),
    ("0", "positive integer"),
    ("\u00b2", "positive integer"),  # a digit to str.isdigit, not to int()
    ("two", "positive integer"),
])
def test_job_rescale_refuses_a_parallelism_flink_cannot_run_before_sending_it(value: str, says: str) -> None:
    with FakeFlink("flink") as fake:
        outcome = run_case_in_process(["job", "rescale", JOB_ID, "--vertex", f"{VERTEX_ID}={value}", "--no-wait",
                                       "--rest", fake.url])
        puts = [r for r in fake.requests if r.method == "PUT"]
    assert outcome.exit_code == 2 and outcome.stderr.count("\n") == 1, outcome.stderr
    assert outcome.stderr.startswith("flinkscale: error: --vertex: ") and says in outcome.stderr
    assert puts == []


def test_a_silent_port_ends_at_the_first_contact_deadline_not_the_call_deadline() -> None:
    # A port that accepts and never answers took the whole 30 s deadline (retries included) with the defaults.
    with FakeFlink("silent") as fake:
        started = time.monotonic()
        outcome = run_case_in_process(["job", "list", "--rest", fake.url])
        seconds = time.monotonic() - started
    assert outcome.exit_code in (1, 2) and outcome.stderr.count("\n") == 1, outcome.stderr
    assert f"within {rest_module.FIRST_CONTACT_SECONDS:g}s (no answer from this endpoint yet" in outcome.stderr
    assert rest_module.FIRST_CONTACT_SECONDS <= seconds < rest_module.DEFAULT_DEADLINE_SECONDS / 2


def test_after_a_first_answer_a_call_has_the_whole_deadline() -> None:
    with FakeFlink("flink") as fake, FlinkRestClient(fake.url, first_contact=1.0) as client:
        assert client._budget("GET x", first=True)[0] == 1.0
        client.jobs()
        budget, _, limit = client._budget("GET x", first=not client._answered)
    assert budget == rest_module.DEFAULT_DEADLINE_SECONDS and limit == "the deadline per REST call"


def test_an_explicit_rest_timeout_is_the_wait_from_the_first_call_on() -> None:
    with FakeFlink("silent") as fake:
        started = time.monotonic()
        outcome = run_case_in_process(["job", "list", "--rest", fake.url, "--rest-timeout", "2s"])
        seconds = time.monotonic() - started
    assert outcome.exit_code in (1, 2) and "within 2s" in outcome.stderr, outcome.stderr
    assert seconds >= 2.0  # not cut to the first contact's wait: the user asked for this one
