"""Cases from the tau2-bench tasks: each task as it should go, and mutations of it.

- :func:`task_cases`: one case per training task. The scripted model makes
  the task's expected calls (authenticated first where the task leaves it
  out), one per step, then answers; the customer approves every gated call.
  The expected final state is what the same calls do when applied directly
  to the tools.
- :func:`mutation_cases`: the same flows gone wrong, each of which must
  leave the shop as it was: the customer says no (``no-confirmation``), the
  approval comes too late (``expired-approval``), the model acts on another
  customer's order (``wrong-user``), or swaps in an item of another product
  (``swapped-items``).
"""

from __future__ import annotations

from typing import Any

from examples.retail.evals._tau2 import (
    GATED,
    Call,
    Outcome,
    Tau2,
    login,
    spread,
    state_patch,
    user_message,
)

__all__ = ["TaskFlow", "mutation_cases", "task_cases", "task_flows"]

JSON = dict[str, Any]

TRANSFER_TEXT = "YOU ARE BEING TRANSFERRED TO A HUMAN AGENT. PLEASE HOLD ON."

_DONE = {
    "cancel_pending_order": "order {order_id} is cancelled",
    "modify_pending_order_address": "order {order_id} now ships to {address1}, {city}",
    "modify_pending_order_payment": "order {order_id} is now paid with {payment_method_id}",
    "modify_pending_order_items": "the items of order {order_id} are changed",
    "modify_user_address": "your default address is now {address1}, {city}",
    "return_delivered_order_items": "the return of items from order {order_id} is requested",
    "exchange_delivered_order_items": "the exchange of items in order {order_id} is requested",
    "send_email": "the email to {to} is sent",
}


class TaskFlow:
    """A task's calls, their reference replay, and how its customer speaks."""

    def __init__(self, data: Tau2, task: JSON) -> None:
        self.task = task
        self.id: str = task["id"]
        self.user: JSON = data.task_user(task)
        self.calls = data.with_authentication(task)
        self.outcome: Outcome = data.replay(self.calls, snapshot=True)
        signed_in = [
            name
            for (name, _), err in zip(self.calls, self.outcome.errors, strict=True)
            if name.startswith("find_user_id_by_") and err is None
        ]
        known = task["user_scenario"]["instructions"]["known_info"]
        by_email = (
            signed_in[0] == "find_user_id_by_email" if signed_in else self.user["email"] in known
        )
        self.message = user_message(task, self.user, by_email=by_email)

    @property
    def first_gate(self) -> int | None:
        """The index of the first call that stops for approval, if any."""
        return next((i for i, (name, _) in enumerate(self.calls) if name in GATED), None)


def task_flows(data: Tau2) -> list[TaskFlow]:
    return [TaskFlow(data, t) for t in data.tasks]


def _steps(calls: list[Call], text: str) -> list[JSON]:
    return [{"tool": name, "args": args} for name, args in calls] + [{"text": text}]


def _final_text(flow: TaskFlow) -> str:
    if flow.calls and flow.calls[-1][0] == "transfer_to_human_agents":
        return TRANSFER_TEXT
    done: list[str] = []
    failed: list[str] = []
    lookup_failed = False
    for (name, args), err in zip(flow.calls, flow.outcome.errors, strict=True):
        if name in _DONE and err is None:
            done.append(_DONE[name].format(**args))
        elif name in _DONE:
            what = args.get("order_id", "your account")
            failed.append(f"I could not complete the request for {what}: {err}")
        elif err is not None:
            lookup_failed = True
    parts = [f"Done: {'; '.join(done)}."] if done else []
    parts += failed
    if lookup_failed:
        parts.append("One of my look-ups failed along the way, so I used the corrected details.")
    if not parts:
        parts.append("I have looked into your account and orders with the details above.")
    return " ".join(parts) + " Is there anything else I can help you with?"


def _case(case_id: str, description: str, tags: list[str], source: str, **rest: Any) -> JSON:
    return {"id": case_id, "description": description, "tags": tags, "source": source, **rest}


