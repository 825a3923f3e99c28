"""OpenAIModel against the real ``openai`` SDK, with HTTP mocked by respx.

The SDK sends through ``httpx2``/``httpcore2``, not ``httpx``; the ``http``
fixture (``conftest.py``) points respx at that stack, so every request below
is built, sent and decoded by the real SDK client that ``OpenAIModel``
creates, and no socket is opened.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx

from tether.exceptions import ConfigError, ModelTimeout, ProviderError
from tether.providers.openai import OpenAIModel
from tether.spec.messages import Message, ToolCall, ToolResult, Usage
from tether.spec.model import ModelRequest, ModelResponse, TextDelta, ToolSpec

from .conftest import sent_json, sse

URL = "https://api.openai.com/v1/chat/completions"
KEY = "sk-proj-test-0123456789abcdef"
MODEL = "gpt-test"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OPENAI_CUSTOM_HEADERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


@pytest.fixture
async def model() -> AsyncIterator[OpenAIModel]:
    async with OpenAIModel(MODEL) as m:
        yield m


def request(*messages: Message, **kwargs: Any) -> ModelRequest:
    return ModelRequest(
        system=kwargs.pop("system", "You are terse."),
        messages=messages or (Message.user("hi"),),
        **kwargs,
    )


async def collect(model: OpenAIModel, req: ModelRequest) -> tuple[list[str], ModelResponse]:
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


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> Any:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return (
        None,
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": MODEL,
            "choices": choices,
            **extra,
        },
    )


def usage_chunk(prompt: int, completion: int, cached: int = 0) -> Any:
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }
    return chunk(None, usage=usage)


def stream_response(events: list[Any]) -> httpx.Response:
    body = sse([*events, (None, "[DONE]")])
    return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})


TEXT_EVENTS = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Your order "}),
    chunk({"content": "has "}),
    chunk({"content": "shipped."}),
    chunk({}, finish="stop"),
    usage_chunk(20, 7),
]


async def test_text_streams_as_deltas_then_one_response(
    http: respx.MockRouter, model: OpenAIModel
) -> None:
    http.post(URL).mock(return_value=stream_response(TEXT_EVENTS))

    deltas, response = await collect(model, request())

    assert deltas == ["Your order ", "has ", "shipped."]
    assert response.message == Message(
        role="assistant", text="Your order has shipped.", model="openai:gpt-test"
    )
    assert response.model == model.name == "openai:gpt-test"
    assert response.stop_reason == "end"
    assert response.usage == Usage(input_tokens=20, output_tokens=7)


def _call_start(index: int, call_id: str, name: str) -> dict[str, Any]:
    function = {"name": name, "arguments": ""}
    return {"index": index, "id": call_id, "type": "function", "function": function}


def _call_args(index: int, arguments: str) -> dict[str, Any]:
    return {"index": index, "function": {"arguments": arguments}}


async def test_parallel_tool_calls_assemble_by_index(
    http: respx.MockRouter, model: OpenAIModel
) -> None:
    events = [
        chunk(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [_call_start(0, "call_A", "get_order")],
            }
        ),
        chunk({"tool_calls": [_call_args(0, '{"order_')]}),
        chunk({"tool_calls": [_call_start(1, "call_B", "get_user")]}),
        chunk({"tool_calls": [_call_args(1, '{"user_id": "u')]}),
        chunk({"tool_calls": [_call_args(0, 'id": "#W1"}')]}),
        chunk({"tool_calls": [_call_args(1, '42", "full": false}')]}),
        chunk({}, finish="tool_calls"),
        usage_chunk(1000, 30, cached=768),
    ]
    http.post(URL).mock(return_value=stream_response(events))

    deltas, response = await collect(model, request())

    assert deltas == []
    assert response.message.text == ""
    assert response.message.tool_calls == (
        ToolCall("call_A", "get_order", {"order_id": "#W1"}),
        ToolCall("call_B", "get_user", {"user_id": "u42", "full": False}),
    )
    assert response.stop_reason == "tool_use"
    assert response.usage == Usage(input_tokens=232, output_tokens=30, cache_read_tokens=768)


async def test_invalid_tool_json_is_kept_for_the_validator(
    http: respx.MockRouter, model: OpenAIModel
) -> None:
    events = [
        chunk({"tool_calls": [_call_start(0, "call_X", "get_order")]}),
        chunk({"tool_calls": [_call_args(0, '{"order_id": "#W')]}),
        chunk({}, finish="length"),
        usage_chunk(10, 1024),
    ]
    http.post(URL).mock(return_value=stream_response(events))

    _, response = await collect(model, request())

    (call,) = response.message.tool_calls
    assert call == ToolCall("call_X", "get_order", {"__invalid_json__": '{"order_id": "#W'})
    assert response.stop_reason == "max_tokens"


async def test_request_body_maps_system_tools_and_conversation(
    http: respx.MockRouter, model: OpenAIModel
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
            "",
            [
                ToolCall("call_a", "get_order", {"order_id": "#W1"}),
                ToolCall("call_b", "get_order", {"order_id": "#W2"}),
            ],
        ),
        Message(
            role="tool",
            results=(
                ToolResult("call_a", "get_order", '{"status": "shipped"}'),
                ToolResult("call_b", "get_order", "order service timed out", is_error=True),
            ),
        ),
        Message.user("And the second one?"),
    )
    req = request(
        *conversation,
        system="SYSTEM PROMPT",
        tools=(ToolSpec("get_order", "Look up one order.", schema),),
        max_tokens=321,
        temperature=0.0,
    )

    await collect(model, req)

    body = sent_json(route)
    assert body["model"] == MODEL
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_completion_tokens"] == 321  # OpenAI's own API: the non-deprecated name
    assert "max_tokens" not in body
    assert body["temperature"] == 0.0
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_order",
                "description": "Look up one order.",
                "parameters": schema,
            },
        }
    ]
    assert body["messages"] == [
        {"role": "system", "content": "SYSTEM PROMPT"},
        {"role": "user", "content": "Where are my orders?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_order", "arguments": '{"order_id": "#W1"}'},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "get_order", "arguments": '{"order_id": "#W2"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": '{"status": "shipped"}'},
        {"role": "tool", "tool_call_id": "call_b", "content": "[error] order service timed out"},
        {"role": "user", "content": "And the second one?"},
    ]
    sent = route.calls.last.request
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["x-stainless-retry-count"] == "0"


async def test_temperature_is_not_sent_when_none(
    http: respx.MockRouter, model: OpenAIModel
) -> None:
    route = http.post(URL).mock(return_value=stream_response(TEXT_EVENTS))

    await collect(model, request())

    assert "temperature" not in sent_json(route)


@pytest.mark.parametrize("choice", ["auto", "required", "none"])
async def test_tool_choice_maps_to_the_api(
    http: respx.MockRouter, model: OpenAIModel, choice: str
) -> None:
    route = http.post(URL).mock(return_value=stream_response(TEXT_EVENTS))
    spec = ToolSpec("get_order", "Look up one order.", {"type": "object", "properties": {}})

    await collect(model, request(tools=(spec,), tool_choice=choice))

    expected = {"required": "required", "none": "none"}
    body = sent_json(route)
    if choice == "auto":
        assert "tool_choice" not in body  # the API's own default
    else:
        assert body["tool_choice"] == expected[choice]


async def test_base_url_reaches_a_compatible_server_without_a_key(
    http: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    route = http.post("http://localhost:8000/v1/chat/completions").mock(
        return_value=stream_response(TEXT_EVENTS)
    )

    async with OpenAIModel("qwen2.5", base_url="http://localhost:8000/v1") as model:
        _, response = await collect(model, request())

    assert response.message.text == "Your order has shipped."
    assert response.model == "openai:qwen2.5"
    sent = route.calls.last.request
    assert sent.headers["authorization"] == "Bearer not-needed"
    body = sent_json(route)
    assert body["max_tokens"] == 1024  # what every compatible server understands
    assert "max_completion_tokens" not in body


async def test_base_url_from_the_environment(
    http: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://ollama.internal:11434/v1")
    route = http.post("http://ollama.internal:11434/v1/chat/completions").mock(
        return_value=stream_response(TEXT_EVENTS)
    )

    async with OpenAIModel("llama3.2") as model:
        await collect(model, request())

    assert route.call_count == 1


async def test_compatible_server_saying_stop_after_tool_calls(
    http: respx.MockRouter,
) -> None:
    events = [  # no call id, no [DONE]-time usage: as some local servers stream it
        chunk({"tool_calls": [{"index": 0, "function": {"name": "ping", "arguments": "{}"}}]}),
        chunk({}, finish="stop"),
    ]
    http.post("http://localhost:8080/v1/chat/completions").mock(
        return_value=stream_response(events)
    )

    async with OpenAIModel("local", base_url="http://localhost:8080/v1") as model:
        _, response = await collect(model, request())

    (call,) = response.message.tool_calls
    assert (call.name, call.arguments) == ("ping", {})
    assert call.id.startswith("call_")
    assert response.stop_reason == "tool_use"
    assert response.usage == Usage()


@pytest.mark.parametrize(
    ("status", "headers", "retryable", "retry_after"),
    [
        (429, {"retry-after": "7"}, True, 7.0),
        (429, {"retry-after-ms": "250"}, True, 0.25),
        (503, {}, True, None),
        (500, {}, True, None),
        (529, {}, True, None),
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
    model: OpenAIModel,
    status: int,
    headers: dict[str, str],
    retryable: bool,
    retry_after: float | None,
) -> None:
    body = {"error": {"message": "the API's reason", "type": "some_error", "code": None}}
    route = http.post(URL).mock(return_value=httpx.Response(status, json=body, headers=headers))

    with pytest.raises(ProviderError) as caught:
        await collect(model, request())

    error = caught.value
    assert not isinstance(error, ModelTimeout)
    assert (error.status, error.retryable, error.retry_after) == (status, retryable, retry_after)
    assert (error.provider, error.model) == ("openai", MODEL)
    assert "the API's reason" in str(error)
    assert route.call_count == 1  # the SDK did not retry


async def test_401_says_which_key_to_check_and_never_shows_it(
    http: respx.MockRouter, model: OpenAIModel
) -> None:
    masked = KEY[:8] + "*" * 10 + KEY[-4:]  # OpenAI echoes a masked key
    body = {"error": {"message": f"Incorrect API key provided: {masked}. Also {KEY}."}}
    http.post(URL).mock(return_value=httpx.Response(401, json=body))

    with pytest.raises(ProviderError) as caught:
        await collect(model, request())

    message = str(caught.value)
    assert "OPENAI_API_KEY" in message
    assert KEY not in message
    assert masked not in message
    assert "sk-proj" not in message


async def test_timeout_maps_to_model_timeout(http: respx.MockRouter, model: OpenAIModel) -> None:
    route = http.post(URL).mock(side_effect=httpx.ReadTimeout)

    with pytest.raises(ModelTimeout) as caught:
        await collect(model, request())

    assert caught.value.retryable
    assert route.call_count == 1


async def test_connection_refused_names_the_server(http: respx.MockRouter) -> None:
    http.post("http://localhost:9/v1/chat/completions").mock(side_effect=httpx.ConnectError)

    async with OpenAIModel("m", base_url="http://localhost:9/v1") as model:
        with pytest.raises(ProviderError) as caught:
            await collect(model, request())

    assert caught.value.retryable
    assert not isinstance(caught.value, ModelTimeout)
    assert "http://localhost:9/v1" in str(caught.value)


async def test_error_object_inside_the_stream(http: respx.MockRouter, model: OpenAIModel) -> None:
    events = [
        chunk({"content": "Hel"}),
        (None, {"error": {"message": "The server had an error", "type": "server_error"}}),
    ]
    http.post(URL).mock(return_value=stream_response(events))

    with pytest.raises(ProviderError) as caught:
        await collect(model, request())

    assert caught.value.retryable
    assert caught.value.status == 500
    assert "The server had an error" in str(caught.value)


async def test_stream_without_finish_reason_is_retryable(
    http: respx.MockRouter, model: OpenAIModel
) -> None:
    http.post(URL).mock(return_value=stream_response(TEXT_EVENTS[:3]))

    with pytest.raises(ProviderError) as caught:
        await collect(model, request())

    assert caught.value.retryable


async def test_missing_key_is_a_config_error_at_first_call(
    http: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    model = OpenAIModel(MODEL)  # constructing never fails

    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        await collect(model, request())
    assert not http.calls
