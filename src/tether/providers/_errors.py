"""Turn a provider SDK's failure into a :class:`~tether.exceptions.ProviderError`.

The reliability layer decides what to do from three fields alone:
``status`` (the HTTP status, when there was one), ``retryable`` and
``retry_after`` (seconds the provider asked us to wait). This module is
the one place that sets them, for every provider, so retry classification
is the same everywhere:

- retryable: 408, 409, 429, every 5xx (529 "overloaded" included),
  timeouts (raised as :class:`~tether.exceptions.ModelTimeout`) and
  connection errors;
- not retryable: every other 4xx (400, 401, 403, 404, 413, 422...).

Messages say the likely cause and the fix, and never contain an API key:
the provider's own error text is passed through :func:`redact` first.
Nothing here imports an SDK; the provider modules extract the facts
(status, headers, the API's message) and call these functions.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from tether.exceptions import ModelTimeout, ProviderError

__all__ = [
    "ProviderInfo",
    "connection_error",
    "is_retryable_status",
    "parse_retry_after",
    "public_url",
    "redact",
    "status_error",
    "stream_error",
    "timeout_error",
    "transport_error_kind",
]

_MAX_DETAIL = 300
# Anything shaped like a secret key: sk-..., sk-ant-..., sk-proj-..., Bearer tokens.
_KEY_LIKE = re.compile(r"(?:\bsk-[A-Za-z0-9_\-*.]{4,}|\bBearer\s+[A-Za-z0-9_\-.=]{8,})")


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """What an error message needs to know about the provider it talks about.

    ``key_env`` is the environment variable holding the key; ``endpoint`` the
    base URL in use (shown for connection errors, so a local server that is
    not running is obvious); ``secrets`` the values to scrub from messages.
    """

    name: str
    title: str
    key_env: str
    model: str
    endpoint: str = ""
    secrets: tuple[str, ...] = ()

    @property
    def spec(self) -> str:
        return f"{self.name}:{self.model}"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with the given secrets and anything key-shaped replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return _KEY_LIKE.sub("***", text)


def public_url(url: str) -> str:
    """``url`` without any ``user:password@`` part, fit to show in a message."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return parts._replace(netloc=netloc).geturl()


def is_retryable_status(status: int) -> bool:
    """Whether an HTTP status is a transient failure worth retrying."""
    return status in (408, 409, 429) or status >= 500


def parse_retry_after(
    headers: Mapping[str, str] | None, *, now: Callable[[], float] = time.time
) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date).

    ``headers`` must look keys up case-insensitively (httpx headers do).
    Returns ``None`` when neither header is present or parseable; a date in
    the past gives ``0.0``.
    """
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        return None
    return max(0.0, when.timestamp() - now())


def _detail(info: ProviderInfo, text: str | None) -> str:
    if not text:
        return ""
    text = redact(" ".join(text.split()), info.secrets)
    if len(text) > _MAX_DETAIL:
        text = text[: _MAX_DETAIL - 3] + "..."
    return f" The API said: {text}"


def _advice(info: ProviderInfo, status: int, retry_after: float | None) -> str:
    title, model = info.title, info.model
    if status == 400:
        return (
            f"{title} rejected the request as invalid (often a tool schema it does not "
            "accept, or a conversation shape it cannot take). Fix the request; it is not retried."
        )
    if status == 401:
        return (
            f"{title} rejected the API key (missing, wrong or revoked). Check {info.key_env} "
            "or the api_key passed to the model."
        )
    if status == 403:
        return (
            f"The {title} key is valid but not allowed to use {model!r}. Check the key's "
            "organization/workspace permissions, or choose another model."
        )
    if status == 404:
        where = f" at {info.endpoint}" if info.endpoint else ""
        return (
            f"{title} has no model {model!r}{where}. Check the model name in the spec "
            f"{info.spec!r} (and the base URL, for a compatible server)."
        )
    if status == 408:
        return f"{title} timed out waiting for the request. Transient; it will be retried."
    if status == 409:
        return f"{title} reported a conflict (a lock). Transient; it will be retried."
    if status == 413:
        return (
            f"The request is too large for {title}. Shorten the conversation or tool output "
            "(context compression, smaller tool results)."
        )
    if status == 422:
        return f"{title} could not process the request as sent. Fix the request; it is not retried."
    if status == 429:
        wait = f" (it asked to wait {retry_after:g}s)" if retry_after is not None else ""
        return (
            f"{title} rate-limited the call{wait}. Transient; it will be retried. If it "
            "persists, lower concurrency or raise the account's rate limit."
        )
    if status == 529:
        return f"{title} is overloaded. Transient; it will be retried or fall back."
    if status >= 500:
        return f"{title} had a server error ({status}). Transient; it will be retried or fall back."
    return f"{title} refused the request ({status}); it is not retried."


def status_error(
    info: ProviderInfo,
    status: int,
    *,
    headers: Mapping[str, str] | None = None,
    detail: str | None = None,
    note: str = "",
) -> ProviderError:
    """The error for an HTTP error status from the provider."""
    retry_after = parse_retry_after(headers)
    message = f"{info.spec}: HTTP {status}{note}. {_advice(info, status, retry_after)}"
    return ProviderError(
        message + _detail(info, detail),
        provider=info.name,
        model=info.model,
        status=status,
        retryable=is_retryable_status(status),
        retry_after=retry_after,
    )


# Error types a provider can send inside an already-started (HTTP 200) stream.
_STREAM_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "api_error": 500,
    "server_error": 500,
    "overloaded_error": 529,
}


def stream_error(info: ProviderInfo, error_type: str | None, detail: str | None) -> ProviderError:
    """The error for a failure the provider reported in the middle of a stream.

    Known error types are classified like their HTTP status; an unknown one
    is treated as a transient server error, since the request itself was
    accepted.
    """
    status = _STREAM_ERROR_STATUS.get(error_type or "", 500)
    note = f" (reported mid-stream as {error_type or 'an error'})"
    return status_error(info, status, detail=detail, note=note)


def timeout_error(info: ProviderInfo, timeout: float) -> ModelTimeout:
    """The error for a call that got no (complete) answer in time."""
    return ModelTimeout(
        f"{info.spec}: timed out (no data from the provider within {timeout:g}s). Transient; "
        "it will be retried or fall back. If slow answers are expected, raise the model timeout.",
        provider=info.name,
        model=info.model,
    )


def connection_error(info: ProviderInfo, detail: str | None = None) -> ProviderError:
    """The error for a call that could not reach the provider, or lost the connection."""
    where = info.endpoint or f"the {info.title} API"
    message = (
        f"{info.spec}: could not reach {where} (connection failed or dropped). Transient; "
        "it will be retried or fall back. If it persists, check network access, proxies, "
        "and that a self-hosted server is running at that URL."
    )
    return ProviderError(
        message + _detail(info, detail),
        provider=info.name,
        model=info.model,
        retryable=True,
    )


def transport_error_kind(exc: BaseException) -> str | None:
    """``"timeout"``, ``"connection"`` or ``None`` for an ``httpx``/``httpx2`` transport error.

    The SDKs wrap transport errors raised while *sending*, but not those
    raised while a streamed body is being read. Matching on the class names
    of the exception's bases, within the httpx family only, works for both
    ``httpx`` and its fork ``httpx2`` without importing either.
    """
    names = {
        klass.__name__
        for klass in type(exc).__mro__
        if klass.__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2")
    }
    if "TimeoutException" in names:
        return "timeout"
    if names & {"TransportError", "NetworkError", "ProtocolError"}:  # httpx / httpcore bases
        return "connection"
    return None
