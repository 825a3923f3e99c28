"""block_network and NetworkGuard: every connection but loopback is refused.

The plugin's own guard is active around these tests too; each test puts a
recorder in place of ``socket.socket.connect`` first, so what a guard lets
through is recorded instead of sent.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from tether.testing import NetworkBlocked, block_network
from tether.testing.network import NetworkGuard, is_loopback


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    seen: list[Any] = []

    def connect(sock: socket.socket, address: Any) -> None:
        seen.append(address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        seen.append(address)
        return 0

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    return seen


@pytest.mark.parametrize(
    ("address", "local"),
    [
        (("127.0.0.1", 80), True),
        (("127.8.9.10", 80), True),
        (("::1", 80, 0, 0), True),
        (("fe80::1%lo", 80, 0, 0), False),
        (("localhost", 6379), True),
        (("", 80), True),
        ("/tmp/tether.sock", True),
        (b"/tmp/tether.sock", True),
        (("10.0.0.1", 5432), False),
        (("203.0.113.1", 80), False),
        (("2001:db8::1", 80, 0, 0), False),
        (("api.anthropic.com", 443), False),
        (("localhost.example.com", 443), False),
    ],
)
def test_only_loopback_addresses_count_as_local(address: Any, local: bool) -> None:
    assert is_loopback(address) is local


def test_block_network_refuses_and_records_then_restores(recorder: list[Any]) -> None:
    before = socket.socket.connect, socket.socket.connect_ex
    with block_network() as guard, socket.socket() as s:
        with pytest.raises(NetworkBlocked, match=r"\('10\.0\.0\.1', 5432\)") as info:
            s.connect(("10.0.0.1", 5432))
        with pytest.raises(NetworkBlocked):
            s.connect_ex(("203.0.113.1", 80))
        s.connect(("127.0.0.1", 9))  # loopback passes through to what was there
        assert guard.blocked == [("10.0.0.1", 5432), ("203.0.113.1", 80)]
    assert isinstance(info.value, ConnectionRefusedError)
    assert recorder == [("127.0.0.1", 9)]
    assert (socket.socket.connect, socket.socket.connect_ex) == before


def test_an_allowed_guard_lets_everything_through(recorder: list[Any]) -> None:
    guard = NetworkGuard()
    guard.install()
    try:
        guard.allowed = True
        with socket.socket() as s:
            s.connect(("203.0.113.1", 80))
            assert s.connect_ex(("203.0.113.1", 443)) == 0
    finally:
        guard.uninstall()
    assert recorder == [("203.0.113.1", 80), ("203.0.113.1", 443)]
    assert guard.blocked == []


def test_guards_nest_and_a_guard_installs_once(recorder: list[Any]) -> None:
    outer, inner = NetworkGuard(hint="outer"), NetworkGuard(hint="inner")
    outer.install()
    inner.install()
    try:
        with pytest.raises(RuntimeError, match="already installed"):
            inner.install()
        inner.allowed = True  # the inner lets it through; the outer still refuses
        with socket.socket() as s, pytest.raises(NetworkBlocked, match="outer"):
            s.connect(("203.0.113.1", 80))
    finally:
        inner.uninstall()
        outer.uninstall()
    outer.uninstall()  # a second uninstall does nothing
    assert (outer.installed, inner.installed) == (False, False)
    with socket.socket() as s:
        s.connect(("203.0.113.1", 80))
    assert recorder == [("203.0.113.1", 80)]
