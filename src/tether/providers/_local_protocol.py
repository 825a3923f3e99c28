"""The JSON reply protocol of the ``local`` model, as pure functions.

A small model does not emit native tool calls reliably, so when a request
offers tools the model must answer with exactly one JSON object, and
llama.cpp's JSON-schema constrained decoding makes anything else
impossible::

    {"tool": "<name>", "arguments": {...}}     # arguments match that tool's schema
    {"answer": "<text for the user>"}

:func:`system_prompt` explains this after the request's own system text and
a compact tool list; :func:`reply_schema` is the schema llama.cpp enforces;
:func:`render_messages` shows the history in the same form (past calls as
the JSON the model would write, tool results as user turns reading
``Tool result for NAME: ...``); :class:`AnswerDecoder` decodes an answer's
text while its JSON is still arriving, so it can be streamed; and
:func:`parse_reply` turns the finished reply into text or a
:class:`~tether.spec.messages.ToolCall`. Nothing here needs llama.cpp.
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
    "system_prompt",
    "usage_from",
]

logger = logging.getLogger(__name__)

_ANSWER_START = re.compile(r'\s*\{\s*"answer"\s*:\s*"')
_TOOL_START = re.compile(r'\s*\{\s*"tool"')
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_PROTOCOL = """\
# How to reply
Reply with exactly one JSON object and nothing else:
- to call a tool: {"tool": "<tool name>", "arguments": {<the tool's arguments>}}
- to answer the user: {"answer": "<your message to the user>"}
Call one tool at a time. Its result comes back as "Tool result for <tool name>: ...".
Base your answer on tool results; never invent one. If a tool failed, say so."""


def system_prompt(request: ModelRequest) -> str:
    """The system text the model sees: the request's, then tools and protocol."""
    if not request.tools:
        return request.system
    lines = ["# Tools"] + [_tool_line(t) for t in request.tools]
    parts = [request.system.strip(), "\n".join(lines), _PROTOCOL]
    return "\n\n".join(p for p in parts if p)


def _tool_line(tool: ToolSpec) -> str:
    props: Mapping[str, Any] = tool.parameters.get("properties") or {}
    required = set(tool.parameters.get("required") or ())
    args, notes = [], []
    for name, schema in props.items():
        schema = schema if isinstance(schema, Mapping) else {}
        kind = str(schema.get("type", "any"))
        if "enum" in schema:
            kind = "|".join(json.dumps(v) for v in schema["enum"])
        args.append(f"{name}{'' if name in required else '?'}: {kind}")
        if schema.get("description"):
            notes.append(f"\n  - {name}: {' '.join(str(schema['description']).split())}")
    description = " ".join(tool.description.split())
    return f"- {tool.name}({', '.join(args)}): {description}{''.join(notes)}"


def reply_schema(
    tools: tuple[ToolSpec, ...], loose: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The JSON Schema every reply must match: one tool call, or an answer.

    Tools named in ``loose`` take any JSON object as arguments (used when
    llama.cpp cannot turn a tool's own schema into a grammar; the runtime
    still validates arguments before running the tool).
    """
    options: list[dict[str, Any]] = [
        {
            "type": "object",
            "properties": {
                "tool": {"const": t.name},
                "arguments": {"type": "object"} if t.name in loose else t.parameters,
            },
            "required": ["tool", "arguments"],
            "additionalProperties": False,
        }
        for t in tools
    ]
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

    With tools, past assistant turns are the JSON the model would have
    written (several calls one per line); tool results become one user turn
    of ``Tool result for NAME: ...`` (``Tool error for ...`` when they failed).
    """
    json_mode = bool(request.tools)
    out: list[dict[str, str]] = []
    system = system_prompt(request)
    if system:
        out.append({"role": "system", "content": system})
    for m in request.messages:
        if m.role == "user":
            out.append({"role": "user", "content": m.text})
        elif m.role == "assistant":
            calls = [
                json.dumps({"tool": c.name, "arguments": c.arguments}, ensure_ascii=False)
                for c in m.tool_calls
            ]
            if calls:
                content = "\n".join(calls)
            elif json_mode:
                content = json.dumps({"answer": m.text}, ensure_ascii=False)
            else:
                content = m.text
            out.append({"role": "assistant", "content": content})
        else:
            results = [
                f"Tool {'error' if r.is_error else 'result'} for {r.name}: {r.content}"
                for r in m.results
            ]
            out.append({"role": "user", "content": "\n\n".join(results)})
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
                self._off = _TOOL_START.match(self.raw) is not None or len(self.raw) > 64
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
    if isinstance(reply, dict) and reply.get("tool") in names:
        arguments = reply.get("arguments")
        call = ToolCall(
            id=f"call_{uuid.uuid4().hex[:24]}",
            name=str(reply["tool"]),
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