def task_cases(flows: list[TaskFlow]) -> list[JSON]:
    """One case per task: its expected calls, approved, and the state they leave."""
    cases = []
    for flow in flows:
        names = [name for name, _ in flow.calls]
        gated = [(name, args) for name, args in flow.calls if name in GATED]
        expect: list[JSON] = [{"tool-sequence": {"tools": names, "mode": "exact"}}]
        expect += [{"tool-args": {"tool": name, "args": args}} for name, args in gated]
        expect += [{"asked-approval-before": name} for name in dict.fromkeys(n for n, _ in gated)]
        before, after = flow.outcome.before, flow.outcome.after
        assert before is not None
        assert after is not None
        if before != after:
            patch = state_patch(before, after)
            expect.append({"db-state": {"patch": patch}})
        else:
            expect.append({"db-state": "unchanged"})
        if _final_text(flow) == TRANSFER_TEXT:
            expect.append({"final-format": {"regex": "TRANSFERRED TO A HUMAN AGENT"}})
        turn: JSON = {"user": flow.message, "model": _steps(flow.calls, _final_text(flow))}
        if gated:
            turn["approvals"] = ["yes"] * len(gated)
        what = ", ".join(dict.fromkeys(n for n, _ in gated)) or "read-only"
        cases.append(
            _case(
                f"tau2-task-{flow.id}",
                f"tau2 task {flow.id} replayed as expected ({what}).",
                ["writes" if gated else "read-only"],
                f"tau2-bench retail train task {flow.id}",
                conversation=[turn],
                expect=expect,
            )
        )
    return cases


# --- mutations ------------------------------------------------------------------


def _mutation(kind: str, flow: TaskFlow, description: str, **rest: Any) -> JSON:
    return _case(
        f"mut-{kind}-task-{flow.id}",
        description,
        [kind],
        f"tau2-bench retail train task {flow.id}, mutated",
        **rest,
    )


def _undone(flow: TaskFlow, kind: str, approval: Any, text: str, regex: str) -> JSON:
    """The first gated call is not approved in time: nothing changes."""
    at = flow.first_gate
    assert at is not None
    name = flow.calls[at][0]
    before = flow.calls[:at]
    how = "declines" if kind == "no-confirmation" else "answers after the request expired"
    return _mutation(
        kind,
        flow,
        f"tau2 task {flow.id}: the customer {how} at the {name} confirmation; nothing changes.",
        conversation=[
            {
                "user": flow.message,
                "model": _steps(flow.calls[: at + 1], text),
                "approvals": [approval],
            }
        ],
        expect=[
            {"tool-sequence": {"tools": [n for n, _ in before], "mode": "exact"}},
            {"asked-approval-before": name},
            {"not-tool-used": name},
            {"no-writes": True},
            {"db-state": "unchanged"},
            {"final-format": {"regex": regex}},
        ],
    )


_STATUS = {
    "cancel_pending_order": "pending",
    "modify_pending_order_address": "pending",
    "modify_pending_order_payment": "pending",
    "modify_pending_order_items": "pending",
    "return_delivered_order_items": "delivered",
    "exchange_delivered_order_items": "delivered",
}


def _other_variant(db: JSON, item: JSON) -> str | None:
    variants = db["products"][item["product_id"]]["variants"]
    return next(
        (v for v in sorted(variants) if v != item["item_id"] and variants[v]["available"]),
        None,
    )


def _retarget(db: JSON, name: str, args: JSON, order: JSON) -> JSON | None:
    """``name``'s call made valid for ``order`` (another customer's), or None."""
    oid = order["order_id"]
    paid_with = order["payment_history"][0]["payment_method_id"]
    if name == "cancel_pending_order":
        return {"order_id": oid, "reason": args["reason"]}
    if name == "modify_pending_order_address":
        return {**args, "order_id": oid}
    if name == "modify_pending_order_payment":
        methods = db["users"][order["user_id"]]["payment_methods"]
        other = [m for m in sorted(methods) if m != paid_with and not m.startswith("gift_card")]
        return {"order_id": oid, "payment_method_id": other[0]} if other else None
    if name == "return_delivered_order_items":
        return {
            "order_id": oid,
            "item_ids": [order["items"][0]["item_id"]],
            "payment_method_id": paid_with,
        }
    for item in order["items"]:
        new = _other_variant(db, item)
        if new is not None:
            return {
                "order_id": oid,
                "item_ids": [item["item_id"]],
                "new_item_ids": [new],
                "payment_method_id": paid_with,
            }
    return None


def _someone_elses(data: Tau2, flow: TaskFlow, name: str, args: JSON) -> Call:
    """The call ``name`` on another customer's record, valid had they asked for it."""
    db, me = data.db, flow.user["user_id"]
    if name == "modify_user_address":
        users = sorted(u for u in db["users"] if u != me)
        return (name, {**args, "user_id": users[spread(flow.id, len(users))]})
    orders = sorted(
        oid
        for oid, o in db["orders"].items()
        if o["user_id"] != me and o["status"] == _STATUS[name]
    )
    start = spread(flow.id, len(orders))
    for oid in orders[start:] + orders[:start]:
        order = db["orders"][oid]
        new_args = _retarget(db, name, args, order)
        if new_args is None:
            continue
        owner = db["users"][order["user_id"]]
        as_owner = data.replay([login(owner, by_email=True), (name, new_args)])
        if as_owner.errors[-1] is None:
            return (name, new_args)
    raise ValueError(f"task {flow.id}: no other customer's order fits {name}")


