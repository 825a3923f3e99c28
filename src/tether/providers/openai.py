"""OpenAI Chat Completions (and any OpenAI-compatible server) behind the ``Model`` protocol.

:class:`OpenAIModel` streams one Chat Completions call with the official
``openai`` SDK. With ``base_url`` (or ``OPENAI_BASE_URL``) it talks to any
server that speaks the same API: vLLM, Ollama, llama.cpp's server,
LiteLLM... Text deltas are yielded as they arrive; streamed tool-call
fragments are assembled by their ``index`` (id and name come first, the
JSON arguments in pieces); the call ends with one
:class:`~tether.spec.model.ModelResponse`.

The SDK's own retries are off (``max_retries=0``): Tether's reliability
layer is the only one that retries. The SDK is imported only here, so
``import tether`` does not pay for it.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import openai
from openai.types.chat import ChatCompletionChunk

from tether.exceptions import ConfigError, ProviderError
from tether.providers._errors import (
    ProviderInfo,
    connection_error,
    public_url,
    status_error,
    stream_error,
    timeout_error,
    transport_error_kind,
)
from tether.spec.messages import Message, ToolCall, Usage
from tether.spec.model import ModelRequest, ModelResponse, ModelStreamEvent, TextDelta

__all__ = ["OpenAIModel"]

logger = logging.getLogger(__name__)

KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"
PLACEHOLDER_KEY = "not-needed"  # local OpenAI-compatible servers ignore the key
CONNECT_TIMEOUT = 10.0
_FINISH_REASONS = {
    "stop": "end",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
}


class OpenAIModel:
    """An OpenAI model, e.g. ``OpenAIModel("gpt-4.1")`` (spec ``openai:MODEL[@BASE_URL]``).

    ``api_key`` defaults to ``OPENAI_API_KEY``; ``base_url`` to
    ``OPENAI_BASE_URL``, then OpenAI's API. With a ``base_url`` and no key,
    the placeholder key ``"not-needed"`` is sent, which local servers accept.
    ``timeout`` bounds connecting (at most 10 s), each read and each write.
    Pass ``client`` to use a prepared ``openai.AsyncOpenAI`` as is. The SDK
    client is created on the first call, so a missing key is reported then,
    as a :class:`~tether.exceptions.ConfigError`.
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 120.0,
        client: openai.AsyncOpenAI | None = None,
    ) -> None:
        self._model = model
        self._api_key = api_key
        self._base_url = base_url
        self._timeout = timeout
        self._client = client
        self._owns_client = False

    @property
    def name(self) -> str:
        return f"openai:{self._model}"

    def __repr__(self) -> str:
        return f"OpenAIModel({self._model!r})"

    def check(self) -> None:
        """Raise :class:`~tether.exceptions.ConfigError` now if the model cannot be used
        (no API key): the runtime calls this before it stores anything of a session."""
        self._get_client()

    def _get_client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            base_url = self._base_url or os.environ.get(BASE_URL_ENV) or None
            key = self._api_key or os.environ.get(KEY_ENV)
            if not key:
                if base_url is None:
                    raise ConfigError(
                        f"{self.name} needs an API key: set {KEY_ENV} or pass "
                        "OpenAIModel(..., api_key=...). For a local OpenAI-compatible server "
                        f"(vLLM, Ollama, llama.cpp), set {BASE_URL_ENV} or use the spec "
                        "'openai:MODEL@http://host:port/v1'; no key is needed then."
                    )
                key = PLACEHOLDER_KEY
            connect = min(CONNECT_TIMEOUT, self._timeout)
            self._client = openai.AsyncOpenAI(
                api_key=key,
                base_url=base_url,
                timeout=openai.Timeout(self._timeout, connect=connect),
                max_retries=0,  # Tether's reliability layer owns retries
            )
            self._owns_client = True
        return self._client

    def _info(self) -> ProviderInfo:
        client = self._client
        key = self._api_key or os.environ.get(KEY_ENV) or ""
        return ProviderInfo(
            name="openai",
            title="OpenAI" if _is_openai_platform(client) else "The OpenAI-compatible server",
            key_env=KEY_ENV,
            model=self._model,
            endpoint=public_url(str(client.base_url)) if client is not None else "",
            secrets=(key, getattr(client, "api_key", None) or ""),
        )

    async def aclose(self) -> None:
        """Close the SDK client if this model created it."""
        if self._client is not None and self._owns_client:
            await self._client.close()
            self._client = None
            self._owns_client = False

    async def __aenter__(self) -> OpenAIModel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        """Yield :class:`TextDelta` as text streams in, then one :class:`ModelResponse`."""
        client = self._get_client()
        params = build_params(self._model, request, openai_platform=_is_openai_platform(client))
        logger.debug(
            "openai request: model=%s messages=%d tools=%d",
            self._model,
            len(params["messages"]),
            len(request.tools),
        )
        acc = _Accumulator()
        try:
            stream = await client.chat.completions.create(**params)
            async with stream:
                async for chunk in stream:
                    text = acc.feed(chunk)
                    if text:
                        yield TextDelta(text)
        except openai.APIError as exc:
            raise self._map_error(exc) from exc
        except Exception as exc:
            if transport_error_kind(exc) is None:
                raise
            raise self._map_error(exc) from exc
        if acc.finish_reason is None:
            raise ProviderError(
                f"{self.name}: the stream ended without a finish_reason (connection dropped). "
                "Transient; it will be retried or fall back.",
                provider="openai",
                model=self._model,
                retryable=True,
            )
        yield acc.response(self.name)

    def _map_error(self, exc: Exception) -> ProviderError:
        info = self._info()
        if isinstance(exc, openai.APITimeoutError) or transport_error_kind(exc) == "timeout":
            return timeout_error(info, self._timeout)
        if isinstance(exc, openai.APIConnectionError) or transport_error_kind(exc):
            return connection_error(info)
        if isinstance(exc, openai.APIStatusError):
            return status_error(
                info,
                exc.status_code,
                headers=exc.response.headers,
                detail=_error_message(exc.body),
            )
        if isinstance(exc, openai.APIError) and isinstance(exc.body, dict):
            # An error object inside an already-started stream.
            error_type = exc.body.get("type") or exc.body.get("code")
            return stream_error(info, str(error_type or ""), _error_message(exc.body))
        return ProviderError(
            f"{self.name}: the API's answer could not be read ({type(exc).__name__}). "
            "Not retried; report it if it persists.",
            provider="openai",
            model=self._model,
        )


