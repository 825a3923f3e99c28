"""The alert webhook: signed, retried POSTs of each alert to a receiver.

Split from :mod:`tether.surfaces.ops.alerts` (which re-exports it). Each
alert is POSTed as JSON with ``X-Tether-Signature: t=<unix>,v1=<hex>``, the
HMAC-SHA256 of ``f"{t}.{body}"`` with the shared secret (re-signed for each
attempt, so a receiver may refuse old timestamps without refusing a late
retry), and ``X-Tether-Alert-Id``. Retries (tenacity) are for connection
errors, timeouts, 408, 429 and 5xx only, with ``Retry-After`` honoured up to
a cap; a delivery that fails for good is logged (the URL without its path
or query, which may hold a token) and never raised.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from tether.exceptions import ConfigError
from tether.providers._errors import parse_retry_after
from tether.spec.policy import RetryPolicy
from tether.surfaces.logs import redact_value

if TYPE_CHECKING:
    from tether.surfaces.ops.alerts import Alert

__all__ = [
    "ALERT_ID_HEADER",
    "SIGNATURE_HEADER",
    "WEBHOOK_RETRY",
    "WebhookSink",
    "checked_url",
    "sign",
    "verify",
]

log = logging.getLogger("tether.alerts")

Sleep = Callable[[float], Awaitable[None]]

SIGNATURE_HEADER = "X-Tether-Signature"
ALERT_ID_HEADER = "X-Tether-Alert-Id"

#: the webhook's retries: 5 attempts, 1 s, 2 s, 4 s, 8 s with jitter, Retry-After up to 60 s
WEBHOOK_RETRY = RetryPolicy(
    max_retries=4,
    initial_delay=1.0,
    multiplier=2.0,
    max_delay=30.0,
    jitter=0.2,
    retry_after_cap=60.0,
    retry_statuses=frozenset({408, 429, *range(500, 600)}),
)


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``X-Tether-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(
    secret: str, body: bytes, header: str, *, now: float | None = None, tolerance: float = 300.0
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within ``tolerance`` s of ``now``."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields.setdefault(name, []).append(value)
    stamps = fields.get("t", [])
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    t = int(stamps[0])
    if abs((time.time() if now is None else now) - t) > tolerance:
        return False
    expected = sign(secret, body, t).rpartition("v1=")[2]
    return any(hmac.compare_digest(expected, v) for v in fields.get("v1", []))


def _public_url(url: str) -> str:
    """``url`` fit for a log line: scheme, host and port (a path or query may hold a token).

    Never raises: a part that does not parse is shown as ``?``.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "?://?/..."
    host = parts.hostname or "?"
    try:
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:  # out of range, not a number
        port = ":?"
    return f"{parts.scheme or '?'}://{host}{port}/..."


def checked_url(url: str, name: str = "the webhook URL") -> str:
    """``url`` if an http(s) client can POST to it, else a ``ConfigError`` naming ``name``
    (the URL shown without its path, query or credentials)."""
    why = ""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port out of range or not a number
        if parts.scheme not in ("http", "https"):
            why = "is not an http(s) URL"
        elif not parts.hostname:
            why = "has no host"
        elif port == 0:
            why = "has port 0"
        else:
            httpx.URL(url)
    except (ValueError, httpx.InvalidURL) as exc:
        why = f"does not parse ({exc})"
    if why:
        raise ConfigError(
            f"{name} ({_public_url(url)}) {why}: set it to the receiver's full "
            "https://host[:port]/path address (a port is 1 to 65535)"
        )
    return url


class _Undelivered(Exception):
    """One failed attempt: why, whether trying again may help, and the receiver's Retry-After."""

    def __init__(self, reason: str, *, transient: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.transient = transient
        self.retry_after = retry_after


#: failures on the way that trying again may cure (not a bad URL)
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


class WebhookSink:
    """POSTs each alert as JSON to ``url``, signed with ``secret`` and retried.

    - ``client``: the httpx client to use (one is made, and closed by
      :meth:`aclose`, when not given);
    - ``retry``: attempts and waits (:data:`WEBHOOK_RETRY`: 5 attempts); only
      connection errors, timeouts, 408, 429 and 5xx are retried, whatever
      its ``retry_statuses`` say of other 4xx;
    - ``timeout``: seconds for each attempt;
    - ``clock``, ``sleep``, ``rng``: for the signature's timestamp and the waits.
    """

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        client: httpx.AsyncClient | None = None,
        retry: RetryPolicy = WEBHOOK_RETRY,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not secret:
            raise ConfigError("WebhookSink needs a shared secret to sign alerts with")
        if not math.isfinite(timeout) or timeout <= 0:
            raise ConfigError(
                f"WebhookSink: timeout must be a number of seconds > 0, not {timeout}"
            )
        self.url = checked_url(url)
        self._secret = secret
        self._owned = client is None
        self._client = client if client is not None else httpx.AsyncClient()
        self._retry = retry
        self._timeout = timeout
        self._clock = clock
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()

    def __repr__(self) -> str:
        return f"WebhookSink({_public_url(self.url)!r})"

    async def send(self, alert: Alert) -> None:
        """Deliver ``alert``, retrying transient failures; a final failure is logged, not raised."""
        body = json.dumps(redact_value(alert.to_dict()), separators=(",", ":")).encode()
        attempts = 0

        async def attempt() -> None:
            nonlocal attempts
            attempts += 1
            await self._post(alert, body)

        def transient(exc: BaseException) -> bool:
            return isinstance(exc, _Undelivered) and exc.transient

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome is not None else None
            if exc is None:  # pragma: no cover - tenacity waits only after a failure here
                return 0.0
            return self._retry.delay(state.attempt_number, exc, self._rng)

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            delay = state.next_action.sleep if state.next_action is not None else 0.0
            log.info(
                "alert %s: delivery attempt %d to %s failed (%s); trying again in %.1f s",
                alert.id,
                state.attempt_number,
                _public_url(self.url),
                exc,
                delay,
            )

        retrying = AsyncRetrying(
            sleep=self._sleep,
            stop=stop_after_attempt(self._retry.max_retries + 1),
            wait=wait,
            retry=retry_if_exception(transient),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            await retrying(attempt)
        except Exception as exc:
            log.error(
                "alert %s (%s) was not delivered to the webhook at %s after %d attempt%s: %s",
                alert.id,
                alert.kind,
                _public_url(self.url),
                attempts,
                "" if attempts == 1 else "s",
                exc if isinstance(exc, _Undelivered) else f"{type(exc).__name__}: {exc}",
                extra={"alert_id": alert.id, "alert_kind": str(alert.kind)},
            )

    async def _post(self, alert: Alert, body: bytes) -> None:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "tether-alerts",
            SIGNATURE_HEADER: sign(self._secret, body, int(self._clock())),
            ALERT_ID_HEADER: alert.id,
        }
        try:
            response = await self._client.post(
                self.url, content=body, headers=headers, timeout=self._timeout
            )
        except _TRANSIENT as exc:
            raise _Undelivered(f"{type(exc).__name__}: {exc}", transient=True) from exc
        except httpx.HTTPError as exc:
            raise _Undelivered(f"{type(exc).__name__}: {exc}", transient=False) from exc
        if response.is_success:
            return
        status = response.status_code
        transient = status in self._retry.retry_statuses and (status >= 500 or status in (408, 429))
        after = parse_retry_after(response.headers) if transient else None
        raise _Undelivered(f"HTTP {status}", transient=transient, retry_after=after)

    async def aclose(self) -> None:
        """Close the httpx client if this sink made it."""
        if self._owned:
            await self._client.aclose()
