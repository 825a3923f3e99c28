"""``Tool.from_schema``: a tool from a JSON Schema or a pydantic model, run as a decorated one.

The tools here are driven through a real ``Runtime`` with a scripted model:
what a function received, and whether it ran at all, is counted on the
function itself; what the model was told is read from its next request.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import re
import threading
from pathlib import Path
from typing import Any

import pydantic
import pytest

import tether
from tether import Agent, Runtime, Tool, ToolContext
from tether.exceptions import ConfigError, ToolDefinitionError
from tether.runtime import SessionStatus, TurnResult
from tether.spec.approval import ApprovalPolicy
from tether.spec.events import EventType
from tether.testing import ScriptedModel, call

REPO = Path(__file__).resolve().parents[2]

ORDER = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string", "pattern": "^#W[0-9]+$"},
        "quantity": {"type": "integer", "minimum": 1, "default": 1},
        "ship_on": {"type": "string", "format": "date"},
    },
    "required": ["order_id"],
    "additionalProperties": False,
}


class Ran:
    """What each tool's function received, one entry per run."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def names(self) -> list[str]:
        return [n for n, _ in self.calls]


def agent(model: ScriptedModel, *tools: Tool, deps: Any = None, **approval: Any) -> Agent:
    return Agent(
        name="schemas",
        instructions="Help.",
        models=(model,),
        tools=tools,
        deps=(lambda: deps),
        approval=ApprovalPolicy(**approval),
        clarify=False,
    )


async def run(script: list[Any], *tools: Tool, deps: Any = None) -> tuple[TurnResult, Any]:
    model = ScriptedModel(script)
    async with Runtime() as rt:
        result = await rt.run(agent(model, *tools, deps=deps), "go")
    return result, model


def finished(result: TurnResult, name: str) -> list[dict[str, Any]]:
    return [
        e.data
        for e in result.events
        if e.type == EventType.TOOL_FINISHED and e.data["name"] == name
    ]


def seen_by_model(model: ScriptedModel, request: int = 1) -> list[tuple[str, bool]]:
    """The tool results the model was sent in its ``request``-th call."""
    return [(r.content, r.is_error) for r in model.requests[request].messages[-1].results]


# --- JSON Schema -------------------------------------------------------------------------


def schema_tools(ran: Ran) -> tuple[Tool, Tool]:
    def place(order_id: str, quantity: int, ship_on: str = "soon") -> str:
        ran.calls.append(("place", {"order_id": order_id, "quantity": quantity}))
        return f"placed {quantity} x {order_id} on {ship_on}"

    async def aplace(ctx: ToolContext, order_id: str, **rest: Any) -> dict[str, Any]:
        ran.calls.append(("aplace", {"order_id": order_id, **rest}))
        await asyncio.sleep(0)
        return {"order_id": order_id, "user": ctx.deps["user"], "rest": rest}

    return (
        Tool.from_schema("place", "Place an order.", ORDER, place),
        Tool.from_schema("aplace", "Place an order (async).", ORDER, aplace),
    )


def test_a_json_schema_tool_is_declared_as_given() -> None:
    place, aplace = schema_tools(Ran())
    assert place.parameters == ORDER
    assert place.parameters is not ORDER  # a copy: changing the caller's dict later changes nothing
    assert place.spec.parameters == ORDER
    assert place.description == "Place an order."
    assert (place.is_async, place.context_param) == (False, None)
    assert (aplace.is_async, aplace.context_param) == (True, "ctx")
    assert "ctx" not in aplace.parameters["properties"]


async def test_a_sync_json_schema_tool_runs_with_its_arguments_and_the_schema_default() -> None:
    ran = Ran()
    place, _ = schema_tools(ran)
    result, model = await run(
        [call("place", order_id="#W7", ship_on="2025-03-01"), call("place", order_id="#W8"), "Ok."],
        place,
    )
    assert result.status == SessionStatus.IDLE
    # the schema's default (1) filled the left-out quantity; the function's own default
    # for ship_on served the second call
    assert ran.calls == [
        ("place", {"order_id": "#W7", "quantity": 1}),
        ("place", {"order_id": "#W8", "quantity": 1}),
    ]
    assert seen_by_model(model) == [("placed 1 x #W7 on 2025-03-01", False)]
    assert seen_by_model(model, 2) == [("placed 1 x #W8 on soon", False)]
    assert [s.name for s in model.requests[0].tools] == ["place"]
    assert model.requests[0].tools[0].parameters == ORDER


