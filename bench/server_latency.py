"""Part 1 of ``bench/server.py``: the latency the server adds to a streaming turn, burst mode.

N sessions send a message at once (a thundering herd), through the server
and in this process (``InProcess``: the same agent and store type); *added*
is the server's percentile minus the in-process one, paired by repeat. The
pieces the steady mode (``bench/server_steady.py``) shares live here too:
the in-process baseline, the alternating repeats, the per-level figures and
the latency table.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bench.server_agent import plain_agent
from bench.server_common import (
    JSON,
    LOCAL,
    QUESTION,
    TARGET_ADDED_P50_MS,
    TARGET_ADDED_P99_MS,
    BenchError,
    Clients,
    Server,
    agent_env,
    create_session,
    med,
    ms,
    pct,
    serving,
    stream_turn,
)

from tether.runtime import Runtime
from tether.store import SQLStore, open_breakers
from tether.store.redis_bus import open_bus

__all__ = [
    "FIGURES",
    "InProcess",
    "Round",
    "added",
    "alternate",
    "bench_latency",
    "compare",
    "met",
    "model_words",
    "open_sessions",
    "percentiles",
    "print_latency",
    "print_table",
    "server_round",
    "timed_round",
    "times_line",
]

R = TypeVar("R")

#: the rows of a latency table, per level: the keys ``<figure>_ms`` of each side
FIGURES = ("ttft_p50", "ttft_p99", "total_p50", "total_p99")


@dataclass
class Round:
    """One configuration run once: per-session times (seconds) and CPU spent."""

    ttft: list[float]
    total: list[float]
    wall: float
    cpu_here: float  # this process: the client (server mode) or the runtime (in-process)
    cpu_server: float = 0.0
    cpu_server_loop: float = 0.0


async def open_sessions(url: str, users: list[Any]) -> list[str]:
    """A session of the plain agent per client (user), then a collection: none runs mid-turn."""
    sids = await asyncio.gather(*(create_session(c, url, "plain") for c in users))
    gc.collect()
    return list(sids)


async def timed_round(
    turns: Iterable[Awaitable[tuple[float, float]]],
    counters: Callable[[], tuple[float, float]] | None = None,
) -> Round:
    """``turns`` all at once: each one's times, the wall time, this process's CPU and, with
    ``counters`` (the server's process and event-loop CPU seconds), the server's."""
    cpu0, loop0 = counters() if counters else (0.0, 0.0)
    here0, t0 = time.process_time(), time.perf_counter()
    times = await asyncio.gather(*turns)
    wall = time.perf_counter() - t0
    here = time.process_time() - here0
    cpu1, loop1 = counters() if counters else (0.0, 0.0)
    return Round(
        ttft=[t[0] for t in times],
        total=[t[1] for t in times],
        wall=wall,
        cpu_here=here,
        cpu_server=cpu1 - cpu0,
        cpu_server_loop=loop1 - loop0,
    )


async def server_round(server: Server, clients: Clients, n: int, deltas: int) -> Round:
    """``n`` users (the first ``n`` clients) each create a session, then all stream a turn."""
    users = clients.all[:n]
    sids = await open_sessions(server.url, users)
    return await timed_round(
        (
            stream_turn(c, server.url, sid, QUESTION, deltas)
            for c, sid in zip(users, sids, strict=True)
        ),
        lambda: (server.cpu_s(), server.loop_cpu_s()),
    )


class InProcess:
    """The same agent and store type, driven through ``Runtime.session(...).stream`` here."""

    def __init__(
        self, folder: Path, *, first: float, gap: float, deltas: int, paced: bool = False
    ) -> None:
        self.folder = folder
        self.agent = plain_agent(first=first, gap=gap, deltas=deltas, paced=paced)
        self.deltas = deltas
        self.rt: Runtime | None = None

    async def __aenter__(self) -> InProcess:
        self.folder.mkdir(parents=True, exist_ok=True)
        # wired as the server wires its runtime (tether.surfaces.server.app._start)
        store = await SQLStore.open(
            f"sqlite+aiosqlite:///{self.folder / 'inproc.sqlite'}", pool_size=10
        )
        self.rt = Runtime(store=store, breakers=await open_breakers(None), bus=await open_bus(None))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.rt is not None:
            await self.rt.aclose()

    async def create(self) -> str:
        """One new session; its id."""
        assert self.rt is not None
        handle = self.rt.session(self.agent, principal=LOCAL)
        await handle.create(metadata={"via": "server"})
        return handle.id

    async def sessions(self, n: int) -> list[str]:
        """``n`` new sessions, then a collection (none runs mid-turn)."""
        sids = await asyncio.gather(*(self.create() for _ in range(n)))
        gc.collect()
        return list(sids)

    async def turn(self, sid: str) -> tuple[float, float]:
        """One streamed turn of session ``sid``: (time to the first delta, total), seconds."""
        assert self.rt is not None
        t0 = time.perf_counter()
        first: float | None = None
        seen = 0
        async for ev in self.rt.session(self.agent, sid, principal=LOCAL).stream(QUESTION):
            if ev.type == "model.delta":
                seen += 1
                if first is None:
                    first = time.perf_counter() - t0
        total = time.perf_counter() - t0
        if first is None or seen != self.deltas:
            raise BenchError(f"in-process session {sid}: {seen} deltas, expected {self.deltas}")
        return first, total

    async def round(self, n: int) -> Round:
        sids = await self.sessions(n)
        return await timed_round(self.turn(sid) for sid in sids)


# --- the figures, shared by both modes ---------------------------------------------------------


def percentiles(rounds: list[Any]) -> JSON:
    """Each round's p50 and p99 of ``ttft`` and ``total``, and their medians (ms)."""
    out: JSON = {}
    for name in ("ttft", "total"):
        for q, label in ((0.5, "p50"), (0.99, "p99")):
            out[f"{name}_{label}_ms"] = ms(med([pct(getattr(r, name), q) for r in rounds]))
            out[f"{name}_{label}_ms_rounds"] = [ms(pct(getattr(r, name), q)) for r in rounds]
    return out


def met(added: JSON) -> bool:
    """The issue's "latency added": both the first token and the whole turn must be within."""
    return bool(
        max(added["ttft_p50_ms"], added["total_p50_ms"]) <= TARGET_ADDED_P50_MS
        and max(added["ttft_p99_ms"], added["total_p99_ms"]) <= TARGET_ADDED_P99_MS
    )


def added(server: list[Any], inproc: list[Any]) -> JSON:
    """Added = server percentile - in-process percentile, paired by repeat; median over repeats."""
    out: JSON = {}
    for name in ("ttft", "total"):
        for q, label in ((0.5, "p50"), (0.99, "p99")):
            diffs = [
                pct(getattr(s, name), q) - pct(getattr(i, name), q)
                for s, i in zip(server, inproc, strict=True)
            ]
            out[f"{name}_{label}_ms"] = ms(med(diffs))
            out[f"{name}_{label}_ms_rounds"] = [ms(d) for d in diffs]
    return out


def compare(server: list[R], inproc: list[R], summarize: Callable[[list[R]], JSON]) -> JSON:
    """One level's figures: each side summarized, and what the server added."""
    return {
        "server": summarize(server),
        "inproc": summarize(inproc),
        "added": added(server, inproc),
    }


def times_line(r: Any, width: int, sep: str) -> str:
    """A run's p50 and p99 of the first token and the total (ms), for the progress log."""
    ttft = [ms(pct(r.ttft, q)) for q in (0.5, 0.99)]
    total = [ms(pct(r.total, q)) for q in (0.5, 0.99)]
    return (
        f"ttft p50 {ttft[0]:{width}.1f}{sep}p99 {ttft[1]:{width}.1f}"
        f"  total p50 {total[0]:{width}.1f}{sep}p99 {total[1]:{width}.1f}"
    )


async def alternate(
    levels: list[int],
    repeats: int,
    measure: Callable[[int, str], Awaitable[R]],
    describe: Callable[[R, str], str],
    log: Callable[[str], None],
) -> dict[int, dict[str, list[R]]]:
    """Every level on the server and in-process, ``repeats`` times, the order reversed on odd
    repeats (neither side always goes first); each run logged as ``describe`` words it."""
    results: dict[int, dict[str, list[R]]] = {n: {"server": [], "inproc": []} for n in levels}
    for rep in range(repeats):
        order = [(n, mode) for n in levels for mode in ("inproc", "server")]
        if rep % 2:
            order.reverse()
        for n, mode in order:
            r = await measure(n, mode)
            results[n][mode].append(r)
            log(f"  repeat {rep + 1}/{repeats}  {mode:>6} x{n:<4} {describe(r, mode)}")
    return results


def print_table(title: str, first: str, levels: JSON, notes: Callable[[str, JSON], None]) -> None:
    """``title``, then in-process, server and added per level and figure; ``notes(n, level)``
    after each level."""
    print(f"\n{title}")
    head = f"{first:>8} {'figure':<10} {'in-process':>11} {'server':>9} {'added':>8}"
    print(head)
    print("-" * len(head))
    for n, level in levels.items():
        for fig in FIGURES:
            key = f"{fig}_ms"
            print(
                f"{n:>8} {fig:<10} {level['inproc'][key]:>11.1f} {level['server'][key]:>9.1f} "
                f"{level['added'][key]:>8.1f}"
            )
        notes(n, level)


# --- the burst mode -----------------------------------------------------------------------------


def _summary(rounds: list[Round], n: int) -> JSON:
    """Per-round percentiles, then the median of each over the rounds (ms)."""
    out = percentiles(rounds)
    out["wall_ms"] = ms(med([r.wall for r in rounds]))
    out["cpu_here_ms_per_turn"] = round(med([r.cpu_here / n for r in rounds]) * 1000, 3)
    if any(r.cpu_server for r in rounds):
        out["cpu_server_ms_per_turn"] = round(med([r.cpu_server / n for r in rounds]) * 1000, 3)
        out["cpu_server_loop_ms_per_turn"] = round(
            med([r.cpu_server_loop / n for r in rounds]) * 1000, 3
        )
    return out


async def bench_latency(args: argparse.Namespace, tmp: Path, log: Callable[[str], None]) -> JSON:
    first, gap, deltas = args.first_ms / 1000, args.gap_ms / 1000, args.deltas
    env = agent_env(args.first_ms, args.gap_ms, deltas)
    levels = args.concurrency
    with serving(tmp / "latency", ["bench.server_agent:plain"], env) as server:
        rss_start = server.rss_kib()
        async with (
            InProcess(tmp / "inproc", first=first, gap=gap, deltas=deltas) as inproc,
            Clients(max(levels)) as clients,
        ):
            # warm-up, not counted: code paths, caches, the pool's connections
            warm = min(levels)
            await inproc.round(warm)
            await server_round(server, clients, max(levels), deltas)

            async def measure(n: int, mode: str) -> Round:
                if mode == "server":
                    return await server_round(server, clients, n, deltas)
                return await inproc.round(n)

            results = await alternate(
                levels, args.repeats, measure, lambda r, _mode: times_line(r, 8, "  "), log
            )
        rss_end = server.rss_kib()
    per_level: JSON = {
        str(n): compare(
            results[n]["server"], results[n]["inproc"], functools.partial(_summary, n=n)
        )
        for n in levels
    }
    top = per_level[str(max(levels))]["added"]
    return {
        "model": {
            "first_ms": args.first_ms,
            "gap_ms": args.gap_ms,
            "deltas": deltas,
            "nominal_ttft_ms": args.first_ms,
            "nominal_total_ms": args.first_ms + args.gap_ms * (deltas - 1),
        },
        "repeats": args.repeats,
        "levels": per_level,
        "server_rss_kib": {"start": rss_start, "end": rss_end},
        "target": {
            "at": max(levels),
            "added_p50_ms": TARGET_ADDED_P50_MS,
            "added_p99_ms": TARGET_ADDED_P99_MS,
            "met": met(top),
        },
    }


def _cpu_notes(n: str, level: JSON) -> None:
    s, i = level["server"], level["inproc"]
    if int(n) < 20:
        print(f"{'':>8} CPU per turn: too few turns for /proc's 10 ms clock ticks")
        return
    print(
        f"{'':>8} CPU per turn: server process {s.get('cpu_server_ms_per_turn', 0):.2f} ms "
        f"(event loop {s.get('cpu_server_loop_ms_per_turn', 0):.2f}), client "
        f"{s['cpu_here_ms_per_turn']:.2f} ms; in-process runtime "
        f"{i['cpu_here_ms_per_turn']:.2f} ms"
    )


def model_words(mod: JSON, spec: str = "") -> str:
    """The model of a latency part in words; ``spec`` formats its figures (ms)."""
    paced = " (on a fixed schedule)" if mod.get("paced") else ""
    return (
        f"{mod['first_ms']:{spec}} ms to the first delta, {mod['deltas']} deltas "
        f"{mod['gap_ms']:{spec}} ms apart{paced} = {mod['nominal_total_ms']:{spec}} ms"
    )


def print_latency(lat: JSON) -> None:
    title = (
        f"1. latency of a streaming turn (model: {model_words(lat['model'])}; "
        f"median of {lat['repeats']} repeats; ms)"
    )
    print_table(title, "sessions", lat["levels"], _cpu_notes)
    t = lat["target"]
    print(
        f"target at {t['at']} streams: added <= {t['added_p50_ms']:g} ms p50 and "
        f"<= {t['added_p99_ms']:g} ms p99 (first token and total): "
        f"{'met' if t['met'] else 'NOT MET'}"
    )
