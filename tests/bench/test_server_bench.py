"""bench/server.py and bench/server_profile.py run at a trivial size and report every figure.

Structure only: each part ran against a real server process, the report
has its keys, the numbers are numbers. No timing is asserted (this machine
is shared; the benchmark itself says whether the targets are met).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


#: the steady mode at a trivial size: a 30 ms model, half a second measured
STEADY_TINY = (
    "--steady-seconds",
    "0.5",
    "--steady-warmup",
    "0.2",
    "--steady-repeats",
    "2",
    "--steady-first-ms",
    "20",
    "--steady-deltas",
    "3",
    "--steady-gap-ms",
    "5",
)


def _run(script: str, *args: str) -> tuple[str, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, script, *args, "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout, json.loads(done.stdout.strip().splitlines()[-1])


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not math.isnan(value)


def test_server_bench_quick_reports_every_figure() -> None:
    out, report = _run(
        "bench/server.py",
        "--quick",
        "--concurrency",
        "1,3",
        "--repeats",
        "2",
        "--idle",
        "10",
        "--rps-clients",
        "1,2",
        "--rps-seconds",
        "0.3",
        "--rps-warmup",
        "0.1",
        *STEADY_TINY,
    )
    assert report["quick"] is True
    assert report["mode"] == "both"
    assert report["machine"]["cores"] >= 1
    assert "competes with the server" in out or report["machine"]["cores"] > 2

    lat = report["latency"]
    assert lat["repeats"] == 2
    assert set(lat["levels"]) == {"1", "3"}
    for level in lat["levels"].values():
        assert set(level) == {"server", "inproc", "added"}
        for side in level.values():
            for fig in ("ttft_p50_ms", "ttft_p99_ms", "total_p50_ms", "total_p99_ms"):
                assert _number(side[fig])
                assert len(side[f"{fig}_rounds"]) == 2
        # the model's own latency is in every figure measured: a first token, then the rest
        for side in ("server", "inproc"):
            assert level[side]["ttft_p50_ms"] <= level[side]["total_p50_ms"]
            assert level[side]["ttft_p50_ms"] >= lat["model"]["first_ms"]
        assert _number(level["server"]["cpu_server_ms_per_turn"])
        assert _number(level["server"]["cpu_server_loop_ms_per_turn"])
    assert lat["target"]["at"] == 3
    assert isinstance(lat["target"]["met"], bool)
    assert "target at 3 streams" in out

    _check_steady(report["steady"], {"1", "3"})
    assert "1b. latency under a steady load" in out
    assert "steady target: highest N tried" in out

    mem = report["memory"]
    assert mem["sessions"] == 10
    assert len(mem["rounds"]) == 2
    for r in mem["rounds"]:
        assert r["rss_before_kib"] > 0
        assert r["rss_idle_kib"] > 0
        assert r["rss_after_turn_kib"] > 0
        assert _number(r["kib_per_idle_session"])
        assert _number(r["kib_per_session_after_turn"])

    rps = report["rps"]
    assert set(rps["clients"]) == {"1", "2"}
    for level in rps["clients"].values():
        assert level["flows_per_s"] > 0
        assert level["requests_per_s"] == pytest.approx(2 * level["flows_per_s"], rel=0.05)
        assert all(r["flows"] >= 1 for r in level["runs"])
        for fig in ("request_p50_ms", "request_p99_ms", "create_p50_ms", "message_p99_ms"):
            assert _number(level[fig])


def _check_steady(st: dict[str, Any], levels: set[str]) -> None:
    assert st["repeats"] == 2
    assert st["seconds"] == 0.5
    assert st["model"] == {
        "first_ms": 20.0,
        "gap_ms": 5.0,
        "deltas": 3,
        "nominal_ttft_ms": 20.0,
        "nominal_total_ms": 30.0,
        "paced": True,
    }
    assert set(st["levels"]) == levels
    for n, level in st["levels"].items():
        assert set(level) == {"server", "inproc", "added", "met"}
        assert isinstance(level["met"], bool)
        for side in ("server", "inproc", "added"):
            for fig in ("ttft_p50_ms", "ttft_p99_ms", "total_p50_ms", "total_p99_ms"):
                assert _number(level[side][fig])
                assert len(level[side][f"{fig}_rounds"]) == 2
        for side in ("server", "inproc"):
            got = level[side]
            # a closed loop: every measured turn ran the model, then the next one followed
            assert got["turns"] >= 1
            assert len(got["turns_rounds"]) == 2
            assert got["ttft_p50_ms"] >= st["model"]["first_ms"]
            assert got["ttft_p50_ms"] <= got["total_p50_ms"]
            assert got["turns_per_s"] > 0
            assert got["nominal_turns_per_s"] == pytest.approx(int(n) / 0.030, rel=0.01)
            for fig in ("cpu_here_ms_per_turn", "cpu_here_util", "loop_lag_p50_ms"):
                assert _number(got[fig])
        for fig in (
            "cpu_server_ms_per_turn",
            "cpu_server_util",
            "cpu_server_loop_ms_per_turn",
            "cpu_server_loop_util",
        ):
            assert _number(level["server"][fig])
            assert fig not in level["inproc"]
    target = st["target"]
    assert set(target["met"]) == levels
    met = [int(n) for n, ok in target["met"].items() if ok]
    assert target["highest_met"] == (max(met) if met else None)


def test_server_bench_steady_mode_alone() -> None:
    out, report = _run(
        "bench/server.py",
        "--mode",
        "steady",
        "--only",
        "latency",
        "--concurrency",
        "2",
        *STEADY_TINY,
    )
    assert report["mode"] == "steady"
    assert not {"latency", "memory", "rps"} & report.keys()
    _check_steady(report["steady"], {"2"})
    assert "1. latency of a streaming turn" not in out


def test_server_bench_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    from bench.server import parse_args

    args = parse_args([])
    assert args.mode == "both"
    assert args.concurrency == [1, 50, 200]
    assert args.steady_concurrency == [50, 200]
    assert (args.steady_seconds, args.steady_warmup, args.steady_repeats) == (20.0, 3.0, 3)
    assert (args.steady_first_ms, args.steady_deltas, args.steady_gap_ms) == (500.0, 40, 25.0)
    both = parse_args(["--concurrency", "200,50,400"])
    assert both.concurrency == both.steady_concurrency == [50, 200, 400]
    quick = parse_args(["--quick"])
    assert quick.steady_concurrency == [5, 20]
    assert quick.steady_seconds < 5
    assert quick.steady_repeats == 1


def test_server_profile_breaks_the_loop_down_by_layer() -> None:
    out, report = _run("bench/server_profile.py", "--sessions", "3", "--rounds", "1")
    assert "event-loop thread CPU per request" in out
    for key in ("server_create", "server_turn", "inproc_turn"):
        part = report[key]
        assert part["cpu_ms_per_request"] > 0
        assert set(part["layers_ms"]) >= {"http", "asgi", "server", "runtime", "sqlalchemy"}
        assert part["top"]
        assert {"function", "layer", "us_per_request"} <= part["top"][0].keys()
    # the server's layers appear in its profile, not in the in-process one
    assert report["server_turn"]["layers_ms"]["http"] > 0
    assert report["inproc_turn"]["layers_ms"]["http"] == 0
