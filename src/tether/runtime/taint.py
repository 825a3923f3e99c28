"""Provenance: untrusted content stays data, and what follows it is checked.

Tools marked ``untrusted_output`` (web pages, emails, documents, help-center
articles, database rows customers wrote) return text anyone may have
written. Their results *and their errors* (an exception message quotes the
text that failed to parse) are untrusted. Four things follow (DESIGN.md
guarantee 8):

- **Spotlighting.** The model sees such a result wrapped as quoted data with
  its source, between markers that carry a boundary derived from a secret of
  this runtime and the session id (HMAC-BLAKE2b), so text inside cannot
  guess it to close the block early. Marker text inside is neutralised after
  normalising it (:func:`tether.spec.text.fold`: zero-width characters, soft
  hyphens, fullwidth ``<`` (U+FF1C), case and dash variants do not hide it). The
  runtime preamble says text inside the markers is data, never
  instructions. The stored log keeps the raw result.
- **Taint.** Once a session has read untrusted content, a call to a tool
  whose risk flags are in ``ApprovalPolicy.taint_flags`` (by default
  ``high_stakes``, ``irreversible``, ``external_comms``, ``critical``; add
  ``writes`` for plain writes) needs a person's approval even if the
  agent's policy would not otherwise ask (``taint="approve"``, the default),
  or is not run at all (``"block"``). A tool's own ``taint=`` overrides the
  flags. With ``taint_scope="arguments"`` a covered call is gated only when
  one of its argument values is not traced to a trusted source.
- **Egress.** After untrusted content, a call to an ``egress`` tool (its
  arguments leave the system: a URL fetched, a search query) needs approval
  when an argument carries a value planted by that content
  (``taint_egress="planted"``, the default), ``always``, or never (``off``).
- **Provenance.** Each argument value of a gated call is traced: whole
  values, and the URLs, host names, e-mail addresses and long numbers inside
  them (and the domains a host sits under). A value is *planted* when it
  occurs in untrusted content (exactly, or after
  :func:`~tether.spec.text.fold`, or for an identifier with its separators
  removed) and in no trusted source that gave it first: the user's
  messages, the caller's context, the agent's instructions, results of
  trusted tools (and ``trusted_fields`` of untrusted ones). Errors of trusted
  tools do not count (they echo their arguments), nor does a result read
  after the untrusted copy by a call that was handed the value (a tool that
  echoes it back cannot launder it). Planted values are named in the
  approval request, with their source and whether the copy was exact. Short
  values do not count (a ``13`` occurs in every document): text needs at
  least 5 characters, a number at least 3 digits.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import unicodedata
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass, replace
from typing import Any

from tether.runtime.approvals import NOT_DONE
from tether.runtime.state import SessionState
from tether.spec.agent import Agent
from tether.spec.messages import Message, ToolResult
from tether.spec.text import CONFUSABLES, fold, invisible, strip_invisible
from tether.spec.tools import Tool

__all__ = [
    "Sources",
    "TaintVerdict",
    "carries_untrusted",
    "flagged_arguments",
    "marker_for",
    "neutralise_markers",
    "norm",
    "split_trusted",
    "spotlight",
    "spotlight_messages",
    "taint_gate",
    "tainted_action",
    "unwrap",
]

_OPEN = "<untrusted-data"
_CLOSE = "</untrusted-data"
_NEUTRAL = "[marker removed]"
# A marker as a model might read it: any case, optional slash, spaces, dashes.
_LT = r"(?:<|&lt;?|&#0*60;?|&#x0*3c;?|\\u003c|\\x3c|%3c)"
_SLASH = r"(?:/|\\/|&#0*47;?|&#x0*2f;?|\\u002f|%2f)"
# One optional slash between the two space runs, so the match is linear (a
# '<' before 50,000 spaces does not backtrack).
_MARKER = re.compile(
    rf"{_LT}\s*(?:{_SLASH}\s*)?untrusted[\s\-_\u2010-\u2015\u2212\ufe63]*data", re.IGNORECASE
)


def marker_for(secret: bytes, session_id: str) -> str:
    """The session's boundary: 16 hex characters nobody can derive without ``secret``."""
    return hashlib.blake2b(session_id.encode(), key=secret, digest_size=8).hexdigest()


