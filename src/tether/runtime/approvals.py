"""Approvals: which calls stop for a person, what they are shown, and how a chat reply is read.

The built-in ``clarify`` tool (:data:`CLARIFY_SPEC`, offered to the model
unless ``Agent(clarify=False)`` or the agent has its own tool of that name)
lets the model ask the user a question; the session waits in
``awaiting_user`` and the user's next message is the call's result.

The step machine (:mod:`tether.runtime.runtime`) calls these: a call that
:func:`needs_approval` is not run; the runtime stores an
``approval.requested`` event carrying :func:`summarize`'s plain-language
summary (built from the tool's template and the real arguments, never from
the model's words), the hash of the exact arguments and an expiry, and the
session waits in ``awaiting_approval``. A decision arrives through
:meth:`Runtime.decide` (structured: the CLI, an API) or, in ``user`` mode,
as a chat reply that :func:`parse_reply` reads strictly: yes or no, nothing
else.

What the person is shown (:func:`describe`) hides nothing the call does:

- The tool's ``summary`` template gives the sentence. Only plain names are
  filled (``{to}``, ``{amount:.2f}``); a field with attribute or index access
  (``{to.__class__}``, ``{items[0]}``), a name the call left out, or a format
  spec the value does not take make the template unusable, and the person is
  shown the whole call, ``run tool(a=..., b=...)``, never less.
- Every argument the sentence does not name and that is not at its default
  (the schema's ``properties.X.default``; an argument absent from the call is
  at its default) follows it: ``...; also: bcc='x@evil.example'``.
- Values are shown as quoted literals (:func:`show_value`): a string cannot
  pose as the sentence around it, control, bidi, zero-width and other
  invisible characters are shown as escapes (``\\u202e``), a run of spaces
  as ``\\[12 spaces]``, and a string over 300 characters as its head and
  tail around ``[... N characters ...]``. The exact arguments stay in the
  event (:attr:`PendingApproval.arguments`).
"""

from __future__ import annotations

import json
import logging
import re
import string
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from tether.spec.agent import Agent
from tether.spec.messages import ToolCall
from tether.spec.model import ToolSpec
from tether.spec.text import INVISIBLE_CLASS
from tether.spec.tools import Tool

__all__ = [
    "CLARIFY",
    "CLARIFY_SPEC",
    "NOT_DONE",
    "ApprovalText",
    "PendingApproval",
    "describe",
    "needs_approval",
    "parse_reply",
    "reveal",
    "show_value",
    "summarize",
]

logger = logging.getLogger("tether.approvals")

#: how the result of a call that did not run after its approval request starts
#: (declined or expired): it echoes the call, so it proves and backs nothing
NOT_DONE = "not done:"

#: the built-in tool the model calls to ask the user a question
CLARIFY = "clarify"
CLARIFY_SPEC = ToolSpec(
    CLARIFY,
    "Ask the user a question when you are not sure what they want (for example "
    '"cancel the order, not change it - right?"). The conversation waits for their '
    "answer, which comes back as this tool's result. Ask one short question.",
    {
        "type": "object",
        "properties": {"question": {"type": "string", "description": "The question for the user."}},
        "required": ["question"],
        "additionalProperties": False,
    },
)

_YES = re.compile(r"^\s*(?:yes|y|yes please|approve|approved|confirm|confirmed)\s*[.!]?\s*$", re.I)
# Not "cancel": asked to confirm "cancel order #W1", "cancel" would mean yes.
_NO = re.compile(r"^\s*(?:no|n|no thanks|deny|denied|decline|stop|don't)\s*[.!]?\s*$", re.I)

#: Characters a terminal or a page obeys or hides instead of showing: C0 and
#: C1 controls and DEL (escape sequences, the 8-bit CSI ``\x9b``), line and
#: paragraph separators, lone surrogates, the braille blank, and every
#: character a reader does not see (:data:`tether.spec.text.INVISIBLE_CLASS`:
#: bidi embeddings, overrides and isolates, zero-width spaces and joiners, the
#: soft hyphen, the BOM, tags, fillers, variation selectors).
HIDDEN = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029\u2800\ud800-\udfff{INVISIBLE_CLASS}]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}

#: longer strings are shown as head and tail
LONG = 300
_HEAD, _TAIL = 180, 80
#: a longer rendered value (a big list or object) is shown as head and tail too
_WHOLE = 1000
_WHOLE_HEAD, _WHOLE_TAIL = 700, 200
#: this many spaces in a row inside a value are shown as a count
_SPACES = re.compile(r" {4,}")
# one shown character: an escape we wrote, or a character (cut only between these)
_ATOM = re.compile(r"\\(?:x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8}|\[\d+ spaces\]|.)|.", re.S)
# a template's quotes around a field: the value gets its own
_QUOTES = {'"': '"', "'": "'", "`": "`", "\u201c": "\u201d", "\u2018": "\u2019", "\u00ab": "\u00bb"}


