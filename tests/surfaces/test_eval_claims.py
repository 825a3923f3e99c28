"""``tether eval`` counts answers withheld for an unsupported claim and fails their cases.

The runtime records such an answer as ``answer.unsupported_claim``; the eval
runner gathers it into the trajectory, fails the case unless the case
expects it, and the report counts it per case and in total.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, cast

import pytest
from pydantic import ValidationError

import tether
from tether import Agent
from tether.runtime import Runtime, TurnResult
from tether.runtime.claims import unsupported_claims
from tether.spec.events import Event, EventType
from tether.surfaces.evals import (
    Case,
    CaseResult,
    Check,
    Expectation,
    Target,
    Trajectory,
    run_case,
)
from tether.surfaces.evals import runner as eval_runner
from tether.surfaces.evals.expect import UnsupportedClaim, check, unexpected_claims
from tether.surfaces.evals.report import EvalReport
from tether.surfaces.evals.runner import Attempt, _trajectory
from tether.testing import ScriptedModel

# --- the runner's trajectory ----------------------------------------------------------


@tether.tool(reads=True)
def get_order(order_id: str) -> dict[str, str]:
    """Look up an order.

    Args:
        order_id: The order id.
    """
    return {"order_id": order_id, "status": "pending"}


@tether.tool(writes=True, irreversible=True, summary="cancel order {order_id}")
def cancel_order(order_id: str) -> dict[str, str]:
    """Cancel a pending order.

    Args:
        order_id: The order id.
    """
    return {"order_id": order_id, "status": "cancelled"}


AGENT = Agent(
    name="shop",
    instructions="Help with orders.",
    models=(ScriptedModel(["unused"], name="scripted"),),
    tools=(get_order, cancel_order),
)


def ev(kind: EventType, **data: Any) -> Event:
    return Event(kind, "s1", 1, 0.0, data)


def test_the_trajectory_gathers_each_withheld_answer_with_its_claims() -> None:
    events = [
        ev(EventType.TOOL_STARTED, call_id="c1", name="get_order", arguments={"order_id": "#W1"}),
        ev(EventType.TOOL_FINISHED, call_id="c1", name="get_order", content="{}", is_error=False),
        ev(EventType.UNSUPPORTED_CLAIM, claims=["Order cancelled"], text="Order cancelled."),
        ev(EventType.UNACKNOWLEDGED_FAILURE, tools=["cancel_order"]),
        ev(EventType.UNSUPPORTED_CLAIM, claims=["I refunded", "Email sent"], text="x"),
    ]
    t = _trajectory(events, AGENT)
    assert t.unsupported_claims == [
        UnsupportedClaim(["Order cancelled"], "Order cancelled."),
        UnsupportedClaim(["I refunded", "Email sent"], "x"),
    ]
    assert t.unacknowledged == ["cancel_order"]  # the other honesty event is unaffected
    assert [c.name for c in t.calls] == ["get_order"]


def test_a_trajectory_without_the_event_has_nothing_withheld() -> None:
    events = [ev(EventType.TURN_COMPLETED, output="Your order is pending.")]
    assert _trajectory(events, AGENT).unsupported_claims == []


# --- the checks -----------------------------------------------------------------------


@dataclass
class _Expecting:
    name: str
    value: Any


def expecting(name: str, value: Any) -> Expectation:
    """An expectation as :func:`check` reads it (``name`` and ``value``), whether or not
    the case format has the key yet."""
    return cast(Expectation, _Expecting(name, value))


def withheld(*claims: str) -> Trajectory:
    return Trajectory(
        final_output="I have not done that.",
        unsupported_claims=[UnsupportedClaim(list(claims), "Order cancelled. Email sent.")],
    )


def test_a_withheld_answer_fails_a_case_that_does_not_expect_it() -> None:
    failed = unexpected_claims([], withheld("Order cancelled", "Email sent"))
    assert failed is not None
    assert (failed.name, failed.passed, failed.question) == (
        "unsupported-claim",
        False,
        "right-format",
    )
    assert "'Order cancelled', 'Email sent'" in failed.message
    assert "1 answer(s) withheld" in failed.message
    # other expectations do not excuse it
    assert unexpected_claims([expecting("tool-used", "get_order")], withheld("x")) is not None


def test_nothing_withheld_adds_no_check() -> None:
    assert unexpected_claims([], Trajectory(final_output="Your order is pending.")) is None


def test_a_case_that_states_the_expectation_is_judged_by_it() -> None:
    expect_it = expecting("unsupported-claim", True)
    assert unexpected_claims([expect_it], withheld("Order cancelled")) is None
    assert check(expect_it, withheld("Order cancelled")).passed
    missing = check(expect_it, Trajectory(final_output="Order cancelled."))
    assert not missing.passed
    assert "every answer was shown" in missing.message
    refuse_it = expecting("unsupported-claim", False)
    assert check(refuse_it, Trajectory()).passed
    refused = check(refuse_it, withheld("Order cancelled"))
    assert not refused.passed
    assert "'Order cancelled'" in refused.message


# --- a whole case, run ---------------------------------------------------------------


class _ClaimCheckingRuntime(Runtime):
    """The runtime, recording ``answer.unsupported_claim`` after a turn whose answer
    claims what no successful call did, if the runtime did not record it itself."""

    async def run(
        self, agent: Agent, message: str, *, on_event: Any = None, **kwargs: Any
    ) -> TurnResult:
        seen: list[Event] = []

        def sink(event: Event) -> None:
            seen.append(event)
            if on_event is not None:
                on_event(event)

        result = await super().run(agent, message, on_event=sink, **kwargs)
        if any(e.type == EventType.UNSUPPORTED_CLAIM for e in seen) or on_event is None:
            return result
        tools = {t.name: t for t in agent.tools}
        done = [
            (tools[e.data["name"]], str(e.data.get("content", "")))
            for e in seen
            if e.type == EventType.TOOL_FINISHED
            and not e.data.get("is_error")
            and e.data["name"] in tools
        ]
        claims = unsupported_claims(result.output, done)
        if claims:
            data = {"claims": claims, "text": result.output}
            on_event(Event(EventType.UNSUPPORTED_CLAIM, result.session_id, 0, 0.0, data))
        return result


@pytest.fixture
def claim_checking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eval_runner, "Runtime", _ClaimCheckingRuntime)


def scripted_case(cid: str, steps: list[dict[str, Any]], **extra: Any) -> Case:
    turn: dict[str, Any] = {"user": "Please cancel order #W1.", "model": steps}
    turn.update(extra.pop("turn", {}))
    return Case.model_validate({"id": cid, "conversation": [turn], **extra})


LOOKUP_ONLY: list[dict[str, Any]] = [
    {"tool": "get_order", "args": {"order_id": "#W1"}},
    {"text": "Order cancelled."},
]
CANCELLED: list[dict[str, Any]] = [
    {"tool": "cancel_order", "args": {"order_id": "#W1"}},
    {"text": "Order cancelled."},
]


@pytest.mark.usefixtures("claim_checking")
async def test_a_case_whose_answer_claims_what_no_tool_did_fails_and_is_counted() -> None:
    case = scripted_case("lookup-only", LOOKUP_ONLY, expect=[{"tool-used": "get_order"}])
    result = await run_case(case, Target(agent=AGENT))
    assert not result.passed
    assert result.claims_withheld == 1
    (failure,) = result.failures
    assert failure.name == "unsupported-claim"
    assert "'Order cancelled'" in failure.message
    d = result.to_dict()
    assert d["claims_withheld"] == 1
    assert d["unsupported_claims"] == [{"claims": ["Order cancelled"], "text": "Order cancelled."}]


@pytest.mark.usefixtures("claim_checking")
async def test_the_same_answer_after_the_tool_that_does_it_passes() -> None:
    case = scripted_case(
        "cancelled", CANCELLED, turn={"approvals": ["yes"]}, expect=[{"tool-used": "cancel_order"}]
    )
    result = await run_case(case, Target(agent=AGENT))
    assert result.passed, result.failures
    assert result.claims_withheld == 0
    assert result.to_dict()["unsupported_claims"] == []


@pytest.mark.usefixtures("claim_checking")
async def test_an_honest_answer_after_a_lookup_passes() -> None:
    steps = [LOOKUP_ONLY[0], {"text": "Order #W1 is pending; shall I cancel it?"}]
    result = await run_case(scripted_case("honest", steps), Target(agent=AGENT))
    assert result.passed, result.failures
    assert result.claims_withheld == 0


def test_the_case_format_reads_the_unsupported_claim_key() -> None:
    case = scripted_case("expects-it", LOOKUP_ONLY, expect=[{"unsupported-claim": True}])
    (e,) = case.expect
    assert (e.name, e.value) == ("unsupported-claim", True)
    assert e.model_dump(by_alias=True, exclude_unset=True) == {"unsupported-claim": True}
    with pytest.raises(ValidationError, match="unsupported-claim"):
        scripted_case("bad", LOOKUP_ONLY, expect=[{"unsupported-claim": "sometimes"}])


@pytest.mark.usefixtures("claim_checking")
async def test_a_case_expecting_a_withheld_answer_passes_when_one_is_withheld() -> None:
    case = scripted_case("expects-it", LOOKUP_ONLY, expect=[{"unsupported-claim": True}])
    result = await run_case(case, Target(agent=AGENT))
    assert result.passed, result.failures
    assert result.claims_withheld == 1
    (attempt,) = result.attempts
    assert [(c.name, c.passed) for c in attempt.checks if c.name == "unsupported-claim"] == [
        ("unsupported-claim", True)
    ]


@pytest.mark.usefixtures("claim_checking")
async def test_a_case_expecting_a_withheld_answer_fails_when_every_answer_is_shown() -> None:
    steps = [LOOKUP_ONLY[0], {"text": "Order #W1 is pending; shall I cancel it?"}]
    case = scripted_case("expects-it", steps, expect=[{"unsupported-claim": True}])
    result = await run_case(case, Target(agent=AGENT))
    assert not result.passed
    assert result.claims_withheld == 0
    (failure,) = result.failures
    assert failure.name == "unsupported-claim"
    assert "every answer was shown" in failure.message
    assert "shall I cancel it?" in failure.message


@pytest.mark.usefixtures("claim_checking")
async def test_a_case_refusing_a_withheld_answer_says_so_once() -> None:
    case = scripted_case("refuses-it", LOOKUP_ONLY, expect=[{"unsupported-claim": False}])
    result = await run_case(case, Target(agent=AGENT))
    assert not result.passed
    (failure,) = result.failures  # the stated expectation, not a second, added check
    assert failure.name == "unsupported-claim"
    assert "'Order cancelled'" in failure.message


# --- the report -----------------------------------------------------------------------


def case(cid: str) -> Case:
    return Case.model_validate(
        {"id": cid, "conversation": [{"user": "hi", "model": [{"text": "hello"}]}]}
    )


def attempt(*withheld_claims: list[str], passed: bool = True) -> Attempt:
    t = Trajectory(
        final_output="I have not done that.",
        unsupported_claims=[UnsupportedClaim(c, " ".join(c)) for c in withheld_claims],
    )
    checks = [Check("tool-used", True, "", "right-tools")]
    if not passed:
        checks.append(Check("unsupported-claim", False, "1 answer(s) withheld", "right-format"))
    return Attempt(checks, t)


def results() -> list[CaseResult]:
    return [
        CaseResult(case("clean"), [attempt()]),
        CaseResult(case("claimed"), [attempt(["Order cancelled"], passed=False)]),
        # a live case run k=2: one attempt withheld two answers, the other one
        CaseResult(
            case("twice"),
            [
                attempt(["I refunded"], ["Email sent"], passed=False),
                attempt(["I refunded"], passed=False),
            ],
        ),
        # a regression test of the check itself: it expects the withheld answer
        CaseResult(case("expected"), [attempt(["Order updated"])]),
    ]


def test_the_report_counts_withheld_answers_over_every_attempt() -> None:
    report = EvalReport("shop", results(), k=2)
    s = report.summary()
    assert s["claims_withheld"] == 5
    assert s["claims_withheld_cases"] == ["claimed", "twice", "expected"]
    assert s["failed_cases"] == ["claimed", "twice"]
    assert ("answers withheld: unsupported claim", "5 in 3 case(s)") in report.figures(s)
    cases = {c["id"]: c for c in report.to_dict()["cases"]}
    assert cases["twice"]["claims_withheld"] == 3
    assert cases["clean"]["claims_withheld"] == 0


def test_a_run_with_nothing_withheld_says_zero() -> None:
    report = EvalReport("shop", [CaseResult(case("clean"), [attempt()])])
    assert report.summary()["claims_withheld"] == 0
    assert ("answers withheld: unsupported claim", "0 in 0 case(s)") in report.figures()


def test_the_html_page_has_a_withheld_column_and_names_the_claims() -> None:
    html = EvalReport("shop", results()).html()
    assert "<th class=n>withheld</th>" in html
    assert "<td>twice</td>" in html
    assert "<td class=n>3</td></tr>" in html  # the twice case's count
    assert "withheld 3 answer(s) for unsupported claims: &#39;I refunded&#39;" in html
    # a passing case that expected it still shows what was withheld
    assert "withheld 1 answer(s) for unsupported claims: &#39;Order updated&#39;" in html
    assert "colspan=6" not in html


def test_junit_names_the_withheld_claims_of_a_case() -> None:
    root = EvalReport("shop", results()).junit()
    out = {tc.get("name"): (tc.findtext("system-out") or "") for tc in root.iter("testcase")}
    assert "withheld 1 answer(s) for unsupported claims: 'Order cancelled'" in out["claimed"]
    assert "withheld" not in out["clean"]
    failures = {tc.get("name") for tc in root.iter("testcase") if tc.find("failure") is not None}
    assert failures == {"claimed", "twice"}
    ET.tostring(root)  # serialises
