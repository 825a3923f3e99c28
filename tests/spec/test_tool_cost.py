"""A tool's ``cost``: declared as dollars per call or a function of the result, checked at once."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pydantic
import pytest

from tether import Tool, ToolContext, tool
from tether.exceptions import ConfigError, ToolDefinitionError


def _ctx() -> ToolContext:
    return ToolContext(
        session_id="s1", step=1, call_id="c", idempotency_key="k", user_id=None, vars={}
    )


def test_no_cost_by_default() -> None:
    @tool
    def free(x: int) -> int:
        """Free."""
        return x

    assert free.cost is None


def test_a_fixed_price_is_kept_as_a_float() -> None:
    @tool(reads=True, cost=0.005)
    def search(q: str) -> str:
        """Search."""
        return q

    @tool(cost=0)  # a declared zero is allowed: "free, and I checked"
    def zero(q: str) -> str:
        """Zero."""
        return q

    @tool(cost=2)
    def whole(q: str) -> str:
        """Whole dollars."""
        return q

    assert search.cost == 0.005
    assert zero.cost == 0.0
    assert whole.cost == 2.0
    assert isinstance(whole.cost, float)


def test_a_function_of_the_result_is_kept_as_it_is() -> None:
    def per_segment(result: dict[str, Any]) -> float:
        return 0.0079 * float(result["segments"])

    @tool(external_comms=True, cost=per_segment)
    def send_sms(to: str, text: str) -> dict[str, Any]:
        """Send an SMS."""
        return {"segments": 2}

    assert send_sms.cost is per_segment


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (-0.01, "must be a finite number of dollars >= 0, not -0.01"),
        (math.nan, "must be a finite number of dollars >= 0, not nan"),
        (math.inf, "must be a finite number of dollars >= 0, not inf"),
        (-math.inf, "must be a finite number of dollars >= 0, not -inf"),
        ("0.01", "must be a number or a function, not '0.01'"),
        (True, "must be a number or a function, not True"),
        ([0.01], r"must be a number or a function, not \[0.01\]"),
    ],
)
def test_bad_prices_are_refused_with_the_fix(bad: Any, message: str) -> None:
    with pytest.raises(ToolDefinitionError, match=message) as info:
        tool(cost=bad)  # refused before any function is given, like the other flags
    assert "cost=0.005" in str(info.value)  # the fix: what a valid declaration looks like
    assert isinstance(info.value, ConfigError)


def test_the_tool_is_named_when_it_has_a_name() -> None:
    with pytest.raises(ToolDefinitionError, match=r"tool 'search': cost must be"):
        tool(name="search", cost=-1)


def test_an_async_cost_function_is_refused() -> None:
    async def later(result: Any) -> float:
        return 0.01

    class AsyncCallable:
        async def __call__(self, result: Any) -> float:
            return 0.01

    bad_values: tuple[Any, ...] = (later, AsyncCallable())
    for bad in bad_values:
        with pytest.raises(ToolDefinitionError, match="is an async function"):
            tool(cost=bad)


def test_tool_built_directly_is_checked_too() -> None:
    def fn(q: str) -> str:
        return q

    with pytest.raises(ToolDefinitionError, match=r"tool 'direct': cost must be a finite"):
        Tool(name="direct", description="d", parameters={}, fn=fn, cost=-5.0)
    direct = Tool(name="direct", description="d", parameters={}, fn=fn, cost=1)
    assert direct.cost == 1.0


def test_the_cost_survives_copies_and_the_tool_stays_frozen() -> None:
    @tool(reads=True, cost=0.002)
    def search(q: str) -> str:
        """Search."""
        return q

    copy = dataclasses.replace(search, timeout=5.0)
    assert copy.cost == 0.002
    with pytest.raises(dataclasses.FrozenInstanceError):
        search.cost = 1.0  # type: ignore[misc]
    with pytest.raises(ToolDefinitionError):
        dataclasses.replace(search, cost=-1.0)


@tool(cost=0.01)
def plain(x: int) -> int:
    """Plain."""
    return x


@tool(cost=0.01)
async def coro(x: int) -> int:
    """Async."""
    return x


@pytest.mark.parametrize("priced", [plain, coro], ids=["plain", "async"])
async def test_started_is_called_only_when_the_function_runs(priced: Tool) -> None:
    runs: list[int] = []

    def started() -> None:
        runs.append(1)

    assert await priced(_ctx(), {"x": 3}, started=started) == 3
    assert runs == [1]
    with pytest.raises(pydantic.ValidationError):
        await priced(_ctx(), {"x": "not a number"}, started=started)
    assert runs == [1]  # invalid arguments: the function never ran
