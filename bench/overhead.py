"""Runtime overhead: CPU per step, with and without a store, and 1,000 concurrent sessions.

The workflow is the one the frameworks we compare with are measured on:
three steps per session (look up an order, send an email, answer), driven
by a zero-latency scripted model, so what is measured is the runtime itself.

- ``step_us``: CPU time per step, full runtime, in-memory store (no I/O).
- ``step_store_us``: CPU time per step with the SQLite store committing
  every step (the aiosqlite worker thread's CPU is included: we measure
  process CPU time, not the event loop's thread alone).
- ``step_guarded_us``, ``step_guarded_store_us``: the same two with the
  default guarantees on: the prompt-injection detector scans the user
  message and the order lookup's output (a tool marked ``untrusted_output``,
  so its result is spotlighted and the session tainted), and approvals and
  taint are as shipped. The email tool carries no risk flag, so neither
  approval nor taint holds it and each session still ends ``idle`` after 3
  steps (checked), as the bare figures' sessions do.
- ``step_metrics_us``, ``step_tracing_us``, ``step_observed_us``: the
  guarded in-memory step (as ``step_guarded_us``) with observers installed:
  Prometheus metrics (``tether.surfaces.ops.metrics.Metrics``), OpenTelemetry
  traces (``tether.surfaces.ops.traces.Tracing`` on an SDK tracer provider
  whose batch processor hands spans to an exporter that counts and drops
  them: what is measured is making the spans, not sending them), and both.
  Asking for any of them also measures ``step_unobserved_us``, the same step
  with no observer, in alternating rounds (the order rotated each round, a
  fresh runtime each time) so that the four share the machine's state; the
  ratios to ``step_unobserved_us`` are printed. Each run checks that spans
  were exported and model calls counted.
- ``concurrent_1000_s``: wall time for 1,000 sessions at once whose model
  takes 50 ms per step (the ideal is 3 x 50 ms = 0.15 s).
- ``import_ms``: wall time of ``import tether`` in a fresh interpreter.

Each figure is the median of several rounds. Run::

    .venv/bin/python bench/overhead.py            # a table
    .venv/bin/python bench/overhead.py --json     # last line: one JSON object
    .venv/bin/python bench/overhead.py --only step_guarded_us,step_us
    .venv/bin/python bench/overhead.py --only step_metrics_us,step_tracing_us,step_observed_us
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tether
from tether import Agent, ToolContext
from tether.runtime import Runtime, SessionStore, TurnResult
from tether.runtime.observe import Observer
from tether.spec.approval import ApprovalPolicy
from tether.spec.events import EventType
from tether.spec.guard import GuardPolicy
from tether.spec.model import ModelRequest
from tether.store import InMemoryStore, open_store
from tether.testing import FunctionModel, ScriptedResponse, call

STEPS_PER_SESSION = 3


@tether.tool(reads=True)
async def get_order_details(ctx: ToolContext, order_id: str) -> dict[str, Any]:
    """Look up an order.

    Args:
        order_id: The order id, like '#W1'.
    """
    return {"order_id": order_id, "status": "delivered", "items": 2, "total": 129.5}


@tether.tool(external_comms=True)
async def send_email(ctx: ToolContext, to: str, subject: str, body: str) -> str:
    """Send an email to the customer.

    Args:
        to: Recipient address.
        subject: Subject line.
        body: Message text.
    """
    return "queued"


# The same two functions, declared as a deployment with the default guarantees
# would: the lookup returns text customers wrote (untrusted), and the email tool
# has no risk flag, so it runs unattended even in a tainted session.
guarded_get_order_details = tether.tool(
    name="get_order_details", reads=True, untrusted_output=True
)(get_order_details.fn)
guarded_send_email = tether.tool(name="send_email")(send_email.fn)


_LOOKUP = call("get_order_details", _id="c1", order_id="#W1")
_EMAIL = call("send_email", _id="c2", to="ada@example.com", subject="Your order", body="Delivered.")


def _script(request: ModelRequest) -> ScriptedResponse:
    n = len(request.messages)
    if n == 1:
        return _LOOKUP
    if n == 3:
        return _EMAIL
    return "Your order #W1 was delivered; I emailed you the details."


def _agent(delay: float = 0.0) -> Agent:
    return Agent(
        name="bench",
        instructions="Answer order questions.",
        models=(FunctionModel(_script, name="scripted", delay=delay, record=False),),
        tools=(get_order_details, send_email),
        # The workflow as the compared frameworks run it: the email is not held
        # for a person's approval (Tether would, by default; that is a pause, not
        # runtime overhead), and no message is scanned for prompt injection (none
        # of them scans; the detector's own cost, ~0.1 ms for a short message and
        # its cost per KB is measured by bench/guard.py).
        approval=ApprovalPolicy(enabled=False),
        guard=None,
    )


def _guarded_agent() -> Agent:
    """The same agent with the default guarantees: detector, taint, approvals, budget."""
    return Agent(
        name="bench",
        instructions="Answer order questions.",
        models=(FunctionModel(_script, name="scripted", record=False),),
        tools=(guarded_get_order_details, guarded_send_email),
        approval=ApprovalPolicy(),
        guard=GuardPolicy(),
    )


def _check(result: TurnResult, *, untrusted: bool) -> None:
    """Fail unless the turn ran the whole workflow: 3 steps, then ``idle``.

    A turn held for approval, gated by taint or blocked by the guard would
    end earlier, and the figure would measure something else.
    """
    assert result.ok, result.error
    assert result.status == "idle", result.status
    steps = sum(e.type == EventType.MODEL_RESPONSE for e in result.events)
    assert steps == STEPS_PER_SESSION, f"{steps} steps, not {STEPS_PER_SESSION}"
    finished = [e for e in result.events if e.type == EventType.TOOL_FINISHED]
    assert [e.data.get("untrusted", False) for e in finished] == [untrusted, False]
    assert not any(e.type == EventType.GUARD_FLAGGED for e in result.events)


async def _cpu_per_step(agent: Agent, store: SessionStore, sessions: int, rounds: int) -> float:
    untrusted = agent.tools[0].untrusted_output
    samples = []
    async with Runtime(store=store) as rt:
        for _ in range(max(20, sessions // 10)):  # warm up caches and code paths
            _check(await rt.run(agent, "Where is my order #W1?"), untrusted=untrusted)
        for _ in range(rounds):
            gc.collect()
            t0 = time.process_time()
            for _ in range(sessions):
                result = await rt.run(agent, "Where is my order #W1?")
            cpu = time.process_time() - t0
            _check(result, untrusted=untrusted)
            samples.append(cpu / (sessions * STEPS_PER_SESSION) * 1e6)
    return statistics.median(samples)


async def _cpu_per_step_sqlite(agent: Agent, sessions: int, rounds: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        store = await open_store(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.sqlite'}")
        return await _cpu_per_step(agent, store, sessions, rounds)


#: the observed figures, and the observers each installs
OBSERVED = {
    "step_unobserved_us": (),
    "step_metrics_us": ("metrics",),
    "step_tracing_us": ("tracing",),
    "step_observed_us": ("metrics", "tracing"),
}


class _Observability:
    """The observers the observed figures install, and proof that they observed."""

    def __init__(self) -> None:
        from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        from tether.surfaces.ops.metrics import Metrics
        from tether.surfaces.ops.traces import Tracing

        class Discard(SpanExporter):
            """Counts the spans it is given and drops them."""

            def __init__(self) -> None:
                self.spans = 0

            def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
                self.spans += len(spans)
                return SpanExportResult.SUCCESS

        self.exporter = Discard()
        self.provider = TracerProvider()
        self.provider.add_span_processor(BatchSpanProcessor(self.exporter))
        self.metrics = Metrics()
        self.tracing = Tracing(self.provider)

    def observers(self, kinds: Sequence[str]) -> list[Observer]:
        made: dict[str, Observer] = {"metrics": self.metrics, "tracing": self.tracing}
        return [made[k] for k in kinds]

    def model_calls(self) -> float:
        """Model calls the metrics counted (``tether_model_calls_total``, all labels)."""
        return sum(
            sample.value
            for family in self.metrics.registry.collect()
            if family.name == "tether_model_calls"
            for sample in family.samples
            if sample.name == "tether_model_calls_total"
        )

    def close(self) -> int:
        """Flush the spans, shut the provider down; how many spans were exported."""
        self.provider.force_flush()
        self.provider.shutdown()
        return self.exporter.spans


async def _observed(
    sessions: int, rounds: int, want: frozenset[str]
) -> tuple[dict[str, float], dict[str, float]]:
    """CPU per guarded step with each observer set, in alternating rounds; and proof.

    Each round runs every set once, the order rotated, each on a fresh,
    warmed-up runtime and in-memory store (as ``concurrent_1000_s`` does: a
    store holding every earlier round's sessions in the heap would make each
    garbage collection slower, and observers, which allocate, trigger more of
    them). The observers themselves live across rounds, as in a process.
    Returns the medians (``step_unobserved_us`` always included) and what the
    observers produced (``spans_exported``, ``model_calls_counted``).
    """
    agent = _guarded_agent()
    obs = _Observability()
    names = [n for n in OBSERVED if n == "step_unobserved_us" or n in want]
    samples: dict[str, list[float]] = {n: [] for n in names}
    for i in range(rounds):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            async with Runtime(
                store=InMemoryStore(), observers=obs.observers(OBSERVED[name])
            ) as rt:
                for _ in range(max(20, sessions // 10)):
                    _check(await rt.run(agent, "Where is my order #W1?"), untrusted=True)
                obs.provider.force_flush()  # each round starts with no span queued
                gc.collect()
                t0 = time.process_time()
                for _ in range(sessions):
                    result = await rt.run(agent, "Where is my order #W1?")
                cpu = time.process_time() - t0
                _check(result, untrusted=True)
                samples[name].append(cpu / (sessions * STEPS_PER_SESSION) * 1e6)
    counted = obs.model_calls()
    spans = obs.close()
    if any("metrics" in OBSERVED[n] for n in names):
        assert counted > 0, "the metrics observer counted no model call"
    if any("tracing" in OBSERVED[n] for n in names):
        assert spans > 0, "the tracing observer exported no span"
    medians = {n: statistics.median(v) for n, v in samples.items()}
    return medians, {"spans_exported": spans, "model_calls_counted": counted}


async def _concurrent(n: int, rounds: int) -> float:
    """Median wall time of ``n`` sessions run at once, each round on a fresh runtime.

    A fresh runtime and in-memory store per round (warmed up the same way):
    the in-memory store keeps every finished session in the Python heap, so
    on one shared store each round's full garbage collection would also walk
    all the earlier rounds' sessions (about 37 objects each), and the figure
    would grow with the round number. In a deployment those sessions are in
    the database, not the heap.
    """
    agent = _agent(delay=0.05)
    samples = []
    for _ in range(rounds):
        async with Runtime(store=InMemoryStore()) as rt:
            await asyncio.gather(*(rt.run(agent, "warm up") for _ in range(50)))
            gc.collect()
            t0 = time.perf_counter()
            results = await asyncio.gather(
                *(rt.run(agent, "Where is my order #W1?") for _ in range(n))
            )
            samples.append(time.perf_counter() - t0)
            assert all(r.ok for r in results)
        del results
    return statistics.median(samples)


def _import_ms(rounds: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds of ``import tether`` in a fresh interpreter."""
    code = (
        "import time; w=time.perf_counter(); c=time.process_time(); import tether; "
        "print(time.perf_counter()-w, time.process_time()-c)"
    )
    walls, cpus = [], []
    for _ in range(rounds):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        wall, cpu = (float(x) * 1000 for x in out.stdout.split())
        walls.append(wall)
        cpus.append(cpu)
    return statistics.median(walls), statistics.median(cpus)


