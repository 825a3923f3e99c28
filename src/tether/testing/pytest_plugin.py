"""Tether's pytest plugin: no network in tests, and fixtures for runtimes.

Installing tether registers this module with pytest (the ``pytest11`` entry
point named ``tether``); nothing needs to be listed in ``conftest.py``.
``pytest -p no:tether`` turns the whole plugin off.

What it does by itself
    Every socket connection to an address that is not loopback
    (``127.0.0.0/8``, ``::1``, ``localhost``, Unix sockets) raises
    :class:`~tether.testing.network.NetworkBlocked`, a
    ``ConnectionRefusedError`` naming the address. It is on from the start of
    the run (collection included) to its end. Opt out for one test with
    ``@pytest.mark.tether_allow_network``, or for the whole run with
    ``--tether-allow-network`` or ``tether_allow_network = true`` in the
    pytest ini options.

Fixtures
    ``fake_clock``
        A :class:`~tether.testing.FakeClock` (virtual time starting at
        1,700,000,000). The runtime fixtures run on it.
    ``tether_events``
        An :class:`~tether.testing.EventLog` from
        :func:`~tether.testing.capture_events`: pass it as ``on_event=``.
    ``tether_runtime``
        A :class:`~tether.Runtime` on an in-memory store, closed after the
        test. Its clock is ``fake_clock``, it waits (retry backoff) with
        ``fake_clock.sleep``, so retries take no real time and
        ``fake_clock.sleeps`` lists the waits, and its jitter comes from
        ``random.Random(0)``.
    ``tether_sqlite_runtime``
        The same on a SQLite store, the file ``tmp_path / "tether.db"``
        (opened and migrated with ``tether.store.open_store``), for tests of
        what is persisted or of resuming from a second runtime on the same
        file.

    The two runtime fixtures are async: they need pytest-asyncio, with
    ``asyncio_mode = "auto"`` or tests marked ``@pytest.mark.asyncio``, and
    they are function-scoped.

This module is imported only by pytest: ``import tether.testing`` does not
import pytest.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tether.testing import EventLog, FakeClock, capture_events
from tether.testing.network import NetworkGuard

if TYPE_CHECKING:
    from tether.runtime import Runtime, SessionStore

__all__ = [
    "ALLOW_NETWORK_MARKER",
    "SQLITE_FILE",
    "fake_clock",
    "tether_events",
    "tether_runtime",
    "tether_sqlite_runtime",
]

#: the marker that lets one test open non-loopback connections
ALLOW_NETWORK_MARKER = "tether_allow_network"
#: the name of the SQLite file of ``tether_sqlite_runtime``, under ``tmp_path``
SQLITE_FILE = "tether.db"

_GUARD = pytest.StashKey[NetworkGuard]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tether", "tether test kit")
    group.addoption(
        "--tether-allow-network",
        action="store_true",
        default=False,
        help="let tests open connections to any address (tether blocks all but loopback)",
    )
    parser.addini(
        "tether_allow_network",
        type="bool",
        default=False,
        help="let tests open connections to any address (tether blocks all but loopback)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{ALLOW_NETWORK_MARKER}: let this test connect to addresses other than loopback "
        "(the tether plugin blocks them otherwise)",
    )
    if config.getoption("tether_allow_network") or config.getini("tether_allow_network"):
        return
    guard = NetworkGuard()
    guard.install()
    config.stash[_GUARD] = guard


def pytest_unconfigure(config: pytest.Config) -> None:
    guard = config.stash.get(_GUARD, None)
    if guard is not None:
        guard.uninstall()
        del config.stash[_GUARD]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    """Lift the block for setup, call and teardown of a test marked ``tether_allow_network``."""
    guard = item.config.stash.get(_GUARD, None)
    if guard is None or item.get_closest_marker(ALLOW_NETWORK_MARKER) is None:
        return (yield)
    guard.allowed = True
    try:
        return (yield)
    finally:
        guard.allowed = False


@pytest.fixture
def fake_clock() -> FakeClock:
    """Virtual time; the runtime fixtures use it as their clock and sleep."""
    return FakeClock()


@pytest.fixture
def tether_events() -> Iterator[EventLog]:
    """An event log to pass as ``on_event=``."""
    with capture_events() as log:
        yield log


def _runtime(clock: FakeClock, store: SessionStore | None = None) -> Runtime:
    from tether.runtime import Runtime

    return Runtime(store, clock=clock, sleep=clock.sleep, rng=random.Random(0))


async def _memory_runtime(fake_clock: FakeClock) -> AsyncIterator[Runtime]:
    """A Runtime on an in-memory store and ``fake_clock``, closed after the test."""
    rt = _runtime(fake_clock)
    try:
        yield rt
    finally:
        await rt.aclose()


async def _sqlite_runtime(fake_clock: FakeClock, tmp_path: Path) -> AsyncIterator[Runtime]:
    """A Runtime on a SQLite file under ``tmp_path`` and ``fake_clock``, closed after the test."""
    from tether.store import open_store

    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / SQLITE_FILE}")
    rt = _runtime(fake_clock, store)
    try:
        yield rt
    finally:
        await rt.aclose()


def _async_fixture(fn: Callable[..., AsyncIterator[Runtime]], name: str) -> Any:
    """``fn`` as a pytest-asyncio fixture, or one that explains what is missing."""
    try:
        import pytest_asyncio
    except ModuleNotFoundError:  # pragma: no cover - pytest-asyncio is a dev dependency here

        def missing() -> None:
            pytest.fail(
                f"the {name} fixture is async and needs pytest-asyncio: pip install "
                'pytest-asyncio, then set asyncio_mode = "auto" or mark the test '
                "@pytest.mark.asyncio",
                pytrace=False,
            )

        return pytest.fixture(name=name)(missing)
    return pytest_asyncio.fixture(name=name)(fn)


tether_runtime = _async_fixture(_memory_runtime, "tether_runtime")
tether_sqlite_runtime = _async_fixture(_sqlite_runtime, "tether_sqlite_runtime")
