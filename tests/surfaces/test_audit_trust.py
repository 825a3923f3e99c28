"""``tether audit``: read tools that may return free text must say whether it is trusted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypedDict

import pytest

import tether
from tether import Agent
from tether.spec.approval import ApprovalPolicy
from tether.surfaces.audit import audit_agent, returns_free_text
from tether.testing import ScriptedModel


class Row(TypedDict):
    id: int
    note: str


class Numbers(TypedDict):
    id: int
    total: float


@dataclass
class Status:
    state: Literal["pending", "shipped"]
    count: int


def _tool(ret: Any, **flags: Any) -> tether.Tool:
    def fn(x: str) -> Any:
        """Read something.

        Args:
            x: Which.
        """
        return None

    fn.__annotations__["return"] = ret
    return tether.tool(reads=True, **flags)(fn)


@pytest.mark.parametrize(
    ("ret", "free"),
    [
        (str, True),
        (Any, True),
        (dict[str, Any], True),
        (list[str], True),
        (Row, True),
        (str | None, True),
        (int, False),
        (list[int], False),
        (Numbers, False),
        (Status, False),
        (Literal["a", "b"], False),
        (bool, False),
    ],
)
def test_free_text_is_judged_by_the_return_annotation(ret: Any, free: bool) -> None:
    assert returns_free_text(_tool(ret)) is free


def _warnings(tool: tether.Tool) -> list[str]:
    agent = Agent(name="a", instructions="x", models=(ScriptedModel([]),), tools=(tool,))
    return [w for w in audit_agent(agent).warnings if "may return free text" in w]


def test_an_undeclared_free_text_read_is_warned_about() -> None:
    (warning,) = _warnings(_tool(str))
    assert "untrusted_output=True" in warning
    assert "trusted_fields" in warning


@pytest.mark.parametrize(
    "flags",
    [{"untrusted_output": True}, {"untrusted_output": False}],
    ids=["untrusted", "declared-trusted"],
)
def test_a_declared_tool_is_not_warned_about(flags: dict[str, Any]) -> None:
    assert _warnings(_tool(str, **flags)) == []


def test_a_read_of_numbers_only_is_not_warned_about() -> None:
    assert _warnings(_tool(Numbers)) == []


def test_audit_shows_when_egress_asks() -> None:
    @tether.tool(reads=True, egress=True, untrusted_output=False)
    def fetch(url: str) -> int:
        """Fetch a URL.

        Args:
            url: Where.
        """
        return 200

    def approval_of(**policy: Any) -> str:
        agent = Agent(
            name="a",
            instructions="x",
            models=(ScriptedModel([]),),
            tools=(fetch,),
            approval=ApprovalPolicy(**policy),
        )
        return audit_agent(agent).tools[0].approval

    assert approval_of() == "after untrusted content, when it carries planted values"
    assert approval_of(taint_egress="always") == "after untrusted content"
    assert approval_of(taint_egress="off") == "never"
    assert (
        "egress"
        in audit_agent(
            Agent(name="a", instructions="x", models=(ScriptedModel([]),), tools=(fetch,))
        )
        .tools[0]
        .flags
    )
