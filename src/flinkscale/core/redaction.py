"""Redaction of credentials: the one function every message, log line and run-dir file goes through.

Secrets reach flinkscale three ways: in a URL (``http://user:pass@host``), in a header value (``--rest-header
'Authorization: Basic ...'``) and in an environment variable (``FLINKSCALE_REST_TOKEN``). Two mechanisms
cover them:

- patterns: the user-info part of any ``scheme://user:pass@`` URL, and the value after ``Authorization``,
  ``Bearer`` or a ``token=``/``password=`` style key, wherever they appear in a text;
- a registry: the code that *receives* a secret (the REST client for its headers and URL credentials, the
  CLI for the token) calls ``register_secret`` at once, and from then on ``redact`` replaces that exact
  value anywhere, whatever the text around it (an error a library built, a URL echoed in a redirect).

``redact`` is pure string work (no I/O); the registry is process state, guarded by a lock, so a secret
registered by one thread is redacted in messages any thread writes.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Any

MASK = "***"

_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/?#@\s]+)@")
_KEYED_SECRET = re.compile(
    r"(?P<key>\b(?:authorization|proxy-authorization|x-api-key|api[-_]?key|token|access[-_]?token|password|"
    r"passwd|secret)\b[\"']?\s*[:=]\s*[\"']?)(?P<value>(?:(?:bearer|basic|token)\s+)?[^\s\"',;&]+)",
    re.IGNORECASE)
_SCHEME_CREDENTIAL = re.compile(r"(?P<key>\b(?:bearer|basic)\s+)(?P<value>[A-Za-z0-9._~+/=-]{6,})",
                                re.IGNORECASE)

#: Registered values shorter than this are not replaced everywhere (a one-letter "secret" would garble every
#: message); URL credentials of any length are still masked by the URL pattern.
MIN_SECRET_LENGTH = 4

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(*values: str | None) -> None:
    """Remember secret values so that ``redact`` removes them from every later text (short values ignored)."""
    with _lock:
        _secrets.update(v for v in values if v and len(v) >= MIN_SECRET_LENGTH)


def registered_secrets() -> frozenset[str]:
    with _lock:
        return frozenset(_secrets)


def forget_secrets(values: Iterable[str] | None = None) -> None:
    """Forget some (or, with no argument, all) registered secrets; for tests and long-lived processes."""
    with _lock:
        if values is None:
            _secrets.clear()
        else:
            _secrets.difference_update(values)


def redact(text: str) -> str:
    """``text`` with URL credentials, keyed secrets and every registered secret replaced by ``***``."""
    if not text:
        return text
    text = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", text)
    text = _KEYED_SECRET.sub(lambda m: f"{m.group('key')}{MASK}", text)
    text = _SCHEME_CREDENTIAL.sub(lambda m: f"{m.group('key')}{MASK}", text)
    # Longest first, so that a secret containing another one is replaced whole.
    for secret in sorted(registered_secrets(), key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_json(value: Any) -> Any:
    """``value`` (plain JSON data) with every string, keys included, passed through ``redact``."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): redact_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_json(v) for v in value]
    return value