async def test_an_async_json_schema_tool_gets_its_context_and_every_argument() -> None:
    ran = Ran()
    _, aplace = schema_tools(ran)
    result, model = await run(
        [call("aplace", order_id="#W1", quantity=3), "Ok."], aplace, deps={"user": "ava"}
    )
    assert result.status == SessionStatus.IDLE
    assert ran.calls == [("aplace", {"order_id": "#W1", "quantity": 3})]
    assert seen_by_model(model) == [
        ('{"order_id":"#W1","user":"ava","rest":{"quantity":3}}', False)
    ]


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"order_id": 7}, "order_id: 7 is not of type 'string'"),
        ({"quantity": 2}, "(arguments): 'order_id' is a required property"),
        (
            {"order_id": "#W1", "coupon": "FREE"},
            "(arguments): Additional properties are not allowed ('coupon' was unexpected)",
        ),
        ({"order_id": "#W1", "quantity": 0}, "quantity: 0 is less than the minimum of 1"),
        ({"order_id": "W1"}, "order_id: 'W1' does not match '^#W[0-9]+$'"),
        ({"order_id": "#W1", "ship_on": "tomorrow"}, "ship_on: 'tomorrow' is not a 'date'"),
    ],
)
async def test_invalid_arguments_never_reach_the_function(
    arguments: dict[str, Any], problem: str
) -> None:
    ran = Ran()
    tools = schema_tools(ran)
    script: list[Any] = [[call("place", **arguments), call("aplace", **arguments)], "Sorry."]
    result, model = await run(script, *tools, deps={"user": "ava"})
    assert result.status == SessionStatus.IDLE
    assert ran.calls == []
    for name, (content, is_error) in zip(("place", "aplace"), seen_by_model(model), strict=True):
        assert is_error
        assert (
            content == f"error: invalid arguments for {name}: {problem}. Fix them and call again."
        )
        (done,) = finished(result, name)
        assert done["is_error"] is True


async def test_every_problem_is_listed_up_to_ten() -> None:
    ran = Ran()
    many = {
        "type": "object",
        "properties": {f"n{i:02}": {"type": "integer"} for i in range(12)},
    }

    def total(**numbers: int) -> int:
        ran.calls.append(("total", numbers))
        return sum(numbers.values())

    tool = Tool.from_schema("total", "Add up.", many, total)
    bad = {f"n{i:02}": str(i) for i in range(12)}
    _, model = await run([[call("total", n00="1"), call("total", **bad)], "Sorry."], tool)
    assert ran.calls == []
    (one, _), (ten, _) = seen_by_model(model)
    assert (
        one == "error: invalid arguments for total: n00: '1' is not of type 'integer'. "
        "Fix them and call again."
    )
    assert ten.count("is not of type 'integer'") == 10  # of 12 problems, the first 10


async def test_extra_keys_a_schema_allows_reach_only_a_function_that_takes_them() -> None:
    ran = Ran()
    open_schema = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}

    def search(q: str) -> str:
        ran.calls.append(("search", {"q": q}))
        return q

    def anything(**kwargs: Any) -> str:
        ran.calls.append(("anything", kwargs))
        return "ok"

    tools = (
        Tool.from_schema("search", "Search.", open_schema, search),
        Tool.from_schema("anything", "Anything.", open_schema, anything),
    )
    result, _ = await run(
        [[call("search", q="a", page=2), call("anything", q="b", page=3)], "Ok."], *tools
    )
    assert result.status == SessionStatus.IDLE
    assert ran.calls == [("search", {"q": "a"}), ("anything", {"q": "b", "page": 3})]


