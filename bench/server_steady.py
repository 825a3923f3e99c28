"""Part 1b of ``bench/server.py``: the latency the server adds under a steady load.

N users, each with its own session and client, run a closed loop (the next
turn as soon as ``turn.end`` came), on the server and in this process; the
turns begun in a measured window count. Beside the latency: the load, the
server's and the client's CPU, and how late this process's event loop woke.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bench.server_common import (
    JSON,
    QUESTION,
    TARGET_ADDED_P50_MS,
    TARGET_ADDED_P99_MS,
    BenchError,
    Clients,
    agent_env,
    med,
    ms,
    pct,
    serving,
    stream_turn,
)
from bench.server_latency import (
    InProcess,
    alternate,
    compare,
    met,
    model_words,
    open_sessions,
    percentiles,
    print_table,
    times_line,
)

__all__ = ["SteadyRun", "bench_steady", "closed_loop", "print_steady"]


@dataclass
class SteadyRun:
    """One closed-loop run: the turns begun in the measured window (seconds) and its CPU."""

    ttft: list[float]
    total: list[float]
    seconds: float  # the measured window, as sampled
    unmeasured: int  # turns of the warm-up and the cool-down
    cpu_here: float  # this process over the window: the clients, or the in-process runtime
    lag: list[float]  # this process's event loop: how late a 10 ms sleep woke, each time
    cpu_server: float = 0.0
    cpu_server_loop: float = 0.0


async def closed_loop(
    n: int,
    turn: Callable[[int], Awaitable[tuple[float, float]]],
    *,
    warmup: float,
    seconds: float,
    spread: float,
    counters: Callable[[], tuple[float, float]] | None = None,
) -> SteadyRun:
    """``n`` users, each sending its next turn (``turn(i)``) as soon as its last one ended.

    User ``i`` starts ``spread * i / n`` s in, so starts are spread over a turn
    rather than a burst (with a fixed-latency model they stay spread). Turns
    begun in the ``seconds`` after ``warmup`` are measured. A user whose
    measured turns are over keeps sending unmeasured ones until every user's
    are over, so every measured turn runs while all ``n`` streams are open.
    ``counters``: the server's (process, event loop) CPU seconds, read at the
    window's ends.
    """
    t0 = time.perf_counter()
    begin, end = t0 + warmup, t0 + warmup + seconds
    ttft: list[float] = []
    total: list[float] = []
    lag: list[float] = []
    unmeasured = 0
    past = 0  # users whose last measured turn has ended
    drained = asyncio.Event()
    marks: dict[str, tuple[float, ...]] = {}

    def mark() -> tuple[float, ...]:
        return (time.perf_counter(), time.process_time(), *(counters() if counters else (0, 0)))

    async def user(i: int) -> None:
        nonlocal unmeasured, past
        await asyncio.sleep(spread * i / n)
        over = False
        while True:
            began = time.perf_counter()
            if began >= end and not over:
                over = True
                past += 1
                if past == n:
                    drained.set()
            if drained.is_set():
                return
            first, whole = await turn(i)
            if begin <= began < end:
                ttft.append(first)
                total.append(whole)
            else:
                unmeasured += 1

    async def watch() -> None:
        await asyncio.sleep(max(0.0, begin - time.perf_counter()))
        marks["begin"] = mark()
        tick = 0.01
        while (now := time.perf_counter()) < end:
            await asyncio.sleep(tick)
            lag.append(time.perf_counter() - now - tick)
        marks["end"] = mark()

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(watch())
        for i in range(n):
            tasks.create_task(user(i))
    if not total:
        raise BenchError(
            f"no turn began in the {seconds:g} s measured: make --steady-seconds longer than "
            "a turn, or use more users"
        )
    (w0, here0, cpu0, loop0), (w1, here1, cpu1, loop1) = marks["begin"], marks["end"]
    return SteadyRun(
        ttft=ttft,
        total=total,
        seconds=w1 - w0,
        unmeasured=unmeasured,
        cpu_here=here1 - here0,
        lag=lag,
        cpu_server=cpu1 - cpu0,
        cpu_server_loop=loop1 - loop0,
    )


def _steady_summary(runs: list[SteadyRun], n: int, nominal_turn_s: float) -> JSON:
    """Percentiles and load of each run; the median of each figure over the runs."""
    out = percentiles(runs)
    out["turns"] = int(med([len(r.total) for r in runs]))
    out["turns_rounds"] = [len(r.total) for r in runs]
    out["unmeasured_turns"] = int(med([r.unmeasured for r in runs]))
    out["turns_per_s"] = round(med([len(r.total) / r.seconds for r in runs]), 2)
    out["nominal_turns_per_s"] = round(n / nominal_turn_s, 2)
    # CPU per turn: the window's CPU over the turns begun in it (about those done in it)
    per_turn = {
        "here": [r.cpu_here / max(1, len(r.total)) for r in runs],
        "server": [r.cpu_server / max(1, len(r.total)) for r in runs],
        "server_loop": [r.cpu_server_loop / max(1, len(r.total)) for r in runs],
    }
    util = {
        "here": [r.cpu_here / r.seconds for r in runs],
        "server": [r.cpu_server / r.seconds for r in runs],
        "server_loop": [r.cpu_server_loop / r.seconds for r in runs],
    }
    for who in ("here", "server", "server_loop"):
        if who != "here" and not any(util[who]):
            continue
        out[f"cpu_{who}_ms_per_turn"] = round(med(per_turn[who]) * 1000, 3)
        # CPU seconds per second: 1.0 is one core busy all the time (the event loop's ceiling)
        out[f"cpu_{who}_util"] = round(med(util[who]), 3)
    out["loop_lag_p50_ms"] = ms(med([pct(r.lag, 0.5) for r in runs]))
    out["loop_lag_p99_ms"] = ms(med([pct(r.lag, 0.99) for r in runs]))
    return out


async def bench_steady(args: argparse.Namespace, tmp: Path, log: Callable[[str], None]) -> JSON:
    """N users in a closed loop for ``--steady-seconds``, on the server and in-process."""
    first, gap, deltas = args.steady_first_ms / 1000, args.steady_gap_ms / 1000, args.steady_deltas
    nominal = first + gap * (deltas - 1)
    spread = min(nominal, args.steady_warmup)
    env = agent_env(args.steady_first_ms, args.steady_gap_ms, deltas, paced=True)
    levels: list[int] = args.steady_concurrency
    with serving(tmp / "steady", ["bench.server_agent:plain"], env) as server:
        rss_start = server.rss_kib()
        async with (
            InProcess(
                tmp / "steady-inproc", first=first, gap=gap, deltas=deltas, paced=True
            ) as inproc,
            Clients(max(levels)) as clients,
        ):
            url = server.url

            window = functools.partial(
                closed_loop,
                warmup=args.steady_warmup,
                seconds=args.steady_seconds,
                spread=spread,
            )

            async def measure(n: int, mode: str) -> SteadyRun:
                if mode == "inproc":
                    sids = await inproc.sessions(n)
                    return await window(n, lambda i: inproc.turn(sids[i]))
                users = clients.all[:n]
                sids = await open_sessions(url, users)

                def turn(i: int) -> Awaitable[tuple[float, float]]:
                    return stream_turn(users[i], url, sids[i], QUESTION, deltas)

                return await window(n, turn, counters=lambda: (server.cpu_s(), server.loop_cpu_s()))

            results = await alternate(levels, args.steady_repeats, measure, _describe, log)
        rss_end = server.rss_kib()
    per_level: JSON = {}
    for n in levels:
        level = compare(
            results[n]["server"],
            results[n]["inproc"],
            functools.partial(_steady_summary, n=n, nominal_turn_s=nominal),
        )
        level["met"] = met(level["added"])
        per_level[str(n)] = level
    highest = [n for n in levels if per_level[str(n)]["met"]]
    return {
        "model": {
            "first_ms": args.steady_first_ms,
            "gap_ms": args.steady_gap_ms,
            "deltas": deltas,
            "nominal_ttft_ms": args.steady_first_ms,
            "nominal_total_ms": round(nominal * 1000, 3),
            "paced": True,
        },
        "warmup_s": args.steady_warmup,
        "seconds": args.steady_seconds,
        "spread_s": round(spread, 3),
        "repeats": args.steady_repeats,
        "levels": per_level,
        "server_rss_kib": {"start": rss_start, "end": rss_end},
        "target": {
            "added_p50_ms": TARGET_ADDED_P50_MS,
            "added_p99_ms": TARGET_ADDED_P99_MS,
            "met": {str(n): per_level[str(n)]["met"] for n in levels},
            "highest_met": max(highest) if highest else None,
        },
    }


def _describe(r: SteadyRun, mode: str) -> str:
    """One run in the progress log: its load, latency and CPU."""
    load = (
        f"server CPU {r.cpu_server / r.seconds:.0%} (loop {r.cpu_server_loop / r.seconds:.0%}), "
        if mode == "server"
        else ""
    )
    return (
        f"{len(r.total) / r.seconds:6.1f} turns/s  {times_line(r, 7, ' ')}"
        f"  {load}here {r.cpu_here / r.seconds:.0%}"
    )


def print_steady(st: JSON) -> None:
    title = (
        f"1b. latency under a steady load: N users in a closed loop (the next turn as soon as "
        f"turn.end came), {st['seconds']:g} s measured after {st['warmup_s']:g} s of warm-up, "
        f"median of {st['repeats']} runs; model: {model_words(st['model'], 'g')}; ms"
    )

    def notes(_n: str, level: JSON) -> None:
        s, i = level["server"], level["inproc"]
        print(
            f"{'':>8} load: {s['turns_per_s']:.1f} turns/s through the server, "
            f"{i['turns_per_s']:.1f} in-process ({s['nominal_turns_per_s']:.1f} with no "
            f"overhead); {s['turns']} turns measured on the server"
        )
        print(
            f"{'':>8} server CPU per turn {s.get('cpu_server_ms_per_turn', 0):.2f} ms "
            f"(event loop {s.get('cpu_server_loop_ms_per_turn', 0):.2f}); utilisation: "
            f"process {s.get('cpu_server_util', 0):.0%} of a core, event loop "
            f"{s.get('cpu_server_loop_util', 0):.0%}"
        )
        print(
            f"{'':>8} client CPU per turn {s['cpu_here_ms_per_turn']:.2f} ms "
            f"({s['cpu_here_util']:.0%} of a core; its loop late by p50 "
            f"{s['loop_lag_p50_ms']:.1f} / p99 {s['loop_lag_p99_ms']:.1f} ms); in-process "
            f"runtime {i['cpu_here_ms_per_turn']:.2f} ms ({i['cpu_here_util']:.0%} of a core)"
        )
        print(
            f"{'':>8} target (added <= {st['target']['added_p50_ms']:g} ms p50, "
            f"<= {st['target']['added_p99_ms']:g} ms p99, first token and total): "
            f"{'met' if level['met'] else 'NOT MET'}"
        )

    print_table(title, "users", st["levels"], notes)
    high = st["target"]["highest_met"]
    print(
        f"steady target: highest N tried where it holds: "
        f"{high if high is not None else 'none of ' + ', '.join(st['levels'])}"
    )
