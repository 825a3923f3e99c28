"""@tool derives a JSON Schema from hints and docstrings, and validates calls."""

from __future__ import annotations

from typing import Literal

import pydantic
import pytest

from tether import Tool, ToolContext, tool
from tether.exceptions import ToolDefinitionError


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
