"""Fixtures for the provider tests: ``respx`` routes for the SDKs' real HTTP stack.

The installed ``anthropic`` and ``openai`` SDKs do not use ``httpx``: they
use ``httpx2``, a fork with its own transport layer (``httpcore2``). ``respx``
only patches ``httpx``/``httpcore``, so out of the box its routes would never
see the SDKs' requests. :class:`HTTPCore2Mocker` teaches respx the one
seam it needs: it patches ``httpcore2``'s connection pools exactly the way
respx's own ``httpcore`` mocker patches ``httpcore``'s. Everything above
the pool (the SDK client Tether builds, its headers, timeouts, retry
policy and SSE decoding, and httpx2's error mapping) is the real code.

A side effect that raises an ``httpx`` transport error (``httpx.ReadTimeout``,
``httpx.ConnectError``...) is re-raised as the ``httpcore2`` error of the
same name, which is what the real network layer raises; httpx2 then maps it
as it would in production.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, cast

import httpcore2
import httpx
import pytest
import respx
from respx.mocks import HTTPCoreMocker
from respx.patterns import parse_url


class HTTPCore2Mocker(HTTPCoreMocker):
    """respx's httpcore mocker, aimed at ``httpcore2`` (the transport of ``httpx2``)."""

    name = "httpcore2"
    targets = [  # noqa: RUF012 - respx's Mocker API is a mutable class attribute
        "httpcore2._sync.connection.HTTPConnection",
        "httpcore2._sync.connection_pool.ConnectionPool",
        "httpcore2._sync.http_proxy.HTTPProxy",
        "httpcore2._async.connection.AsyncHTTPConnection",
        "httpcore2._async.connection_pool.AsyncConnectionPool",
        "httpcore2._async.http_proxy.AsyncHTTPProxy",
    ]
    target_methods = ["handle_request", "handle_async_request"]  # noqa: RUF012

    @classmethod
    def to_httpx_request(cls, **kwargs: Any) -> httpx.Request:
        request = kwargs["request"]
        method = request.method.decode("ascii")
        raw_url = (request.url.scheme, request.url.host, request.url.port, request.url.target)
        return httpx.Request(
            method,
            parse_url(raw_url),
            headers=request.headers,
            stream=request.stream,
            extensions=request.extensions,
        )

    @classmethod
    def from_sync_httpx_response(
        cls, httpx_response: httpx.Response, target: Any, **kwargs: Any
    ) -> httpcore2.Response:
        return httpcore2.Response(
            status=httpx_response.status_code,
            headers=httpx_response.headers.raw,
            content=httpx_response.stream,
            extensions=httpx_response.extensions,
        )

    @classmethod
    async def _send_async_request(cls, httpx_request: httpx.Request, **kwargs: Any) -> Any:
        try:
            return await cast(Any, super())._send_async_request(httpx_request, **kwargs)
        except httpx.TransportError as error:
            raise _as_httpcore2(error) from error

    @classmethod
    def _send_sync_request(cls, httpx_request: httpx.Request, **kwargs: Any) -> Any:
        try:
            return cast(Any, super())._send_sync_request(httpx_request, **kwargs)
        except httpx.TransportError as error:
            raise _as_httpcore2(error) from error


def _as_httpcore2(error: httpx.TransportError) -> Exception:
    for klass in type(error).__mro__:
        twin = getattr(httpcore2, klass.__name__, None)
        if isinstance(twin, type) and issubclass(twin, Exception):
            return twin(str(error))
    return httpcore2.NetworkError(str(error))  # pragma: no cover - every httpx error has a twin


@pytest.fixture
def http() -> Iterator[respx.MockRouter]:
    """A respx router in front of the SDKs' httpx2 stack; unmatched requests fail."""
    with respx.mock(using=HTTPCore2Mocker.name, assert_all_called=False) as router:
        yield router


def sse(events: list[tuple[str | None, Any]]) -> bytes:
    """An SSE body: ``(event name or None, data)``; dict data is JSON-encoded."""
    out = []
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        out.append((f"event: {name}\n" if name else "") + f"data: {text}\n\n")
    return "".join(out).encode()


def sent_json(route: respx.Route, index: int = -1) -> Any:
    """The JSON body of a request that ``route`` received."""
    return json.loads(route.calls[index].request.content)
