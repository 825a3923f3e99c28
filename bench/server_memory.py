"""Part 2 of ``bench/server.py``: the server's memory per idle session.

A fresh server's RSS before and after creating ``--idle`` sessions and after
one streamed turn each (a zero-latency model), ``--memory-rounds`` times: a
later round tells a per-session residue (grows again) from a high-water mark.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from bench.server_common import (
    JSON,
    QUESTION,
    Clients,
    Server,
    agent_env,
    create_session,
    serving,
    stream_turn,
)

__all__ = ["bench_memory", "print_memory"]


async def _settled_rss(server: Server) -> int:
    await asyncio.sleep(1.0)
    return server.rss_kib()


async def bench_memory(args: argparse.Namespace, tmp: Path, log: Callable[[str], None]) -> JSON:
    n, width = args.idle, 50
    env = agent_env(0, 0, 4)
    rounds: list[JSON] = []
    with serving(tmp / "memory", ["bench.server_agent:plain"], env) as server:
        async with Clients(width) as clients:
            url = server.url
            rss_boot = server.rss_kib()

            async def create(c: httpx.AsyncClient, _i: object) -> str:
                return await create_session(c, url, "plain")

            async def turn(c: httpx.AsyncClient, sid: str) -> tuple[float, float]:
                return await stream_turn(c, url, sid, QUESTION, None)

            await clients.fan(await clients.fan(list(range(min(n, 100))), create), turn)
            base = await _settled_rss(server)
            for k in range(args.memory_rounds):
                t0 = time.perf_counter()
                sids = await clients.fan(list(range(n)), create)
                created_s = time.perf_counter() - t0
                idle = await _settled_rss(server)
                await clients.fan(sids, turn)
                turned = await _settled_rss(server)
                rounds.append(
                    {
                        "rss_before_kib": base,
                        "rss_idle_kib": idle,
                        "rss_after_turn_kib": turned,
                        "kib_per_idle_session": round((idle - base) / n, 3),
                        "kib_per_session_after_turn": round((turned - base) / n, 3),
                        "creates_per_s": round(n / created_s, 1),
                    }
                )
                log(
                    f"  round {k + 1}: RSS {base} -> {idle} KiB after {n} sessions "
                    f"-> {turned} KiB after a turn each"
                )
                base = turned
    return {
        "sessions": n,
        "rss_boot_kib": rss_boot,
        "rounds": rounds,
        "kib_per_idle_session": rounds[0]["kib_per_idle_session"],
        "kib_per_session_after_turn": rounds[0]["kib_per_session_after_turn"],
    }


def print_memory(mem: JSON) -> None:
    print(f"\n2. memory: server RSS, {mem['sessions']} sessions per round")
    for k, r in enumerate(mem["rounds"], 1):
        print(
            f"   round {k}: {r['rss_before_kib']} -> {r['rss_idle_kib']} KiB idle "
            f"({r['kib_per_idle_session']:.2f} KiB/session) -> {r['rss_after_turn_kib']} KiB "
            f"after a turn each ({r['kib_per_session_after_turn']:.2f} KiB/session)"
        )
