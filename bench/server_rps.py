"""Part 3 of ``bench/server.py``: requests per second on the retail flow.

The scripted retail agent of ``tests/server/agents.py`` (model delay 0) on a
fresh server: ``--rps-clients`` clients each loop "create a session, ask an
order's status (JSON)" for ``--rps-seconds``; completed flows/s, HTTP
requests/s and per-request p50/p99; median of ``--rps-repeats`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from bench.server_common import JSON, STATUS, BenchError, Clients, Server, med, ms, pct, serving

__all__ = ["FlowStats", "bench_rps", "print_rps"]


@dataclass
class FlowStats:
    create: list[float] = field(default_factory=list)
    message: list[float] = field(default_factory=list)
    flows: int = 0


async def _flow(client: httpx.AsyncClient, url: str, stats: FlowStats) -> None:
    t0 = time.perf_counter()
    r = await client.post(f"{url}/v1/sessions", json={"agent": "retail"})
    t1 = time.perf_counter()
    if r.status_code != 201:
        raise BenchError(f"POST /v1/sessions: {r.status_code} {r.text[:300]}")
    sid = r.json()["id"]
    r = await client.post(f"{url}/v1/sessions/{sid}/messages", json={"message": STATUS})
    t2 = time.perf_counter()
    if r.status_code != 200:
        raise BenchError(f"POST messages: {r.status_code} {r.text[:300]}")
    body = r.json()
    if body.get("status") != "idle" or "W1024001 is" not in (body.get("output") or ""):
        raise BenchError(f"unexpected retail answer: {body}")
    stats.create.append(t1 - t0)
    stats.message.append(t2 - t1)
    stats.flows += 1


async def _drive_flows(clients: Clients, url: str, seconds: float) -> tuple[FlowStats, float]:
    """Every client runs flows back to back until ``seconds`` have passed."""
    stats = FlowStats()
    deadline = time.perf_counter() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            await _flow(client, url, stats)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in clients.all))
    return stats, time.perf_counter() - t0


async def _rps_run(clients: Clients, server: Server, seconds: float) -> JSON:
    gc.collect()
    cpu0, here0 = server.cpu_s(), time.process_time()
    stats, wall = await _drive_flows(clients, server.url, seconds)
    cpu_server, cpu_client = server.cpu_s() - cpu0, time.process_time() - here0
    both = stats.create + stats.message
    return {
        "flows": stats.flows,
        "seconds": round(wall, 3),
        "flows_per_s": round(stats.flows / wall, 1),
        "requests_per_s": round(len(both) / wall, 1),
        "request_p50_ms": ms(pct(both, 0.5)),
        "request_p99_ms": ms(pct(both, 0.99)),
        "create_p50_ms": ms(pct(stats.create, 0.5)),
        "create_p99_ms": ms(pct(stats.create, 0.99)),
        "message_p50_ms": ms(pct(stats.message, 0.5)),
        "message_p99_ms": ms(pct(stats.message, 0.99)),
        "cpu_server_ms_per_flow": round(cpu_server / max(1, stats.flows) * 1000, 3),
        "cpu_client_ms_per_flow": round(cpu_client / max(1, stats.flows) * 1000, 3),
    }


async def bench_rps(args: argparse.Namespace, tmp: Path, log: Callable[[str], None]) -> JSON:
    """Each client count in turn (alternating order over the repeats), on one server."""
    folder = tmp / "rps"
    env = {"TETHER_TEST_SHOP": str(folder / "shop.sqlite"), "TETHER_TEST_MODEL_DELAY": "0"}
    levels: list[int] = args.rps_clients
    runs: dict[int, list[JSON]] = {n: [] for n in levels}
    with serving(folder, ["tests.server.agents:retail"], env) as server:
        async with contextlib.AsyncExitStack() as stack:
            pools = {n: await stack.enter_async_context(Clients(n)) for n in levels}
            for n in levels:  # warm-up, not counted: code paths, each pool's connections
                await _drive_flows(pools[n], server.url, args.rps_warmup)
            for k in range(args.rps_repeats):
                for n in levels if k % 2 == 0 else levels[::-1]:
                    run = await _rps_run(pools[n], server, args.rps_seconds)
                    runs[n].append(run)
                    log(
                        f"  run {k + 1}/{args.rps_repeats}, {n} clients: "
                        f"{run['flows_per_s']} flows/s, {run['requests_per_s']} req/s, "
                        f"p50 {run['request_p50_ms']} ms, p99 {run['request_p99_ms']} ms"
                    )
    out: JSON = {"seconds": args.rps_seconds, "repeats": args.rps_repeats, "clients": {}}
    for n in levels:
        keys = [key for key in runs[n][0] if key not in ("flows", "seconds")]
        level: JSON = {key: round(med([r[key] for r in runs[n]]), 3) for key in keys}
        level["runs"] = runs[n]
        out["clients"][str(n)] = level
    return out


def print_rps(rps_all: JSON) -> None:
    print(
        f"\n3. retail flow (create a session, ask an order's status, JSON), "
        f"{rps_all['seconds']:g} s per run, median of {rps_all['repeats']} runs"
    )
    for n, rps in rps_all["clients"].items():
        print(
            f"   {n:>4} clients: {rps['flows_per_s']:.1f} flows/s, "
            f"{rps['requests_per_s']:.1f} requests/s; "
            f"per request p50 {rps['request_p50_ms']:.1f} ms, p99 {rps['request_p99_ms']:.1f} ms "
            f"(create p50 {rps['create_p50_ms']:.1f} / p99 {rps['create_p99_ms']:.1f}; message "
            f"p50 {rps['message_p50_ms']:.1f} / p99 {rps['message_p99_ms']:.1f}); CPU per flow: "
            f"server {rps['cpu_server_ms_per_flow']:.2f} ms, "
            f"client {rps['cpu_client_ms_per_flow']:.2f} ms"
        )
