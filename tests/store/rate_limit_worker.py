"""One replica of a server racing others for sessions under a shared per-user limit.

``python rate_limit_worker.py --url URL --prefix P --n N --attempts K [--start-at T]``

It builds a :class:`~tether.Runtime` (in-memory store, a model that always
answers) whose limiter is ``open_rate_limiter(RateLimits(per_user=Quota(
sessions_per_hour=N)), URL, prefix=P)``, prints ``{"ready": true}``, waits
until Unix time ``T`` (read as one line from stdin when ``--start-at`` is not
given, so a test can pick it once every replica is ready), then starts ``K``
concurrent ``rt.run(agent, "hi", user_id="u1")`` and prints one JSON line:
``{"accepted": A, "refused": R, "errors": [...]}``. ``refused`` counts
``RateLimited`` for ``sessions_per_hour``; anything else is an error (exit 1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from tether import Agent, RateLimited, Runtime
from tether.spec.budget import Quota, RateLimits
from tether.store.redis_limits import open_rate_limiter
from tether.testing import FunctionModel


def _send(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def main(args: argparse.Namespace) -> int:
    policy = RateLimits(per_user=Quota(sessions_per_hour=args.n))
    limiter = await open_rate_limiter(policy, args.url, prefix=args.prefix)
    agent = Agent(
        name="worker", instructions="Say hello.", models=(FunctionModel(lambda _r: "hello"),)
    )
    async with Runtime(limiter=limiter) as rt:
        _send({"ready": True})
        start_at = args.start_at
        if start_at is None:
            line = await asyncio.to_thread(sys.stdin.readline)
            start_at = float(line)
        await asyncio.sleep(max(0.0, start_at - time.time()))
        results = await asyncio.gather(
            *(rt.run(agent, "hi", user_id="u1") for _ in range(args.attempts)),
            return_exceptions=True,
        )
    accepted = refused = 0
    errors: list[str] = []
    for r in results:
        if isinstance(r, RateLimited) and r.limit == "sessions_per_hour":
            refused += 1
        elif isinstance(r, BaseException):
            errors.append(f"{type(r).__name__}: {r}")
        elif r.ok:
            accepted += 1
        else:
            errors.append(f"turn failed: {r.error}")
    _send({"accepted": accepted, "refused": refused, "errors": errors})
    return 1 if errors else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="Redis URL shared by the replicas")
    parser.add_argument("--prefix", required=True, help="key prefix shared by the replicas")
    parser.add_argument("--n", type=int, required=True, help="sessions per hour per user")
    parser.add_argument("--attempts", type=int, required=True, help="concurrent runs")
    parser.add_argument("--start-at", type=float, default=None, help="Unix time to start")
    sys.exit(asyncio.run(main(parser.parse_args())))
