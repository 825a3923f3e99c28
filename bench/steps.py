"""Run N sessions of the overhead workflow, for counting instructions under callgrind.

Wall and CPU times on a shared 2-core machine move by 30% from one minute to
the next; an instruction count does not. ``bench/overhead.py``'s workflow
(three steps: look up an order, send an email, answer), run N times after a
warm-up, under ``valgrind --tool=callgrind``; the difference between two N
divided by the difference in sessions is the cost of one session in
instructions, start-up excluded::

    for n in 20 120; do
      PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python bench/steps.py $n bare /tmp/steps-$n.sqlite 2>&1 | grep Collected
    done

KIND is ``bare``, ``guarded``, ``store`` or ``guarded_store`` (the figures of
``bench/overhead.py``); the SQLite file is used by the ``store`` kinds (give
each run its own). ``PYTHONHASHSEED=0`` keeps the count the same run to run.
User-space instructions only: the kernel's share of a SQLite write (its
system calls) is not counted.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import overhead  # bench/overhead.py: this script's folder is first on sys.path
from tether.runtime import Runtime
from tether.store import InMemoryStore, open_store

KINDS = ("bare", "guarded", "store", "guarded_store")


async def main(n: int, kind: str, db: str) -> None:
    agent = overhead._guarded_agent() if "guarded" in kind else overhead._agent()
    if "store" in kind:
        store = await open_store(f"sqlite+aiosqlite:///{db}")
    else:
        store = InMemoryStore()
    async with Runtime(store=store) as rt:
        for _ in range(20):  # warm up caches and code paths
            await rt.run(agent, "Where is my order #W1?")
        for _ in range(n):
            result = await rt.run(agent, "Where is my order #W1?")
    assert result.ok, result.error


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[2] not in KINDS:
        raise SystemExit(f"usage: steps.py N {{{','.join(KINDS)}}} [SQLITE_FILE]")
    db = sys.argv[3] if len(sys.argv) > 3 else "/tmp/tether-steps.sqlite"
    Path(db).unlink(missing_ok=True)
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], db))
