"""Token estimates and the reserve-then-settle ledger behind a session's budget.

Every expected count below is worked out by hand from the rule in
``tether.controls.budget``: one token per 3 characters of the whole
conversation (rounded up once, over all of it), plus 4 per message; tool
calls count their name and their arguments written out (plain strings, so
JSON and ``repr`` give the same length), tool results their content and
name, tool specs their name, description and JSON schema.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

import pytest

from tether.controls.budget import (
    CHARS_PER_TOKEN,
    Reservation,
    TokenLedger,
    estimate_fixed,
    estimate_messages,
    estimate_text,
    estimate_tokens,
)
from tether.spec.messages import Message, ToolCall, ToolResult
from tether.spec.model import ModelRequest, ToolSpec

# --- estimates -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("", 0), ("a", 1), ("abc", 1), ("abcd", 2), ("abcdef", 2), ("abcdefg", 3), ("é" * 9, 3)],
)
def test_estimate_text_is_three_characters_per_token_rounded_up(text: str, tokens: int) -> None:
    assert CHARS_PER_TOKEN == 3
    assert estimate_text(text) == tokens


def test_estimate_messages_adds_four_per_message_and_rounds_the_whole_once() -> None:
    assert estimate_messages([]) == 0
    # "hello world": 11 characters -> 4 tokens, + 4 for the message
    assert estimate_messages([Message.user("hello world")]) == 8
    # 4 + 4 characters -> ceil(8 / 3) = 3 (not 2 + 2), + 2 * 4
    two = [Message.user("abcd"), Message.assistant("abcd")]
    assert estimate_messages(two) == 11
    assert estimate_messages(tuple(two)) == 11


def test_tool_calls_count_their_name_and_arguments_as_json() -> None:
    get = ToolCall("call_1", "get_order", {"order_id": "#W1"})
    # "get_order" (9) + '{"order_id": "#W1"}' (19) = 28 -> 10, + 4
    assert estimate_messages([Message.assistant(tool_calls=[get])]) == 14
    # non-ASCII stays one character each: '{"city": "Zürich"}' is 18, + "weather" (7) = 25 -> 9
    weather = ToolCall("call_2", "weather", {"city": "Zürich"})
    assert estimate_messages([Message.assistant(tool_calls=[weather])]) == 13
    # text and two calls in one message: 5 + 28 + 25 = 58 -> 20, + 4
    both = Message.assistant("Hello", tool_calls=[get, weather])
    assert estimate_messages([both]) == 24


def test_tool_results_count_their_content_and_name() -> None:
    result = ToolResult("call_1", "get_order", '{"status":"pending"}')
    # content (20) + name (9) = 29 -> 10, + 4
    assert estimate_messages([Message(role="tool", results=(result,))]) == 14


SPEC = ToolSpec("get_order", "Look up an order.", {"type": "object"})


def test_estimate_fixed_counts_the_system_prompt_and_tool_schemas() -> None:
    request = ModelRequest(system="You are helpful.", messages=(Message.user("hi"),), tools=(SPEC,))
    # system (16) + "get_order" (9) + description (17) + '{"type": "object"}' (18) = 60 -> 20
    assert estimate_fixed(request) == 20
    # the messages are not part of it
    assert estimate_fixed(ModelRequest(system="You are helpful.", messages=())) == 6


def test_estimate_tokens_is_fixed_plus_messages_and_uses_a_given_fixed() -> None:
    messages = (Message.user("hello world"),)
    request = ModelRequest(system="You are helpful.", messages=messages, tools=(SPEC,))
    assert estimate_tokens(request) == 20 + 8
    # a caller that already measured the fixed part is trusted, not re-measured
    assert estimate_tokens(request, fixed=100) == 100 + 8


def _conversation() -> list[Message]:
    get = ToolCall("call_1", "get_order", {"order_id": "#W1"})
    return [
        Message.user("Where is my order #W1?"),
        Message.assistant("Let me look.", tool_calls=[get]),
        Message(role="tool", results=(ToolResult("call_1", "get_order", '{"status":"sent"}'),)),
        Message.assistant("It has shipped."),
    ]


def test_cached_and_uncached_estimates_agree() -> None:
    messages = _conversation()
    cache: dict[int, tuple[Message, int]] = {}
    uncached = estimate_messages(messages)
    assert estimate_messages(messages, cache) == uncached
    assert estimate_messages(messages, cache) == uncached  # from the cache this time
    # one entry per message, each holding the message itself
    assert len(cache) == len(messages)
    assert all(cache[id(m)][0] is m for m in messages)
    request = ModelRequest(system="sys", messages=tuple(messages), tools=(SPEC,))
    assert estimate_tokens(request, cache={}) == estimate_tokens(request)


def test_the_cache_is_reused_for_the_same_message_object() -> None:
    message = Message.user("hello world")  # really 11 characters
    entry = (message, 300)  # a stored measurement: 300 characters
    cache = {id(message): entry}
    assert estimate_messages([message], cache) == 100 + 4
    assert cache[id(message)] is entry  # read, not replaced


def test_a_recycled_id_is_not_taken_for_the_message_that_had_it() -> None:
    message = Message.user("hello world")
    # The cache still holds another message under this id, as after the first
    # one was freed and its id reused by a new object.
    other = Message.user("x" * 300)
    cache = {id(message): (other, 300)}
    assert estimate_messages([message], cache) == 8
    assert cache[id(message)] == (message, 11)
    assert cache[id(message)][0] is message


# --- the ledger -----------------------------------------------------------------------------


def test_reserve_holds_input_plus_output_and_shrinks_the_output_cap_to_what_is_left() -> None:
    ledger = TokenLedger(1000)
    assert ledger.remaining == 1000
    first = ledger.reserve(100, 500)
    assert first == Reservation(tokens=600, input_estimate=100, max_output=500)
    assert (ledger.held, ledger.spent, ledger.remaining) == (600, 0, 400)
    # 400 left: 150 of input leaves 250 of the 1024 asked for
    second = ledger.reserve(150, 1024)
    assert second == Reservation(tokens=400, input_estimate=150, max_output=250)
    assert (ledger.held, ledger.remaining) == (1000, 0)


def test_reserve_refuses_when_input_plus_min_output_does_not_fit() -> None:
    ledger = TokenLedger(1000, spent=900)
    assert ledger.remaining == 100
    # 37 + 64 = 101 > 100: refused, and nothing is held
    assert ledger.reserve(37, 1024, min_output=64) is None
    assert (ledger.held, ledger.spent, ledger.remaining) == (0, 900, 100)
    # 36 + 64 = 100 fits exactly
    assert ledger.reserve(36, 1024, min_output=64) == Reservation(100, 36, 64)
    assert ledger.remaining == 0
    # nothing left: not even one output token fits
    assert ledger.reserve(0, 10) is None


def test_an_output_cap_below_min_output_needs_the_whole_cap() -> None:
    ledger = TokenLedger(40)
    # asks for 20 output tokens with min_output 64: admitted if all 20 fit (10 + 20 <= 40)
    assert ledger.reserve(10, 20, min_output=64) == Reservation(30, 10, 20)
    # 10 left: 5 + 20 does not fit, and 20 is the least this call accepts
    assert ledger.reserve(5, 20, min_output=64) is None
    assert ledger.held == 30


def test_an_unlimited_ledger_always_admits_the_full_cap() -> None:
    ledger = TokenLedger(None)
    r = ledger.reserve(10**9, 4096, min_output=10**6)
    assert r == Reservation(10**9 + 4096, 10**9, 4096)
    assert ledger.remaining is None
    ledger.settle(r, 10**9 + 5000)  # more than reserved: still fine
    assert ledger.spent == 10**9 + 5000
    assert ledger.reserve(10**9, 4096) is not None


def test_settle_and_cancel_bookkeeping() -> None:
    ledger = TokenLedger(10_000, spent=1_000)
    a = ledger.reserve(500, 1000)
    b = ledger.reserve(200, 300)
    assert a is not None
    assert b is not None
    assert (ledger.held, ledger.spent, ledger.remaining) == (2_000, 1_000, 7_000)
    ledger.settle(a, 900)  # used less than it held: the rest comes back
    assert (ledger.held, ledger.spent, ledger.remaining) == (500, 1_900, 7_600)
    ledger.cancel(b)  # never ran: nothing spent
    assert (ledger.held, ledger.spent, ledger.remaining) == (0, 1_900, 8_100)


def test_a_call_that_used_more_than_it_held_leaves_the_ledger_overdrawn() -> None:
    ledger = TokenLedger(1000)
    r = ledger.reserve(400, 600)
    assert r is not None
    assert r.tokens == 1000
    ledger.settle(r, 1100)  # its input estimate ran 100 low
    assert (ledger.held, ledger.spent, ledger.remaining) == (0, 1100, -100)
    assert ledger.reserve(0, 1) is None


def test_concurrent_misses_add_up() -> None:
    """Two calls in flight together that each use more than they held overshoot by both misses.

    The ledger bounds the overshoot by the sum of the misses of the calls in
    flight at once, not by the largest one.
    """
    ledger = TokenLedger(1000)
    a = ledger.reserve(200, 300)
    b = ledger.reserve(200, 300)
    assert a is not None
    assert b is not None
    assert ledger.remaining == 0
    ledger.settle(a, a.tokens + 60)
    ledger.settle(b, b.tokens + 40)
    assert ledger.spent == 1000 + 60 + 40


# --- 50 concurrent calls against one ledger ----------------------------------------------------


@dataclass
class Outcome:
    granted: list[tuple[Reservation, int]]  # (what each admitted call held, what it used)
    refused: int


async def _race(
    seed: int, *, limit: int, overrun: bool, calls: int = 50
) -> tuple[TokenLedger, Outcome]:
    """``calls`` tasks each reserve, yield a few times, then settle with a random usage.

    Without ``overrun`` a call uses between half and all of its input
    estimate, and part of its output cap. With ``overrun`` it uses its whole
    output cap and 0.9 to 1.3 times its input estimate, as when an estimate
    runs low. Each grant is checked as it happens: a reservation never takes
    the ledger past its limit.
    """
    rng = random.Random(seed)
    ledger = TokenLedger(limit)
    outcome = Outcome([], 0)
    plans = [
        (
            rng.randrange(0, 4),  # yields before reserving
            rng.randrange(200, 900),  # input estimate
            rng.randrange(256, 1025),  # output cap asked for
            rng.randrange(1, 6),  # yields while "calling the model"
            rng.uniform(0.9, 1.3) if overrun else rng.uniform(0.5, 1.0),  # input used / estimate
            1.0 if overrun else rng.random(),  # output used / cap
        )
        for _ in range(calls)
    ]

    async def one(plan: tuple[int, int, int, int, float, float]) -> None:
        before, estimate, cap, during, in_share, out_share = plan
        for _ in range(before):
            await asyncio.sleep(0)
        r = ledger.reserve(estimate, cap, min_output=64)
        if r is None:
            outcome.refused += 1
            return
        assert ledger.spent + ledger.held <= limit
        assert min(64, cap) <= r.max_output <= cap
        for _ in range(during):
            await asyncio.sleep(0)
        used = int(estimate * in_share) + int(r.max_output * out_share)
        ledger.settle(r, used)
        outcome.granted.append((r, used))

    await asyncio.gather(*(one(p) for p in plans))
    return ledger, outcome


SEEDS = range(8)


@pytest.mark.parametrize("seed", SEEDS)
async def test_50_concurrent_calls_within_their_reservations_never_exceed_the_limit(
    seed: int,
) -> None:
    limit = 20_000
    ledger, outcome = await _race(seed, limit=limit, overrun=False)
    assert len(outcome.granted) + outcome.refused == 50
    assert outcome.refused > 0, "the limit should have turned some calls away"
    assert len(outcome.granted) > 1
    assert all(used <= r.tokens for r, used in outcome.granted)
    assert ledger.held == 0
    assert ledger.spent == sum(used for _, used in outcome.granted)
    assert ledger.spent <= limit
    assert ledger.remaining == limit - ledger.spent


@pytest.mark.parametrize("seed", SEEDS)
async def test_50_concurrent_calls_overshoot_by_no_more_than_what_their_estimates_missed(
    seed: int,
) -> None:
    limit = 20_000
    ledger, outcome = await _race(seed, limit=limit, overrun=True)
    assert len(outcome.granted) + outcome.refused == 50
    assert outcome.refused > 0
    assert ledger.held == 0
    assert ledger.spent == sum(used for _, used in outcome.granted)
    misses = [max(used - r.tokens, 0) for r, used in outcome.granted]
    assert any(misses), "this seed should include a call that used more than it held"
    assert ledger.spent <= limit + sum(misses)
    # The bound: over by no more than the largest reservation. It holds
    # here because a miss is at most 30% of an input estimate; the bound the
    # ledger guarantees whatever the misses is the sum above.
    largest = max(r.tokens for r, _ in outcome.granted)
    assert ledger.spent <= limit + largest
