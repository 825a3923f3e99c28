"""Token budgets: estimate a call before it is made, reserve, then settle to what it used.

No tokenizer is downloaded (DESIGN.md: nothing from a model hub at run
time), so a request's input is *estimated* from its characters:
:func:`estimate_tokens` counts one token per 3 characters of text, JSON
arguments and tool schemas, plus a few per message. English prose runs near
4 characters per token and JSON near 3, so the estimate errs high, which is
the safe side for a budget; the provider's reported usage then settles it.

:class:`TokenLedger` is the reserve-then-settle account behind a session's
budget. ``reserve`` admits a call only if its reservation (estimated input
plus output cap) fits in what is left after what was spent *and* what other
calls still hold; ``settle`` replaces the reservation by the real usage. Both
run without an ``await`` in between, so under asyncio they are atomic: 50
concurrent calls cannot all see the same room. What the ledger cannot
prevent is a call using more than it reserved (an estimate that ran low):
the budget holds to within the misses of the calls in flight together. A
session's calls run one at a time, so there it is one call's miss at most,
never more than that call's reservation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from tether.spec.messages import Message
from tether.spec.model import ModelRequest

__all__ = [
    "CHARS_PER_TOKEN",
    "Reservation",
    "TokenLedger",
    "estimate_fixed",
    "estimate_messages",
    "estimate_text",
    "estimate_tokens",
]

#: characters per token in estimates: low on purpose (prose is ~4, JSON ~3)
CHARS_PER_TOKEN = 3
_PER_MESSAGE = 4  # role markers and separators a provider adds around each message


def estimate_text(text: str) -> int:
    """Estimated tokens of ``text`` (rounded up)."""
    return -(-len(text) // CHARS_PER_TOKEN)


_encode = json.JSONEncoder(ensure_ascii=False, default=str).encode


def _message_chars(m: Message) -> int:
    n = len(m.text)
    for c in m.tool_calls:
        # repr() is as long as the JSON to within a few quotes, at a fraction of the cost
        n += len(c.name) + len(repr(c.arguments))
    for r in m.results:
        n += len(r.content) + len(r.name)
    return n


def estimate_messages(
    messages: tuple[Message, ...] | list[Message],
    cache: dict[int, tuple[Message, int]] | None = None,
) -> int:
    """Estimated input tokens of a conversation (no system prompt, no tools).

    ``cache`` (keyed by ``id`` of each message, holding the message so the id
    stays its own) spares re-measuring the messages of earlier steps.
    """
    chars = 0
    for m in messages:
        if cache is None:
            chars += _message_chars(m)
            continue
        hit = cache.get(id(m))
        if hit is None or hit[0] is not m:
            hit = cache[id(m)] = (m, _message_chars(m))
        chars += hit[1]
    return -(-chars // CHARS_PER_TOKEN) + _PER_MESSAGE * len(messages)


def estimate_fixed(request: ModelRequest) -> int:
    """Estimated tokens of what every call of an agent repeats: system prompt and tools."""
    chars = len(request.system)
    for t in request.tools:
        chars += len(t.name) + len(t.description) + len(_encode(t.parameters))
    return -(-chars // CHARS_PER_TOKEN)


def estimate_tokens(
    request: ModelRequest,
    *,
    fixed: int | None = None,
    cache: dict[int, tuple[Message, int]] | None = None,
) -> int:
    """Estimated input tokens of ``request``: system prompt, messages and tool schemas.

    ``fixed`` is :func:`estimate_fixed` of the same system prompt and tools,
    when the caller already has it.
    """
    if fixed is None:
        fixed = estimate_fixed(request)
    return fixed + estimate_messages(request.messages, cache)


@dataclass(frozen=True, slots=True)
class Reservation:
    """Tokens held for one call until it is settled."""

    tokens: int
    input_estimate: int
    #: the output cap the call may use (shrunk to fit what was left)
    max_output: int


class TokenLedger:
    """A token account: ``limit`` (``None``: unlimited), ``spent``, and what calls hold.

    ``reserve(input_estimate, max_output, min_output)`` returns a
    :class:`Reservation` whose ``max_output`` is the call's output cap cut to
    what is left (never below ``min_output``), or ``None`` when not even
    ``input_estimate + min_output`` fits. ``settle(reservation, used)``
    releases the hold and adds what the call really used.
    """

    __slots__ = ("held", "limit", "spent")

    def __init__(self, limit: int | None, spent: int = 0) -> None:
        self.limit = limit
        self.spent = spent
        self.held = 0

    @property
    def remaining(self) -> int | None:
        """Tokens neither spent nor held (``None`` when unlimited; may be negative)."""
        if self.limit is None:
            return None
        return self.limit - self.spent - self.held

    def reserve(
        self, input_estimate: int, max_output: int, *, min_output: int = 1
    ) -> Reservation | None:
        room = self.remaining
        if room is None:
            out = max_output
        else:
            out = min(max_output, room - input_estimate)
            if out < min(min_output, max_output):
                return None
        r = Reservation(input_estimate + out, input_estimate, out)
        self.held += r.tokens
        return r

    def settle(self, reservation: Reservation, used: int) -> None:
        """Release ``reservation`` and record ``used`` tokens (the provider's count)."""
        self.held -= reservation.tokens
        self.spent += used

    def cancel(self, reservation: Reservation) -> None:
        """Release a reservation whose call never ran (it failed before any usage)."""
        self.held -= reservation.tokens
