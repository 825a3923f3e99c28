"""Crash: a worker killed with SIGKILL at random points, and what survives it.

A worker process (this file run as ``crash.py worker``) drives ``--sessions``
sessions (200 by default) against a real SQLite store. Each session is one
errand: look an order up (read-only), cancel it (``cancel_order``: writes,
irreversible) and tell the customer (``send_email``: external_comms), then
answer. Both effectful calls need a person's approval, so each session needs
two. The worker plays that person: it approves every pending request with
``Runtime.decide`` and resumes every session left ``running`` or ``failed``
with ``Runtime.resume``, until every session is idle. The model is scripted
(``tether.testing.FunctionModel``) and a little slow (4 ms an answer); the two
effectful tools sleep 4 ms before and after the side effect they perform.
Four sessions are driven at once (``--lanes``).

Every real side effect is a row in a separate SQLite *ledger* (tool, session,
``ctx.idempotency_key``, target), committed before the tool returns. The
worker also records there, durably, each session's id (right after its first
``run`` returns) and each approval it gives (before it calls ``decide``).

The parent starts the worker, kills it with ``SIGKILL`` after a seeded random
delay (counted from the moment the worker is ready: 60% within 0.1 s, 30%
within 0.1-0.6 s; the other 10% from its start, 0-1 s, so some land during
start-up), starts it again, and repeats until the worker finishes on its own
(after ``--max-kills`` it is left to finish). Kills so land mid-tool, between
a call's intent and its result, between an approval given and its decision,
between a session's creation and the return of ``run``.

A restarted worker first notes, for each session whose lease is still held,
its last committed event: where the kill caught it (``caught_mid_turn``). It
takes over those leases (the runtime takes over a lease whose holder is a
dead process on this host; ``lease_takeovers``), and finds a session created
just before a kill, whose id never reached the ledger, by the ``slot`` it
carries in its creation metadata (``adopted_sessions``). Once the worker has
finished, the parent checks, from the store and the ledger:

- ``duplicated_side_effects``: executions beyond the first of the same
  side effect, counted per (tool, target): the same order cancelled twice, the
  same customer emailed twice, whichever session or idempotency key did it
  (``duplicate_keys`` counts the executions repeating a (session, key) pair);
- ``lost_approvals``: approvals the worker gave whose call neither ran (no
  ledger row for it) nor was reported "outcome unknown", whether or not the
  decision reached the store;
- ``unapproved_side_effects``: side effects of a call with no
  ``approval.decided`` approving it;
- ``unresumable``: sessions in the store (orphans included) not idle with a
  final answer at the end, plus sessions a ``run``/``decide``/``resume``
  raised on;
- ``outcome_unknown``: calls the runtime reported as "outcome unknown"
  (allowed: the honest answer to a kill between a call's intent and its
  result); ``outcome_unknown_ran`` of them did run before the kill;
- also ``approvals_decided_twice``, ``broken_logs`` (an event log with a gap
  or a repeated ``seq``) and ``sessions_in_store`` (a kill must not leave a
  second session for an errand).

``--unsafe`` is the control: it declares the two effectful tools idempotent
(a lie), so the runtime may run them again after a kill, and the checks must
then find duplicates.

Run::

    .venv/bin/python bench/crash.py                 # a table
    .venv/bin/python bench/crash.py --json          # last line: one JSON object
    .venv/bin/python bench/crash.py --unsafe        # control: the checks must fire

The kill delays are deterministic given ``--seed``; where each kill lands
depends on the machine's speed, so the counts of kills and of their
outcomes vary a little between runs. The guarantees must not.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import random
import re
import selectors
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tether
from tether import Agent, Runtime, ToolContext
from tether.runtime import SessionStatus
from tether.spec.events import EventType
from tether.spec.model import ModelRequest
from tether.testing import FunctionModel, ScriptedResponse, call

LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    slot INTEGER PRIMARY KEY, session_id TEXT NOT NULL UNIQUE, adopted INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS effects (
    id INTEGER PRIMARY KEY, tool TEXT NOT NULL, session_id TEXT NOT NULL,
    key TEXT NOT NULL, target TEXT NOT NULL, pid INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS approvals (
    approval_id TEXT PRIMARY KEY, session_id TEXT NOT NULL, call_id TEXT NOT NULL,
    tool TEXT NOT NULL, given INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY, pid INTEGER NOT NULL, session_id TEXT, action TEXT NOT NULL,
    detail TEXT, error TEXT
);
"""