def neutralise_markers(text: str) -> str:
    """``text`` with every look-alike of a spotlight marker replaced by ``[marker removed]``.

    Matching is on the folded text (no invisible characters, NFKC, case
    folded), mapped back to the original positions, so a ``<\\u200b/UNTRUSTED-data``
    or a fullwidth ``\uff1c/untrusted-data`` is caught like the plain one.
    """
    if text.isascii():
        return _MARKER.sub(_NEUTRAL, text) if "untrusted" in text.lower() else text
    probe = unicodedata.normalize("NFKC", strip_invisible(text)).casefold()
    if "untrusted" not in probe.translate(CONFUSABLES):
        return text
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        if invisible(ch):
            continue
        for c in unicodedata.normalize("NFKC", ch).casefold().translate(CONFUSABLES):
            chars.append(c)
            origin.append(i)
    folded = "".join(chars)
    out: list[str] = []
    last = 0
    for m in _MARKER.finditer(folded):
        start, end = origin[m.start()], origin[m.end() - 1] + 1
        out.append(text[last:start])
        out.append(_NEUTRAL)
        last = end
    out.append(text[last:])
    return "".join(out)


def spotlight(content: str, source: str, marker: str) -> str:
    """``content`` wrapped as quoted data from ``source`` (look-alike markers neutralised)."""
    body = neutralise_markers(content)
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
    untrusted_calls: Set[str] = frozenset(),
) -> list[Message]:
    """``messages`` with the results and errors of ``untrusted_tools`` spotlighted.

    ``untrusted_calls`` adds results by call id (a read tool that did not
    declare its output, whose result the detector flagged). ``cache`` maps
    ``id`` of an original tool message to (original, wrapped), so each
    message is wrapped once per turn.
    """
    out: list[Message] = []
    for m in messages:
        if m.role != "tool" or not any(
            r.name in untrusted_tools or r.call_id in untrusted_calls for r in m.results
        ):
            out.append(m)
            continue
        hit = cache.get(id(m))
        if hit is None or hit[0] is not m:
            results = tuple(
                ToolResult(r.call_id, r.name, spotlight(r.content, r.name, marker), r.is_error)
                if r.name in untrusted_tools or r.call_id in untrusted_calls
                else r
                for r in m.results
            )
            hit = cache[id(m)] = (m, replace(m, results=results))
        out.append(hit[1])
    return out


def split_trusted(content: str, fields: frozenset[str]) -> tuple[str, str]:
    """(trusted, untrusted) text of a result whose ``fields`` the application wrote.

    The result must be a JSON object, or a list of them (nested objects are
    searched too); anything else is untrusted as a whole.
    """
    if not fields:
        return "", content
    try:
        value = json.loads(content)
    except ValueError:
        return "", content
    if not isinstance(value, (dict, list)):
        return "", content
    trusted: list[str] = []
    untrusted: list[str] = []

    def walk(v: Any, keep: list[str]) -> None:
        if isinstance(v, dict):
            for k, item in v.items():
                walk(item, trusted if k in fields else keep)
                if k not in fields:
                    keep.append(str(k))  # a key is data too (a planted key name)
        elif isinstance(v, list):
            for item in v:
                walk(item, keep)
        elif v is not None and not isinstance(v, bool):
            keep.append(str(v))

    walk(value, untrusted)
    return "\n".join(trusted), "\n".join(untrusted)


def carries_untrusted(tool: Tool, result: ToolResult, *, raised: bool) -> bool:
    """Whether ``result`` of ``tool`` brings untrusted text into the session.

    A result of an ``untrusted_output`` tool does, unless every part of it is
    in the tool's ``trusted_fields``; so does an error that quotes what the
    tool raised (``raised``: an exception message quotes the text that
    failed to parse). The runtime's own errors (a timeout, invalid
    arguments, a paused tool) quote nothing the tool read.
    """
    if not tool.untrusted_output:
        return False
    if result.is_error:
        return raised
    return bool(split_trusted(result.content, tool.trusted_fields)[1].strip())


# --- what taint means for one call ----------------------------------------------


