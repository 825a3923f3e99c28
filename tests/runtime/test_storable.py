"""Every tool result and session var is storable; large outputs are cut, not fatal.

- ``to_jsonable`` / ``check_var`` / ``SessionVars`` (``tether.spec.jsonsafe``):
  the documented fallback, and errors that name the path to the bad value.
- ``execute_tool``: a result or var that cannot be stored becomes an error
  result (never an exception after the tool acted); a long result reaches
  the model cut, with its full text (up to the store cap) in ``ToolRun``.
- Through the whole runtime: the session ends ``idle``, vars survive a
  reload from SQLite and from memory, a 1 MB result does not end the turn.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any

import pydantic
import pytest

import tether
from tests.runtime.session_peer import Shared, shared_store
from tether import Agent, ToolContext, ToolFailed
from tether.runtime import Runtime, SessionStatus
from tether.runtime.execute import (
    ERROR_CAP_CHARS,
    STORE_CAP_CHARS,
    ToolRun,
    execute_tool,
    render_output,
)
from tether.spec.approval import ApprovalPolicy
from tether.spec.events import EventType
from tether.spec.jsonsafe import MAX_DEPTH, SessionVars, Unstorable, check_var, to_jsonable
from tether.spec.messages import ToolCall
from tether.spec.tools import Tool
from tether.testing import ScriptedModel, call

WHEN = dt.datetime(2026, 3, 1, 12, 30, tzinfo=dt.UTC)


class Colour(enum.Enum):
    RED = "red"


class Size(enum.IntEnum):
    LARGE = 3


class Level(enum.StrEnum):
    HIGH = "high"


@dataclasses.dataclass
class Line:
    sku: str
    when: dt.date
    tags: frozenset[str] = frozenset()


class Order(pydantic.BaseModel):
    id: uuid.UUID
    total: Decimal
    placed: dt.datetime


# --- to_jsonable: the documented fallback ------------------------------------------------


def test_json_values_pass_unchanged() -> None:
    value = {"a": [1, 2.5, True, None, "x"], "b": {"c": []}}
    assert to_jsonable(value) == value
    big = "x" * 1000
    assert to_jsonable(big) is big  # text is never copied


def test_the_documented_fallback() -> None:
    oid = uuid.UUID("12345678-1234-5678-1234-567812345678")
    value = {
        "when": WHEN,
        "day": dt.date(2026, 3, 1),
        "at": dt.time(9, 5),
        "price": Decimal("19.90"),
        "id": oid,
        "colour": Colour.RED,
        "size": Size.LARGE,
        "level": Level.HIGH,
        "tags": {"b", "a", "c"},
        "mixed": frozenset({1}),
        "pair": (1, "two"),
        "order": Order(id=oid, total=Decimal("5.5"), placed=WHEN),
        "line": Line("sku1", dt.date(2026, 1, 2), frozenset({"z", "y"})),
        "path": Path("/tmp/report.csv"),
        "posix": PurePosixPath("a/b"),
        1: "int key",
        2.5: "float key",
        False: "bool key",
    }
    assert to_jsonable(value) == {
        "when": "2026-03-01T12:30:00+00:00",
        "day": "2026-03-01",
        "at": "09:05:00",
        "price": "19.90",
        "id": "12345678-1234-5678-1234-567812345678",
        "colour": "red",
        "size": 3,
        "level": "high",
        "tags": ["a", "b", "c"],
        "mixed": [1],
        "pair": [1, "two"],
        "order": {
            "id": "12345678-1234-5678-1234-567812345678",
            "total": "5.5",
            "placed": "2026-03-01T12:30:00Z",
        },
        "line": {"sku": "sku1", "when": "2026-01-02", "tags": ["y", "z"]},
        "path": "/tmp/report.csv",
        "posix": "a/b",
        "1": "int key",
        "2.5": "float key",
        "false": "bool key",  # as json.dumps writes it
    }
    # plain types, not subclasses: what a store reads back is what the tool saw
    converted = to_jsonable({"level": Level.HIGH, "size": Size.LARGE})
    assert type(converted["level"]) is str
    assert type(converted["size"]) is int


def test_an_unsortable_set_keeps_its_items() -> None:
    assert sorted(to_jsonable({1, "a"}), key=str) == [1, "a"]


def test_shared_values_are_not_cycles() -> None:
    shared = [1, 2]
    assert to_jsonable({"a": shared, "b": shared}) == {"a": [1, 2], "b": [1, 2]}


def test_the_input_is_never_changed() -> None:
    value = {"when": WHEN, "items": [(1, 2)]}
    to_jsonable(value)
    assert value == {"when": WHEN, "items": [(1, 2)]}


def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "reason", "path"),
    [
        ({"items": [0, 1, {"when": object()}]}, "type object is not JSON", "$.items[2].when"),
        ({"a": {(1, 2): "x"}}, "dict keys must be str (or int, float, bool), got tuple", "$.a"),
        ({None: 1}, "got NoneType", "$"),
        ({1: "a", "1": "b"}, "two keys become the same JSON key '1'", "$"),
        ({"x": math.nan}, "nan is not a JSON number", "$.x"),
        ([1, math.inf], "inf is not a JSON number", "$[1]"),
        ({"blob": b"\x00"}, "bytes is not JSON (decode it to text, or base64-encode it)", "$.blob"),
        ({"f": print}, "is not data", "$.f"),
        ({"odd key": {1}, "k": [lambda: 1]}, "is not data", "$.k[0]"),
        ({"a b": Line}, "is not data", "$['a b']"),  # a dataclass, not an instance
        ({"a b": object()}, "type object is not JSON", "$['a b']"),
        (nested(MAX_DEPTH + 1), f"nested deeper than {MAX_DEPTH} levels", None),
    ],
)
def test_what_cannot_be_stored_is_refused_with_its_path(
    value: Any, reason: str, path: str | None
) -> None:
    with pytest.raises(Unstorable) as info:
        to_jsonable(value)
    assert reason in info.value.reason
    if path is not None:
        assert info.value.path == path
        assert str(info.value).endswith("" if path == "$" else f" at {path}")
    assert isinstance(info.value, TypeError)


def test_depth_up_to_the_limit_is_fine() -> None:
    assert to_jsonable(nested(MAX_DEPTH)) == nested(MAX_DEPTH)


def test_cycles_are_refused() -> None:
    loop: dict[str, Any] = {"a": [1]}
    loop["a"].append(loop)
    with pytest.raises(Unstorable, match="a cycle: this dict contains itself") as info:
        to_jsonable(loop)
    assert info.value.path == "$.a[1]"


def test_a_pydantic_model_that_cannot_dump_is_refused() -> None:
    class Holder(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(arbitrary_types_allowed=True)
        thing: object

    with pytest.raises(Unstorable, match=r"Holder.model_dump\(\) failed") as info:
        to_jsonable({"h": Holder(thing=object())})
    assert info.value.path == "$.h"


# --- check_var and SessionVars -----------------------------------------------------------


def test_check_var_names_the_key() -> None:
    assert check_var("when", WHEN) == "2026-03-01T12:30:00+00:00"
    with pytest.raises(Unstorable) as info:
        check_var("cart", {"items": [object()]})
    assert (info.value.key, info.value.path) == ("cart", "$.items[0]")
    with pytest.raises(Unstorable, match="session var keys must be str, got int"):
        check_var(5, "x")


def test_session_vars_convert_or_refuse_every_way_of_setting() -> None:
    v = SessionVars({"user": "u1"}, when=WHEN)
    assert v == {"user": "u1", "when": "2026-03-01T12:30:00+00:00"}
    assert isinstance(v, dict)

    v["day"] = dt.date(2026, 1, 1)
    assert v["day"] == "2026-01-01"
    with pytest.raises(Unstorable) as info:
        v["bad"] = object()
    assert info.value.key == "bad"
    assert "bad" not in v

    with pytest.raises(Unstorable):  # all or nothing
        v.update({"ok": 1, "bad": {1, object()}})
    assert "ok" not in v
    v.update([("pairs", (1, 2))], kw=Decimal("1.5"))
    assert (v["pairs"], v["kw"]) == ([1, 2], "1.5")

    assert v.setdefault("d", Colour.RED) == "red"
    assert v.setdefault("d", "other") == "red"
    with pytest.raises(Unstorable):
        v.setdefault("e", b"raw")
    assert "e" not in v

    v |= {"merged": WHEN}
    assert v["merged"] == "2026-03-01T12:30:00+00:00"
    assert isinstance(v, SessionVars)
    with pytest.raises(Unstorable):
        v |= {"x": object()}
    with pytest.raises(Unstorable, match="keys must be str"):
        v[1] = "x"  # type: ignore[index]


# --- execute_tool: storable results and vars ---------------------------------------------


@tether.tool(writes=True)
def tuple_keys() -> dict[Any, str]:
    """Return a dict JSON cannot key."""
    return {(1, 2): "pair"}


@tether.tool(reads=True)
def cyclic() -> list[Any]:
    """Return a list that contains itself."""
    value: list[Any] = [1]
    value.append(value)
    return value


@tether.tool(reads=True)
def rich() -> dict[str, Any]:
    """Return values JSON lacks."""
    return {"when": WHEN, "line": Line("s", dt.date(2026, 1, 2)), "tags": {"b", "a"}}


@tether.tool
def remember(ctx: ToolContext, what: str) -> str:
    """Set session vars.

    Args:
        what: Which kind of value to set.
    """
    ctx.vars["user"] = "u1"
    if what == "datetime":
        ctx.vars["when"] = WHEN
    elif what == "object":
        ctx.vars["handle"] = object()
    elif what == "in_place":
        ctx.vars["cart"] = []
        ctx.vars["cart"].append(object())  # slips past the setter; caught on return
    elif what == "refuse":
        raise ToolFailed("the order is already shipped")
    return "ok"


TOOLS: dict[str, Tool] = {t.name: t for t in (tuple_keys, cyclic, rich, remember)}


async def run_tool(tool: Tool, **arguments: Any) -> ToolRun:
    return await execute_tool(
        {tool.name: tool},
        ToolCall("c1", tool.name, arguments),
        session_id="s1",
        step=1,
        user_id=None,
        vars={"seen": True},
        deps=None,
    )


async def test_an_unencodable_result_is_an_error_result_not_an_exception() -> None:
    run = await run_tool(tuple_keys)
    assert run.result.is_error
    assert run.result.content.startswith(
        "error: tuple_keys returned a value that cannot be stored (dict keys must be str"
    )
    assert "it ran, but its result is not available" in run.result.content
    assert "may have acted" in run.result.content  # it writes: not idempotent

    run = await run_tool(cyclic)
    assert run.result.is_error
    assert "a cycle: this list contains itself at $[1]" in run.result.content
    assert "may have acted" not in run.result.content  # a read


async def test_render_output_uses_the_fallback_or_refuses() -> None:
    run = await run_tool(rich)
    assert not run.result.is_error
    assert json.loads(run.result.content) == {
        "when": "2026-03-01T12:30:00+00:00",
        "line": {"sku": "s", "when": "2026-01-02", "tags": []},
        "tags": ["a", "b"],
    }
    assert render_output("text") == "text"
    assert render_output({"x": 1, "y": [1.5, None]}) == '{"x":1,"y":[1.5,null]}'
    with pytest.raises(Unstorable):
        render_output({"x": math.nan})


async def test_vars_are_stored_converted() -> None:
    run = await run_tool(remember, what="datetime")
    assert run.result.content == "ok"
    assert run.vars == {"user": "u1", "when": "2026-03-01T12:30:00+00:00"}


@pytest.mark.parametrize(("what", "why"), [("object", "handle"), ("in_place", "cart")])
async def test_an_unstorable_var_is_an_error_and_the_call_keeps_no_vars(
    what: str, why: str
) -> None:
    run = await run_tool(remember, what=what)
    assert run.result.is_error
    assert run.result.content.startswith(
        f"error: remember set session var '{why}' to a value that cannot be stored: "
    )
    assert "a value of type object is not JSON" in run.result.content
    assert "may have acted" not in run.result.content  # no risk flags: idempotent
    assert run.vars is None  # "user" was set too, and is dropped with the rest


async def test_a_var_changed_in_place_is_recorded_and_the_callers_vars_are_untouched() -> None:
    @tether.tool
    def add_to_cart(ctx: ToolContext, sku: str) -> str:
        """Add an item to the session's cart.

        Args:
            sku: The item.
        """
        ctx.vars["cart"].append(sku)
        return "added"

    before = {"cart": ["a"]}
    run = await execute_tool(
        {"add_to_cart": add_to_cart},
        ToolCall("c1", "add_to_cart", {"sku": "b"}),
        session_id="s1",
        step=1,
        user_id=None,
        vars=before,
        deps=None,
    )
    assert run.vars == {"cart": ["a", "b"]}  # the change reaches the log...
    assert before == {"cart": ["a"]}  # ...and not the session's state behind its back


async def test_a_refusal_keeps_the_vars_it_set() -> None:
    run = await run_tool(remember, what="refuse")
    assert run.result.content == "error: remember could not be done: the order is already shipped"
    assert run.vars == {"user": "u1"}


# --- execute_tool: large outputs ---------------------------------------------------------


def make_big(chars: int, **flags: Any) -> Tool:
    @tether.tool(name=f"dump_{chars}", reads=True, **flags)
    def dump() -> str:
        """Return a very long text."""
        return "0123456789" * (chars // 10)

    return dump


@pytest.mark.parametrize("chars", [1_000_000, 50_000_000])
async def test_a_huge_result_reaches_the_model_cut_and_is_kept_up_to_the_store_cap(
    chars: int,
) -> None:
    tool = make_big(chars)
    run = await run_tool(tool)
    cap = tool.max_output_chars
    note = f"\n[output cut: {tool.name} returned {chars:,} characters; the first {cap:,} are shown]"
    assert run.result.content == "0123456789" * (cap // 10) + note
    assert not run.result.is_error
    assert run.original_chars == chars
    assert run.original is not None
    if chars <= STORE_CAP_CHARS:
        assert run.original == "0123456789" * (chars // 10)
    else:
        stored = f"\n[output cut: {tool.name} returned {chars:,} characters; the first "
        assert run.original.endswith(stored + f"{STORE_CAP_CHARS:,} are stored]")
        assert len(run.original) == STORE_CAP_CHARS + len(stored) + len("1,000,000 are stored]")


async def test_a_result_within_the_cap_is_whole_and_the_cap_is_per_tool() -> None:
    run = await run_tool(make_big(20_000))
    assert len(run.result.content) == 20_000
    assert (run.original, run.original_chars) == (None, 0)

    run = await run_tool(make_big(1_000, max_output_chars=100))
    assert run.result.content.startswith("0123456789" * 10 + "\n[output cut: dump_1000 returned")
    assert (run.original_chars, len(run.original or "")) == (1_000, 1_000)


async def test_a_long_json_result_is_encoded_once_and_cut() -> None:
    @tether.tool(reads=True)
    def rows() -> list[dict[str, Any]]:
        """Return many rows."""
        return [{"id": i, "when": WHEN} for i in range(10_000)]

    run = await run_tool(rows)
    assert run.original is not None
    assert json.loads(run.original)[9_999] == {"id": 9_999, "when": WHEN.isoformat()}
    assert run.result.content.endswith(
        f"characters; the first {rows.max_output_chars:,} are shown]"
    )


async def test_error_messages_are_capped() -> None:
    @tether.tool(reads=True)
    def refuses() -> str:
        """Refuse, at length."""
        raise ToolFailed("no " * 500_000)

    @tether.tool(reads=True)
    def crashes() -> str:
        """Crash, at length."""
        raise RuntimeError("x" * 1_000_000)

    for tool in (refuses, crashes):
        run = await run_tool(tool)
        assert run.result.is_error
        assert len(run.result.content) <= ERROR_CAP_CHARS
        assert "characters cut ..." in run.result.content
    crashed = (await run_tool(crashes)).result.content
    assert crashed.startswith("error: crashes failed unexpectedly (RuntimeError: xxx")
    assert crashed.endswith("xxx). Its result is not available.")  # the guidance survives


# --- through the whole runtime -----------------------------------------------------------


def agent_with(*tools: Tool, script: list[Any]) -> Agent:
    return Agent(
        name="store",
        instructions="Help.",
        models=(ScriptedModel(script),),
        tools=tools,
        approval=ApprovalPolicy(enabled=False),
    )


BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
async def shared(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Shared]:
    """One database of each backend; ``shared.open()`` gives a store on it (a reload)."""
    async with shared_store(request.param, tmp_path) as s:
        yield s


async def test_an_unserialisable_result_ends_the_turn_idle_with_the_error_reported(
    shared: Shared,
) -> None:
    agent = agent_with(tuple_keys, script=[call("tuple_keys"), "I could not read that."])
    async with Runtime(store=await shared.open(), close_store=False) as rt:
        result = await rt.run(agent, "go")
    assert result.ok, result.error
    assert result.status == SessionStatus.IDLE
    finished = [e for e in result.events if e.type == EventType.TOOL_FINISHED]
    assert finished[0].data["is_error"] is True
    assert "returned a value that cannot be stored" in finished[0].data["content"]
    # what was stored reads back the same on every store
    async with Runtime(store=await shared.open(), close_store=False) as rt:
        state = await rt.load(result.session_id)
    assert state.status == SessionStatus.IDLE
    assert state.messages[-2].results[0].content == finished[0].data["content"]


async def test_a_datetime_var_is_stored_as_iso_and_survives_a_reload(shared: Shared) -> None:
    agent = agent_with(remember, script=[call("remember", what="datetime"), "Done."])
    async with Runtime(store=await shared.open(), close_store=False) as rt:
        result = await rt.run(agent, "remember")
        assert result.ok, result.error
        assert result.status == SessionStatus.IDLE
    async with Runtime(store=await shared.open(), close_store=False) as rt:
        state = await rt.load(result.session_id)
    assert state.vars == {"user": "u1", "when": "2026-03-01T12:30:00+00:00"}


async def test_an_unstorable_var_is_refused_the_same_on_every_store(shared: Shared) -> None:
    agent = agent_with(
        remember, script=[call("remember", what="object"), "I could not remember that."]
    )
    async with Runtime(store=await shared.open(), close_store=False) as rt:
        result = await rt.run(agent, "remember")
    assert result.status == SessionStatus.IDLE, result.error
    finished = [e for e in result.events if e.type == EventType.TOOL_FINISHED]
    assert finished[0].data["is_error"] is True
    assert "cannot be stored" in finished[0].data["content"]
    async with Runtime(store=await shared.open(), close_store=False) as rt:
        assert (await rt.load(result.session_id)).vars == {}


@pytest.mark.parametrize("chars", [1_000_000, 50_000_000])
async def test_a_huge_result_does_not_end_the_turn_and_is_kept_to_the_store_cap(
    shared: Shared, chars: int
) -> None:
    big = make_big(chars)
    agent = agent_with(big, script=[call(big.name), "It is long."])
    async with Runtime(store=await shared.open(), close_store=False) as rt:
        result = await rt.run(agent, "dump it")
    assert result.ok, result.error
    assert result.status == SessionStatus.IDLE  # not budget_exhausted
    assert result.output == "It is long."
    async with Runtime(store=await shared.open(), close_store=False) as rt:
        stored = await rt.store.events(result.session_id)
    (finished,) = [e for e in stored if e.type == EventType.TOOL_FINISHED]
    assert len(finished.data["content"]) < 21_000  # what the model saw: cut, with a note
    assert f"returned {chars:,} characters" in finished.data["content"]
    assert finished.data["original_chars"] == chars
    assert STORE_CAP_CHARS <= len(finished.data["original"]) < STORE_CAP_CHARS + 200