def _reference_ms() -> float:
    """CPU ms of a fixed pure-Python loop: how fast this machine is right now.

    On an idle core of a current x86 server this is about 150-250 ms; on a
    shared, loaded machine it can be several times that, and every other
    figure here scales with it.
    """
    samples = []
    for _ in range(3):
        t0 = time.process_time()
        total = 0
        for i in range(5_000_000):
            total += i
        samples.append((time.process_time() - t0) * 1000)
    return statistics.median(samples)


async def measure(
    sessions: int, rounds: int, only: frozenset[str] | None = None
) -> dict[str, float]:
    """The figures (all, or those named in ``only``), in the order of ``FIGURES``."""
    want = frozenset(FIGURES) if only is None else only
    results: dict[str, float] = {}
    if "step_us" in want:
        step_us = await _cpu_per_step(_agent(), InMemoryStore(), sessions, rounds)
        results["step_us"] = round(step_us, 1)
    if "step_store_us" in want:
        step_store_us = await _cpu_per_step_sqlite(_agent(), sessions, rounds)
        results["step_store_us"] = round(step_store_us, 1)
    if "step_guarded_us" in want:
        guarded = await _cpu_per_step(_guarded_agent(), InMemoryStore(), sessions, rounds)
        results["step_guarded_us"] = round(guarded, 1)
    if "step_guarded_store_us" in want:
        guarded_store = await _cpu_per_step_sqlite(_guarded_agent(), sessions, rounds)
        results["step_guarded_store_us"] = round(guarded_store, 1)
    if want & set(OBSERVED):
        medians, produced = await _observed(sessions, rounds, want)
        results.update({name: round(us, 1) for name, us in medians.items()})
        PRODUCED.update(produced)
    if "concurrent_1000_s" in want:
        results["concurrent_1000_s"] = round(await _concurrent(1000, rounds), 3)
    if want & {"import_ms", "import_cpu_ms"}:
        import_wall, import_cpu = _import_ms(rounds)
        results["import_ms"] = round(import_wall, 1)
        results["import_cpu_ms"] = round(import_cpu, 1)
    return {name: results[name] for name in FIGURES if name in results}