# --- pydantic models ---------------------------------------------------------------------


class Refund(pydantic.BaseModel):
    order_id: str = pydantic.Field(pattern="^#W[0-9]+$", description="The order.")
    amount: float = pydantic.Field(gt=0)
    note: str | None = None


def model_tools(ran: Ran) -> tuple[Tool, Tool]:
    def refund(args: Refund) -> str:  # the whole model
        ran.calls.append(("refund", {"args": args}))
        return f"refunded {args.amount:.2f} on {args.order_id}"

    async def arefund(ctx: ToolContext, order_id: str, amount: float, note: str | None) -> str:
        ran.calls.append(("arefund", {"order_id": order_id, "amount": amount, "note": note}))
        await asyncio.sleep(0)
        return f"{ctx.deps['user']}: refunded {amount:.2f} on {order_id}"

    return (
        Tool.from_schema("refund", "Refund an order.", Refund, refund),
        Tool.from_schema("arefund", "Refund an order (async).", Refund, arefund),
    )


def test_a_model_tool_shows_the_model_schema_without_titles() -> None:
    refund, arefund = model_tools(Ran())
    expected = Refund.model_json_schema()
    expected.pop("title")
    for prop in expected["properties"].values():
        prop.pop("title")
    assert refund.parameters == arefund.parameters == expected
    assert refund.parameters["required"] == ["order_id", "amount"]
    assert refund.parameters["properties"]["order_id"]["pattern"] == "^#W[0-9]+$"
    assert (refund.is_async, refund.context_param) == (False, None)
    assert (arefund.is_async, arefund.context_param) == (True, "ctx")


async def test_a_sync_model_tool_receives_the_parsed_instance() -> None:
    ran = Ran()
    refund, _ = model_tools(ran)
    result, model = await run([call("refund", order_id="#W2", amount="12.5"), "Ok."], refund)
    assert result.status == SessionStatus.IDLE
    ((name, got),) = ran.calls
    assert name == "refund"
    assert got["args"] == Refund(order_id="#W2", amount=12.5)  # "12.5" parsed to a float
    assert seen_by_model(model) == [("refunded 12.50 on #W2", False)]


async def test_an_async_model_tool_receives_the_fields_by_name() -> None:
    ran = Ran()
    _, arefund = model_tools(ran)
    result, model = await run(
        [call("arefund", order_id="#W3", amount=5), "Ok."], arefund, deps={"user": "bo"}
    )
    assert result.status == SessionStatus.IDLE
    assert ran.calls == [("arefund", {"order_id": "#W3", "amount": 5.0, "note": None})]
    assert seen_by_model(model) == [("bo: refunded 5.00 on #W3", False)]


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"order_id": "#W1", "amount": "lots"}, "amount: Input should be a valid number"),
        ({"amount": 3}, "order_id: Field required"),
        ({"order_id": "#W1", "amount": 0}, "amount: Input should be greater than 0"),
        ({"order_id": "W1", "amount": 3}, "order_id: String should match pattern"),
    ],
)
async def test_a_model_tool_refuses_invalid_arguments_before_running(
    arguments: dict[str, Any], problem: str
) -> None:
    ran = Ran()
    tools = model_tools(ran)
    script: list[Any] = [[call("refund", **arguments), call("arefund", **arguments)], "Sorry."]
    _, model = await run(script, *tools, deps={"user": "bo"})
    assert ran.calls == []
    for name, (content, is_error) in zip(("refund", "arefund"), seen_by_model(model), strict=True):
        assert is_error
        assert content.startswith(f"error: invalid arguments for {name}: {problem}")


