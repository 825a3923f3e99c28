"""A fake clock: virtual time for tests, so nothing really sleeps.

Pass the clock itself where a ``Callable[[], float]`` clock is expected and
its :meth:`FakeClock.sleep` where a sleep function is::

    clock = FakeClock()
    rt = Runtime(..., clock=clock)
    await clock.sleep(30)      # returns at once; clock() is now 30 s later
    assert clock.sleeps == [30]
"""

from __future__ import annotations

import asyncio

__all__ = ["FakeClock"]


class FakeClock:
    """Virtual Unix time that moves only when told to.

    ``clock()`` (or ``clock.time()``) returns the current virtual time.
    ``await clock.sleep(s)`` moves it forward by ``s`` seconds, records ``s``
    in :attr:`sleeps` and yields to the event loop once, so other tasks get
    to run as they would during a real sleep. :meth:`advance` moves time
    without recording a sleep (time passing outside the code under test).
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self._now

    def time(self) -> float:
        """The current virtual time (Unix seconds)."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move virtual time forward by ``seconds`` without recording a sleep."""
        if seconds < 0:
            raise ValueError(f"FakeClock cannot go back in time (advance({seconds}))")
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        """Advance virtual time by ``seconds``, record it, and yield once."""
        if seconds < 0:
            raise ValueError(f"FakeClock cannot sleep a negative time (sleep({seconds}))")
        self.sleeps.append(seconds)
        self._now += seconds
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"FakeClock({self._now!r}, sleeps={len(self.sleeps)})"
