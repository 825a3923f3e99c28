"""Provenance: untrusted content stays data, and what follows it is checked.

Tools marked ``untrusted_output`` (web pages, emails, documents, help-center
articles, database rows customers wrote) return text anyone may have
written. Three things follow (DESIGN.md guarantee 8):

- **Spotlighting.** The model sees such a result wrapped as quoted data with
  its source, between markers that carry a boundary derived from a secret of
  this runtime and the session id (HMAC-BLAKE2b), so text inside cannot
  guess it to close the block early; any marker text inside is neutralised.
  The runtime preamble says text inside the markers is data, never
  instructions. The stored log keeps the raw result.
- **Taint.** Once a session has read untrusted content, a call to a tool
  flagged ``high_stakes``, ``irreversible``, ``external_comms`` or
  ``critical`` needs a person's approval even if the agent's policy would
  not otherwise ask (``ApprovalPolicy.taint="approve"``, the default), or is
  not run at all (``"block"``). The taint lasts for the whole session: a
  summary of the content is still the content's influence.
- **Flagged arguments.** An argument value of such a call that also occurs
  in the untrusted content (an email address, an account number, an amount)
  is named in the approval request, so the person sees where it came from.
  Values are compared case- and whitespace-insensitively, and short values
  do not count (a ``13`` occurs in every document): text needs at least 5
  characters, a number at least 3 digits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from tether.spec.agent import Agent
from tether.spec.messages import Message, ToolResult
from tether.spec.tools import Tool

__all__ = [
    "TAINT_FLAGS",
    "flagged_arguments",
    "marker_for",
    "norm",
    "spotlight",
    "spotlight_messages",
    "tainted_action",
    "unwrap",
]

TAINT_FLAGS = ("high_stakes", "irreversible", "external_comms", "critical")
_OPEN = "<untrusted-data"
_CLOSE = "</untrusted-data"


def marker_for(secret: bytes, session_id: str) -> str:
    """The session's boundary: 16 hex characters nobody can derive without ``secret``."""
    return hashlib.blake2b(session_id.encode(), key=secret, digest_size=8).hexdigest()


def spotlight(content: str, source: str, marker: str) -> str:
    """``content`` wrapped as quoted data from ``source`` (marker text inside neutralised)."""
    body = content.replace(_CLOSE, "</ untrusted-data").replace(_OPEN, "< untrusted-data")
    return f'{_OPEN} source="{source}" marker="{marker}">\n{body}\n{_CLOSE} marker="{marker}">'


def unwrap(text: str) -> str:
    """The data inside a spotlighted result (``text`` itself if it is not one).

    For test doubles that read what a tool returned, as a model would."""
    if not text.startswith(_OPEN) or "\n" not in text:
        return text
    body = text.split("\n", 1)[1]
    return body.rsplit("\n", 1)[0] if "\n" in body else body


def spotlight_messages(
    messages: Sequence[Message],
    untrusted_tools: frozenset[str],
    marker: str,
    cache: dict[int, tuple[Message, Message]],
) -> list[Message]:
    """``messages`` with the results of ``untrusted_tools`` spotlighted (errors are not data).

    ``cache`` maps ``id`` of an original tool message to (original, wrapped),
    so each message is wrapped once per turn.
    """
    out: list[Message] = []
    for m in messages:
        if m.role != "tool" or not any(r.name in untrusted_tools for r in m.results):
            out.append(m)
            continue
        hit = cache.get(id(m))
        if hit is None or hit[0] is not m:
            results = tuple(
                ToolResult(r.call_id, r.name, spotlight(r.content, r.name, marker), r.is_error)
                if r.name in untrusted_tools and not r.is_error
                else r
                for r in m.results
            )
            hit = cache[id(m)] = (m, replace(m, results=results))
        out.append(hit[1])
    return out


def tainted_action(agent: Agent, tool: Tool) -> str | None:
    """What taint means for a call to ``tool``: ``approve``, ``block`` or ``None`` (nothing)."""
    mode = agent.approval.taint
    if mode == "off":
        return None
    if any(getattr(tool.risk, flag) for flag in TAINT_FLAGS):
        return mode
    return None


def norm(text: str) -> str:
    """``text`` case-folded with its whitespace collapsed (for finding one text in another)."""
    return " ".join(text.casefold().split())


def _values(value: Any, path: str) -> Iterable[tuple[str, str]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _values(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _values(v, f"{path}[{i}]")
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, (int, float)):
        text = f"{value:.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
        if sum(c.isdigit() for c in text) >= 3:
            yield path, text
    else:
        text = norm(str(value))
        digits = sum(c.isdigit() for c in text)
        if len(text) >= 5 or (digits >= 3 and digits == len(text.replace(".", ""))):
            yield path, text


def flagged_arguments(
    arguments: dict[str, Any], untrusted: Sequence[tuple[str, str]]
) -> list[dict[str, str]]:
    """Argument values that also occur in untrusted content: ``[{arg, value, source}]``."""
    if not untrusted:
        return []
    corpus = [(source, norm(content)) for source, content in untrusted]
    found: list[dict[str, str]] = []
    for path, text in _values(arguments, ""):
        for source, content in corpus:
            if text in content:
                found.append({"arg": path, "value": text, "source": source})
                break
    return found