#: what the observers of the last observed measurement produced (spans, counted calls)
PRODUCED: dict[str, float] = {}


def ratios(results: dict[str, float]) -> dict[str, float]:
    """Each observed figure divided by ``step_unobserved_us`` (measured alongside it)."""
    base = results.get("step_unobserved_us")
    if not base:
        return {}
    return {
        name.removesuffix("_us") + "_ratio": round(results[name] / base, 3)
        for name in OBSERVED
        if name != "step_unobserved_us" and name in results
    }


FIGURES = (
    "step_us",
    "step_store_us",
    "step_guarded_us",
    "step_guarded_store_us",
    "step_unobserved_us",
    "step_metrics_us",
    "step_tracing_us",
    "step_observed_us",
    "concurrent_1000_s",
    "import_ms",
    "import_cpu_ms",
)

#: figures without a target are reported, not judged
TARGETS: dict[str, float] = {
    "step_us": 80,
    "step_store_us": 150,
    "concurrent_1000_s": 0.4,
    "import_ms": 250,
    "import_cpu_ms": 250,
}


def _figure_names(text: str) -> frozenset[str]:
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    unknown = sorted(names - set(FIGURES))
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown figure {', '.join(unknown) or '(none)'}; choose from {', '.join(FIGURES)}"
        )
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.add_argument("--sessions", type=int, default=500, help="sessions per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (the median is kept)")
    parser.add_argument(
        "--only",
        type=_figure_names,
        metavar="NAME[,NAME]",
        help=f"measure only these figures ({', '.join(FIGURES)})",
    )
    args = parser.parse_args()
    reference = _reference_ms()
    results = asyncio.run(measure(args.sessions, args.rounds, args.only))
    width = max(map(len, FIGURES))
    speed = "(machine speed; ~200 on an idle core)"
    print(f"{'reference_loop_ms':>{width}}: {reference:>9.1f}   {speed}")
    for key, value in results.items():
        target = TARGETS.get(key)
        if target is None:
            print(f"{key:>{width}}: {value:>9}")
            continue
        verdict = "ok" if value <= target else "OVER"
        print(f"{key:>{width}}: {value:>9}   target <= {target:<5} {verdict}")
    observed = ratios(results)
    for key, value in observed.items():
        print(f"{key:>{width}}: {value:>9}   (x step_unobserved_us, alternating rounds)")
    if args.json:
        extra: dict[str, Any] = {
            "reference_loop_ms": round(reference, 1),
            "python": sys.version.split()[0],
            "rounds": args.rounds,
            "sessions": args.sessions,
        }
        extra |= observed | PRODUCED
        print(json.dumps({**results, **extra}))


if __name__ == "__main__":
    main()