async def test_a_model_that_forbids_extra_keys_refuses_them() -> None:
    class Strict(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid")
        q: str

    ran = Ran()

    def search(q: str) -> str:
        ran.calls.append(("search", {"q": q}))
        return q

    strict = Tool.from_schema("search", "Search.", Strict, search)
    assert strict.parameters["additionalProperties"] is False
    _, model = await run([call("search", q="a", page=2), "Sorry."], strict)
    assert ran.calls == []
    ((content, is_error),) = seen_by_model(model)
    assert is_error
    assert "page: Extra inputs are not permitted" in content


# --- the decorator's flags ---------------------------------------------------------------


def test_from_schema_takes_every_flag_of_the_decorator_with_the_same_default() -> None:
    def flags(fn: Any, skip: set[str]) -> dict[str, tuple[Any, Any]]:
        return {
            n: (p.default, p.annotation)
            for n, p in inspect.signature(fn).parameters.items()
            if p.kind is p.KEYWORD_ONLY and n not in skip
        }

    assert flags(Tool.from_schema, set()) == flags(tether.tool, {"name", "description"})


def test_the_flags_make_the_same_tool_as_the_decorator() -> None:
    def policy(result: Any) -> float:
        return 0.01

    kwargs: dict[str, Any] = {
        "irreversible": True,
        "external_comms": True,
        "egress": True,
        "untrusted_output": True,
        "trusted_fields": ("id",),
        "taint": "block",
        "timeout": 4,
        "retry": tether.RetryPolicy(max_retries=1),
        "needs_approval": True,
        "summary": "send {q}",
        "scopes": ("mail:send",),
        "max_output_chars": 99,
        "cost": policy,
    }

    @tether.tool(**kwargs)
    def send(q: str) -> str:
        """Send."""
        return q

    made = Tool.from_schema("send", "Send.", send.parameters, send.fn, **kwargs)
    derived = {"parameters", "validator"}
    for f in dataclasses.fields(Tool):
        if f.name not in derived:
            assert getattr(made, f.name) == getattr(send, f.name), f.name
    assert made.idempotent is False  # writes (from irreversible): not idempotent by default
    assert Tool.from_schema("r", "R.", Refund, _noop, reads=True).idempotent is True


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"timeout": 0}, "tool timeout must be positive"),
        ({"max_output_chars": 0}, "max_output_chars must be a positive whole number"),
        ({"taint": "maybe"}, "tool taint must be 'approve', 'block', 'off' or None"),
        ({"trusted_fields": ("id",)}, "set untrusted_output=True too"),
        ({"cost": -1}, "cost must be a finite number of dollars >= 0"),
    ],
)
def test_bad_flags_are_refused_as_by_the_decorator(flags: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolDefinitionError, match=re.escape(message)):
        Tool.from_schema("x", "X.", ORDER, lambda **kw: None, **flags)


async def test_an_irreversible_schema_tool_waits_for_approval_with_its_summary() -> None:
    ran = Ran()

    def cancel(order_id: str, quantity: int, ship_on: str = "") -> str:
        ran.calls.append(("cancel", {"order_id": order_id}))
        return f"cancelled {order_id}"

    tool = Tool.from_schema(
        "cancel", "Cancel an order.", ORDER, cancel, irreversible=True, summary="cancel {order_id}"
    )
    model = ScriptedModel([call("cancel", order_id="#W5"), "Cancelled."])
    ag = agent(model, tool)
    async with Runtime() as rt:
        first = await rt.run(ag, "cancel #W5")
        assert first.status == SessionStatus.AWAITING_APPROVAL
        assert first.approval is not None
        assert first.approval.summary == "cancel '#W5'"
        assert ran.calls == []  # not run before a person says yes
        done = await rt.decide(ag, first.session_id, first.approval.id, approve=True, by="ava")
    assert done.status == SessionStatus.IDLE
    assert ran.calls == [("cancel", {"order_id": "#W5"})]


