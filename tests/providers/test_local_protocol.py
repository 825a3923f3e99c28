"""The ``local`` provider without llama.cpp: JSON protocol, streaming, errors, timeouts.

A fake ``xllamacpp`` module replays scripted server chunks (the shapes the
real server sends, see ``test_local_model.py`` for the real thing), so the
provider's own logic is tested in milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tether.exceptions import ConfigError, ModelTimeout, ProviderError
from tether.providers._local_protocol import (
    AnswerDecoder,
    render_messages,
    reply_schema,
    tool_specs,
)
from tether.providers.local import LocalModel
from tether.spec.messages import Message, ToolCall, ToolResult
from tether.spec.model import ModelRequest, ModelResponse, TextDelta, ToolSpec

ORDER_TOOL = ToolSpec(
    "get_order_details",
    "Look up an order.",
    {
        "type": "object",
        "properties": {"order_id": {"type": "string", "description": "Like #W1"}},
        "required": ["order_id"],
    },
)
WAIT_FOR_STOP: dict[str, Any] = {}
Script = Callable[[dict[str, Any]], Iterator[dict[str, Any]]]


def delta(text: str, finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}


def end(finish: str = "stop", prompt: int = 10, cached: int = 4, out: int = 2) -> dict[str, Any]:
    return {
        "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": out,
            "prompt_tokens_details": {"cached_tokens": cached},
        },
    }


def pieces(text: str, size: int = 1) -> list[dict[str, Any]]:
    return [delta(text[i : i + size]) for i in range(0, len(text), size)]


class FakeServer:
    instances: list[FakeServer] = []  # noqa: RUF012 - test bookkeeping

    def __init__(self, params: Any) -> None:
        self.params = params
        self.bodies: list[dict[str, Any]] = []
        self.script: Script = lambda body: iter([delta("ok"), end()])
        self.stopped = threading.Event()
        FakeServer.instances.append(self)

    def handle_chat_completions(self, body: dict[str, Any], callback: Any) -> None:
        self.bodies.append(body)
        for chunk in self.script(body):
            if chunk is WAIT_FOR_STOP:  # like slow generation: keep going until told to stop
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    if callback({"choices": []}):
                        self.stopped.set()
                        return
                    time.sleep(0.01)
                continue
            if callback(chunk):
                self.stopped.set()
                return


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    FakeServer.instances = []
    module = types.ModuleType("xllamacpp")

    def params() -> Any:
        ns = types.SimpleNamespace
        return ns(model=ns(path=""), cpuparams=ns(n_threads=0), cpuparams_batch=ns(n_threads=0))

    def to_grammar(schema: Any) -> str:
        if "$ref" in json.dumps(schema):
            raise ValueError("cannot resolve $ref")
        return "root ::= ..."

    module.CommonParams = params  # type: ignore[attr-defined]
    module.Server = FakeServer  # type: ignore[attr-defined]
    module.json_schema_to_grammar = to_grammar  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "xllamacpp", module)
    return module


@pytest.fixture
def gguf_file(tmp_path: Path) -> str:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF\x03\x00\x00\x00")
    return str(path)


async def run(model: LocalModel, request: ModelRequest) -> tuple[list[str], ModelResponse]:
    texts: list[str] = []
    async for event in model.stream(request):
        if isinstance(event, TextDelta):
            texts.append(event.text)
        else:
            return texts, event
    raise AssertionError("no ModelResponse")


def ask(text: str = "hi", tools: tuple[ToolSpec, ...] = (), **kw: Any) -> ModelRequest:
    return ModelRequest(system="Be brief.", messages=(Message.user(text),), tools=tools, **kw)


async def test_plain_text_streams_and_reports_usage(fake: Any, gguf_file: str) -> None:
    model = LocalModel(gguf_file, env={})
    texts, response = await run(model, ask(max_tokens=33))
    assert texts == ["ok"]
    assert response.message.text == "ok"
    assert response.message.model == response.model == f"local:{gguf_file}"
    assert response.stop_reason == "end"
    assert response.usage.input_tokens == 6  # prompt tokens not served from the KV cache
    assert response.usage.cache_read_tokens == 4
    assert response.usage.output_tokens == 2
    body = FakeServer.instances[0].bodies[0]
    assert body["max_tokens"] == 33
    assert body["temperature"] == 0.0  # None means greedy
    assert "response_format" not in body
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}


async def test_tool_call_is_detected_then_generated_under_the_schema(
    fake: Any, gguf_file: str
) -> None:
    reply = '{"name": "get_order_details", "arguments": {"order_id": "#W1"}}'
    probe_ran_on = threading.Event()

    def script(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if "response_format" not in body:  # the free pass: stopped after its first piece
            yield from [delta(reply[:5]), WAIT_FOR_STOP]
            probe_ran_on.set()  # pragma: no cover - only reached if not stopped
            yield from pieces(reply[5:])  # pragma: no cover
        else:
            yield from [*pieces(reply, 5), end()]

    model = LocalModel(gguf_file, env={})
    await model._loaded()
    server = FakeServer.instances[0]
    server.script = script
    texts, response = await run(model, ask("where is #W1?", tools=(ORDER_TOOL,)))
    assert texts == []
    assert response.stop_reason == "tool_use"
    (call,) = response.message.tool_calls
    assert (call.name, call.arguments) == ("get_order_details", {"order_id": "#W1"})
    assert call.id.startswith("call_")
    assert await asyncio.to_thread(server.stopped.wait, 5)  # the free pass was stopped
    assert not probe_ran_on.is_set()
    probe, constrained = server.bodies
    assert probe["tools"] == constrained["tools"] == tool_specs((ORDER_TOOL,))
    assert probe["messages"] == constrained["messages"]  # same prompt: the KV cache is reused
    assert probe["messages"][0] == {"role": "system", "content": "Be brief."}
    schema = constrained["response_format"]["json_schema"]["schema"]
    assert schema == reply_schema((ORDER_TOOL,), answer=False)
    assert schema["oneOf"][0]["properties"]["arguments"] == ORDER_TOOL.parameters


async def test_native_tool_call_delta_also_means_a_call(fake: Any, gguf_file: str) -> None:
    reply = '{"name": "get_order_details", "arguments": {"order_id": "#W1"}}'
    native = {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0}]}}]}

    def script(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if "response_format" not in body:
            return iter([native, end()])
        return iter([*pieces(reply, 7), end()])

    model = LocalModel(gguf_file, env={})
    await model._loaded()
    FakeServer.instances[0].script = script
    _, response = await run(model, ask(tools=(ORDER_TOOL,)))
    assert response.message.tool_calls[0].arguments == {"order_id": "#W1"}


async def test_text_answer_with_tools_streams_from_the_free_pass(fake: Any, gguf_file: str) -> None:
    model = LocalModel(gguf_file, env={})
    await model._loaded()
    server = FakeServer.instances[0]
    server.script = lambda body: iter([delta("\n "), delta("Paris"), delta(" it is."), end()])
    texts, response = await run(model, ask("capital of France?", tools=(ORDER_TOOL,)))
    assert texts == ["Paris", " it is."]
    assert response.message.text == "Paris it is."
    assert (response.message.tool_calls, response.stop_reason) == ((), "end")
    assert len(server.bodies) == 1


def after_result(text: str = "where is #W1?") -> ModelRequest:
    call = ToolCall("c1", "get_order_details", {"order_id": "#W1"})
    result = ToolResult("c1", "get_order_details", '{"status": "shipped"}')
    return ModelRequest(
        system="Be brief.",
        tools=(ORDER_TOOL,),
        messages=(
            Message.user(text),
            Message.assistant(tool_calls=[call]),
            Message(role="tool", results=(result,)),
        ),
    )


async def test_after_tool_results_the_reply_is_call_or_answer_json(
    fake: Any, gguf_file: str
) -> None:
    text = 'Line one\nsaid "hi" \\ done 😀 é\t!'
    reply = json.dumps({"answer": text})  # escapes, a surrogate pair, unicode
    model = LocalModel(gguf_file, env={})
    await model._loaded()
    server = FakeServer.instances[0]
    server.script = lambda body: iter([*pieces(reply), end()])
    texts, response = await run(model, after_result())
    assert "".join(texts) == text == response.message.text
    assert len(texts) > 10  # streamed while the JSON string arrives
    assert response.stop_reason == "end"
    (body,) = server.bodies
    assert body["response_format"]["json_schema"]["schema"] == reply_schema((ORDER_TOOL,))


async def test_no_call_allowed_after_tool_results_is_answer_only_json(
    fake: Any, gguf_file: str
) -> None:
    # tool_choice="none" (Agent(tool_choice="once"), the limits' wrap-up): the
    # results' turn asks for {"answer": ...}, so the reply is constrained to it
    # and unwrapped, rather than free text that would show the JSON.
    model = LocalModel(gguf_file, env={})
    await model._loaded()
    server = FakeServer.instances[0]
    server.script = lambda body: iter([*pieces(json.dumps({"answer": "It is pending."})), end()])
    texts, response = await run(model, replace(after_result(), tool_choice="none"))
    assert "".join(texts) == "It is pending." == response.message.text
    assert response.message.tool_calls == ()
    (body,) = server.bodies
    assert body["response_format"]["json_schema"]["schema"] == reply_schema(())
    assert reply_schema(())["oneOf"][0]["required"] == ["answer"]


def test_answer_decoder_ignores_tool_calls() -> None:
    decoder = AnswerDecoder()
    out = [decoder.feed(c) for c in '{"name": "x", "arguments": {"answer": "no"}}']
    assert "".join(out) == ""


async def test_reply_cut_by_max_tokens(fake: Any, gguf_file: str) -> None:
    model = LocalModel(gguf_file, env={})
    await model._loaded()
    partial = '{"answer": "The order has sh'
    FakeServer.instances[0].script = lambda body: iter([*pieces(partial, 4), end("length")])
    texts, response = await run(model, after_result())
    assert response.stop_reason == "max_tokens"
    assert response.message.text == "".join(texts) == "The order has sh"


async def test_context_overflow_is_a_clear_non_retryable_error(fake: Any, gguf_file: str) -> None:
    model = LocalModel(gguf_file, env={})
    await model._loaded()
    error = {
        "code": 400,
        "message": "request (5030 tokens) exceeds the available context size",
        "type": "exceed_context_size_error",
        "n_prompt_tokens": 5030,
        "n_ctx": 4096,
    }
    FakeServer.instances[0].script = lambda body: iter([{"error": error}])
    with pytest.raises(ProviderError, match="raise n_ctx") as info:
        await run(model, ask())
    assert (info.value.status, info.value.retryable) == (400, False)


async def test_rejected_request_is_not_retryable(fake: Any, gguf_file: str) -> None:
    def bad(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        raise ValueError("Unable to generate parser")

    model = LocalModel(gguf_file, env={})
    await model._loaded()
    FakeServer.instances[0].script = bad
    with pytest.raises(ProviderError, match="Unable to generate parser") as info:
        await run(model, ask())
    assert info.value.retryable is False


async def test_timeout_raises_and_stops_generation(fake: Any, gguf_file: str) -> None:
    release = threading.Event()

    def slow(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield delta("a")
        release.wait(5)
        yield delta("b")
        yield end()

    model = LocalModel(gguf_file, timeout=0.2, env={})
    await model._loaded()
    server = FakeServer.instances[0]
    server.script = slow
    with pytest.raises(ModelTimeout, match=r"0\.2s timeout"):
        await run(model, ask())
    release.set()
    assert await asyncio.to_thread(server.stopped.wait, 5)  # llama.cpp was told to stop


async def test_caller_stopping_early_stops_generation(fake: Any, gguf_file: str) -> None:
    model = LocalModel(gguf_file, env={})
    await model._loaded()
    server = FakeServer.instances[0]
    gate = threading.Event()

    def script(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield delta("first")
        gate.wait(5)
        yield delta("second")
        yield end()

    server.script = script
    stream = model.stream(ask())
    assert await anext(stream) == TextDelta("first")
    await stream.aclose()  # type: ignore[attr-defined]
    gate.set()
    assert await asyncio.to_thread(server.stopped.wait, 5)


async def test_loads_once_with_configured_params(fake: Any, gguf_file: str) -> None:
    model = LocalModel(gguf_file, n_ctx=1024, env={"TETHER_LOCAL_THREADS": "2"})
    await asyncio.gather(run(model, ask()), run(model, ask()), model._loaded())
    (server,) = FakeServer.instances
    assert len(server.bodies) == 2
    params = server.params
    assert (params.cpuparams.n_threads, params.cpuparams_batch.n_threads) == (2, 2)
    assert (params.n_ctx, params.n_parallel, params.model.path) == (1024, 1, gguf_file)
    assert len(params.api_keys) == 1  # llama.cpp's loopback HTTP port is locked
    assert len(params.api_keys[0]) >= 32
    await model.aclose()
    await run(model, ask())
    assert len(FakeServer.instances) == 2  # closed, then loaded again


def test_threads_default_and_validation() -> None:
    assert LocalModel(env={}).threads == 1
    assert LocalModel(threads=3, env={"TETHER_LOCAL_THREADS": "2"}).threads == 3
    with pytest.raises(ConfigError, match="TETHER_LOCAL_THREADS"):
        LocalModel(env={"TETHER_LOCAL_THREADS": "many"})
    with pytest.raises(ConfigError):
        LocalModel(threads=0)


def test_name() -> None:
    assert LocalModel().name == "local"
    assert LocalModel("/m/x.gguf").name == "local:/m/x.gguf"


async def test_missing_or_invalid_model_file(fake: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        await run(LocalModel(str(tmp_path / "nope.gguf")), ask())
    text_file = tmp_path / "notes.gguf"
    text_file.write_text("hello")
    with pytest.raises(ConfigError, match="not a GGUF"):
        await run(LocalModel(str(text_file)), ask())


async def test_schema_llama_cannot_compile_is_loosened(fake: Any, gguf_file: str) -> None:
    odd = ToolSpec("odd", "Odd schema.", {"type": "object", "properties": {"a": {"$ref": "#/x"}}})
    model = LocalModel(gguf_file, env={})
    request = after_result()
    await run(model, ModelRequest(system="", messages=request.messages, tools=(ORDER_TOOL, odd)))
    body = FakeServer.instances[0].bodies[0]
    schema = body["response_format"]["json_schema"]["schema"]
    arguments = [option["properties"].get("arguments") for option in schema["oneOf"]]
    assert arguments == [ORDER_TOOL.parameters, {"type": "object"}, None]
    parameters = [tool["function"]["parameters"] for tool in body["tools"]]
    assert parameters == [ORDER_TOOL.parameters, {"type": "object"}]


def test_history_is_rendered_in_the_protocol() -> None:
    call = ToolCall("c1", "get_order_details", {"order_id": "#W1"})
    request = ModelRequest(
        system="Shop agent.",
        tools=(ORDER_TOOL,),
        messages=(
            Message.user("hi"),
            Message.assistant("Hello!"),
            Message.user("where is #W1?"),
            Message.assistant("Let me check.", [call]),
            Message(
                role="tool",
                results=(ToolResult("c1", "get_order_details", '{"status": "shipped"}'),),
            ),
        ),
    )
    rendered = render_messages(request)
    assert rendered[0] == {"role": "system", "content": "Shop agent."}  # never changes: KV cache
    assert [m["role"] for m in rendered] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert rendered[2]["content"] == "Hello!"
    assert json.loads(rendered[4]["content"]) == {
        "name": "get_order_details",
        "arguments": {"order_id": "#W1"},
    }
    result = rendered[5]["content"]
    assert result.startswith('Tool result for get_order_details: {"status": "shipped"}\n\n')
    assert result.endswith(
        'with {"answer": "<your reply>"}, or call another function if you need more.'
    )
    failed = ToolResult("c1", "get_order_details", "timed out", is_error=True)
    plain = render_messages(
        ModelRequest(system="", messages=(Message(role="tool", results=(failed,)),))
    )
    assert plain[0]["content"].startswith("Tool error for get_order_details: timed out\n\n")
    assert "could not be done" in plain[0]["content"]
