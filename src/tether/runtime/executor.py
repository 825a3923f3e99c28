"""The runtime's own worker threads for tools that are plain (blocking) functions.

A plain function cannot be stopped once it runs: when its call times out,
the runtime stops waiting, but the thread goes on until the function
returns, perhaps never. On the event loop's default thread pool (what
``asyncio.to_thread`` uses) a few such calls take every thread, and then
everything else that needs that pool waits behind them: another session's
instant tool "does not finish", and DNS lookups stall, since
``loop.getaddrinfo`` runs there too.

So tools run on a pool the runtime owns, :class:`ToolExecutor`: bounded,
apart from the loop's, and watched. It counts the threads still busy with a
call that was given up on (:attr:`ToolExecutor.abandoned`), logs each one,
and once every thread is held that way it refuses new calls at once
(:class:`ToolWorkersBusy`, which the model receives as an error result)
instead of queueing them behind calls that may never end.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from tether.exceptions import ToolWorkersBusy

__all__ = ["DEFAULT_TOOL_WORKERS", "ToolExecutor"]

log = logging.getLogger("tether.tools")

#: threads for plain-function tools, per runtime
DEFAULT_TOOL_WORKERS = 32


class ToolExecutor:
    """A bounded thread pool for plain-function tools; one per runtime.

    ``await executor.run(fn, **kwargs)`` calls ``fn(**kwargs)`` on one of at
    most ``max_workers`` threads (named ``tether-tool_N``), with the caller's
    context variables, and returns its result. The pool is created at the
    first call.

    When the waiting caller is cancelled (the tool's timeout, or the turn
    being cancelled) while ``fn`` runs, the call is *abandoned*: its thread
    stays busy until ``fn`` returns, and :attr:`abandoned` counts it (a
    warning names the function). A call cancelled before it started never
    runs. Once every thread is held by abandoned calls, :meth:`run` raises
    :class:`ToolWorkersBusy` at once rather than queueing; when a hung
    function finally returns, its thread serves calls again.

    Why a plain :class:`~concurrent.futures.ThreadPoolExecutor`, not
    ``asyncio.to_thread`` or ``anyio.to_thread``: those run on a pool shared
    with everything else in the process (the loop's default executor, or
    anyio's process-wide limiter), which a runtime can neither bound for
    itself nor observe, so it cannot tell that its threads are stuck, keep
    its stuck threads from starving DNS lookups and other libraries, or
    refuse instead of queueing. A pool of its own gives all three, with
    the standard library alone.

    Python joins pool threads at interpreter exit, so a function that never
    returns delays exit (as it would on the default pool); :meth:`close`
    itself never waits for one unless asked to.
    """

    def __init__(
        self, max_workers: int = DEFAULT_TOOL_WORKERS, *, thread_name_prefix: str = "tether-tool"
    ) -> None:
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(f"max_workers must be a positive int, got {max_workers!r}")
        self.max_workers = max_workers
        self.thread_name_prefix = thread_name_prefix
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False
        # Written from worker threads (a call's end) and the loop (its abandonment).
        self._lock = threading.Lock()
        self._abandoned = 0

    @property
    def abandoned(self) -> int:
        """How many threads are running a call whose caller stopped waiting."""
        return self._abandoned

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (:meth:`run` then refuses)."""
        return self._closed

    async def run(self, fn: Callable[..., Any], /, **kwargs: Any) -> Any:
        """``fn(**kwargs)`` on a worker thread; its result, or its exception.

        Raises :class:`ToolWorkersBusy` without running ``fn`` when every
        thread is held by an abandoned call, and ``RuntimeError`` after
        :meth:`close`.
        """
        if self._closed:
            raise RuntimeError("the tool executor is closed: the runtime is shutting down")
        if self._abandoned >= self.max_workers:
            raise ToolWorkersBusy(
                f"the runtime's tool workers are all busy with calls that timed out "
                f"({self._abandoned} of {self.max_workers} threads); not run"
            )
        pool = self._pool
        if pool is None:
            pool = self._pool = ThreadPoolExecutor(
                max_workers=self.max_workers, thread_name_prefix=self.thread_name_prefix
            )
        context = contextvars.copy_context()  # as asyncio.to_thread does
        future = pool.submit(context.run, functools.partial(fn, **kwargs))
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            if not future.cancel() and not future.done():
                self._abandon(fn, future)
            task = asyncio.current_task()
            if self._closed and future.cancelled() and task is not None and not task.cancelling():
                # close() dropped the queued call; nobody cancelled the caller
                raise RuntimeError(
                    "the tool executor was closed before this call started: not run"
                ) from None
            raise

    def _abandon(self, fn: Callable[..., Any], future: Future[Any]) -> None:
        with self._lock:
            self._abandoned += 1
            count = self._abandoned
        name = getattr(fn, "__qualname__", None) or repr(fn)
        log.warning(
            "tool function %s is still running after its call was abandoned (timed out or "
            "cancelled); its thread stays busy until it returns (%d of %d tool threads held)",
            name,
            count,
            self.max_workers,
        )
        future.add_done_callback(self._release)

    def _release(self, _future: Future[Any]) -> None:
        with self._lock:
            self._abandoned -= 1

    def close(self, *, wait: bool = False) -> None:
        """Refuse new calls and cancel queued ones; with ``wait``, join the threads.

        Without ``wait`` (the default) it returns at once, even while
        abandoned calls still hang; their threads end when they return.
        """
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=True)