def _error_message(body: object) -> str | None:
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict):
            body = inner
        message = body.get("message") if isinstance(body, dict) else None
        return message if isinstance(message, str) else None
    return body if isinstance(body, str) else None


def _is_openai_platform(client: openai.AsyncOpenAI | None) -> bool:
    if client is None:
        return True
    host = urlsplit(str(client.base_url)).hostname or ""
    return host == "openai.com" or host.endswith(".openai.com")


# --- request -----------------------------------------------------------------


def build_params(model: str, request: ModelRequest, *, openai_platform: bool) -> dict[str, Any]:
    """The keyword arguments of ``chat.completions.create`` for ``request``."""
    params: dict[str, Any] = {
        "model": model,
        "messages": to_openai_messages(request.system, request.messages),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    # OpenAI's own API deprecates `max_tokens` and rejects it for reasoning models
    # (o-series, gpt-5), so it gets `max_completion_tokens`. Compatible servers
    # (vLLM, Ollama, llama.cpp, LiteLLM) all accept `max_tokens`, and some older
    # ones know nothing else, so a custom base_url gets `max_tokens`.
    params["max_completion_tokens" if openai_platform else "max_tokens"] = request.max_tokens
    if request.temperature is not None:
        params["temperature"] = request.temperature
    if request.tools:
        params["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                },
            }
            for t in request.tools
        ]
        if request.tool_choice in ("required", "none"):
            params["tool_choice"] = request.tool_choice
    return params


def to_openai_messages(system: str, messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Tether messages as Chat Completions messages, the system prompt first.

    A ``tool`` message becomes one ``tool`` message per result. The API has
    no error flag for tool results, so a failed result's content is prefixed
    with ``[error]``.
    """
    out: list[dict[str, Any]] = []
    if system:
        out.append({"role": "system", "content": system})
    for message in messages:
        if message.role == "tool":
            out.extend(
                {
                    "role": "tool",
                    "tool_call_id": r.call_id,
                    "content": f"[error] {r.content}" if r.is_error else r.content,
                }
                for r in message.results
            )
        elif message.role == "assistant":
            if not message.text and not message.tool_calls:
                continue
            entry: dict[str, Any] = {"role": "assistant", "content": message.text or None}
            if message.tool_calls:
                entry["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                    }
                    for c in message.tool_calls
                ]
            out.append(entry)
        else:
            out.append({"role": "user", "content": message.text})
    return out


# --- response ----------------------------------------------------------------


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    parts: list[str] = field(default_factory=list)

    def call(self) -> ToolCall:
        raw = "".join(self.parts)
        call_id = self.id or f"call_{uuid.uuid4().hex[:24]}"  # some local servers send none
        if not raw.strip():
            return ToolCall(call_id, self.name, {})
        try:
            arguments = json.loads(raw)
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            logger.warning("openai tool call %s (%s) streamed invalid JSON", call_id, self.name)
            arguments = {"__invalid_json__": raw}
        return ToolCall(call_id, self.name, arguments)


@dataclass
class _Accumulator:
    """Builds the final answer from the streamed chunks (first choice only)."""

    text: list[str] = field(default_factory=list)
    calls: dict[int, _PartialCall] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)

    def feed(self, chunk: ChatCompletionChunk) -> str:
        """Take one chunk; return the text it adds (``""`` for none)."""
        if chunk.usage is not None:
            u = chunk.usage
            details = u.prompt_tokens_details
            cached = (details.cached_tokens if details else None) or 0
            written = (details.cache_write_tokens if details else None) or 0
            self.usage = Usage(
                input_tokens=max(0, u.prompt_tokens - cached - written),
                output_tokens=u.completion_tokens,
                cache_read_tokens=cached,
                cache_write_tokens=written,
            )
        added = ""
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            delta = choice.delta
            if delta.content:
                self.text.append(delta.content)
                added += delta.content
            for piece in delta.tool_calls or ():
                index = piece.index if isinstance(piece.index, int) else len(self.calls)
                partial = self.calls.setdefault(index, _PartialCall())
                if piece.id and not partial.id:
                    partial.id = piece.id
                function = piece.function
                if function is not None:
                    if function.name and not partial.name:
                        partial.name = function.name
                    if function.arguments:
                        partial.parts.append(function.arguments)
            if choice.finish_reason is not None:
                self.finish_reason = choice.finish_reason
        return added

    def response(self, name: str) -> ModelResponse:
        calls = tuple(self.calls[i].call() for i in sorted(self.calls))
        reason = self.finish_reason or "stop"
        stop_reason = _FINISH_REASONS.get(reason, reason)
        if calls and stop_reason == "end":  # some compatible servers say "stop" after tool calls
            stop_reason = "tool_use"
        return ModelResponse(
            message=Message(
                role="assistant", text="".join(self.text), tool_calls=calls, model=name
            ),
            usage=self.usage,
            model=name,
            stop_reason=stop_reason,
        )
