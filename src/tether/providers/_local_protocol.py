"""The tool protocol of the ``local`` model, as pure functions.

A 0.5B model does not emit native tool calls reliably, so tool calls are
JSON produced under llama.cpp's JSON-schema constrained decoding, in the
shape Qwen's chat template teaches::

    {"name": "<tool>", "arguments": {...}}   # arguments match that tool's schema
    {"answer": "<text for the user>"}        # only right after tool results

The tools reach the model through its own chat template (the request carries
:func:`tool_specs` as OpenAI ``tools``); measured on the embedded model,
that is what makes it call a tool instead of inventing an answer, where a
tool list in our own words did not. :func:`reply_schema` is the schema
llama.cpp enforces (calls only, or calls and the answer object);
:func:`render_messages` shows the history in the same form: the system text
exactly as given (so the KV cache prefix never changes), past calls as the
JSON the model writes, and tool results as one user turn of
``Tool result for NAME: ...`` that ends by asking for an ``{"answer": ...}``
(without it the model repeats the call it just made). :class:`AnswerDecoder`
decodes an answer while its JSON is still arriving, so it can be streamed;
:func:`parse_reply` turns a finished reply into text or a
:class:`~tether.spec.messages.ToolCall`. Nothing here needs llama.cpp; how
the modes are chosen is in :mod:`tether.providers.local`.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Mapping
from typing import Any

from tether.spec.messages import ToolCall, Usage
from tether.spec.model import ModelRequest, ToolSpec

__all__ = [
    "AnswerDecoder",
    "parse_reply",
    "partial_answer",
    "render_messages",
    "reply_schema",
    "tool_specs",
    "usage_from",
]

logger = logging.getLogger(__name__)

_ANSWER_START = re.compile(r'\s*\{\s*"answer"\s*:\s*"')
_CALL_START = re.compile(r'\s*\{\s*"name"')
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_ANSWER = '{"answer": "<your reply>"}'
_AFTER_RESULTS = (
    f"Answer the user from this result with {_ANSWER}, or call another function if you need more."
)
_AFTER_ERROR = (
    f"Tell the user what could not be done with {_ANSWER}, "
    "or call another function if you need more."
)


def tool_specs(
    tools: tuple[ToolSpec, ...], loose: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """The tools as OpenAI function specs, for the model's chat template to list."""
    return [
        {
            "type": "function",
            "function": {
                "name": t.name,
                "description": t.description,
                "parameters": {"type": "object"} if t.name in loose else t.parameters,
            },
        }
        for t in tools
    ]


