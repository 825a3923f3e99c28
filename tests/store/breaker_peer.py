"""A second process sharing Redis breakers with the test: ``python breaker_peer.py URL PREFIX``.

It opens a :class:`~tether.store.redis_breakers.RedisBreakerBackend` on
``PREFIX``, pings Redis, prints ``{"ready": true}``, then answers one JSON
command per line on stdin with one JSON line on stdout until stdin closes:

- ``{"op": "admit", "key": K, "now": T, "policy": {...}}`` ->
  ``{"allowed": ..., "trial": ..., "retry_at": ...}``
- ``{"op": "record", "key": K, "now": T, "ok": B, "trial": B, "policy": {...}}`` ->
  ``{"transition": "opened" | "closed" | null}``

``policy`` holds :class:`~tether.spec.policy.BreakerPolicy` fields.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from tether.spec.policy import BreakerPolicy
from tether.store.redis_breakers import RedisBreakerBackend


def _send(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


async def main(url: str, prefix: str) -> None:
    backend = RedisBreakerBackend.from_url(url, prefix=prefix)
    try:
        await backend.ping()
        _send({"ready": True})
        while line := await asyncio.to_thread(sys.stdin.readline):
            cmd = json.loads(line)
            policy = BreakerPolicy(**cmd["policy"])
            if cmd["op"] == "admit":
                a = await backend.admit(cmd["key"], cmd["now"], policy)
                _send({"allowed": a.allowed, "trial": a.trial, "retry_at": a.retry_at})
            else:
                t = await backend.record(
                    cmd["key"], cmd["ok"], cmd["now"], policy, trial=cmd["trial"]
                )
                _send({"transition": t})
    finally:
        await backend.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
