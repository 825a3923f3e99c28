"""Keep tests off the network: refuse every socket connection but loopback.

The pytest plugin (:mod:`tether.testing.pytest_plugin`) turns this on for
every test. Without pytest, use the context manager::

    with block_network():
        ...  # connecting to anything but 127.0.0.1, ::1, "localhost" or a
             # Unix socket raises NetworkBlocked

Only ``socket.socket.connect`` and ``connect_ex`` are guarded: that is what
``socket.create_connection``, asyncio, httpx, SQLAlchemy drivers and redis
clients end up calling. Name lookups are not blocked.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["NetworkBlocked", "NetworkGuard", "block_network", "is_loopback"]

_HINT = (
    "mock the HTTP call (respx, or a scripted model from tether.testing) or connect to "
    "loopback; if the test really needs the network, mark it "
    "@pytest.mark.tether_allow_network or run pytest with --tether-allow-network"
)


class NetworkBlocked(ConnectionRefusedError):
    """A test tried to connect to an address that is not loopback.

    A :class:`ConnectionRefusedError` (so code under test sees a refused
    connection, as it would offline), but its message names the address and
    how to allow it.
    """


def is_loopback(address: Any) -> bool:
    """Whether a socket address stays on this machine.

    Unix socket paths, ``"localhost"`` and loopback IPs (``127.0.0.0/8``,
    ``::1``) do; every other host, including names that would need a lookup,
    does not.
    """
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0] if isinstance(address, tuple) and address else None
    if host in ("localhost", ""):
        return True
    if not isinstance(host, str):
        return False
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback  # "::1%lo" scope ids
    except ValueError:
        return False


class NetworkGuard:
    """Patches ``socket.socket`` so that non-loopback connections raise :class:`NetworkBlocked`.

    :meth:`install` wraps whatever ``connect``/``connect_ex`` are in place
    and :meth:`uninstall` puts exactly those back, so guards nest. While
    :attr:`allowed` is true the guard lets every connection through (the
    pytest plugin sets it for a test marked ``tether_allow_network``).
    """

    def __init__(self, hint: str = _HINT) -> None:
        self.hint = hint
        self.allowed = False
        #: addresses refused so far, in order
        self.blocked: list[Any] = []
        self._saved: tuple[Callable[..., Any], Callable[..., Any]] | None = None

    @property
    def installed(self) -> bool:
        return self._saved is not None

    def check(self, address: Any) -> None:
        """Raise :class:`NetworkBlocked` unless ``address`` may be connected to now."""
        __tracebackhide__ = True  # pytest shows the test's line, not this one
        if self.allowed or is_loopback(address):
            return
        self.blocked.append(address)
        raise NetworkBlocked(
            f"tests may not open network connections (to {address!r}): {self.hint}"
        )

    def install(self) -> None:
        if self._saved is not None:
            raise RuntimeError("this NetworkGuard is already installed")
        inner_connect = socket.socket.connect
        inner_connect_ex = socket.socket.connect_ex
        guard = self

        def connect(sock: socket.socket, address: Any) -> None:
            __tracebackhide__ = True
            guard.check(address)
            inner_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            __tracebackhide__ = True
            guard.check(address)
            return inner_connect_ex(sock, address)

        self._saved = (inner_connect, inner_connect_ex)
        socket.socket.connect = connect  # type: ignore[method-assign,assignment]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign,assignment]

    def uninstall(self) -> None:
        if self._saved is None:
            return
        socket.socket.connect, socket.socket.connect_ex = self._saved  # type: ignore[method-assign]
        self._saved = None


@contextmanager
def block_network() -> Iterator[NetworkGuard]:
    """Refuse non-loopback connections inside the block; yields the :class:`NetworkGuard`."""
    guard = NetworkGuard(hint="mock the call or connect to loopback")
    guard.install()
    try:
        yield guard
    finally:
        guard.uninstall()