def _code(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    n = ord(ch)
    if n < 0x100:
        return f"\\x{n:02x}"
    return f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def reveal(text: str, *, keep: str = "\t\n") -> str:
    """``text`` with every :data:`HIDDEN` character but those in ``keep`` shown as an escape.

    ``\\x1b`` for ESC, ``\\u202e`` for a right-to-left override, ``\\n`` for
    a newline when it is not kept; what a terminal would obey or not draw
    becomes text a person can read.
    """

    def sub(m: re.Match[str]) -> str:
        ch = m.group()
        return ch if ch in keep else _code(ch)

    return HIDDEN.sub(sub, text)


def _escape(text: str, quote: str) -> str:
    out: list[str] = []
    for ch in text:
        if ch == "\\" or ch == quote:
            out.append("\\" + ch)
        elif not ch.isprintable() or HIDDEN.match(ch):
            out.append(_code(ch))
        else:
            out.append(ch)
    return "".join(out)


def _quote_part(text: str, quote: str) -> str:
    pieces: list[str] = []
    at = 0
    for m in _SPACES.finditer(text):
        pieces.append(_escape(text[at : m.start()], quote))
        pieces.append(f"\\[{len(m.group())} spaces]")
        at = m.end()
    pieces.append(_escape(text[at:], quote))
    return quote + "".join(pieces) + quote


def _quote(text: str) -> str:
    quote = '"' if "'" in text and '"' not in text else "'"
    if len(text) <= LONG:
        return _quote_part(text, quote)
    cut = len(text) - _HEAD - _TAIL
    head, tail = text[:_HEAD], text[-_TAIL:]
    return f"{_quote_part(head, quote)} [... {cut} characters ...] {_quote_part(tail, quote)}"


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return _quote(value)
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    return _escape(repr(value), "")


def show_value(value: Any) -> str:
    """``value`` as a quoted literal a person can read and nothing can pose as.

    Strings are quoted like Python's ``repr`` with every hidden character
    escaped, runs of spaces counted (``\\[12 spaces]``) and, over
    :data:`LONG` characters, cut to head and tail around ``[... N characters
    ...]``; lists and objects are written out the same way, and a very long
    one is cut likewise (never in the middle of an escape).
    """
    text = _literal(value)
    if len(text) <= _WHOLE:
        return text
    atoms = _ATOM.findall(text)
    if len(atoms) <= _WHOLE_HEAD + _WHOLE_TAIL:
        return text
    cut = len(atoms) - _WHOLE_HEAD - _WHOLE_TAIL
    head, tail = "".join(atoms[:_WHOLE_HEAD]), "".join(atoms[-_WHOLE_TAIL:])
    return f"{head} [... {cut} characters ...] {tail}"


def _name(key: Any) -> str:
    if isinstance(key, str) and key.isidentifier() and key.isascii():
        return key
    return _literal(key)


def _canonical(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _at_default(tool: Tool, name: str, value: Any) -> bool:
    props = tool.parameters.get("properties") if isinstance(tool.parameters, dict) else None
    prop = props.get(name) if isinstance(props, dict) else None
    if not isinstance(prop, dict) or "default" not in prop:
        return False
    return _canonical(value) == _canonical(prop["default"])


def _same_number(text: str, value: int | float) -> bool:
    """Whether ``text`` (a format spec's output) still says exactly ``value``."""
    try:
        shown = Decimal(text.strip().replace(",", "").replace("_", ""))
        return shown == Decimal(value if isinstance(value, int) else repr(value))
    except (InvalidOperation, ValueError):
        return False


_HUGE_PRECISION = re.compile(r"\.\d{3,}")


def _field(value: Any, spec: str) -> str | None:
    """A filled field: a number as its spec writes it (if exact), else the quoted literal."""
    if spec:
        if _HUGE_PRECISION.search(spec):
            return None  # '.100000f' would write a 100 KB summary: show the plain call
        try:
            formatted = format(value, spec)
        except Exception:  # TypeError, ValueError, OverflowError: a model's value may be anything
            return None  # a spec the value does not take: the template is unusable
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if number and _same_number(formatted, value):
            return formatted.strip()
    return show_value(value)


def _fill(template: str, arguments: dict[str, Any]) -> tuple[str, set[str]] | None:
    """The sentence and the names it used, or ``None`` if the template cannot be filled."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return None
    parts: list[tuple[bool, str]] = []  # (is a value, text)
    named: set[str] = set()
    for literal, field, spec, conversion in parsed:
        if literal:
            parts.append((False, literal))
        if field is None:
            continue
        # Plain names only: no attribute or index access, no positional fields.
        if not field.isidentifier() or field not in arguments:
            return None
        if spec and ("{" in spec or "}" in spec):
            return None  # a nested field in the spec
        if conversion not in (None, "r", "s", "a"):
            return None  # values are always shown quoted: a known conversion changes nothing
        shown = _field(arguments[field], spec or "")
        if shown is None:
            return None
        parts.append((True, shown))
        named.add(field)
    texts = [text for _, text in parts]
    for i, (is_value, _) in enumerate(parts):
        if not is_value or i == 0 or i + 1 == len(parts):
            continue
        before, after = texts[i - 1], texts[i + 1]
        if parts[i - 1][0] or parts[i + 1][0] or not before or not after:
            continue
        close = _QUOTES.get(before[-1])
        if close is not None and after[0] == close:  # "{x}" would be quoted twice
            texts[i - 1], texts[i + 1] = before[:-1], after[1:]
    return "".join(texts), named


@dataclass(frozen=True, slots=True)
class ApprovalText:
    """What a person is asked to approve: a sentence, and every argument it leaves out."""

    #: the tool's template filled in, or the whole call ``run tool(a=..., b=...)``
    sentence: str
    #: ``(name, shown value)`` of each argument not at its default the sentence does not name
    rest: tuple[tuple[str, str], ...] = ()
    #: whether the sentence is the tool's template (``False``: the whole call)
    from_template: bool = False

    def __str__(self) -> str:
        if not self.rest:
            return self.sentence
        return f"{self.sentence}; also: " + ", ".join(f"{k}={v}" for k, v in self.rest)


def describe(tool: Tool, call: ToolCall) -> ApprovalText:
    """The action in plain words, from the tool's template and the real arguments."""
    arguments = call.arguments or {}
    if tool.summary:
        filled = _fill(tool.summary, arguments)
        if filled is not None:
            sentence, named = filled
            rest = tuple(
                (_name(k), show_value(v))
                for k, v in sorted(arguments.items(), key=lambda kv: str(kv[0]))
                if k not in named and not _at_default(tool, k, v)
            )
            return ApprovalText(sentence, rest, from_template=True)
    args = ", ".join(f"{_name(k)}={show_value(v)}" for k, v in arguments.items())
    return ApprovalText(f"run {reveal(tool.name, keep='')}({args})")


def summarize(tool: Tool, call: ToolCall) -> str:
    """:func:`describe` as one line: the sentence, then ``; also:`` the arguments it leaves out."""
    return str(describe(tool, call))


def _sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?" else text + "."


@dataclass(frozen=True, slots=True)
class PendingApproval:
    """An approval request waiting for a decision (as the caller sees it)."""

    id: str
    session_id: str
    call_id: str
    tool: str
    #: the exact arguments of the call (the summary may show long values cut)
    arguments: dict[str, Any]
    summary: str
    explanation: str
    mode: str
    expires_at: float
    #: argument values copied from untrusted content: ``{arg, value, source, match}``
    flagged: tuple[dict[str, Any], ...] = ()
    #: the tools whose untrusted content the session had read when this was asked
    tainted: tuple[str, ...] = ()
    #: a sentence about the flagged values (empty when none are)
    warning: str = ""

    @classmethod
    def from_event(cls, session_id: str, data: dict[str, Any]) -> PendingApproval:
        return cls(
            id=data["approval_id"],
            session_id=session_id,
            call_id=data["call_id"],
            tool=data["tool"],
            arguments=dict(data.get("arguments") or {}),
            summary=data["summary"],
            explanation=data.get("explanation", ""),
            mode=data.get("mode", "user"),
            expires_at=float(data["expires_at"]),
            flagged=tuple(dict(f) for f in data.get("flagged") or () if isinstance(f, dict)),
            tainted=tuple(str(t) for t in data.get("tainted") or ()),
            warning=str(data.get("warning") or ""),
        )

    def question(self) -> str:
        """What the user is asked (``user`` mode) or told (``operator`` mode), warning included."""
        # Always said, even if an argument repeats its words: a value cannot remove it.
        warning = _sentence(self.warning) if self.warning else ""
        if self.mode == "operator":
            ask = f"This action is waiting for review by an operator: {self.summary}"
            return f"{_sentence(ask)} {warning}" if warning else ask
        return " ".join(x for x in (f"Please confirm: {self.summary}.", warning) if x) + (
            " Reply yes or no."
        )


def needs_approval(agent: Agent, tool: Tool, call: ToolCall) -> bool:
    """Whether ``call`` must wait for a person's decision before it runs."""
    policy = agent.approval
    if not policy.enabled:
        return False
    if tool.needs_approval is not None:
        flagged = tool.needs_approval
    else:
        flagged = any(getattr(tool.risk, flag, False) for flag in policy.flags)
    if flagged:
        return True
    if policy.rule is None:
        return False
    try:
        return bool(policy.rule(tool.name, call.arguments))
    except Exception:
        # A rule that cannot decide must not let the call through unasked.
        logger.exception("approval rule failed on %s; asking for approval", tool.name)
        return True


def parse_reply(text: str) -> bool | None:
    """``True`` for a clear yes, ``False`` for a clear no, ``None`` for anything else."""
    if _YES.match(text):
        return True
    if _NO.match(text):
        return False
    return None
