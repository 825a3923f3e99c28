"""bench/cost.py fills a store that ``tether cost`` reports on, with every call priced."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from tether.surfaces.cli import app

ROOT = Path(__file__).resolve().parents[2]


def test_cost_bench_then_tether_cost(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bench.sqlite'}"
    done = subprocess.run(
        [sys.executable, "bench/cost.py", "--sessions", "24", "--db", url, "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"tether cost --db {url}" in done.stdout
    bench = json.loads(done.stdout.strip().splitlines()[-1])
    assert bench["db"] == url
    assert sum(bench["statuses"].values()) == 24

    result = CliRunner().invoke(app, ["cost", "--db", url, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["sessions"] == 24
    assert report["calls"] >= 24
    assert report["total_cost"] > 0
    assert 0 < report["per_session"]["p50"] <= report["per_session"]["p95"]
    assert report["per_session"]["mean"] > 0
    assert report["per_user_day"] > 0
    assert report["successful_sessions"] == bench["statuses"].get("idle", 0)
    monthly = [p["monthly_cost"] for p in report["projections"]]
    assert 0 < monthly[0] < monthly[1] < monthly[2] < monthly[3]
    # the scripted models carry real names: every call is priced, on both versions' models
    assert report["unpriced_models"] == []
    assert {m["model"] for m in report["by_model"]} == {
        "anthropic:claude-sonnet-4-5",
        "anthropic:claude-haiku-4-5",
    }
    assert all(m["cost"] > 0 for m in report["by_model"])
    assert [v["version"] for v in report["by_version"]] == ["1", "2"]
    tokens = report["tokens"]
    assert tokens["input_tokens"] > 0
    assert tokens["cache_read_tokens"] > 0
    assert tokens["cache_write_tokens"] > 0
