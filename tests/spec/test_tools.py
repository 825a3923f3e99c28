"""@tool derives a JSON Schema from hints and docstrings, and validates calls."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Literal

import pydantic
import pytest

from tether import Tool, ToolContext, tool
from tether.exceptions import ConfigError, ToolDefinitionError
from tether.spec.tools import DEFAULT_MAX_OUTPUT_CHARS, Executor


@tool(writes=True, irreversible=True, timeout=5)
def cancel_order(
    ctx: ToolContext, order_id: str, reason: Literal["a", "b"], notify: bool = True
) -> str:
    """Cancel a pending order.

    Args:
        order_id: The order to cancel, like '#W123'.
        reason: Why the customer cancels.
        notify: Whether to email the customer.
    """
    return f"{order_id}:{reason}:{notify}:{ctx.session_id}"


def test_schema_from_hints_and_docstring() -> None:
    assert isinstance(cancel_order, Tool)
    schema = cancel_order.parameters
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {"order_id", "reason", "notify"}  # ctx is not a parameter
    assert schema["required"] == ["order_id", "reason"]
    assert schema["properties"]["order_id"]["description"] == "The order to cancel, like '#W123'."
    assert schema["properties"]["reason"]["enum"] == ["a", "b"]
    assert schema["properties"]["notify"]["default"] is True
    assert schema["additionalProperties"] is False
    assert cancel_order.description == "Cancel a pending order."


def test_risk_flags_and_idempotency_defaults() -> None:
    assert cancel_order.risk.names() == ("writes", "irreversible")
    assert cancel_order.idempotent is False
    assert cancel_order.timeout == 5

    @tool(reads=True)
    def lookup(x: int) -> int:
        """Look something up."""
        return x

    assert lookup.idempotent is True
    assert lookup.risk.names() == ("reads",)


def test_irreversible_implies_writes() -> None:
    @tool(irreversible=True)
    def wipe(x: str) -> None:
        """Wipe."""

    assert wipe.risk.writes is True


def test_validation_rejects_bad_and_extra_arguments() -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        cancel_order.validate({"order_id": 5, "reason": "c", "extra": 1})
    locs = {err["loc"][0] for err in info.value.errors()}
    assert locs == {"order_id", "reason", "extra"}
    assert cancel_order.validate({"order_id": "#W1", "reason": "a"}) == {
        "order_id": "#W1",
        "reason": "a",
        "notify": True,
    }


async def test_call_passes_context_and_runs_sync_function() -> None:
    ctx = ToolContext(
        session_id="s1", step=1, call_id="c", idempotency_key="k", user_id=None, vars={}
    )
    assert await cancel_order(ctx, {"order_id": "#W1", "reason": "b"}) == "#W1:b:True:s1"


def test_definition_errors_are_actionable() -> None:
    with pytest.raises(ToolDefinitionError, match="no type hint"):

        @tool
        def untyped(x):  # type: ignore[no-untyped-def]
            """Doc."""

    with pytest.raises(ToolDefinitionError, match="no docstring"):

        @tool
        def undocumented(x: int) -> None:
            pass

    with pytest.raises(ToolDefinitionError, match=r"\*args"):

        @tool
        def variadic(*xs: int) -> None:
            """Doc."""


def test_max_output_chars_defaults_and_is_validated() -> None:
    assert cancel_order.max_output_chars == DEFAULT_MAX_OUTPUT_CHARS == 20_000

    @tool(max_output_chars=500)
    def short(x: int) -> str:
        """Say little."""
        return "x"

    assert short.max_output_chars == 500
    bad_values: tuple[Any, ...] = (0, -1, 1.5, True)
    for bad in bad_values:
        with pytest.raises(ConfigError, match="max_output_chars must be a positive whole number"):
            tool(max_output_chars=bad)


class RecordingExecutor:
    """An :class:`Executor` that runs the function inline and notes what it ran."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, dict[str, Any]]] = []

    async def run(self, fn: Callable[..., Any], /, **kwargs: Any) -> Any:
        self.ran.append((fn.__name__, {k: v for k, v in kwargs.items() if k != "ctx"}))
        return fn(**kwargs)


async def test_plain_functions_run_on_the_executor_when_given_one() -> None:
    ctx = ToolContext(
        session_id="s1", step=1, call_id="c", idempotency_key="k", user_id=None, vars={}
    )
    executor = RecordingExecutor()
    checked: Executor = executor  # the runtime's ToolExecutor fits the same Protocol
    result = await cancel_order(ctx, {"order_id": "#W1", "reason": "a"}, executor=checked)
    assert result == "#W1:a:True:s1"
    assert executor.ran == [("cancel_order", {"order_id": "#W1", "reason": "a", "notify": True})]

    @tool
    async def coroutine(x: int) -> int:
        """Async: runs on the loop, never on the executor."""
        return x

    assert await coroutine(ctx, {"x": 3}, executor=executor) == 3
    assert len(executor.ran) == 1


async def test_without_an_executor_plain_functions_use_the_loops_default_pool() -> None:
    @tool
    def where() -> str:
        """Name the thread it runs on."""
        return threading.current_thread().name

    ctx = ToolContext(
        session_id="s1", step=1, call_id="c", idempotency_key="k", user_id=None, vars={}
    )
    name = await where(ctx, {})
    assert name != threading.current_thread().name
    assert not name.startswith("tether-tool")