def tainted_action(agent: Agent, tool: Tool) -> str | None:
    """What taint means for a call to ``tool``: ``approve``, ``block`` or ``None`` (nothing).

    The tool's own ``taint=`` wins; otherwise the policy's ``taint`` applies
    to tools carrying one of its ``taint_flags``.
    """
    mode = tool.taint
    if mode is None:
        policy = agent.approval
        if not any(getattr(tool.risk, flag, False) for flag in policy.taint_flags):
            return None
        mode = policy.taint
    return None if mode == "off" else mode


@dataclass(frozen=True, slots=True)
class TaintVerdict:
    """The taint gate's answer for one call: ``approve``, ``block`` or ``None`` (run it)."""

    action: str | None
    #: why, for the model (block) and the approval request
    reason: str = ""


def taint_gate(
    agent: Agent, tool: Tool, arguments: Mapping[str, Any], st: SessionState
) -> TaintVerdict:
    """Whether a call to ``tool`` with ``arguments`` may run in a tainted session."""
    policy = agent.approval
    action = tainted_action(agent, tool)
    sources: Sources | None = None
    if action is not None and policy.taint_scope == "arguments":
        sources = Sources.of(agent, st)
        if not sources.untraced(arguments):
            action = None  # every value came from the user or a trusted tool
    if action is not None:
        return TaintVerdict(action, "untrusted content was read")
    if not tool.risk.egress or policy.taint_egress == "off":
        return TaintVerdict(None)
    if policy.taint_egress == "always":
        return TaintVerdict("approve", "its arguments leave the system")
    sources = sources or Sources.of(agent, st)
    if sources.planted(arguments):
        return TaintVerdict("approve", "its arguments carry values from untrusted content")
    return TaintVerdict(None)


# --- provenance ------------------------------------------------------------------

_URL = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.-]*://|www\.)[^\s<>\"'`()\[\]{}]+")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_HOST = re.compile(r"(?<![\w.-])(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_]{2,}(?![\w-])")
_LONG_NUMBER = re.compile(r"(?<![\w])\+?\d(?:[\d \-./]*\d){5,}(?![\w])")
_DIGITS_ONLY = re.compile(r"[\d.,]+")


def norm(text: str) -> str:
    """``text`` folded for comparison (see :func:`tether.spec.text.fold`)."""
    return fold(text)


@functools.lru_cache(maxsize=512)
def _folded(text: str) -> str:
    return fold(text)


def _contains(hay: str, needle: str) -> bool:
    """``needle`` in ``hay``; a number only where no digit touches it (``250`` not in ``1250``)."""
    if _DIGITS_ONLY.fullmatch(needle):
        return re.search(rf"(?<!\d){re.escape(needle)}(?![\d])", hay) is not None
    return needle in hay


def _leaves(value: Any, path: str, *, short: bool = False) -> Iterator[tuple[str, str]]:
    """(path, text) of each significant scalar in an argument value (``short``: every one)."""
    if isinstance(value, dict):
        for k, v in value.items():
            where = f"{path}.{k}" if path else str(k)
            if _significant(fold(str(k))):
                yield f"{where} (key)", str(k)  # a key is a value the model chose too
            yield from _leaves(v, where, short=short)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{path}[{i}]", short=short)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, (int, float)):
        text = f"{value:.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
        if short or sum(c.isdigit() for c in text) >= 3:
            yield path, text
    else:
        text = str(value)
        if (short and text.strip()) or _significant(fold(text)):
            yield path, text


def _significant(folded: str) -> bool:
    digits = sum(c.isdigit() for c in folded)
    return len(folded) >= 5 or (digits >= 3 and digits == len(folded.replace(".", "")))


def _atoms(text: str) -> list[str]:
    """The parts of one value worth tracing: itself, then URLs, hosts, e-mails, long numbers."""
    atoms = [text]
    if len(text) < 8:
        return atoms
    text = text.translate(_DOTS)
    found: list[str] = []
    for pattern in (_URL, _EMAIL, _HOST, _LONG_NUMBER):
        for m in pattern.finditer(text):
            atom = m.group(0).rstrip(".,;:!?")
            found.append(atom)
            if pattern is _URL:
                found.extend(_hosts_of_url(atom))
            elif pattern is _EMAIL:
                found.extend(_host_forms(atom.rsplit("@", 1)[1]))
            elif pattern is _HOST:
                found.extend(_host_forms(atom)[1:])
    for a in found:
        if a not in atoms and _significant(fold(a)):
            atoms.append(a)
    return atoms


