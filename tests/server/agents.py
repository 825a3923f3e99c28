"""Agents the server tests serve: the retail agent on a scripted model (the product's own).

The model is a :class:`~tether.testing.FunctionModel` that plays a support
agent on the demo customer (Ava Moreno, zip 94107): asked to cancel an
order it calls ``cancel_order`` (irreversible: it waits for an approver),
asked about an order it calls ``check_order``, and after tool results it
answers with what the tool said. Asked the health check's question, it
says OK. ``TETHER_TEST_MODEL_DELAY`` (seconds) slows every call, so a test
can stop a server in the middle of a turn. ``TETHER_RETAIL_DB`` names the
shop file, read when a session first opens it (each test server gets its own).

Served by reference: ``tether serve tests.server.agents:retail``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re

from examples.retail.agent import build_agent

from tether import HealthCheck
from tether.spec.messages import Message, ToolCall
from tether.spec.model import ModelRequest
from tether.testing import FunctionModel

__all__ = ["DEMO", "reply", "retail"]

DEMO = {"first_name": "Ava", "last_name": "Moreno", "zip": "94107"}
_ORDER = re.compile(r"#?W\d{7}")


def reply(request: ModelRequest) -> str | ToolCall | Message:
    """The scripted support agent: one decision per model call, from the conversation so far."""
    last = request.messages[-1] if request.messages else None
    if last is None:
        return "How can I help?"
    if last.role == "user" and "single word OK" in last.text:
        return "OK"
    if last.results:  # the tools answered: say what they said
        result = last.results[-1]
        try:
            body = json.loads(result.content)
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])
        if isinstance(body, dict) and body.get("status"):
            return f"Order {body.get('order_id')} is {body['status']}."
        return f"The {result.name} tool said: {result.content[:200]}"
    if last.role == "user":
        found = _ORDER.search(last.text)
        order = found.group(0) if found else "#W1024001"
        n = sum(1 for m in request.messages if m.role == "user")
        if "cancel" in last.text.lower():
            return ToolCall(
                id=f"call_cancel_{n}",
                name="cancel_order",
                arguments={**DEMO, "order_id": order, "reason": "no longer needed"},
            )
        if "status" in last.text.lower() or found:
            return ToolCall(
                id=f"call_check_{n}", name="check_order", arguments={**DEMO, "order_id": order}
            )
        return "I can look up or cancel your orders. What would you like?"
    return "Is there anything else?"


def _model() -> FunctionModel:
    delay = float(os.environ.get("TETHER_TEST_MODEL_DELAY") or 0)
    # named local-*: build_agent gives a chain of local models the small variant of the
    # agent (check_order, cancel_order), whose tools take the customer's name and zip
    return FunctionModel(reply, name="local-scripted", delay=delay, chunk=8, record=False)


def _agent() -> object:
    # the shop path is read when a session first needs it (TETHER_RETAIL_DB), not now
    base = build_agent(models=[_model()])
    return dataclasses.replace(
        base,
        approval=dataclasses.replace(base.approval, mode="operator"),
        health=HealthCheck(interval=1.0),
    )


retail = _agent()
