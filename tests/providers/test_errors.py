"""The provider error helpers: Retry-After parsing, classification, redaction."""

from __future__ import annotations

import httpcore2
import httpx
import httpx2
import pytest

from tether.exceptions import ModelTimeout
from tether.providers._errors import (
    ProviderInfo,
    connection_error,
    is_retryable_status,
    parse_retry_after,
    public_url,
    redact,
    status_error,
    stream_error,
    timeout_error,
    transport_error_kind,
)

INFO = ProviderInfo(
    name="anthropic",
    title="Anthropic",
    key_env="ANTHROPIC_API_KEY",
    model="m1",
    secrets=("s3cr3t-value",),
)
NOW = 1_700_000_000.0  # 2023-11-14 22:13:20 GMT


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after": "12"}, 12.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),
        ({"retry-after": "Tue, 14 Nov 2023 22:13:50 GMT"}, 30.0),
        ({"retry-after": "Tue, 14 Nov 2023 22:00:00 GMT"}, 0.0),
        ({"retry-after": "whenever"}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(httpx2.Headers(headers), now=lambda: NOW) == expected


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529])
def test_transient_statuses_are_retryable(status: int) -> None:
    assert is_retryable_status(status)
    assert status_error(INFO, status).retryable


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_client_errors_are_not_retryable(status: int) -> None:
    assert not is_retryable_status(status)
    error = status_error(INFO, status)
    assert not error.retryable
    assert (error.status, error.provider, error.model) == (status, "anthropic", "m1")


def test_redact_removes_known_secrets_and_key_shaped_text() -> None:
    text = "key s3cr3t-value, sk-ant-api03-AbC_d-e, sk-proj-****abcd, Bearer abcdefghijkl"
    assert redact(text, ["s3cr3t-value"]) == "key ***, ***, ***, ***"


def test_status_error_detail_is_redacted_and_bounded() -> None:
    error = status_error(INFO, 400, detail="bad s3cr3t-value " + "x" * 1000)
    assert "s3cr3t-value" not in str(error)
    assert len(str(error)) < 700


def test_stream_error_types_classify_like_their_status() -> None:
    assert stream_error(INFO, "overloaded_error", "busy").status == 529
    assert not stream_error(INFO, "invalid_request_error", "no").retryable
    assert stream_error(INFO, None, None).retryable


def test_timeout_and_connection_errors() -> None:
    timeout = timeout_error(INFO, 30)
    assert isinstance(timeout, ModelTimeout)
    assert timeout.retryable
    assert "30s" in str(timeout)
    assert connection_error(INFO).retryable


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (httpx2.ReadTimeout("t"), "timeout"),
        (httpx.ConnectTimeout("t"), "timeout"),
        (httpx2.RemoteProtocolError("peer closed"), "connection"),
        (httpcore2.ReadError("reset"), "connection"),
        (ValueError("x"), None),
    ],
)
def test_transport_error_kind(exc: BaseException, kind: str | None) -> None:
    assert transport_error_kind(exc) == kind


def test_public_url_drops_credentials() -> None:
    assert public_url("http://user:pw@llm.internal:8000/v1") == "http://llm.internal:8000/v1"
    assert public_url("https://api.openai.com/v1") == "https://api.openai.com/v1"
