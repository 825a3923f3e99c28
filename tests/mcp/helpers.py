"""What the MCP tests share: the shop server's path, agents on it, small checks."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from tether import Agent, ApprovalPolicy, mcp_server
from tether.providers.mcp import McpServer
from tether.testing import ScriptedModel

SHOP = str(Path(__file__).parent / "servers" / "shop.py")


def stdio_shop(env: dict[str, str], **kw: Any) -> McpServer:
    return mcp_server("stdio", name="shop", command=[sys.executable, SHOP], env=env, **kw)


def shop_agent(model: ScriptedModel, server: McpServer, **kw: Any) -> Agent:
    kw.setdefault("clarify", False)
    return Agent(
        name="shop", instructions="Help customers.", models=(model,), tools=(server,), **kw
    )


def no_approvals() -> ApprovalPolicy:
    return ApprovalPolicy(enabled=False, taint="off")


def calls(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