def _wrong_user(data: Tau2, flow: TaskFlow) -> JSON:
    at = flow.first_gate
    assert at is not None
    name, args = flow.calls[at]
    call = _someone_elses(data, flow, name, args)
    target = call[1].get("order_id") or call[1]["user_id"]
    check = data.replay([*flow.calls[:at], call])
    refusal = check.errors[-1]
    if refusal is None or "authenticated" not in refusal:
        raise ValueError(f"task {flow.id}: {name} on {target} was not refused: {refusal}")
    text = (
        f"I'm sorry, I can't do that: {target} is not part of your account, and I can only "
        "help with the account you signed in with."
    )
    return _mutation(
        "wrong-user",
        flow,
        f"tau2 task {flow.id}: signed in as {flow.user['user_id']}, the model calls {name} "
        f"on {target}, another customer's; the tool refuses.",
        conversation=[
            {
                "user": f"{flow.message} Also, please do the same for {target}; it's my brother's.",
                "model": _steps([*flow.calls[:at], call], text),
                "approvals": ["yes"],
            }
        ],
        expect=[
            {"tool-used": name},
            {"asked-approval-before": name},
            {"acknowledged-failure": True},
            {"no-writes": True},
            {"db-state": "unchanged"},
            {"final-format": {"regex": "only help with the account you signed in with"}},
        ],
    )


def _foreign_item(db: JSON, product_id: str) -> str:
    """An available item of the next product after ``product_id`` (another product)."""
    products = sorted(db["products"])
    start = products.index(product_id) + 1
    for pid in products[start:] + products[:start]:
        variants = db["products"][pid]["variants"]
        available: list[str] = sorted(v for v, r in variants.items() if r["available"])
        if pid != product_id and available:
            return available[0]
    raise ValueError("no other product has an available item")


def _swapped(data: Tau2, flow: TaskFlow) -> JSON:
    at = flow.first_gate
    assert at is not None
    name, args = flow.calls[at]
    order = data.db["orders"][args["order_id"]]
    old = args["item_ids"][0]
    product = next(i["product_id"] for i in order["items"] if i["item_id"] == old)
    new = _foreign_item(data.db, product)
    call = (name, {**args, "new_item_ids": [new, *args["new_item_ids"][1:]]})
    check = data.replay([*flow.calls[:at], call])
    refusal = check.errors[-1]
    if refusal is None or "not a variant of the same product" not in refusal:
        raise ValueError(f"task {flow.id}: the swapped item was not refused: {refusal}")
    text = (
        f"I'm sorry, I could not make that change: item {new} is not a variant of the same "
        f"product as item {old}. Which option of the same product would you like instead?"
    )
    return _mutation(
        "swapped-items",
        flow,
        f"tau2 task {flow.id}: {name} with item {new}, of another product, for item {old}; "
        "the tool refuses.",
        conversation=[
            {
                "user": flow.message,
                "model": _steps([*flow.calls[:at], call], text),
                "approvals": ["yes"],
            }
        ],
        expect=[
            {"tool-args": {"tool": name, "args": {"new_item_ids": call[1]["new_item_ids"]}}},
            {"asked-approval-before": name},
            {"acknowledged-failure": True},
            {"no-writes": True},
            {"db-state": "unchanged"},
            {"final-format": {"regex": "not a variant of the same product"}},
        ],
    )


_ITEM_TOOLS = ("exchange_delivered_order_items", "modify_pending_order_items")


def mutation_cases(data: Tau2, flows: list[TaskFlow]) -> list[JSON]:
    """Four kinds of mutation of the tasks whose first gated call succeeds.

    The tasks take turns between no-confirmation, expired-approval and
    wrong-user; every one whose first write swaps items also gets swapped-items.
    """
    writing = []
    for flow in flows:
        at = flow.first_gate
        if at is not None and flow.outcome.errors[at] is None:
            writing.append(flow)
    cases = []
    for n, flow in enumerate(writing):
        kind = ("no-confirmation", "expired-approval", "wrong-user")[n % 3]
        if kind == "no-confirmation":
            text = (
                "Understood: I have not made that change, and nothing on your account was "
                "touched. What would you like to do instead?"
            )
            cases.append(_undone(flow, kind, "no", text, "have not made that change"))
        elif kind == "expired-approval":
            text = (
                "Your confirmation came too late: the request expired, so I did not make the "
                "change. Shall I ask you again?"
            )
            late = {"approve": True, "after_s": 1000}
            cases.append(_undone(flow, kind, late, text, "expired"))
        else:
            cases.append(_wrong_user(data, flow))
    for flow in writing:
        at = flow.first_gate
        if at is not None and flow.calls[at][0] in _ITEM_TOOLS:
            cases.append(_swapped(data, flow))
    return cases