async def test_a_schema_tool_times_out_as_declared() -> None:
    runs: list[str] = []

    async def hang(**arguments: Any) -> str:
        runs.append("slow")
        await asyncio.sleep(10)
        return "never"

    def block(q: str) -> str:
        runs.append("blocking")
        stop.wait(5)  # a plain function cannot be cancelled: released below
        return "late"

    stop = threading.Event()
    slow = Tool.from_schema("slow", "Slow.", ORDER, hang, writes=True, timeout=0.05)
    blocking = Tool.from_schema(
        "blocking",
        "Blocking.",
        {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
        block,
        timeout=0.05,
        retry=tether.RetryPolicy(max_retries=0),  # idempotent, but not to be tried again
    )
    model = ScriptedModel([[call("slow", order_id="#W1"), call("blocking", q="x")], "Sorry."])
    async with Runtime() as rt:
        try:
            result = await rt.run(agent(model, slow, blocking), "go")
        finally:
            stop.set()  # lets the thread go, so the runtime closes at once
    assert result.status == SessionStatus.IDLE
    assert runs == ["slow", "blocking"]
    assert seen_by_model(model) == [
        ("error: slow did not finish within 0.05 s. It may or may not have taken effect.", True),
        ("error: blocking did not finish within 0.05 s.", True),
    ]


async def test_a_schema_tool_output_is_cut_at_its_cap() -> None:
    def long(q: str) -> str:
        return "x" * 500

    tool = Tool.from_schema(
        "long",
        "Long.",
        {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
        long,
        max_output_chars=100,
    )
    result, model = await run([call("long", q="a"), "Ok."], tool)
    ((content, is_error),) = seen_by_model(model)
    assert not is_error
    assert content == (
        "x" * 100 + "\n[output cut: long returned 500 characters; the first 100 are shown]"
    )
    (done,) = finished(result, "long")
    assert done["original_chars"] == 500


async def test_a_schema_tool_is_hidden_from_a_caller_without_its_scope() -> None:
    ran = Ran()

    def refund(args: Refund) -> str:
        ran.calls.append(("refund", {}))
        return "refunded"

    tool = Tool.from_schema("refund", "Refund.", Refund, refund, scopes=("refunds",))
    model = ScriptedModel([call("refund", order_id="#W1", amount=1), "I cannot."])
    async with Runtime() as rt:
        result = await rt.run(agent(model, tool), "refund", scopes=["orders"])
    assert [s.name for s in model.requests[0].tools] == []
    assert ran.calls == []
    (done,) = finished(result, "refund")
    assert "may not use refund (it needs: refunds)" in done["content"]


async def test_a_call_refused_for_its_arguments_is_not_charged() -> None:
    ran = Ran()

    def search(q: str) -> str:
        ran.calls.append(("search", {"q": q}))
        return q

    schema = {
        "type": "object",
        "properties": {"q": {"type": "string", "minLength": 2}},
        "required": ["q"],
    }
    tool = Tool.from_schema("search", "Search.", schema, search, reads=True, cost=0.5)
    result, _ = await run([[call("search", q="a"), call("search", q="ab")], "Ok."], tool)
    assert ran.calls == [("search", {"q": "ab"})]
    assert [d["cost"] for d in finished(result, "search")] == [0.0, 0.5]


# --- mistakes found at declaration -------------------------------------------------------


def _noop(**kwargs: Any) -> None:
    return None


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "string"}, "parameters must be a JSON Schema of an object"),
        ({"type": "array", "items": {}}, "parameters must be a JSON Schema of an object"),
        ({"properties": {"q": {"type": "string"}}}, '{"type": "object", "properties"'),
        (
            {"type": "object", "properties": {"q": {"type": "strng"}}},
            "parameters is not a valid JSON Schema: at properties/q/type: 'strng' is not valid",
        ),
        (
            {"type": "object", "required": "q"},
            "parameters is not a valid JSON Schema: at required: 'q' is not of type 'array'",
        ),
        (
            {"type": "object", "properties": {"q": {"enum": {"a", "b"}}}},
            "parameters cannot be sent to the model as JSON",
        ),
    ],
)
def test_a_bad_schema_is_refused_when_declared(schema: dict[str, Any], message: str) -> None:
    with pytest.raises(ToolDefinitionError, match=re.escape(message)) as info:
        Tool.from_schema("bad", "Bad.", schema, _noop)
    assert str(info.value).startswith("tool 'bad': ")
    assert isinstance(info.value, ConfigError)