MODEL_DELAY = 0.004  # seconds per model answer
TOOL_SLEEP = 0.004  # seconds before and after each side effect


def connect(path: str | Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    # A SIGKILL leaves the OS page cache intact: NORMAL is durable against it.
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def init_ledger(path: Path) -> None:
    with connect(path) as conn:
        conn.executescript(LEDGER_SCHEMA)
    conn.close()


# --- the agent ---------------------------------------------------------------


def order_id(slot: int) -> str:
    return f"O-{slot:05d}"


def customer(slot: int) -> str:
    return f"customer{slot:05d}@example.com"


def _effect(ctx: ToolContext, tool: str, target: str) -> None:
    """Perform one side effect: a ledger row, committed before the tool returns."""
    time.sleep(TOOL_SLEEP)
    conn = connect(ctx.deps)
    try:
        conn.execute(
            "INSERT INTO effects (tool, session_id, key, target, pid) VALUES (?, ?, ?, ?, ?)",
            (tool, ctx.session_id, ctx.idempotency_key, target, os.getpid()),
        )
    finally:
        conn.close()
    time.sleep(TOOL_SLEEP)


@tether.tool(reads=True)
def lookup_order(order_id: str) -> str:
    """Look an order up.

    Args:
        order_id: The order's id, like O-00001.
    """
    return json.dumps({"order_id": order_id, "status": "pending"})


@tether.tool(writes=True, irreversible=True, summary="Cancel order {order_id}")
def cancel_order(ctx: ToolContext, order_id: str) -> str:
    """Cancel a pending order.

    Args:
        order_id: The order's id.
    """
    _effect(ctx, "cancel_order", order_id)
    return f"order {order_id} cancelled"


@tether.tool(external_comms=True, summary="Email {to}")
def send_email(ctx: ToolContext, to: str, body: str) -> str:
    """Send an email to a customer.

    Args:
        to: The address.
        body: The text.
    """
    _effect(ctx, "send_email", to)
    return f"email sent to {to}"


_ERRAND = re.compile(r"order (O-\d+) .* email (\S+)\.$")


def script(request: ModelRequest) -> ScriptedResponse:
    """Look up, cancel, email, answer: decided from the request's last message."""
    match = _ERRAND.search(request.messages[0].text)
    assert match is not None, request.messages[0].text
    order, to = match.groups()
    last = request.messages[-1]
    if last.role == "user":
        return call("lookup_order", _id="lookup", order_id=order)
    name = last.results[0].name
    if name == "lookup_order":
        return call("cancel_order", _id="cancel", order_id=order)
    if name == "cancel_order":
        return call("send_email", _id="email", to=to, body=f"Your order {order} is cancelled.")
    failed = [r.name for m in request.messages for r in m.results if r.is_error]
    if failed:
        return f"I could not confirm {' and '.join(failed)} for {order}: please check it."
    return f"Order {order} is cancelled and {to} was told."


def build_agent(ledger: str, *, unsafe: bool = False) -> Agent:
    """The errand's agent; ``unsafe`` declares the effectful tools idempotent (a lie)."""
    tools = (lookup_order, cancel_order, send_email)
    if unsafe:
        tools = tuple(dataclasses.replace(t, idempotent=True) for t in tools)
    return Agent(
        name="crash-bench",
        instructions="Cancel the order the user names, then tell the customer.",
        models=(FunctionModel(script, name="scripted-crash", delay=MODEL_DELAY),),
        tools=tools,
        deps=lambda: ledger,
    )


def errand(slot: int) -> str:
    return f"Please cancel order {order_id(slot)} and then email {customer(slot)}."


# --- the worker --------------------------------------------------------------


class _Takeovers(logging.Handler):
    """Records each lease the runtime takes over from a dead holder."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__(logging.WARNING)
        self.ledger = ledger

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if "taking over" in msg:
            self.ledger.action(msg.split()[1].rstrip(":"), "takeover")


class Ledger:
    """The worker's durable notes (one connection, used on the event loop's thread)."""

    def __init__(self, path: str) -> None:
        self.conn = connect(path)

    def sessions(self) -> dict[int, str]:
        return dict(self.conn.execute("SELECT slot, session_id FROM sessions").fetchall())

    def record_session(self, slot: int, session_id: str, *, adopted: bool = False) -> None:
        self.conn.execute(
            "INSERT INTO sessions (slot, session_id, adopted) VALUES (?, ?, ?)",
            (slot, session_id, int(adopted)),
        )

    def record_approval(self, approval_id: str, session_id: str, call_id: str, tool: str) -> None:
        self.conn.execute(
            "INSERT INTO approvals (approval_id, session_id, call_id, tool, given) "
            "VALUES (?, ?, ?, ?, 1) "
            "ON CONFLICT (approval_id) DO UPDATE SET given = given + 1",
            (approval_id, session_id, call_id, tool),
        )

    def action(
        self,
        session_id: str | None,
        action: str,
        error: str | None = None,
        *,
        detail: str | None = None,
    ) -> None:
        self.conn.execute(
            "INSERT INTO actions (pid, session_id, action, detail, error) VALUES (?, ?, ?, ?, ?)",
            (os.getpid(), session_id, action, detail, error),
        )


async def survey(rt: Runtime, ledger: Ledger, n: int) -> None:
    """At start-up: note where the last kill caught sessions, and adopt orphans.

    A session whose lease is still held was mid-turn when its worker died;
    its last committed event says where (recorded as ``held:TYPE``). An
    orphan is a session created just before a kill, whose id never reached
    the ledger: it is found again by the ``slot`` in its creation metadata.
    """
    known = ledger.sessions()
    recorded = set(known.values())
    for rec in await rt.store.list_sessions(limit=100 * n + 100):
        orphan = rec.id not in recorded
        if rec.lease_owner is None and not orphan:
            continue
        events = await rt.store.events(rec.id)
        if rec.lease_owner is not None and events:
            last = events[-1]
            why = last.data.get("reason") if last.type == EventType.SESSION_STATUS else None
            held = f"held:{last.type}" + (f" ({why})" if why else "")
            ledger.action(rec.id, held, detail=str(last.seq))
        meta = (events[0].data.get("metadata") or {}) if events else {}
        slot = meta.get("slot")
        if orphan and isinstance(slot, int) and slot not in known:
            ledger.record_session(slot, rec.id, adopted=True)
            known[slot] = rec.id


async def drive(rt: Runtime, agent: Agent, ledger: Ledger, slot: int) -> bool:
    """Take one session to idle: create, approve, resume. ``False`` if it cannot be."""
    failures = 0
    while True:
        sid = ledger.sessions().get(slot)
        action = "run"
        try:
            if sid is None:
                result = await rt.run(agent, errand(slot), metadata={"slot": slot})
                ledger.record_session(slot, result.session_id)
                continue
            status = (await rt.store.get(sid)).status
            if status == SessionStatus.IDLE:
                return True
            if status == SessionStatus.AWAITING_APPROVAL:
                action = "decide"
                pending = await rt.pending_approval(sid)
                assert pending is not None, f"{sid} awaits an approval but none is pending"
                ledger.record_approval(pending.id, sid, pending.call_id, pending.tool)
                ledger.action(sid, "decide")
                await rt.decide(agent, sid, pending.id, approve=True, by="crash-bench")
            elif status in (SessionStatus.RUNNING, SessionStatus.FAILED):
                action = "resume"
                ledger.action(sid, "resume")
                await rt.resume(agent, sid)
            else:
                raise AssertionError(f"session {sid} is {status!r}, which this errand never is")
        except Exception as exc:
            ledger.action(sid, f"{action}-error", f"{type(exc).__name__}: {exc}")
            failures += 1
            if failures >= 3:
                return False


async def worker(db_url: str, ledger_path: str, n: int, lanes: int, unsafe: bool) -> int:
    ledger = Ledger(ledger_path)
    logging.getLogger("tether.runtime").addHandler(_Takeovers(ledger))
    ledger.action(None, "start")
    agent = build_agent(ledger_path, unsafe=unsafe)
    # One PID namespace (the killer's children): a killed worker's leases are
    # taken over at once instead of after their TTL.
    store = await tether.open_store(db_url)
    async with Runtime(store=store, takeover_dead_pids=True) as rt:
        await survey(rt, ledger, n)
        print("ready", flush=True)

        async def lane(k: int) -> list[bool]:
            return [await drive(rt, agent, ledger, slot) for slot in range(k, n, lanes)]

        done = await asyncio.gather(*(lane(k) for k in range(lanes)))
    ledger.action(None, "done")
    return 0 if all(all(d) for d in done) else 3


# --- the parent ---------------------------------------------------------------


@dataclass
class Killer:
    """Starts the worker, kills it at seeded random points, until it finishes."""

    cmd: list[str]
    log: Path
    rng: random.Random
    max_kills: int
    kills: int = 0
    runs: int = 0

    def draw(self) -> tuple[bool, float]:
        """(counted from start-up, delay): mostly after ready, short and long mixed."""
        if self.runs == 1:  # the first kill surely lands mid-work, however fast the machine
            return False, self.rng.uniform(0.01, 0.06)
        r = self.rng.random()
        if r < 0.1:
            return True, self.rng.uniform(0.0, 1.0)  # during start-up, or just after
        if r < 0.7:
            return False, self.rng.uniform(0.0, 0.1)
        return False, self.rng.uniform(0.1, 0.6)

    def run(self) -> int:
        """Until the worker exits by itself; its exit code."""
        while True:
            self.runs += 1
            early, delay = self.draw()
            killing = self.kills < self.max_kills
            with self.log.open("ab") as err:
                proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=err)
            try:
                if not early:
                    self._wait_ready(proc)
                try:
                    rc = proc.wait(timeout=delay if killing else 600)
                except subprocess.TimeoutExpired:
                    if not killing:
                        raise
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()
                    self.kills += 1
                    continue
                return rc
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                assert proc.stdout is not None
                proc.stdout.close()

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout=120):
                raise RuntimeError(f"the worker never became ready; see {self.log}")
        line = proc.stdout.readline()
        if line.strip() != b"ready" and proc.wait() != 0:
            raise RuntimeError(f"the worker failed to start ({proc.returncode}); see {self.log}")


async def verify(db_url: str, ledger_path: Path, n: int) -> dict[str, Any]:
    """The guarantees, from the store and the ledger."""
    conn = connect(ledger_path)
    slots = dict(conn.execute("SELECT slot, session_id FROM sessions").fetchall())
    adopted = conn.execute("SELECT count(*) FROM sessions WHERE adopted").fetchone()[0]
    effects = conn.execute("SELECT tool, session_id, key, target FROM effects").fetchall()
    approvals = conn.execute(
        "SELECT approval_id, session_id, call_id, tool, given FROM approvals"
    ).fetchall()
    actions = Counter(a for (a,) in conn.execute("SELECT action FROM actions"))
    # A session a kill caught, counted once even if later workers died before touching it.
    caught = Counter(
        a.removeprefix("held:")
        for a, _sid, _seq in conn.execute(
            "SELECT DISTINCT action, session_id, detail FROM actions WHERE action LIKE 'held:%'"
        )
    )
    errors = conn.execute(
        "SELECT session_id, action, error FROM actions WHERE error IS NOT NULL"
    ).fetchall()
    conn.close()

    store = await tether.open_store(db_url)
    try:
        records = await store.list_sessions(limit=100 * n + 100)
        events = {rec.id: await store.events(rec.id) for rec in records}
    finally:
        await store.aclose()

    ran = {(sid, key.rsplit(":", 1)[1]) for _tool, sid, key, _t in effects}
    unknown: set[tuple[str, str]] = set()
    approved: set[tuple[str, str]] = set()
    not_idle = []
    broken_logs = decided_twice = decided = 0
    for rec in records:
        evs = events[rec.id]
        broken_logs += [e.seq for e in evs] != list(range(1, len(evs) + 1))
        ids = [e.data["approval_id"] for e in evs if e.type == EventType.APPROVAL_DECIDED]
        decided += len(ids)
        decided_twice += len(ids) - len(set(ids))
        requested = {
            e.data["approval_id"]: e.data["call_id"]
            for e in evs
            if e.type == EventType.APPROVAL_REQUESTED
        }
        for e in evs:
            if e.type == EventType.TOOL_FINISHED and "outcome unknown" in e.data["content"]:
                unknown.add((rec.id, e.data["call_id"]))
            elif e.type == EventType.APPROVAL_DECIDED and e.data["approved"]:
                approved.add((rec.id, requested[e.data["approval_id"]]))
        answered = any(e.type == EventType.TURN_COMPLETED for e in evs)
        if rec.status != SessionStatus.IDLE or not answered:
            not_idle.append(rec.id)
    raised = {sid for sid, _a, _e in errors}
    per_target = Counter((tool, target) for tool, _s, _k, target in effects)
    per_key = Counter((sid, key) for _tool, sid, key, _t in effects)
    lost = [
        (aid, sid, call_id)
        for aid, sid, call_id, _tool, _g in approvals
        if (sid, call_id) not in ran and (sid, call_id) not in unknown
    ]
    return {
        "sessions": n,
        "sessions_in_store": len(records),
        "completed": len(records) - len(not_idle),
        "duplicated_side_effects": sum(c - 1 for c in per_target.values() if c > 1),
        "duplicate_keys": sum(c - 1 for c in per_key.values() if c > 1),
        "lost_approvals": len(lost),
        "unapproved_side_effects": sum(
            1 for _tool, sid, key, _t in effects if (sid, key.rsplit(":", 1)[1]) not in approved
        ),
        "unresumable": len(set(not_idle) | raised),
        "outcome_unknown": len(unknown),
        "outcome_unknown_ran": len(unknown & ran),
        "approvals": len(approvals),
        "approvals_given_again": sum(g - 1 for *_x, g in approvals),
        "approvals_decided": decided,
        "approvals_decided_twice": decided_twice,
        "broken_logs": broken_logs,
        "side_effects": len(effects),
        "decisions": actions["decide"],
        "resumes": actions["resume"],
        "lease_takeovers": actions["takeover"],
        "caught_mid_turn": dict(caught.most_common()),
        "adopted_sessions": adopted,
        "slots_recorded": len(slots),
        "worker_errors": len(errors),
        "error_samples": [f"{sid} {a}: {e}" for sid, a, e in errors[:3]],
        "lost_samples": [" ".join(x) for x in lost[:3]],
        "not_idle_samples": not_idle[:3],
    }


def measure(
    n: int, seed: int, lanes: int, max_kills: int, workdir: Path, *, unsafe: bool = False
) -> dict[str, Any]:
    db = workdir / "sessions.sqlite"
    ledger = workdir / "ledger.sqlite"
    log = workdir / "worker.log"
    db_url = f"sqlite:///{db}"
    init_ledger(ledger)
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "worker",
        "--db",
        db_url,
        "--ledger",
        str(ledger),
        "--sessions",
        str(n),
        "--lanes",
        str(lanes),
        *(["--unsafe"] if unsafe else []),
    ]
    killer = Killer(cmd, log, random.Random(seed), max_kills)
    t0 = time.perf_counter()
    rc = killer.run()
    wall = time.perf_counter() - t0
    result = asyncio.run(verify(db_url, ledger, n))
    tail = log.read_text(errors="replace")[-2000:] if rc != 0 and log.exists() else ""
    return {
        **result,
        "kills": killer.kills,
        "worker_runs": killer.runs,
        "worker_exit": rc,
        "worker_log_tail": tail,
        "seed": seed,
        "lanes": lanes,
        "unsafe": unsafe,
        "wall_s": round(wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd")
    w = sub.add_parser("worker", help="(internal) the process that gets killed")
    w.add_argument("--db", required=True)
    w.add_argument("--ledger", required=True)
    w.add_argument("--sessions", type=int, required=True)
    w.add_argument("--lanes", type=int, required=True)
    w.add_argument("--unsafe", action="store_true")
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--lanes", type=int, default=4, help="sessions driven at once")
    parser.add_argument("--max-kills", type=int, default=1000, help="then let it finish")
    parser.add_argument("--workdir", help="keep the store, ledger and log here")
    parser.add_argument(
        "--unsafe",
        action="store_true",
        help="a control: declare cancel_order and send_email idempotent (a lie), so the "
        "runtime may run them again after a kill; the checks must then find duplicates",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    if args.cmd == "worker":
        logging.basicConfig(level=logging.WARNING, format="%(process)d %(name)s: %(message)s")
        sys.exit(asyncio.run(worker(args.db, args.ledger, args.sessions, args.lanes, args.unsafe)))
    if args.workdir:
        workdir = Path(args.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        r = measure(
            args.sessions, args.seed, args.lanes, args.max_kills, workdir, unsafe=args.unsafe
        )
    else:
        with tempfile.TemporaryDirectory() as tmp:
            r = measure(
                args.sessions, args.seed, args.lanes, args.max_kills, Path(tmp), unsafe=args.unsafe
            )
    rows = [
        ("worker killed with SIGKILL", str(r["kills"]), f"{r['worker_runs']} runs"),
        ("sessions idle with an answer", f"{r['completed']} / {r['sessions_in_store']}", "all"),
        ("side effects performed", str(r["side_effects"]), f"<= {2 * r['sessions']}"),
        ("duplicated side effects", str(r["duplicated_side_effects"]), "0"),
        ("approvals given / lost", f"{r['approvals']} / {r['lost_approvals']}", "lost 0"),
        (
            "approvals decided / decided twice",
            f"{r['approvals_decided']} / {r['approvals_decided_twice']}",
            f"{2 * r['sessions']} / 0",
        ),
        ("event logs with a gap or a repeated seq", str(r["broken_logs"]), "0"),
        ("side effects without an approval", str(r["unapproved_side_effects"]), "0"),
        ("unresumable sessions", str(r["unresumable"]), "0"),
        (
            "calls reported outcome unknown (ran)",
            f"{r['outcome_unknown']} ({r['outcome_unknown_ran']})",
            "allowed",
        ),
        ("resumes / lease takeovers", f"{r['resumes']} / {r['lease_takeovers']}", ""),
        ("approvals given again after a kill", str(r["approvals_given_again"]), ""),
        ("sessions found by their slot after a kill", str(r["adopted_sessions"]), ""),
        ("sessions a kill caught mid-turn", str(sum(r["caught_mid_turn"].values())), ""),
    ]
    rows += [(f"  last event: {k}", str(c), "") for k, c in r["caught_mid_turn"].items()]
    unsafe = " (UNSAFE control: effectful tools declared idempotent)" if r["unsafe"] else ""
    print(
        f"{r['sessions']} sessions, {r['lanes']} at once, seed {r['seed']}{unsafe}: "
        f"{r['wall_s']} s wall"
    )
    for what, got, want in rows:
        print(f"{what:<58} {got:>10}   {want}")
    if r["worker_exit"] != 0:
        print(f"worker exited with {r['worker_exit']}:\n{r['worker_log_tail']}")
    for sample in r["error_samples"]:
        print(f"error: {sample}")
    if args.json:
        print(json.dumps({k: v for k, v in r.items() if k != "worker_log_tail"}))


if __name__ == "__main__":
    main()
