"""Where a client's URL, key and timeouts come from, and the media types it speaks."""

from __future__ import annotations

import os
from typing import Any

import httpx

from tether import __version__
from tether.exceptions import InputRejected
from tether.spec.policy import RetryPolicy

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "JSON",
    "SERVER_ENV",
    "SSE",
    "STREAM_IDLE_TIMEOUT",
    "media_type",
    "settings",
    "stream_timeout",
]

#: where the API key comes from when none is given
API_KEY_ENV = "TETHER_API_KEY"
#: where the server's URL comes from when none is given (else ``http://127.0.0.1:8000``)
SERVER_ENV = "TETHER_SERVER"
#: a turn answered as JSON may run for minutes; a stream hears a keep-alive every 15 s
DEFAULT_TIMEOUT = httpx.Timeout(30.0, read=300.0)
#: a stream silent this long (four missed keep-alives) is taken as broken and picked up again
STREAM_IDLE_TIMEOUT = 60.0
DEFAULT_RETRY = RetryPolicy(max_retries=3, initial_delay=0.5, max_delay=8.0)

JSON = "application/json"
SSE = "text/event-stream"


def settings(
    base_url: str | None, api_key: str | None, timeout: float | httpx.Timeout | None
) -> dict[str, Any]:
    """What both clients hand to httpx: the URL, the headers (the key), the timeout."""
    url = base_url or os.environ.get(SERVER_ENV) or "http://127.0.0.1:8000"
    if not url.startswith(("http://", "https://")):
        raise InputRejected(f"{url!r} is not a server URL: give http://HOST:PORT or https://...")
    key = os.environ.get(API_KEY_ENV) if api_key is None else api_key
    headers = {"User-Agent": f"tether-client/{__version__}", "Accept": JSON}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return {"base_url": url, "headers": headers, "timeout": timeout}


def stream_timeout(client: httpx.AsyncClient | httpx.Client) -> httpx.Timeout:
    """``client``'s timeout, its read capped at :data:`STREAM_IDLE_TIMEOUT` for a stream."""
    t = client.timeout
    read = STREAM_IDLE_TIMEOUT if t.read is None else min(t.read, STREAM_IDLE_TIMEOUT)
    return httpx.Timeout(connect=t.connect, read=read, write=t.write, pool=t.pool)


def media_type(response: httpx.Response) -> str:
    """``response``'s content type, without parameters, lower case (``""`` if none)."""
    return str(response.headers.get("content-type", "")).partition(";")[0].strip().lower()
