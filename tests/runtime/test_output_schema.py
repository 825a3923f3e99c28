"""Structured final answers: checked against the output schema, re-asked a bounded time."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from tether import Agent
from tether.exceptions import ConfigError
from tether.runtime import Runtime, SessionStatus
from tether.runtime.output import parse_output
from tether.spec.events import EventType
from tether.testing import ScriptedModel

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"order_id": {"type": "string"}, "refund": {"type": "number", "minimum": 0}},
    "required": ["order_id", "refund"],
    "additionalProperties": False,
}


class Refund(pydantic.BaseModel):
    order_id: str
    refund: float


def agent(model: ScriptedModel, schema: Any = SCHEMA, retries: int = 2) -> Agent:
    return Agent(
        name="refunds",
        instructions="Answer with JSON.",
        models=(model,),
        output_schema=schema,
        output_retries=retries,
        clarify=False,
    )


async def test_a_valid_answer_is_parsed() -> None:
    model = ScriptedModel(['```json\n{"order_id": "#W1", "refund": 12.5}\n```'])
    async with Runtime() as rt:
        result = await rt.run(agent(model), "refund?")
    assert result.data == {"order_id": "#W1", "refund": 12.5}
    assert result.status == SessionStatus.IDLE


async def test_a_wrong_answer_is_sent_back_with_the_errors_then_accepted() -> None:
    model = ScriptedModel(
        [
            "Sure! The refund is $12.50.",
            '{"order_id": "#W1", "refund": -3}',
            '{"order_id": "#W1", "refund": 12.5}',
        ]
    )
    async with Runtime() as rt:
        result = await rt.run(agent(model), "refund?")
        state = await rt.load(result.session_id)
    assert result.data == {"order_id": "#W1", "refund": 12.5}
    reasks = [e.data for e in result.events if e.type == EventType.OUTPUT_REASK]
    assert [r["attempt"] for r in reasks] == [1, 2]
    assert "not JSON" in reasks[0]["errors"][0]
    assert reasks[1]["errors"] == ["refund: -3 is less than the minimum of 0"]
    # the model saw the runtime's message, with the schema, after its wrong answer
    note = model.requests[1].messages[-1]
    assert note.role == "user"
    assert note.text.startswith("[Tether runtime] Your answer does not match")
    assert '"required": ["order_id", "refund"]' in note.text
    # and the re-asks are in the stored conversation, so a resume sees them
    assert [m.role for m in state.messages] == ["user", "assistant", "user", "assistant", "user",
                                                "assistant"]  # fmt: skip


async def test_after_the_retries_the_turn_fails_with_the_errors() -> None:
    model = ScriptedModel(["nope", "still nope"])
    async with Runtime() as rt:
        result = await rt.run(agent(model, retries=1), "refund?")
    assert result.status == SessionStatus.FAILED
    assert result.error is not None
    assert "did not match the output schema after 2 tries" in result.error
    model.assert_all_used()


async def test_a_pydantic_model_as_the_schema() -> None:
    model = ScriptedModel(['{"order_id": "#W1"}', '{"order_id": "#W1", "refund": "7"}'])
    async with Runtime() as rt:
        result = await rt.run(agent(model, schema=Refund), "refund?")
    assert result.data == Refund(order_id="#W1", refund=7.0)
    (reask,) = [e.data for e in result.events if e.type == EventType.OUTPUT_REASK]
    assert reask["errors"] == ["refund: Field required"]


def test_parse_output_reports_paths() -> None:
    value, errors = parse_output('{"order_id": 3, "refund": 1, "x": 1}', SCHEMA)
    assert value is None
    assert errors == [
        "(root): Additional properties are not allowed ('x' was unexpected)",
        "order_id: 3 is not of type 'string'",
    ]


def test_a_bad_schema_argument_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="output_schema"):
        Agent(name="a", instructions="x", output_schema="{}")


# --- context variables: a data block, never the system prompt ---------------------


async def test_context_goes_into_a_data_block_and_is_merged_across_turns() -> None:
    model = ScriptedModel(["Hello Ava.", "Still gold."])
    plain = Agent(name="ctx", instructions="Greet.", models=(model,), clarify=False)
    async with Runtime() as rt:
        first = await rt.run(plain, "hi", context={"name": "Ava", "plan": "gold"})
        await rt.run(plain, "my plan?", session_id=first.session_id, context={"locale": "fr"})
        state = await rt.load(first.session_id)
    one, two = model.requests
    assert one.system == two.system  # the system prompt never carries session data
    assert "Ava" not in one.system
    block = two.messages[0]
    assert block.role == "user"
    assert block.text.startswith("<session-data>")
    assert '"locale": "fr"' in block.text
    assert '"plan": "gold"' in block.text
    assert state.context == {"name": "Ava", "plan": "gold", "locale": "fr"}
    # the block is built per request, not stored as a message
    assert all("<session-data>" not in m.text for m in state.messages)
