"""The model judge (``GuardPolicy(judge="tool")``) on the embedded local model: cost, latency.

Runs :func:`tether.controls.guards.judge_content` with ``LocalModel()`` (the
embedded Qwen2.5-Coder-0.5B-Instruct, llama.cpp in-process; the joined
model file must already be in the cache: nothing is downloaded or joined
here) on a small, fixed sample of held-out BIPIA rows (clean and attacked,
at most ``--max-len`` characters each, spread over the split) and the
held-out look-alike tool outputs, and prints per call: the input tokens the
runtime would estimate (:func:`~tether.controls.guards.judge_tokens`), the
tokens the model reports, the wall time and the verdict. Then the median
latency, tokens per KB of content, and how often the verdict was right.

The sample is small on purpose (each call takes seconds on a CPU): the
figures say what the mode costs on this machine, not how accurate a good
judge model would be. Run::

    .venv/bin/python bench/injection/judge_experiment.py [--rows 24] [--threads 2] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from injection.public import bipia, read_jsonl
from tether.controls.guards import judge_content, judge_tokens
from tether.providers import gguf
from tether.providers.local import LocalModel

HERE = Path(__file__).resolve().parent


def sample(rows: int, max_len: int) -> list[dict[str, Any]]:
    held = [r for r in bipia("heldout") if len(r["text"]) <= max_len]
    out: list[dict[str, Any]] = []
    for label in (0, 1):
        pool = [r for r in held if r["label"] == label]
        step = max(1, len(pool) // max(1, rows // 2))
        out += [{**r, "set": "bipia"} for r in pool[::step][: rows // 2]]
    alike = HERE / "lookalike_heldout.jsonl"
    if alike.exists():
        out += [{**r, "set": "lookalike"} for r in read_jsonl(alike)[: rows // 4]]
    return out


async def run(rows: list[dict[str, Any]], threads: int, limit: float) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    async with LocalModel(threads=threads) as model:
        await model.prepare()
        for row in rows:
            start = time.perf_counter()
            verdict = await judge_content(model, row["text"], timeout=limit)
            seconds = time.perf_counter() - start
            usage = verdict.usage
            seen = usage.input_tokens + usage.cache_read_tokens if usage else None
            results.append(
                {
                    "set": row["set"],
                    "label": row["label"],
                    "category": row.get("attack_category"),
                    "chars": len(row["text"]),
                    "estimate": judge_tokens(row["text"]),
                    "input_tokens": seen,
                    "seconds": round(seconds, 2),
                    "verdict": verdict.verdict,
                    "reason": verdict.reason,
                }
            )
            print(json.dumps(results[-1]), flush=True)
    return results


def summary(results: list[dict[str, Any]], threads: int) -> dict[str, Any]:
    answered = [r for r in results if r["verdict"] != "unknown"]
    right = [r for r in answered if (r["verdict"] == "injection") == bool(r["label"])]
    attacked = [r for r in results if r["label"] == 1]
    clean = [r for r in results if r["label"] == 0]
    kb = sum(r["chars"] for r in results) / 1024
    real = [r for r in results if r["input_tokens"] is not None]
    return {
        "calls": len(results),
        "threads": threads,
        "median_seconds": statistics.median(r["seconds"] for r in results),
        "max_seconds": max(r["seconds"] for r in results),
        "estimated_tokens_per_kb": round(sum(r["estimate"] for r in results) / kb),
        "reported_tokens_per_kb": (
            round(sum(r["input_tokens"] for r in real) / (sum(r["chars"] for r in real) / 1024))
            if real
            else None
        ),
        "unknown": len(results) - len(answered),
        "right": len(right),
        "attacks_flagged": sum(r["verdict"] == "injection" for r in attacked),
        "attacks": len(attacked),
        "clean_flagged": sum(r["verdict"] == "injection" for r in clean),
        "clean": len(clean),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=24, help="BIPIA rows (half clean, half not)")
    parser.add_argument("--max-len", type=int, default=2000, help="longest row to take (chars)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--json", action="store_true", help="last line: the summary as JSON")
    args = parser.parse_args()
    cached = gguf.default_cache_dir() / gguf.MODEL_FILENAME
    if not cached.exists():
        print(f"no joined model at {cached}: run the local model once first", file=sys.stderr)
        return 2
    results = asyncio.run(run(sample(args.rows, args.max_len), args.threads, args.timeout))
    report = summary(results, args.threads)
    for key, value in report.items():
        print(f"{key}: {value}")
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
