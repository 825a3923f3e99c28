"""Real MCP servers for the tests: ``servers/shop.py`` run as a subprocess (stdio or HTTP)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mcp.helpers import SHOP


@pytest.fixture
def calls_file(tmp_path: Path) -> Path:
    return tmp_path / "calls"


@pytest.fixture
def pids_file(tmp_path: Path) -> Path:
    return tmp_path / "pids"


@pytest.fixture
def shop_env(calls_file: Path, pids_file: Path) -> dict[str, str]:
    return {"SHOP_CALLS": str(calls_file), "SHOP_PIDS": str(pids_file)}


@pytest.fixture(scope="module")
def http_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The shop served over streamable HTTP by uvicorn on a free loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("http") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, SHOP, "http", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError as exc:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"HTTP MCP server did not start: {log.read_text()}"
                    ) from exc
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