def reply_schema(
    tools: tuple[ToolSpec, ...], loose: frozenset[str] = frozenset(), *, answer: bool = True
) -> dict[str, Any]:
    """The JSON Schema a reply must match: one tool call, or (if ``answer``) an answer.

    Tools named in ``loose`` take any JSON object as arguments (used when
    llama.cpp cannot turn a tool's own schema into a grammar; the runtime
    still validates arguments before running the tool).
    """
    options: list[dict[str, Any]] = [
        {
            "type": "object",
            "properties": {
                "name": {"const": t.name},
                "arguments": {"type": "object"} if t.name in loose else t.parameters,
            },
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for t in tools
    ]
    if answer:
        options.append(
            {
                "type": "object",
                "properties": {"answer": {"type": "string", "minLength": 1}},
                "required": ["answer"],
                "additionalProperties": False,
            }
        )
    return {"oneOf": options}


def render_messages(request: ModelRequest) -> list[dict[str, str]]:
    """The conversation as chat-template messages (``role``/``content`` dicts).

    The system text is passed as is; past tool calls are the JSON the model
    writes (several calls one per line), past answers plain text; tool
    results become one user turn of ``Tool result for NAME: ...``
    (``Tool error for ...`` when one failed) ending with a request to answer
    from them as ``{"answer": ...}`` (or to say what failed).
    """
    out: list[dict[str, str]] = []
    if request.system:
        out.append({"role": "system", "content": request.system})
    for m in request.messages:
        if m.role == "user":
            out.append({"role": "user", "content": m.text})
        elif m.role == "assistant":
            calls = [
                json.dumps({"name": c.name, "arguments": c.arguments}, ensure_ascii=False)
                for c in m.tool_calls
            ]
            out.append({"role": "assistant", "content": "\n".join(calls) if calls else m.text})
        else:
            results = [
                f"Tool {'error' if r.is_error else 'result'} for {r.name}: {r.content}"
                for r in m.results
            ]
            after = _AFTER_ERROR if any(r.is_error for r in m.results) else _AFTER_RESULTS
            out.append({"role": "user", "content": "\n\n".join([*results, after])})
    return out


class AnswerDecoder:
    """Decodes the ``answer`` string of a reply while its JSON is still arriving."""

    def __init__(self) -> None:
        self.raw = ""
        self._pos: int | None = None  # index just after the answer's opening quote
        self._off = False  # not an answer (a tool call), or undecodable: stop streaming

    def feed(self, piece: str) -> str:
        """Add the next piece of raw output; return the answer text it completes."""
        self.raw += piece
        if self._off:
            return ""
        if self._pos is None:
            start = _ANSWER_START.match(self.raw)
            if start is None:
                self._off = _CALL_START.match(self.raw) is not None or len(self.raw) > 64
                return ""
            self._pos = start.end()
        out: list[str] = []
        raw, i = self.raw, self._pos
        while i < len(raw) and raw[i] != '"':
            if raw[i] != "\\":
                out.append(raw[i])
                i += 1
                continue
            if i + 1 >= len(raw):
                break
            if raw[i + 1] != "u":
                out.append(_ESCAPES.get(raw[i + 1], raw[i + 1]))
                i += 2
                continue
            if i + 6 > len(raw):
                break
            try:
                code = int(raw[i + 2 : i + 6], 16)
                if 0xD800 <= code < 0xDC00:  # a high surrogate: wait for its pair
                    if i + 12 > len(raw):
                        break
                    low = int(raw[i + 8 : i + 12], 16) if raw[i + 6 : i + 8] == "\\u" else 0
                    if 0xDC00 <= low < 0xE000:
                        out.append(chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)))
                        i += 12
                        continue
                    code = 0xFFFD
                out.append(chr(code if not 0xDC00 <= code < 0xE000 else 0xFFFD))
            except ValueError:
                self._off = True
                break
            i += 6
        self._pos = i
        return "".join(out)


def parse_reply(content: str, tools: tuple[ToolSpec, ...]) -> tuple[str, ToolCall | None]:
    """``(text, None)`` for an answer, ``("", call)`` for a tool call.

    Output that is not the protocol's JSON (possible only if constrained
    decoding was bypassed) is kept as text rather than lost.
    """
    try:
        reply = json.loads(content)
    except ValueError:
        logger.warning("local model reply is not the JSON asked for; using it as text")
        return content.strip(), None
    names = {t.name for t in tools}
    if isinstance(reply, dict) and reply.get("name") in names:
        arguments = reply.get("arguments")
        call = ToolCall(
            id=f"call_{uuid.uuid4().hex[:24]}",
            name=str(reply["name"]),
            arguments=arguments if isinstance(arguments, dict) else {},
        )
        return "", call
    if isinstance(reply, dict) and isinstance(reply.get("answer"), str):
        return reply["answer"], None
    return content.strip(), None


def usage_from(final: Mapping[str, Any]) -> Usage:
    """Token usage from llama.cpp's last chunk (``usage``, else ``timings``).

    ``input_tokens`` excludes the prompt tokens reused from the KV cache,
    which are ``cache_read_tokens`` (Anthropic's convention).
    """
    usage = final.get("usage") or {}
    timings = final.get("timings") or {}
    cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0) or 0)
    prompt = int(usage.get("prompt_tokens", 0) or 0)
    if not usage and timings:
        cached = int(timings.get("cache_n", 0))
        prompt = cached + int(timings.get("prompt_n", 0))
    output = int(usage.get("completion_tokens", timings.get("predicted_n", 0)) or 0)
    return Usage(
        input_tokens=max(0, prompt - cached), output_tokens=output, cache_read_tokens=cached
    )


def partial_answer(raw: str) -> str:
    """The answer text of a reply cut off by ``max_tokens`` ("" for a cut tool call)."""
    decoder = AnswerDecoder()
    return decoder.feed(raw)
