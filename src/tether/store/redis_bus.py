"""Event fan-out across replicas through Redis pub/sub: :class:`RedisBus`.

Each replica publishes the events its turns commit (and their text deltas)
on ``{prefix}events:{session_id}`` and subscribes to the sessions its
clients are streaming. Local listeners hear local events at once (no round
trip); a replica ignores its own messages when they come back.

Pub/sub is at-most-once: a message published while a replica was
reconnecting, or before its ``SUBSCRIBE`` took effect, is lost. That is
acceptable because the bus is not the record: listeners read the store for
any gap in ``seq`` and poll it when quiet (``tether.surfaces.server.streaming``),
so a lost message costs latency, never an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tether.exceptions import ConfigError
from tether.runtime.bus import LocalBus, Subscription
from tether.spec.events import Event
from tether.store.errors import StoreUnavailable
from tether.store.redis_breakers import bad_redis_url, redact_url, redis_client

__all__ = ["RedisBus", "open_bus"]

log = logging.getLogger("tether.store")

_RECONNECT_DELAY = 0.5


class RedisBus:
    """An :class:`~tether.runtime.bus.EventBus` shared by every replica on one Redis."""

    def __init__(
        self,
        client: aioredis.Redis,
        listener: aioredis.Redis,
        *,
        prefix: str = "tether:",
        queue_size: int = 2048,
    ) -> None:
        self._client = client
        self._listener = listener
        self.prefix = prefix
        self.origin = secrets.token_hex(8)
        self.local = LocalBus(queue_size=queue_size)
        self._out: asyncio.Queue[tuple[str, Sequence[Event]]] = asyncio.Queue()
        self._pubsub: Any = listener.pubsub(ignore_subscribe_messages=True)
        self._channels: set[str] = set()
        self._sender: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._closed = False

    def channel(self, session_id: str) -> str:
        return f"{self.prefix}events:{session_id}"

    # publishing ---------------------------------------------------------------

    def publish(self, session_id: str, events: Sequence[Event]) -> None:
        self.local.publish(session_id, events)
        if self._closed:
            return
        self._out.put_nowait((session_id, events))
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(
                self._send(), name="tether-bus-send"
            )

    async def _send(self) -> None:
        try:
            while True:
                session_id, events = await self._out.get()
                batch: dict[str, list[Event]] = {session_id: list(events)}
                while not self._out.empty():  # whatever queued meanwhile: one message a session
                    sid, more = self._out.get_nowait()
                    batch.setdefault(sid, []).extend(more)
                for sid, evs in batch.items():
                    payload = json.dumps(
                        {"o": self.origin, "e": [e.to_dict() for e in evs]},
                        separators=(",", ":"),
                        default=str,
                    )
                    try:
                        await self._client.publish(self.channel(sid), payload)
                    except (RedisError, OSError) as exc:  # listeners fall back to the store
                        log.warning("event bus: publish failed (%s); listeners read the store", exc)
        finally:
            self._sender = None

    # listening ----------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def subscribe(self, session_id: str) -> AsyncIterator[Subscription]:
        sub = self.local.add(session_id)
        channel = self.channel(session_id)
        try:
            if channel not in self._channels:
                self._channels.add(channel)
                try:
                    await self._pubsub.subscribe(channel)
                except (RedisError, OSError) as exc:
                    log.warning("event bus: subscribe failed (%s); listeners read the store", exc)
            if self._reader is None:
                self._reader = asyncio.get_running_loop().create_task(
                    self._read(), name="tether-bus-read"
                )
            yield sub
        finally:
            self.local.remove(sub)
            if not self.local.listeners(session_id) and channel in self._channels:
                self._channels.discard(channel)
                with contextlib.suppress(RedisError, OSError):
                    await self._pubsub.unsubscribe(channel)

    async def _read(self) -> None:
        while not self._closed:
            if not self._channels:
                await asyncio.sleep(0.05)
                continue
            try:
                msg = await self._pubsub.get_message(timeout=1.0)
            except (RedisError, OSError) as exc:
                log.warning("event bus: connection lost (%s); reconnecting", exc)
                await asyncio.sleep(_RECONNECT_DELAY)
                with contextlib.suppress(RedisError, OSError):
                    if self._channels:
                        await self._pubsub.subscribe(*self._channels)
                continue
            except RuntimeError:  # get_message before the first subscribe completed
                await asyncio.sleep(0.05)
                continue
            if msg is None or msg.get("type") != "message":
                continue
            self._dispatch(msg.get("data"))

    def _dispatch(self, raw: Any) -> None:
        try:
            payload = json.loads(raw)
            if payload.get("o") == self.origin:
                return
            events = [Event.from_dict(d) for d in payload["e"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("event bus: ignored a message it could not read (%s)", exc)
            return
        if events:
            self.local.publish(events[0].session_id, events)

    async def aclose(self) -> None:
        self._closed = True
        for task in (self._reader, self._sender):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
                    await task
        with contextlib.suppress(RedisError, OSError):
            await self._pubsub.aclose()
        await self._client.aclose()
        await self._listener.aclose()
        await self.local.aclose()


async def open_bus(url: str | None, *, prefix: str | None = None) -> RedisBus | LocalBus:
    """A :class:`RedisBus` on ``url`` (it must answer ``PING``); a :class:`LocalBus` without."""
    if not url:
        return LocalBus()
    client = redis_client(url, "the event bus")
    try:
        listener = aioredis.Redis.from_url(url, health_check_interval=10)
    except ValueError as exc:
        await client.aclose()
        raise bad_redis_url(url, "the event bus", exc) from None
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        await listener.aclose()
        raise StoreUnavailable(
            f"Redis at {redact_url(url)} did not answer ({exc}); start it or unset "
            "TETHER_REDIS_URL to serve from one process"
        ) from None
    except ConfigError:
        await client.aclose()
        await listener.aclose()
        raise
    return RedisBus(client, listener, prefix=prefix or "tether:")
