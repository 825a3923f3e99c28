"""A client for the Tether server's HTTP API (public as :mod:`tether.client`).

:class:`AsyncClient` and :class:`Client` have the same methods, awaited or
not, and return the server's own response models
(:mod:`tether.surfaces.server.models`). What they add to plain HTTP:

- **Errors**: a non-2xx answer raises :class:`ServerError`, carrying the
  status, the problem document and ``Retry-After``; its message is the
  problem's title and detail. A server that cannot be reached, after the
  retries, raises :class:`ServerUnreachable`.
- **Idempotency**: every POST carries an ``Idempotency-Key`` (a fresh uuid4
  unless the caller gives one). A POST that failed on the connection is sent
  again with the same key, so the server runs it once. A POST answered with
  an error is not retried: the server replays a key's first outcome, so a
  second try needs a new key (the default for the next call).
- **Streams** (the ``stream*`` methods) yield :class:`StreamEvent` items. If
  a stream breaks before its end frame (a dropped connection, a cut read, a
  server shutting down), it is picked up again with ``GET
  /v1/sessions/{id}/events/stream`` and ``Last-Event-ID``: stored events come
  exactly once and in ``seq`` order, none missed (a gap in ``seq`` also
  reconnects). Text deltas are live only: some may be lost across a break,
  and the ``model.response`` event that follows has the whole text. A turn
  picked up that way ends with an ``END`` item (the session's status) instead
  of ``TURN``: the turn's summary went with the connection; ``get_session``
  has the state.

Retries (a connection error; a GET answered with one of the policy's
``retry_statuses``, 429 and 5xx by default; a broken stream) follow a
:class:`~tether.spec.policy.RetryPolicy`, ``Retry-After`` honoured up to its cap.
Sleep and randomness are injected.

Both clients share everything but the I/O, one module a concern:

- ``_errors``: :class:`ServerError`, :class:`ServerUnreachable`, reading answers;
- ``_items``: :class:`StreamEvent`, :class:`StreamKind`, :class:`StreamEnd`;
- ``_settings``: the URL, key and timeouts (``$TETHER_SERVER``, ``$TETHER_API_KEY``);
- ``_routes``: each endpoint's request, built once (a retry sends that very request);
- ``_retry``: whether and when to send again (``Retries``), a plain call's answers (``Call``);
- ``_follow``: a stream's place and frames (``Follow``);
- ``_async`` and ``_sync``: :class:`AsyncClient` and :class:`Client`, the endpoints and the I/O.
"""

from tether.surfaces.client._async import AsyncClient
from tether.surfaces.client._errors import ServerError, ServerUnreachable
from tether.surfaces.client._items import StreamEnd, StreamEvent, StreamKind
from tether.surfaces.client._settings import (
    API_KEY_ENV,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    SERVER_ENV,
    STREAM_IDLE_TIMEOUT,
)
from tether.surfaces.client._sync import Client

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT",
    "SERVER_ENV",
    "STREAM_IDLE_TIMEOUT",
    "AsyncClient",
    "Client",
    "ServerError",
    "ServerUnreachable",
    "StreamEnd",
    "StreamEvent",
    "StreamKind",
]
