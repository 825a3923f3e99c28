"""Turns as the server's work: they outlive the request that started them.

A request starts a turn with :meth:`Runs.start` and then only *watches* it
(awaits its result, or streams its events); a client that disconnects stops
watching, not the turn. The turn records its own outcome for the
``Idempotency-Key`` it was started with, so a retry finds it.

:meth:`Runs.recover` sweeps for sessions left ``running`` by a replica that
died (its lease expired, or it shut down at a step boundary and gave the
lease back) and resumes them here; several replicas sweeping at once is
safe: the store's lease lets one of them in and the others get a
conflict, which is ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from tether.exceptions import RunError, SessionConflict, ShuttingDown
from tether.runtime import Runtime, TurnResult
from tether.runtime.journal import EventSink
from tether.spec.events import Event, SessionStatus
from tether.surfaces.server.versions import VersionRouter

__all__ = ["Runs", "Started"]

log = logging.getLogger("tether.server")

Outcome = Callable[[TurnResult | None, BaseException | None, int], Awaitable[None]]


class Started:
    """A turn the server runs: its task, and a future set at its first event."""

    __slots__ = ("first", "task")

    def __init__(self, task: asyncio.Task[TurnResult], first: asyncio.Future[None]) -> None:
        self.task = task
        self.first = first

    async def begun(self) -> None:
        """Wait until the turn recorded its first event, or ended (perhaps refused) before."""
        both: list[asyncio.Future[Any]] = [self.task, self.first]
        await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)


class Runs:
    """The turns in flight in this server process."""

    def __init__(self, rt: Runtime, agents: VersionRouter, *, recover_interval: float) -> None:
        self.rt = rt
        self.agents = agents
        self.recover_interval = recover_interval
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self.recovered = 0

    def start(
        self,
        work: Callable[[EventSink], Coroutine[Any, Any, TurnResult]],
        *,
        outcome: Outcome | None = None,
    ) -> Started:
        """Run ``work(sink)`` as the server's task; ``outcome`` records how it ended."""
        loop = asyncio.get_running_loop()
        first: asyncio.Future[None] = loop.create_future()
        stored = [0]

        def sink(ev: Event) -> None:
            if ev.seq:
                stored[0] = ev.seq
            if not first.done():
                first.set_result(None)

        async def run() -> TurnResult:
            result: TurnResult | None = None
            error: BaseException | None = None
            try:
                result = await work(sink)
                return result
            except BaseException as exc:
                error = exc
                raise
            finally:
                if outcome is not None:
                    try:
                        await asyncio.shield(outcome(result, error, stored[0]))
                    except Exception:
                        log.exception("could not record a turn's outcome")

        task = loop.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return Started(task, first)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if not isinstance(exc, RunError):
                log.error("a turn failed", exc_info=exc)

    @property
    def active(self) -> int:
        return len(self._tasks)

    # recovery ---------------------------------------------------------------------

    def start_sweeping(self) -> None:
        if self.recover_interval > 0 and self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().create_task(
                self._sweep_forever(), name="tether-recover"
            )

    async def _sweep_forever(self) -> None:
        while not self.rt.closing:
            # jitter: replicas started together do not sweep in lockstep
            await asyncio.sleep(self.recover_interval * random.uniform(0.5, 1.5))
            try:
                await self.recover()
            except RunError as exc:
                log.warning("recovery sweep failed: %s", exc)

    async def recover(self) -> int:
        """Resume every served session left ``running`` with no live lease; returns how many."""
        if self.rt.closing:
            return 0
        now = self.rt.clock()
        started = 0
        for rec in await self.rt.store.list_sessions(status=SessionStatus.RUNNING, limit=None):
            agent = self.agents.loaded_for_session(rec)
            if agent is None:  # not served here, or its version is not loaded here
                continue
            if rec.lease_owner is not None and (rec.lease_expires or 0) > now:
                continue  # someone is working on it
            handle = self.rt.session(agent, rec.id)
            log.warning("session %s: left running by %s; resuming it here", rec.id, rec.lease_owner)

            async def work(sink: EventSink, h: Any = handle) -> TurnResult:
                return await h.resume(on_event=sink)  # type: ignore[no-any-return]

            started += 1
            self.recovered += 1
            self.start(work, outcome=_quiet)
        return started

    # shutdown ----------------------------------------------------------------------

    async def aclose(self, grace: float) -> None:
        """Stop sweeping; the runtime's own ``aclose`` drains the turns to a step boundary."""
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        await self.rt.aclose(grace)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=max(1.0, grace / 10))


async def _quiet(result: TurnResult | None, error: BaseException | None, _last: int) -> None:
    if isinstance(error, (SessionConflict, ShuttingDown)):
        return  # another replica got there first, or we are stopping
    if error is not None and not isinstance(error, asyncio.CancelledError):
        log.warning("a recovered turn failed: %s", error)
