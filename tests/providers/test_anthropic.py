"""AnthropicModel against the real ``anthropic`` SDK, with HTTP mocked by respx.

The SDK sends through ``httpx2``/``httpcore2``, not ``httpx``; the ``http``
fixture (``conftest.py``) points respx at that stack, so every request below
is built, sent and decoded by the real SDK client that ``AnthropicModel``
creates, and no socket is opened.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpcore2
import httpx
import pytest
import respx

from tether.exceptions import ConfigError, ModelTimeout, ProviderError
from tether.providers.anthropic import AnthropicModel
from tether.spec.messages import Message, ToolCall, ToolResult, Usage
from tether.spec.model import ModelRequest, ModelResponse, TextDelta, ToolSpec

from .conftest import sent_json, sse

URL = "https://api.anthropic.com/v1/messages"
KEY = "sk-ant-test-0123456789abcdef"
MODEL = "claude-test-1"


@pytest.fixture
async def model(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AnthropicModel]:
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    async with AnthropicModel(MODEL) as m:
        yield m


def request(*messages: Message, **kwargs: Any) -> ModelRequest:
    return ModelRequest(
        system=kwargs.pop("system", "You are terse."),
        messages=messages or (Message.user("hi"),),
        **kwargs,
    )


async def collect(model: AnthropicModel, req: ModelRequest) -> tuple[list[str], ModelResponse]:
    deltas: list[str] = []
    final: list[ModelResponse] = []
    async for event in model.stream(req):
        if isinstance(event, TextDelta):
            assert not final, "text arrived after the final response"
            deltas.append(event.text)
        else:
            final.append(event)
    assert len(final) == 1
    return deltas, final[0]


def message_start(input_tokens: int = 25, cache_read: int = 0, cache_write: int = 0) -> Any:
    return (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_01",
                "type": "message",
                "role": "assistant",
                "model": MODEL,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": input_tokens,
                    "cache_creation_input_tokens": cache_write,
                    "cache_read_input_tokens": cache_read,
                    "output_tokens": 1,
                },
            },
        },
    )


def block_start(index: int, block: dict[str, Any]) -> Any:
    return (
        "content_block_start",
        {"type": "content_block_start", "index": index, "content_block": block},
    )


def text_delta(index: int, text: str) -> Any:
    return (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "text_delta", "text": text},
        },
    )


def json_delta(index: int, partial: str) -> Any:
    delta = {"type": "input_json_delta", "partial_json": partial}
    return ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


def block_stop(index: int) -> Any:
    return ("content_block_stop", {"type": "content_block_stop", "index": index})


def message_end(stop_reason: str, output_tokens: int) -> list[Any]:
    return [
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


def stream_response(events: list[Any]) -> httpx.Response:
    return httpx.Response(200, content=sse(events), headers={"content-type": "text/event-stream"})


TEXT_EVENTS = [
    message_start(),
    block_start(0, {"type": "text", "text": ""}),
    ("ping", {"type": "ping"}),
    text_delta(0, "Your order "),
    text_delta(0, "has "),
    text_delta(0, "shipped."),
    block_stop(0),
    *message_end("end_turn", 12),
]


async def test_text_streams_as_deltas_then_one_response(
    http: respx.MockRouter, model: AnthropicModel
) -> None:
    http.post(URL).mock(return_value=stream_response(TEXT_EVENTS))

    deltas, response = await collect(model, request())

    assert deltas == ["Your order ", "has ", "shipped."]
    assert response.message == Message(
        role="assistant", text="Your order has shipped.", model="anthropic:claude-test-1"
    )
    assert response.model == model.name == "anthropic:claude-test-1"
    assert response.stop_reason == "end"
    assert response.usage == Usage(input_tokens=25, output_tokens=12)


async def test_tool_use_input_is_assembled_from_json_deltas(
    http: respx.MockRouter, model: AnthropicModel
) -> None:
    events = [
        message_start(input_tokens=40, cache_read=1200, cache_write=300),
        block_start(0, {"type": "text", "text": ""}),
        text_delta(0, "Let me check."),
        block_stop(0),
        block_start(1, {"type": "tool_use", "id": "toolu_01", "name": "get_order", "input": {}}),
        json_delta(1, ""),
        json_delta(1, '{"order_id": "#W1'),
        json_delta(1, '23", "fields": ["sta'),
        json_delta(1, 'tus", "items"], "verbose": true}'),
        block_stop(1),
        block_start(2, {"type": "tool_use", "id": "toolu_02", "name": "list_orders", "input": {}}),
        block_stop(2),
        *message_end("tool_use", 57),
    ]
    http.post(URL).mock(return_value=stream_response(events))

    deltas, response = await collect(model, request())

    assert deltas == ["Let me check."]
    assert response.message.text == "Let me check."
    assert response.message.tool_calls == (
        ToolCall(
            "toolu_01",
            "get_order",
            {"order_id": "#W123", "fields": ["status", "items"], "verbose": True},
        ),
        ToolCall("toolu_02", "list_orders", {}),
    )
    assert response.stop_reason == "tool_use"
    assert response.usage == Usage(
        input_tokens=40, output_tokens=57, cache_read_tokens=1200, cache_write_tokens=300
    )


async def test_invalid_tool_json_is_kept_for_the_validator(
    http: respx.MockRouter, model: AnthropicModel
) -> None:
    events = [
        message_start(),
        block_start(0, {"type": "tool_use", "id": "toolu_9", "name": "get_order", "input": {}}),
        json_delta(0, '{"order_id": '),
        json_delta(0, '"#W1"'),
        block_stop(0),
        *message_end("max_tokens", 1024),
    ]
    http.post(URL).mock(return_value=stream_response(events))

    _, response = await collect(model, request())

    (call,) = response.message.tool_calls
    assert call.arguments == {"__invalid_json__": '{"order_id": "#W1"'}
    assert response.stop_reason == "max_tokens"


async def test_request_body_maps_system_tools_and_conversation(
    http: respx.MockRouter, model: AnthropicModel
) -> None:
    route = http.post(URL).mock(return_value=stream_response(TEXT_EVENTS))
    schema = {
        "type": "object",
        "properties": {"order_id": {"type": "string"}},
        "required": ["order_id"],
    }
    conversation = (
        Message.user("Where are my orders?"),
        Message.assistant(
            "Checking both.",
            [
                ToolCall("toolu_a", "get_order", {"order_id": "#W1"}),
                ToolCall("toolu_b", "get_order", {"order_id": "#W2"}),
            ],
        ),
        Message(
            role="tool",
            results=(
                ToolResult("toolu_a", "get_order", '{"status": "shipped"}'),
                ToolResult("toolu_b", "get_order", "order service timed out", is_error=True),
            ),
        ),
        Message.user("And the second one?"),
    )
    req = request(
        *conversation,
        system="SYSTEM PROMPT",
        tools=(ToolSpec("get_order", "Look up one order.", schema),),
        max_tokens=321,
    )

    await collect(model, req)

    body = sent_json(route)
    assert body["model"] == MODEL
    assert body["max_tokens"] == 321
    assert body["stream"] is True
    assert body["system"] == "SYSTEM PROMPT"
    assert "temperature" not in body
    assert body["tools"] == [
        {"name": "get_order", "description": "Look up one order.", "input_schema": schema}
    ]
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Where are my orders?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking both."},
                {
                    "type": "tool_use",
                    "id": "toolu_a",
                    "name": "get_order",
                    "input": {"order_id": "#W1"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_b",
                    "name": "get_order",
                    "input": {"order_id": "#W2"},
                },
            ],
        },
        {  # the tool results and the next user turn merge into one user message
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_a",
                    "content": '{"status": "shipped"}',
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_b",
                    "content": "order service timed out",
                    "is_error": True,
                },
                {"type": "text", "text": "And the second one?"},
            ],
        },
    ]
    sent = route.calls.last.request
    assert sent.headers["authorization"] == f"Bearer {KEY}"  # this SDK sends keys as Bearer
    assert sent.headers["x-stainless-retry-count"] == "0"


async def test_temperature_is_sent_only_when_set(
    http: respx.MockRouter, model: AnthropicModel
) -> None:
    route = http.post(URL).mock(return_value=stream_response(TEXT_EVENTS))

    await collect(model, request(temperature=0.2))

    assert sent_json(route)["temperature"] == 0.2


@pytest.mark.parametrize("choice", ["auto", "required", "none"])
async def test_tool_choice_maps_to_the_api(
    http: respx.MockRouter, model: AnthropicModel, choice: str
) -> None:
    route = http.post(URL).mock(return_value=stream_response(TEXT_EVENTS))
    spec = ToolSpec("get_order", "Look up one order.", {"type": "object", "properties": {}})

    await collect(model, request(tools=(spec,), tool_choice=choice))

    expected = {"required": {"type": "any"}, "none": {"type": "none"}}
    body = sent_json(route)
    if choice == "auto":
        assert "tool_choice" not in body  # the API's own default
    else:
        assert body["tool_choice"] == expected[choice]


def _http_date(seconds_from_now: int) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds_from_now), usegmt=True)


@pytest.mark.parametrize(
    ("status", "headers", "retryable", "retry_after"),
    [
        (429, {"retry-after": "7"}, True, 7.0),
        (429, {"retry-after-ms": "1500", "retry-after": "2"}, True, 1.5),
        (529, {}, True, None),
        (503, {}, True, None),
        (500, {}, True, None),
        (408, {}, True, None),
        (409, {}, True, None),
        (400, {}, False, None),
        (401, {}, False, None),
        (403, {}, False, None),
        (404, {}, False, None),
        (422, {}, False, None),
    ],
)
async def test_http_errors_map_to_provider_error_without_sdk_retries(
    http: respx.MockRouter,
    model: AnthropicModel,
    status: int,
    headers: dict[str, str],
    retryable: bool,
    retry_after: float | None,
) -> None:
    body = {"type": "error", "error": {"type": "some_error", "message": "the API's reason"}}
    route = http.post(URL).mock(return_value=httpx.Response(status, json=body, headers=headers))

    with pytest.raises(ProviderError) as caught:
        await collect(model, request())

    error = caught.value
    assert not isinstance(error, ModelTimeout)
    assert (error.status, error.retryable, error.retry_after) == (status, retryable, retry_after)
    assert (error.provider, error.model) == ("anthropic", MODEL)
    assert "the API's reason" in str(error)
    assert KEY not in str(error)
    assert route.call_count == 1  # the SDK did not retry


async def test_retry_after_as_http_date(http: respx.MockRouter, model: AnthropicModel) -> None:
    http.post(URL).mock(return_value=httpx.Response(429, headers={"retry-after": _http_date(30)}))

    with pytest.raises(ProviderError) as caught:
        await collect(model, request())

    assert caught.value.retry_after is not None
    assert 0 < caught.value.retry_after <= 30


async def test_401_says_which_key_to_check_and_never_shows_it(
    http: respx.MockRouter, model: AnthropicModel
) -> None:
    body = {"type": "error", "error": {"type": "authentication_error", "message": f"bad key {KEY}"}}
    http.post(URL).mock(return_value=httpx.Response(401, json=body))

    with pytest.raises(ProviderError) as caught:
        await collect(model, request())

    assert "ANTHROPIC_API_KEY" in str(caught.value)
    assert KEY not in str(caught.value)
    assert KEY[:12] not in str(caught.value)


async def test_timeout_maps_to_model_timeout(http: respx.MockRouter, model: AnthropicModel) -> None:
    route = http.post(URL).mock(side_effect=httpx.ReadTimeout)

    with pytest.raises(ModelTimeout) as caught:
        await collect(model, request())

    assert caught.value.retryable
    assert route.call_count == 1


async def test_timeout_in_the_middle_of_the_stream_maps_to_model_timeout(
    http: respx.MockRouter, model: AnthropicModel
) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield sse([message_start(), block_start(0, {"type": "text", "text": ""})])
        yield sse([text_delta(0, "Half an ans")])
        raise httpcore2.ReadTimeout("read timed out")

    http.post(URL).mock(return_value=httpx.Response(200, content=body()))

    deltas: list[str] = []

    async def consume() -> None:
        async for event in model.stream(request()):
            assert isinstance(event, TextDelta)
            deltas.append(event.text)

    with pytest.raises(ModelTimeout):
        await consume()
    assert deltas == ["Half an ans"]


async def test_connection_error_is_retryable(http: respx.MockRouter, model: AnthropicModel) -> None:
    route = http.post(URL).mock(side_effect=httpx.ConnectError)

    with pytest.raises(ProviderError) as caught:
        await collect(model, request())

    assert caught.value.retryable
    assert caught.value.status is None
    assert not isinstance(caught.value, ModelTimeout)
    assert route.call_count == 1


async def test_error_event_inside_the_stream(http: respx.MockRouter, model: AnthropicModel) -> None:
    events = [
        message_start(),
        (
            "error",
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        ),
    ]
    http.post(URL).mock(return_value=stream_response(events))

    with pytest.raises(ProviderError) as caught:
        await collect(model, request())

    assert (caught.value.status, caught.value.retryable) == (529, True)
    assert "Overloaded" in str(caught.value)


async def test_stream_cut_before_message_stop_is_retryable(
    http: respx.MockRouter, model: AnthropicModel
) -> None:
    http.post(URL).mock(return_value=stream_response(TEXT_EVENTS[:-2]))

    with pytest.raises(ProviderError) as caught:
        await collect(model, request())

    assert caught.value.retryable


async def test_missing_key_is_a_config_error_at_first_call(
    http: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    model = AnthropicModel(MODEL)  # constructing never fails

    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        await collect(model, request())
    assert not http.calls


async def test_explicit_key_and_base_url(
    http: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    route = http.post("https://proxy.internal/anthropic/v1/messages").mock(
        return_value=stream_response(TEXT_EVENTS)
    )

    async with AnthropicModel(
        MODEL, api_key="sk-ant-explicit-key", base_url="https://proxy.internal/anthropic"
    ) as model:
        await collect(model, request())

    assert route.calls.last.request.headers["authorization"] == "Bearer sk-ant-explicit-key"
