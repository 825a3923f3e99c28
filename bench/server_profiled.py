"""uvicorn, its event loop's thread profiled between two signals (``bench/server_profile.py``).

``python -m bench.server_profiled <uvicorn's arguments>`` runs ``uvicorn``'s
command line; ``SIGUSR1`` starts a :mod:`cProfile` profile of the main thread
(the event loop: every request's Python code runs there), ``SIGUSR2`` stops
it and writes it to ``$TETHER_BENCH_PROFILE`` (a ``pstats`` file). The
aiosqlite threads are not profiled: their CPU is read from ``/proc``.
"""

from __future__ import annotations

import cProfile
import os
import signal
import time
from typing import Any

import uvicorn.main

_profile: cProfile.Profile | None = None


def _start(_sig: int, _frame: Any) -> None:
    global _profile
    _profile = cProfile.Profile(time.thread_time)  # CPU of this thread: waits are not counted
    _profile.enable()


def _stop(_sig: int, _frame: Any) -> None:
    global _profile
    if _profile is None:
        return
    _profile.disable()
    _profile.dump_stats(os.environ["TETHER_BENCH_PROFILE"])
    _profile = None


if __name__ == "__main__":
    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _stop)
    uvicorn.main.main(prog_name="uvicorn")