_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


def _hosts_of_url(url: str) -> list[str]:
    """The host of ``url`` as a browser reads it (after any ``user@``), in every form."""
    try:
        host = urllib.parse.urlsplit(url if "://" in url else f"http://{url}").hostname
    except ValueError:
        return []
    return _host_forms(host) if host else []


def _host_forms(host: str) -> list[str]:
    """``host``, its punycode or Unicode twin, and the domains it sits under."""
    host = host.rstrip(".").lower()
    forms = [host]
    try:
        twin = host.encode("idna").decode("ascii") if not host.isascii() else ""
        if host.isascii() and "xn--" in host:
            twin = host.encode("ascii").decode("idna")
    except UnicodeError:
        twin = ""
    if twin and twin != host:
        forms.append(twin)
    for h in list(forms):
        forms.extend(_parents(h))
    return forms


# Second-level labels under which anyone can register a name (``co.uk``): never a
# planted domain on their own.
_SHARED_SLD = frozenset({"co", "com", "org", "net", "gov", "ac", "edu", "ne", "or", "go"})


def _parents(host: str) -> list[str]:
    """The domains ``host`` sits under (``a.b.evil.example`` -> ``b.evil.example``,
    ``evil.example``): a planted ``evil.example`` reaches any name under it."""
    labels = host.lower().split(".")
    out = []
    for i in range(1, len(labels) - 1):
        rest = labels[i:]
        if len(rest) == 2 and rest[0] in _SHARED_SLD:
            break
        out.append(".".join(rest))
    return out


def _match(atom: str, text: str) -> str | None:
    """How ``atom`` occurs in ``text``: ``exact``, ``normalised``, or ``None``.

    Normalised: after :func:`~tether.spec.text.fold` (case, spaces, invisible
    characters, compatibility forms); for an identifier (a code with digits:
    an IBAN, a gift card, an order number) also with spaces, dashes, dots,
    slashes and underscores removed, so ``LU28 0019 4006`` is
    ``LU2800194006`` and ``GC ATTK 7741`` is ``GC-ATTK-7741``.
    """
    if atom in text:
        return "exact"
    folded = _folded(atom)
    if _contains(_folded(text), folded):
        return "normalised"
    key = _compact(folded)
    if len(key) >= 6 and any(c.isdigit() for c in key) and key in _compact_text(text):
        return "normalised"
    return None


_SEPARATORS = re.compile(r"[\s\-_./\u2010-\u2015\u2212]+")


def _compact(folded: str) -> str:
    return _SEPARATORS.sub("", folded)


@functools.lru_cache(maxsize=256)
def _unescaped(text: str) -> str:
    """``text`` with JSON escapes decoded (``\\u00e9`` read as the letter), if it has any."""
    if "\\u" not in text and "\\/" not in text:
        return ""
    try:
        return json.dumps(json.loads(text), ensure_ascii=False)
    except ValueError:
        return ""


@functools.lru_cache(maxsize=512)
def _compact_text(text: str) -> str:
    return _compact(_folded(text))


