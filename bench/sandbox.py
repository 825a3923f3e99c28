"""Sandbox overhead: what running ``print(1)`` under bubblewrap costs over no sandbox.

Every figure is the median wall time of one whole run as the runtime makes
it (start, feed the program on stdin, read the output, reap), in ms:

- ``python_ms``: bare ``python3 -ISB -c 'print(1)'``, the interpreter alone.
- ``plain_ms``: the same program through :class:`UnsafeLocalSandbox`: the
  same bootstrap, limits and output capture, as a plain subprocess.
- ``bubblewrap_ms``: the same through :class:`BubblewrapSandbox`.
- ``overhead_ms``: ``bubblewrap_ms - plain_ms``, what the isolation itself
  costs per run (namespaces, mounts, seccomp). Target: at most 30 ms.
- ``overhead_vs_python_ms``: ``bubblewrap_ms - python_ms``, the sandbox's
  whole cost over starting the interpreter.
- ``docker_ms``: through :class:`DockerSandbox`, where an engine and the
  image are present (otherwise absent, with the reason).
- ``probe_ms``: the start-up probe (:func:`probe`), once.

The contenders are interleaved round by round, so drift on a shared machine
hits them alike. ``--ballast-mb N`` makes this process hold N MB first, as a
busy runtime would: starting a process costs more from a bigger parent when
it needs a real ``fork`` (the sandbox avoids that; see ``launch_as``). Run::

    .venv/bin/python bench/sandbox.py            # a table
    .venv/bin/python bench/sandbox.py --json     # last line: one JSON object
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

from tether.controls.sandbox import (
    BubblewrapSandbox,
    DockerSandbox,
    SandboxBackend,
    SandboxLimits,
    UnsafeLocalSandbox,
    probe,
)

TARGET_OVERHEAD_MS = 30.0
PROGRAM = "print(1)"
LIMITS = SandboxLimits()


def _reference_ms() -> float:
    """CPU time of a fixed pure-Python loop: quote it with the results (machine speed)."""
    start = time.process_time()
    total = 0
    for i in range(3_000_000):
        total += i % 7
    return (time.process_time() - start) * 1000


async def _bare_python(python: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        python,
        "-ISB",
        "-c",
        PROGRAM,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    if out != b"1\n":
        raise SystemExit(f"bare python printed {out!r}")


def _through(sandbox: SandboxBackend) -> Callable[[], Awaitable[None]]:
    async def once() -> None:
        result = await sandbox.run(PROGRAM, limits=LIMITS)
        if result.stdout != "1\n":
            raise SystemExit(f"{sandbox.name} printed {result.stdout!r}: {result.stderr}")

    return once


async def _time(fn: Callable[[], Awaitable[None]]) -> float:
    start = time.perf_counter()
    await fn()
    return (time.perf_counter() - start) * 1000


async def measure(runs: int, with_docker: bool) -> dict[str, object]:
    bwrap = BubblewrapSandbox()
    start = time.perf_counter()
    found = probe([bwrap])
    probe_ms = (time.perf_counter() - start) * 1000
    if found.sandbox is None:
        raise SystemExit(f"bubblewrap is not usable here: {found.reason}")
    plain = UnsafeLocalSandbox(allow_unsandboxed=True, python=bwrap.python)
    contenders: dict[str, Callable[[], Awaitable[None]]] = {
        "python_ms": lambda: _bare_python(bwrap.python),
        "plain_ms": _through(plain),
        "bubblewrap_ms": _through(bwrap),
    }
    extra: dict[str, object] = {}
    if with_docker:
        docker = DockerSandbox().probe()
        if docker.sandbox is not None:
            contenders["docker_ms"] = _through(docker.sandbox)
        else:
            extra["docker"] = f"unavailable: {docker.reason}"
    for fn in contenders.values():  # warm up: page cache, first-run costs
        await fn()
    times: dict[str, list[float]] = {key: [] for key in contenders}
    for _ in range(runs):
        for key, fn in contenders.items():
            times[key].append(await _time(fn))
    results: dict[str, object] = {
        key: round(statistics.median(values), 1) for key, values in times.items()
    }
    bw, pl, py = (statistics.median(times[k]) for k in ("bubblewrap_ms", "plain_ms", "python_ms"))
    results["overhead_ms"] = round(bw - pl, 1)
    results["overhead_vs_python_ms"] = round(bw - py, 1)
    results["bubblewrap_p90_ms"] = round(statistics.quantiles(times["bubblewrap_ms"], n=10)[-1], 1)
    results["probe_ms"] = round(probe_ms, 1)
    return {**results, **extra}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="rounds (each runs every contender)")
    parser.add_argument("--no-docker", action="store_true", help="skip the Docker backend")
    parser.add_argument("--ballast-mb", type=int, default=0, help="memory to hold while timing")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    ballast = bytearray(args.ballast_mb << 20)
    for i in range(0, len(ballast), 4096):  # touch every page: resident, not just reserved
        ballast[i] = 1
    reference = _reference_ms()
    results = asyncio.run(measure(args.runs, not args.no_docker))
    print(f"{'reference_loop_ms':>22}: {reference:>8.1f}   (machine speed)")
    for key, value in results.items():
        note = ""
        if key == "overhead_ms" and isinstance(value, float):
            verdict = "ok" if value <= TARGET_OVERHEAD_MS else "OVER"
            note = f"   target <= {TARGET_OVERHEAD_MS:g} {verdict}"
        print(f"{key:>22}: {value!s:>8}{note}")
    if args.json:
        extra = {
            "reference_loop_ms": round(reference, 1),
            "python": sys.version.split()[0],
            "runs": args.runs,
            "ballast_mb": args.ballast_mb,
            "target_overhead_ms": TARGET_OVERHEAD_MS,
        }
        print(json.dumps({**results, **extra}))


if __name__ == "__main__":
    main()
