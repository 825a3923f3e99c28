"""Anthropic's Messages API behind Tether's ``Model`` protocol.

:class:`AnthropicModel` streams one Messages API call with the official
``anthropic`` SDK: text deltas are yielded as they arrive, tool-use input is
assembled from the raw ``input_json_delta`` events, and the call ends with
one :class:`~tether.spec.model.ModelResponse`.

The SDK's own retries are off (``max_retries=0``): Tether's reliability
layer is the only one that retries, and it reads the
:class:`~tether.exceptions.ProviderError` this module raises (see
``tether.providers._errors``). The SDK is imported only here, so
``import tether`` does not pay for it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import anthropic
from anthropic.types import (
    InputJSONDelta,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawContentBlockStopEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStopEvent,
    TextBlock,
    ToolUseBlock,
)
from anthropic.types import TextDelta as AnthropicTextDelta

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

__all__ = ["AnthropicModel"]

logger = logging.getLogger(__name__)

KEY_ENV = "ANTHROPIC_API_KEY"
CONNECT_TIMEOUT = 10.0
_STOP_REASONS = {
    "end_turn": "end",
    "stop_sequence": "end",
    "tool_use": "tool_use",
    "max_tokens": "max_tokens",
}


class AnthropicModel:
    """A Claude model, e.g. ``AnthropicModel("claude-sonnet-4-5")`` (spec ``anthropic:MODEL``).

    ``api_key`` defaults to ``ANTHROPIC_API_KEY``; ``base_url`` to the SDK's
    default (or ``ANTHROPIC_BASE_URL``). ``timeout`` bounds connecting
    (at most 10 s), each read and each write. Pass ``client`` to use a
    prepared ``anthropic.AsyncAnthropic`` as is (its retry setting is then
    yours to turn off). The SDK client is created on the first call, so a
    missing key is reported then, as a :class:`~tether.exceptions.ConfigError`.
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 120.0,
        client: anthropic.AsyncAnthropic | None = None,
    ) -> None:
        self._model = model
        self._api_key = api_key
        self._base_url = base_url
        self._timeout = timeout
        self._client = client
        self._owns_client = False

    @property
    def name(self) -> str:
        return f"anthropic:{self._model}"

    def __repr__(self) -> str:
        return f"AnthropicModel({self._model!r})"

    def check(self) -> None:
        """Raise :class:`~tether.exceptions.ConfigError` now if the model cannot be used
        (no API key): the runtime calls this before it stores anything of a session."""
        self._get_client()

    def _get_client(self) -> anthropic.AsyncAnthropic:
        if self._client is None:
            key = self._api_key or os.environ.get(KEY_ENV)
            if not key:
                raise ConfigError(
                    f"{self.name} needs an API key: set {KEY_ENV} or pass "
                    "AnthropicModel(..., api_key=...). Without a key, use another model "
                    "(e.g. 'local') in the agent's model chain."
                )
            connect = min(CONNECT_TIMEOUT, self._timeout)
            self._client = anthropic.AsyncAnthropic(
                api_key=key,
                base_url=self._base_url,
                timeout=anthropic.Timeout(self._timeout, connect=connect),
                max_retries=0,  # Tether's reliability layer owns retries
            )
            self._owns_client = True
        return self._client

    def _info(self) -> ProviderInfo:
        client = self._client
        key = self._api_key or os.environ.get(KEY_ENV) or ""
        endpoint = public_url(str(client.base_url)) if client is not None else ""
        return ProviderInfo(
            name="anthropic",
            title="Anthropic",
            key_env=KEY_ENV,
            model=self._model,
            endpoint=endpoint,
            secrets=(key, getattr(client, "api_key", None) or ""),
        )

    async def aclose(self) -> None:
        """Close the SDK client if this model created it."""
        if self._client is not None and self._owns_client:
            await self._client.close()
            self._client = None
            self._owns_client = False

    async def __aenter__(self) -> AnthropicModel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        """Yield :class:`TextDelta` as text streams in, then one :class:`ModelResponse`."""
        client = self._get_client()
        params = build_params(self._model, request)
        logger.debug(
            "anthropic request: model=%s messages=%d tools=%d",
            self._model,
            len(params["messages"]),
            len(request.tools),
        )
        acc = _Accumulator()
        try:
            stream = await client.messages.create(**params, stream=True)
            async with stream:
                async for event in stream:
                    text = acc.feed(event)
                    if text:
                        yield TextDelta(text)
        except anthropic.APIError as exc:
            raise self._map_error(exc) from exc
        except Exception as exc:
            if transport_error_kind(exc) is None:
                raise
            raise self._map_error(exc) from exc
        if not acc.stopped:
            raise ProviderError(
                f"{self.name}: the stream ended before message_stop (connection dropped). "
                "Transient; it will be retried or fall back.",
                provider="anthropic",
                model=self._model,
                retryable=True,
            )
        yield acc.response(self.name)

    def _map_error(self, exc: Exception) -> ProviderError:
        info = self._info()
        if isinstance(exc, anthropic.APITimeoutError) or transport_error_kind(exc) == "timeout":
            return timeout_error(info, self._timeout)
        if isinstance(exc, anthropic.APIConnectionError) or transport_error_kind(exc):
            return connection_error(info)
        if isinstance(exc, anthropic.APIStatusError):
            error = _error_object(exc.body)
            if exc.status_code < 400:  # an "event: error" inside a 200 stream
                return stream_error(info, error.get("type"), error.get("message"))
            return status_error(
                info, exc.status_code, headers=exc.response.headers, detail=error.get("message")
            )
        if isinstance(exc, anthropic.APIError):
            return ProviderError(
                f"{self.name}: the API's answer could not be read ({type(exc).__name__}). "
                "Not retried; report it if it persists.",
                provider="anthropic",
                model=self._model,
            )
        raise exc  # pragma: no cover - callers only pass SDK or transport errors