def test_parameters_of_another_kind_are_refused() -> None:
    with pytest.raises(ToolDefinitionError, match="a JSON Schema \\(a dict\\) or a pydantic model"):
        Tool.from_schema("bad", "Bad.", Refund(order_id="#W1", amount=1), _noop)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "description", "message"),
    [
        ("", "D.", "needs the tool's name as a non-empty string"),
        ("x", "  ", "tool 'x' has no description; the model needs one"),
    ],
)
def test_a_name_and_a_description_are_required(name: str, description: str, message: str) -> None:
    with pytest.raises(ToolDefinitionError, match=re.escape(message)):
        Tool.from_schema(name, description, ORDER, _noop)


def test_a_function_that_does_not_fit_the_schema_is_refused() -> None:
    def takes_id_only(order_id: str) -> None: ...

    def needs_extra(order_id: str, quantity: int, ship_on: str = "", *, extra: int) -> None: ...

    def positional(order_id: str, /) -> None: ...

    def lacks_field(order_id: str, amount: float) -> None: ...

    def clash(order_id: ToolContext, quantity: int, ship_on: str) -> None: ...

    cases: list[tuple[Any, Any, str]] = [
        (ORDER, takes_id_only, "declares 'quantity', 'ship_on' but the function takes no"),
        (ORDER, needs_extra, "needs 'extra', which the schema does not declare"),
        (
            {**ORDER, "properties": {"order_id": {}, "ship_on": {}}, "required": []},
            lambda order_id, ship_on="": None,
            "needs 'order_id', which the schema lets the model leave out",
        ),
        ({**ORDER, "properties": {"order_id": {}}}, positional, "'order_id' is positional-only"),
        (Refund, lacks_field, "declares 'note' but the function takes no argument"),
        (ORDER, clash, "context parameter 'order_id' has the name of an argument"),
    ]
    for schema, fn, message in cases:
        with pytest.raises(ToolDefinitionError, match=re.escape(message)):
            Tool.from_schema("f", "F.", schema, fn)
    with pytest.raises(ToolDefinitionError, match="fn must be a function"):
        Tool.from_schema("f", "F.", ORDER, "not callable")  # type: ignore[arg-type]


# --- the docs ----------------------------------------------------------------------------


class _Orders:
    def __init__(self) -> None:
        self.cancelled: list[tuple[str, str]] = []

    async def cancel(self, order_id: str, *, idempotency_key: str) -> None:
        self.cancelled.append((order_id, idempotency_key))


def _docs_section() -> str:
    text = (REPO / "docs" / "tools.md").read_text()
    start = text.index("## Tools from schemas")
    return text[start : text.index("\n## ", start + 1)]


async def test_the_docs_examples_run_as_described() -> None:
    section = _docs_section()
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    ns: dict[str, Any] = {}
    for block in blocks:
        exec(compile(block, "docs/tools.md", "exec", dont_inherit=True), ns)  # our own docs
    get_order, cancel_order = ns["get_order"], ns["cancel_order"]
    orders = _Orders()
    model = ScriptedModel(
        [
            [call("get_order", order_id="42"), call("get_order", order_id="#W4")],
            call("cancel_order", order_id="#W4", reason="no longer needed"),
            "Cancelled.",
        ]
    )
    ag = agent(model, get_order, cancel_order, deps=type("Deps", (), {"orders": orders})())
    async with Runtime() as rt:
        first = await rt.run(ag, "cancel #W4")
        assert first.approval is not None
        assert first.approval.summary == "cancel order '#W4' ('no longer needed')"
        done = await rt.decide(ag, first.session_id, first.approval.id, approve=True, by="u")
    assert done.output == "Cancelled."
    invalid, looked_up = seen_by_model(model)
    # the message the docs quote, word for word
    quoted = re.search(r"`(error: invalid arguments for get_order: .*?)`", section, re.S)
    assert quoted is not None
    assert invalid == (" ".join(quoted.group(1).split()), True)
    assert looked_up == (
        '{"order_id":"#W4","status":"pending","items":["item 10"]}',  # max_items: the default
        False,
    )
    assert [o for o, _ in orders.cancelled] == ["#W4"]
