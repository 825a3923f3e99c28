"""The HTTP server's cost: latency it adds to a streaming turn, memory per session, throughput.

The server runs as its own process (uvicorn, one worker, loopback, SQLite in
a temporary folder: ``python -m uvicorn --factory
tether.surfaces.server.factory:app_from_env``, what ``tether serve`` runs,
with a longer keep-alive so the client's pooled connections survive between
phases); the clients are ``httpx.AsyncClient`` in this process, one per
simulated user, each on its own kept-alive connection. On a 2-core machine
the clients, the server's event loop and its SQLite threads share the two
cores: the figures include the clients' share of them. Percentiles are by
nearest rank (the p99 of 50 values is the largest).

1. **Latency added to a streaming turn.** The agent (``bench/server_agent.py``)
   has no tools and one model: a ``FunctionModel`` that waits ``--first-ms``
   (200) before its first delta and streams ``--deltas`` (4) deltas
   ``--gap-ms`` (25) apart. N sessions (``--concurrency``: 1, 50, 200) are
   created, then all N send a message at once with ``Accept:
   text/event-stream``; per session: time to first token (the first
   ``model.delta`` frame after the POST) and total (the ``turn.end`` frame).
   The same turns driven in this process (``Runtime.session(...).stream``,
   same store type, same concurrency, the server's runtime wiring) give the
   model's intrinsic latency on this machine; *added* is the server's
   percentile minus the in-process one. Each configuration runs
   ``--repeats`` (7) times, alternating; each figure is the median over repeats.
   This is the *burst* mode: N starts at the same instant, a thundering herd.
1b. **Latency under a steady load** (the *steady* mode). N users
   (``--concurrency``; 50, 200 by default), each with its own session and
   client, run a closed loop: send a message (SSE), read to ``turn.end``,
   send the next at once, so N streams are open at any moment. The users'
   starts are spread over one turn (not a burst); ``--steady-warmup`` (3) s
   are not measured, then the turns begun in the next ``--steady-seconds``
   (20) are, each with its time to first token and total; users keep going
   until every user's measured turns are over, so none runs with fewer
   streams open. The model is a hosted LLM's shape: ``--steady-first-ms``
   (500) to the first delta, then ``--steady-deltas`` (40) deltas
   ``--steady-gap-ms`` (25) apart, each due at a fixed time from the model
   call's start (a late wake-up of the server's loop delays one delta, not
   all later ones: ``paced`` in ``bench/server_agent.py``). The same loops
   run in-process (the burst mode's baseline wiring); added = server minus
   in-process per percentile, paired by run; ``--steady-repeats`` (3) runs,
   alternating order, medians.
   Reported beside the latency: the load (turns/s through the server, and
   what N users would make with no overhead), the server's CPU per turn and
   utilisation (process and event-loop thread, as a share of one core: the
   loop cannot go past 100%), the client's, and how late this process's own
   event loop woke (its lateness is counted as the server's). Also: the
   highest N where the target holds. ``--mode burst|steady|both`` (both)
   picks the latency measurement(s); memory and rps follow ``--only``.
2. **Memory per idle session.** A fresh server's RSS (``VmRSS``) before and
   after creating ``--idle`` sessions (``POST /v1/sessions``) and after one
   streamed turn each (a zero-latency model), ``--memory-rounds`` (2) times:
   a later round tells a per-session residue (grows again) from a high-water
   mark (does not).
3. **Requests per second on the retail flow.** The scripted retail agent of
   ``tests/server/agents.py`` (model delay 0) on a fresh server:
   ``--rps-clients`` clients each loop "create a session, ask an order's
   status (JSON)" for ``--rps-seconds``; completed flows/s, HTTP requests/s
   and per-request p50/p99; median of ``--rps-repeats`` runs.

Run::

    .venv/bin/python bench/server.py                    # tables
    .venv/bin/python bench/server.py --json             # last line: one JSON object
    .venv/bin/python bench/server.py --quick            # a smoke run (small N, short)
    .venv/bin/python bench/server.py --concurrency 50,200,500 --only latency
    .venv/bin/python bench/server.py --mode steady --only latency --concurrency 50,100,200
    .venv/bin/python bench/server_profile.py           # where the event loop's CPU goes
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.server_common import JSON, loop_runner, machine, reference_loop  # noqa: E402
from bench.server_latency import bench_latency, print_latency  # noqa: E402
from bench.server_memory import bench_memory, print_memory  # noqa: E402
from bench.server_rps import bench_rps, print_rps  # noqa: E402
from bench.server_steady import bench_steady, print_steady  # noqa: E402

PARTS = ("latency", "memory", "rps")


def print_report(report: JSON) -> None:
    m = report["machine"]
    ref, ref_end = m["reference_loop"], m.get("reference_loop_end") or m["reference_loop"]
    print(
        f"\nmachine: {m['cores']} cores, Python {m['python']}, load {m['loadavg']} -> "
        f"{m.get('loadavg_end')}; reference loop {ref['cpu_ms']:.0f} ms CPU / {ref['wall_ms']:.0f} "
        f"ms wall -> {ref_end['cpu_ms']:.0f} / {ref_end['wall_ms']:.0f} (~200 on an idle core)"
    )
    print(
        f"server: "
        f"uvicorn 1 worker ({m['server_loop']}, {m['server_http']}), SQLite; client: "
        f"{m['client']} on {m['client_loop']} in another process"
    )
    if (m["cores"] or 0) <= 2:
        print(
            "note: on 2 cores the client competes with the server (its event loop and its "
            "SQLite thread) for CPU; the server figures include that contention."
        )
    if report.get("latency"):
        print_latency(report["latency"])
    if report.get("steady"):
        print_steady(report["steady"])
    if report.get("memory"):
        print_memory(report["memory"])
    if report.get("rps"):
        print_rps(report["rps"])


def _levels(text: str) -> list[int]:
    try:
        levels = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from None
    if not levels or levels[0] < 1:
        raise argparse.ArgumentTypeError("concurrency levels must be 1 or more")
    return levels


def _parts(text: str) -> list[str]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in parts if p not in PARTS]
    if bad or not parts:
        raise argparse.ArgumentTypeError(f"parts are {', '.join(PARTS)}; got {text!r}")
    return parts


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print one JSON object last")
    p.add_argument("--quick", action="store_true", help="a smoke run: small N, short runs")
    p.add_argument("--only", type=_parts, default=list(PARTS), help="latency,memory,rps")
    p.add_argument(
        "--mode",
        choices=("burst", "steady", "both"),
        default="both",
        help="the latency part: N turns at once (burst), N users in a closed loop (steady), both",
    )
    p.add_argument(
        "--concurrency",
        type=_levels,
        default=None,
        help="streams at once (burst 1,50,200; steady 50,200); given: both modes use it",
    )
    p.add_argument("--repeats", type=int, default=None, help="repeats per configuration (7)")
    p.add_argument("--first-ms", type=float, default=200.0, help="model: ms to the first delta")
    p.add_argument("--gap-ms", type=float, default=25.0, help="model: ms between deltas")
    p.add_argument("--deltas", type=int, default=4, help="model: deltas per answer")
    p.add_argument("--steady-seconds", type=float, default=None, help="measured s per run (20)")
    p.add_argument(
        "--steady-warmup", type=float, default=None, help="s before that, not counted (3)"
    )
    p.add_argument("--steady-repeats", type=int, default=None, help="runs per configuration (3)")
    p.add_argument("--steady-first-ms", type=float, default=500.0, help="steady model: first delta")
    p.add_argument("--steady-gap-ms", type=float, default=25.0, help="steady model: ms between")
    p.add_argument("--steady-deltas", type=int, default=40, help="steady model: deltas per answer")
    p.add_argument("--idle", type=int, default=None, help="sessions per memory round (2000)")
    p.add_argument("--memory-rounds", type=int, default=2, help="memory rounds (2)")
    p.add_argument("--rps-clients", type=_levels, default=None, help="clients at once (8,32)")
    p.add_argument("--rps-seconds", type=float, default=None, help="seconds per run (15)")
    p.add_argument("--rps-repeats", type=int, default=None, help="runs (3)")
    p.add_argument("--rps-warmup", type=float, default=None, help="seconds, not counted (3)")
    args = p.parse_args(argv)
    quick = args.quick
    args.steady_concurrency = args.concurrency or ([5, 20] if quick else [50, 200])
    defaults = {
        "concurrency": [5, 20] if quick else [1, 50, 200],
        "repeats": 1 if quick else 7,
        "steady_seconds": 2.0 if quick else 20.0,
        "steady_warmup": 0.5 if quick else 3.0,
        "steady_repeats": 1 if quick else 3,
        "idle": 100 if quick else 2000,
        "rps_clients": [2] if quick else [8, 32],
        "rps_seconds": 1.0 if quick else 15.0,
        "rps_repeats": 1 if quick else 3,
        "rps_warmup": 0.5 if quick else 3.0,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if min(args.deltas, args.repeats, args.idle, args.rps_repeats, args.memory_rounds) < 1:
        p.error("--deltas, --repeats, --idle, --memory-rounds, --rps-repeats must be 1 or more")
    if min(args.steady_deltas, args.steady_repeats) < 1 or args.steady_seconds <= 0:
        p.error("--steady-deltas, --steady-repeats must be 1 or more, --steady-seconds above 0")
    if min(args.steady_warmup, args.steady_first_ms, args.steady_gap_ms) < 0:
        p.error("--steady-warmup, --steady-first-ms, --steady-gap-ms must be 0 or more")
    return args


async def run(args: argparse.Namespace, log: Callable[[str], None]) -> JSON:
    report: JSON = {"machine": machine(), "quick": args.quick, "mode": args.mode}
    with tempfile.TemporaryDirectory(prefix="tether-bench-server-") as tmp:
        if "latency" in args.only and args.mode in ("burst", "both"):
            log(f"1. latency, burst: {args.concurrency} streams, {args.repeats} repeats")
            report["latency"] = await bench_latency(args, Path(tmp), log)
        if "latency" in args.only and args.mode in ("steady", "both"):
            log(
                f"1b. latency, steady: {args.steady_concurrency} users, "
                f"{args.steady_warmup:g} + {args.steady_seconds:g} s, {args.steady_repeats} repeats"
            )
            report["steady"] = await bench_steady(args, Path(tmp), log)
        if "memory" in args.only:
            log(f"2. memory: {args.idle} sessions per round")
            report["memory"] = await bench_memory(args, Path(tmp), log)
        if "rps" in args.only:
            log(f"3. retail flow: {args.rps_clients} clients")
            report["rps"] = await bench_rps(args, Path(tmp), log)
    report["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    report["machine"]["reference_loop_end"] = reference_loop()
    return report


def main(argv: list[str] | None = None) -> JSON:
    args = parse_args(argv)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    report: JSON = loop_runner()(run(args, log))
    print_report(report)
    if args.json:
        print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