def _error_object(body: object) -> dict[str, Any]:
    """The ``error`` object of an API error body (``{"type": "error", "error": {...}}``)."""
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict):
            return inner
        return body
    return {"message": body} if isinstance(body, str) else {}


# --- request -----------------------------------------------------------------


def build_params(model: str, request: ModelRequest) -> dict[str, Any]:
    """The keyword arguments of ``messages.create`` for ``request`` (without ``stream``)."""
    params: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens,
        "messages": to_anthropic_messages(request.messages),
    }
    if request.system:
        params["system"] = request.system
    if request.tools:
        params["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters}
            for t in request.tools
        ]
        if request.tool_choice == "required":
            params["tool_choice"] = {"type": "any"}
        elif request.tool_choice == "none":
            params["tool_choice"] = {"type": "none"}
    if request.temperature is not None:
        # This SDK version has no `temperature` argument; the API still takes it.
        params["extra_body"] = {"temperature": request.temperature}
    return params


def to_anthropic_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Tether messages as Messages API messages.

    A ``tool`` message becomes a ``user`` message of ``tool_result`` blocks;
    consecutive messages of the same role are merged, as the API requires
    roles to alternate. Empty text is left out (the API rejects empty text
    blocks), and a message with nothing left is dropped.
    """
    out: list[dict[str, Any]] = []
    for message in messages:
        blocks: list[dict[str, Any]] = []
        if message.role == "tool":
            role = "user"
            for result in message.results:
                block: dict[str, Any] = {"type": "tool_result", "tool_use_id": result.call_id}
                if result.content:
                    block["content"] = result.content
                if result.is_error:
                    block["is_error"] = True
                blocks.append(block)
        else:
            role = message.role
            if message.text:
                blocks.append({"type": "text", "text": message.text})
            if role == "assistant":
                blocks.extend(
                    {"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
                    for c in message.tool_calls
                )
        if not blocks:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return out


# --- response ----------------------------------------------------------------


@dataclass
class _ToolUse:
    id: str
    name: str
    initial: dict[str, Any]
    parts: list[str] = field(default_factory=list)

    def call(self) -> ToolCall:
        raw = "".join(self.parts)
        if not raw.strip():
            return ToolCall(self.id, self.name, dict(self.initial))
        try:
            arguments = json.loads(raw)
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            logger.warning("anthropic tool_use %s (%s) streamed invalid JSON", self.id, self.name)
            arguments = {"__invalid_json__": raw}
        return ToolCall(self.id, self.name, arguments)


@dataclass
class _Accumulator:
    """Builds the final answer from the raw stream events."""

    text: list[str] = field(default_factory=list)
    tools: dict[int, _ToolUse] = field(default_factory=dict)
    calls: list[ToolCall] = field(default_factory=list)
    stop_reason: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    stopped: bool = False

    def _merge_usage(self, usage: Any) -> None:
        for key in (
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        ):
            value = getattr(usage, key, None)
            if value is not None:  # message_delta counts are cumulative: latest wins
                self.usage[key] = int(value)

    def feed(self, event: object) -> str:
        """Take one event; return the text it adds (``""`` for none)."""
        if isinstance(event, RawContentBlockDeltaEvent):
            delta = event.delta
            if isinstance(delta, AnthropicTextDelta):
                self.text.append(delta.text)
                return delta.text
            if isinstance(delta, InputJSONDelta) and event.index in self.tools:
                self.tools[event.index].parts.append(delta.partial_json)
        elif isinstance(event, RawContentBlockStartEvent):
            block = event.content_block
            if isinstance(block, TextBlock) and block.text:
                self.text.append(block.text)
                return block.text
            if isinstance(block, ToolUseBlock):
                self.tools[event.index] = _ToolUse(block.id, block.name, dict(block.input))
        elif isinstance(event, RawContentBlockStopEvent):
            tool = self.tools.pop(event.index, None)
            if tool is not None:
                self.calls.append(tool.call())
        elif isinstance(event, RawMessageStartEvent):
            self._merge_usage(event.message.usage)
        elif isinstance(event, RawMessageDeltaEvent):
            if event.delta.stop_reason is not None:
                self.stop_reason = event.delta.stop_reason
            self._merge_usage(event.usage)
        elif isinstance(event, RawMessageStopEvent):
            self.stopped = True
        return ""

    def response(self, name: str) -> ModelResponse:
        # A tool_use block whose content_block_stop never came still counts.
        self.calls.extend(tool.call() for _, tool in sorted(self.tools.items()))
        self.tools.clear()
        usage = Usage(
            input_tokens=self.usage.get("input_tokens", 0),
            output_tokens=self.usage.get("output_tokens", 0),
            cache_read_tokens=self.usage.get("cache_read_input_tokens", 0),
            cache_write_tokens=self.usage.get("cache_creation_input_tokens", 0),
        )
        reason = self.stop_reason or "end_turn"
        return ModelResponse(
            message=Message(
                role="assistant",
                text="".join(self.text),
                tool_calls=tuple(self.calls),
                model=name,
            ),
            usage=usage,
            model=name,
            stop_reason=_STOP_REASONS.get(reason, reason),
        )
