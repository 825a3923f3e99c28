"""Leases against the clock: a holder that keeps renewing keeps its session, wherever it runs.

A lease holder's id names its host and pid, but a pid means something only
in its own PID namespace: a container sharing this host name (host
networking) has pids that may not exist here, or belong to someone else.
So by default a runtime takes a session over only when its lease has
*expired*, that is, once the holder stopped renewing; taking over at once a
holder whose pid is gone is the opt-in ``takeover_dead_pids``.

These tests use real time (a lease is a wall-clock contract between
processes), so they take a few seconds each.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.runtime.session_peer import (
    REPO,
    USER,
    Ledger,
    Shared,
    payments_agent,
    peer_env,
    shared_store,
)
from tether.exceptions import SessionConflict
from tether.runtime import Runtime, SessionStatus
from tether.runtime.ports import SessionStore
from tether.store import open_store

BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
WAIT = 10.0


@pytest.fixture
async def shared(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Shared]:
    async with shared_store(request.param, tmp_path) as s:
        yield s


def absent_pid() -> int:
    """A pid with no process in this namespace (999999 unless that one exists)."""
    pid = 999_999
    while Path(f"/proc/{pid}").exists():
        pid += 1
    return pid


class Renewer:
    """A lease holder of another PID namespace: it only renews, through the store."""

    def __init__(self, store: SessionStore, sid: str, owner: str, ttl: float) -> None:
        self.store, self.sid, self.owner, self.ttl = store, sid, owner, ttl
        self.expires = 0.0
        self.renewals = 0

    async def take(self) -> None:
        record, _ = await self.store.acquire(
            self.sid, owner=self.owner, now=time.time(), lease_ttl=self.ttl
        )
        assert record.lease_expires is not None
        self.expires = record.lease_expires

    async def run(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            self.expires = await self.store.renew(
                self.sid, owner=self.owner, now=time.time(), lease_ttl=self.ttl
            )
            self.renewals += 1


# --- a. a renewing holder with a pid that does not exist here ------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("shared", SQL_BACKENDS, indirect=True)
async def test_a_renewing_holder_from_another_pid_namespace_keeps_its_lease(
    shared: Shared,
) -> None:
    ledger = Ledger()
    agent = payments_agent(ledger, approvals=False)
    store = await shared.open()
    async with Runtime(store=store, close_store=False) as rt:
        sid = (await rt.session(agent, principal=USER).send("hello")).session_id
        holder = f"{socket.gethostname()}:{absent_pid()}:abcd:1"
        other = Renewer(store, sid, holder, ttl=3.0)
        await other.take()
        renewing = asyncio.create_task(other.run(every=1.0))
        first_expiry = other.expires
        refused: list[float] = []
        try:
            started = time.time()
            while time.time() - started < 4.0:  # past the first lease's expiry, renewed meanwhile
                with pytest.raises(SessionConflict) as info:
                    await rt.session(agent, sid).send("hello?")
                assert info.value.holder == holder
                refused.append(time.time())
                await asyncio.sleep(0.4)
        finally:
            renewing.cancel()
        assert other.renewals >= 2
        assert len(refused) >= 5
        assert refused[-1] > first_expiry + 0.2  # still refused after the first lease ended
        row = await store.get(sid)
        assert row.lease_owner == holder
        assert row.status == SessionStatus.IDLE
        assert row.event_count == len(await store.events(sid))
        # the holder stopped renewing: once its lease runs out, the session is free
        expires = other.expires
        while True:
            try:
                result = await rt.session(agent, sid).send("hello again")
                break
            except SessionConflict:
                assert time.time() < expires + 2.0, "the expired lease was never taken over"
                await asyncio.sleep(0.2)
        assert time.time() >= expires
        assert result.output == "echo: hello again"
        assert (await store.get(sid)).lease_owner is None


@pytest.mark.parametrize("shared", SQL_BACKENDS, indirect=True)
async def test_takeover_dead_pids_takes_a_dead_local_holder_over_at_once(shared: Shared) -> None:
    ledger = Ledger()
    agent = payments_agent(ledger, approvals=False)
    store = await shared.open()
    async with (
        Runtime(store=store, close_store=False) as rt,
        Runtime(store=store, close_store=False, takeover_dead_pids=True) as opted_in,
    ):
        sid = (await rt.session(agent, principal=USER).send("hello")).session_id
        holder = f"{socket.gethostname()}:{absent_pid()}:abcd:1"
        await Renewer(store, sid, holder, ttl=3.0).take()
        with pytest.raises(SessionConflict):
            await rt.session(agent, sid).send("hello?")  # the default waits for expiry
        result = await opted_in.session(agent, sid).send("hello?")
        assert result.output == "echo: hello?"
        # the old holder has lost it: its renewal is refused, it must stop
        with pytest.raises(SessionConflict):
            await store.renew(sid, owner=holder, now=time.time(), lease_ttl=3.0)
        # a live holder, or one on another host, is never taken over, even opted in
        for live in (
            f"{socket.gethostname()}:{os.getpid()}:beef:1",
            f"elsewhere:{absent_pid()}:x:1",
        ):
            await Renewer(store, sid, live, ttl=30.0).take()
            with pytest.raises(SessionConflict) as info:
                await opted_in.session(agent, sid).send("hello?")
            assert info.value.holder == live
            await store.release(sid, owner=live)


# --- b. a real holder in another PID namespace ---------------------------------------------------


def _unshare_refused() -> str | None:
    if shutil.which("unshare") is None:
        return "the unshare command is not installed"
    try:
        done = subprocess.run(
            ["unshare", "--pid", "--fork", "--mount-proc", "true"],
            capture_output=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare could not run: {exc}"
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip()
        return f"unshare --pid is not permitted here (needs root or user namespaces): {why}"
    return None


@pytest.mark.slow
async def test_a_turn_held_in_another_pid_namespace_keeps_its_session(tmp_path: Path) -> None:
    refused = _unshare_refused()
    if refused is not None:
        pytest.skip(refused)
    url = f"sqlite+aiosqlite:///{tmp_path / 's.db'}"
    await (await open_store(url)).aclose()  # create and migrate the database for the peer
    sid = f"held-{uuid.uuid4().hex[:8]}"
    proc = await asyncio.create_subprocess_exec(
        "unshare",
        "--pid",
        "--fork",
        "--mount-proc",
        sys.executable,
        "-m",
        "tests.runtime.session_peer",
        "hold",
        url,
        sid,
        str(tmp_path),
        "2",
        cwd=REPO,
        env=peer_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    started = tmp_path / "started"
    try:
        async with asyncio.timeout(120):
            while not started.exists():
                if proc.returncode is not None:
                    _out, err = await proc.communicate()
                    pytest.fail(f"the peer exited early ({proc.returncode}): {err.decode()}")
                await asyncio.sleep(0.05)
        ns_pid = int(started.read_text())
        assert ns_pid != proc.pid  # its pid is of its own namespace

        ledger = Ledger(workdir=tmp_path)
        agent = payments_agent(ledger, approvals=False)
        store = await open_store(url)
        async with Runtime(store=store) as rt:
            holders = set()
            t0 = time.time()
            while time.time() - t0 < 5.0:  # two and a half of the holder's 2 s leases
                with pytest.raises(SessionConflict) as info:
                    await rt.session(agent, sid).send("hello?")
                holders.add(info.value.holder)
                await asyncio.sleep(0.5)
            (holder,) = holders
            assert holder is not None
            host, pid, _rest = holder.split(":", 2)
            assert (host, int(pid)) == (socket.gethostname(), ns_pid)
            assert ledger.file_charges() == 1  # the peer's charge, still in progress
            (tmp_path / "release").write_text("go")
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, err.decode()
            assert '"status": "idle"' in out.decode()
            result = await rt.session(agent, sid).send("hello")
            assert result.output == "echo: hello"
            assert ledger.file_charges() == 1
    finally:
        (tmp_path / "release").write_text("go")
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# --- c. the heartbeat ----------------------------------------------------------------------------


@pytest.mark.parametrize("shared", BACKENDS, indirect=True)
async def test_the_heartbeat_keeps_a_long_tool_call_leased(shared: Shared) -> None:
    ledger = Ledger()
    agent = payments_agent(ledger, approvals=False)
    async with (
        Runtime(store=await shared.open(), close_store=False, lease_ttl=0.6) as rt,
        Runtime(store=await shared.open(), close_store=False) as other,
    ):
        store = rt.store
        handle = rt.session(agent, principal=USER)
        turn = asyncio.create_task(handle.send("charge 42"))
        try:
            await asyncio.wait_for(ledger.entered.wait(), WAIT)
            seen: list[float] = []
            t0 = time.time()
            while time.time() - t0 < 2.0:  # the tool takes 2 s: more than three TTLs
                row = await store.get(handle.id)
                assert row.lease_owner is not None
                assert row.lease_owner.startswith(rt.owner)
                assert row.lease_expires is not None
                assert row.lease_expires > time.time()  # never lapsed
                seen.append(row.lease_expires)
                with pytest.raises(SessionConflict):
                    await other.session(agent, handle.id).send("hello?")
                await asyncio.sleep(0.25)
        finally:
            ledger.release.set()
        result = await asyncio.wait_for(turn, WAIT)
        assert result.status == SessionStatus.IDLE
        assert seen == sorted(seen)
        assert seen[-1] - seen[0] >= 1.2  # moved forward with the clock, not once
        assert len(set(seen)) >= 4
        row = await store.get(handle.id)
        assert row.lease_owner is None
        assert ledger.charges == [42]
