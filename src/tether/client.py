"""Talk to a Tether server over HTTP: the public face of :mod:`tether.surfaces.client`.

::

    from tether.client import Client

    with Client("http://127.0.0.1:8000") as tether:  # key from $TETHER_API_KEY
        session = tether.create_session("support")
        for item in tether.stream(session.id, "where is my order?"):
            ...

:class:`AsyncClient` has the same methods, awaited. Errors are
:class:`ServerError` (the server's problem document) and
:class:`ServerUnreachable`; streams yield :class:`StreamEvent` items and pick
themselves up after a broken connection. The response models are those of
:mod:`tether.surfaces.server.models`.
"""

from tether.surfaces.client import (
    AsyncClient,
    Client,
    ServerError,
    ServerUnreachable,
    StreamEnd,
    StreamEvent,
    StreamKind,
)

__all__ = [
    "AsyncClient",
    "Client",
    "ServerError",
    "ServerUnreachable",
    "StreamEnd",
    "StreamEvent",
    "StreamKind",
]