@dataclass(frozen=True, slots=True)
class Sources:
    """The session's text by trust, in the order it was read (see the module docstring)."""

    #: (tool, raw text, position): untrusted content, in the order read
    untrusted: tuple[tuple[str, str, int], ...]
    #: (text, position, call arguments as text): trusted content; position -1 for what
    #: is always trusted (the user's words, context, instructions)
    trusted: tuple[tuple[str, int, str], ...]

    @classmethod
    def of(cls, agent: Agent, st: SessionState) -> Sources:
        tools = {t.name: t for t in agent.tools}
        trusted: list[tuple[str, int, str]] = []
        if agent.instructions:
            trusted.append((agent.instructions, -1, ""))
        if st.context:
            trusted.append((json.dumps(st.context, ensure_ascii=False, default=str), -1, ""))
        trusted.extend((text, -1, "") for text in st.compressed_user_text)
        for t in agent.tools:  # the developer's words: enum choices, defaults
            trusted.append((json.dumps(t.parameters, ensure_ascii=False), -1, ""))
        judged = {(name, position) for name, _, position in st.untrusted}
        asked: dict[str, str] = {}  # call id -> its arguments, as text
        for position, m in enumerate(st.messages):
            if m.role == "assistant":
                for c in m.tool_calls:
                    asked[c.id] = json.dumps(c.arguments, ensure_ascii=False, default=str)
            elif m.role == "user" and not (m.metadata.get("runtime") or m.metadata.get("summary")):
                # the user's own words (not the runtime's notes, not a model-written summary)
                trusted.append((m.text, -1, ""))
            elif m.role == "tool":
                for r in m.results:
                    tool = tools.get(r.name)
                    if r.is_error or r.content.startswith(NOT_DONE):
                        continue  # errors and declines echo their arguments: no proof
                    if (r.name, position) in judged and (tool is None or not tool.trusted_fields):
                        continue  # the detector found instructions in it (an undeclared read)
                    if tool is None or not tool.untrusted_output:
                        trusted.append((r.content, position, asked.get(r.call_id, "")))
                    elif tool.trusted_fields:
                        part = split_trusted(r.content, tool.trusted_fields)[0]
                        if part:
                            trusted.append((part, position, asked.get(r.call_id, "")))
        untrusted: list[tuple[str, str, int]] = []
        for name, content, position in st.untrusted:
            tool = tools.get(name)
            if tool is not None and tool.trusted_fields:
                content = split_trusted(content, tool.trusted_fields)[1]
            untrusted.append((name, content, position))
        return cls(tuple(untrusted), tuple(trusted))

    def _first_untrusted(self, atom: str) -> tuple[str, str, int] | None:
        """(source, ``exact``/``normalised``, position) of the first untrusted copy of ``atom``."""
        for name, content, position in self.untrusted:
            how = _match(atom, content) or _match(atom, _unescaped(content))
            if how is not None:
                return name, how, position
        return None

    def _trusted_before(self, atom: str, position: int | None) -> bool:
        """Whether a trusted source gave ``atom`` without having been handed it.

        A trusted result read after the untrusted copy counts only if the
        call that produced it was not given the value (then it cannot be
        echoing it back).
        """
        for text, at, args in self.trusted:
            if not (at < 0 or position is None or at < position or _match(atom, args) is None):
                continue
            if _match(atom, text) is not None:
                return True
        return False

    def planted(self, arguments: Mapping[str, Any]) -> list[dict[str, str]]:
        """``[{arg, value, source, match}]``: argument values planted by untrusted content."""
        found: list[dict[str, str]] = []
        for path, text in _leaves(arguments, ""):
            for atom in _atoms(text):
                first = self._first_untrusted(atom)
                if first is None or self._trusted_before(atom, first[2]):
                    continue
                found.append({"arg": path, "value": atom, "source": first[0], "match": first[1]})
                break
        return found

    def untraced(self, arguments: Mapping[str, Any]) -> list[str]:
        """Paths of argument values not traced to a trusted source (planted or composed).

        Short values count here (an order ``#W9`` or an amount ``80`` copied
        from a page must not pass as the user's).
        """
        out: list[str] = []
        for path, text in _leaves(arguments, "", short=True):
            first = self._first_untrusted(text)
            if not self._trusted_before(text, None if first is None else first[2]):
                out.append(path)
        return out


def flagged_arguments(
    arguments: Mapping[str, Any],
    untrusted: Sequence[tuple[str, str]],
    trusted: Iterable[str] = (),
) -> list[dict[str, str]]:
    """Argument values planted by ``untrusted`` (source, text) and absent from ``trusted``.

    A convenience over :class:`Sources` for text outside a session (all of
    ``untrusted`` read before anything, ``trusted`` always trusted).
    """
    sources = Sources(
        tuple((name, text, 0) for name, text in untrusted),
        tuple((text, -1, "") for text in trusted),
    )
    return sources.planted(arguments)
