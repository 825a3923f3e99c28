"""The tau2-bench retail data the golden set is built from, and replays on it.

:class:`Tau2` reads ``tasks_train.json`` and ``db.json`` once and replays
tool calls on a fresh copy of the shop, through the retail tools themselves
(no model, no runtime), in one session: the reference a case's run through
the runtime must match. :func:`state_patch` turns the shop before and after
into the ``db-state`` patch the eval runner checks (``deep_merge(before,
patch) == after``). :func:`user_message` writes a task's opening message in
the customer's voice from its ``user_scenario``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from examples.retail.guards import AUTH_KEY
from examples.retail.shop import Shop
from examples.retail.tools import TOOLS
from tether import Tool, ToolContext, ToolFailed

__all__ = [
    "GATED",
    "PUBLIC",
    "TOOLS_BY_NAME",
    "Call",
    "Outcome",
    "Tau2",
    "introduction",
    "login",
    "spread",
    "state_patch",
    "user_message",
]

JSON = dict[str, Any]
#: one tool call: (tool name, arguments)
Call = tuple[str, JSON]

TOOLS_BY_NAME: dict[str, Tool] = {t.name: t for t in TOOLS}

#: the tools that stop for the customer's approval: every write, and send_email
GATED = frozenset(t.name for t in TOOLS if t.risk.writes)

#: the tools that need no authenticated customer
PUBLIC = frozenset(
    {
        "find_user_id_by_email",
        "find_user_id_by_name_zip",
        "get_product_details",
        "get_item_details",
        "list_all_product_types",
        "search_help_center",
        "calculate",
        "transfer_to_human_agents",
    }
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a replay did: each call's refusal (``None``: it succeeded) and the shop."""

    calls: list[Call]
    errors: list[str | None]
    user_id: str | None
    #: the shop before and after (only when the replay was asked to snapshot it)
    before: JSON | None = None
    after: JSON | None = None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _snapshot(shop: Shop) -> JSON:
    """What the eval harness snapshots: the shop as db.json, and the outbox."""
    data = shop.export_json()
    data["outbox"] = shop.outbox()
    return data


class Tau2:
    """The tau2-bench retail tasks and shop, read from ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tasks: list[JSON] = json.loads((root / "tasks_train.json").read_text("utf-8"))
        self.db: JSON = json.loads((root / "db.json").read_text("utf-8"))
        self._template = Shop.memory()
        self._template.load_json(self.db)
        self.before = _snapshot(self._template)

    def close(self) -> None:
        self._template.close()

    # --- replays -------------------------------------------------------------

    def replay(self, calls: list[Call], *, snapshot: bool = False) -> Outcome:
        """Run ``calls`` in order, in one session, on a fresh copy of the shop.

        With ``snapshot``, the outcome holds the shop before and after (slower:
        the whole shop is exported).
        """
        shop = self._template.copy()
        try:
            ctx_vars: JSON = {}
            errors = asyncio.run(_run(shop, calls, ctx_vars))
            user = ctx_vars.get(AUTH_KEY)
            if not snapshot:
                return Outcome(list(calls), errors, user)
            return Outcome(list(calls), errors, user, self.before, _snapshot(shop))
        finally:
            shop.close()

    # --- the customer of a task ------------------------------------------------

    def task_user(self, task: JSON) -> JSON:
        """The customer a task's scenario describes (by user id, email, or name and zip)."""
        known = task["user_scenario"]["instructions"]["known_info"]
        found: list[JSON] = [
            u
            for uid, u in self.db["users"].items()
            if uid in known
            or u["email"] in known
            or (
                u["address"]["zip"] in known
                and u["name"]["first_name"] in known
                and u["name"]["last_name"] in known
            )
        ]
        if len(found) != 1:
            raise ValueError(f"task {task['id']}: {len(found)} users match {known!r}")
        return found[0]

    def with_authentication(self, task: JSON) -> list[Call]:
        """The task's expected actions, authenticated first where the task leaves it out.

        Many tasks list only the actions that matter: before the first action
        that needs a signed-in customer, if none is yet, the customer signs in
        the way their scenario allows (email if they know it, else name and zip).
        """
        user = self.task_user(task)
        known = task["user_scenario"]["instructions"]["known_info"]
        calls: list[Call] = []
        signed_in = False
        for action in task["evaluation_criteria"]["actions"]:
            name, args = action["name"], dict(action["arguments"])
            if name not in PUBLIC and not signed_in:
                calls.append(login(user, by_email=user["email"] in known))
                signed_in = True
            signed_in = signed_in or name.startswith("find_user_id_by_")
            calls.append((name, args))
        return calls


def login(user: JSON, *, by_email: bool) -> Call:
    """The call that signs ``user`` in: by email, or by name and zip code."""
    if by_email:
        return ("find_user_id_by_email", {"email": user["email"]})
    name = user["name"]
    return (
        "find_user_id_by_name_zip",
        {
            "first_name": name["first_name"],
            "last_name": name["last_name"],
            "zip": user["address"]["zip"],
        },
    )


def spread(key: str, n: int) -> int:
    """A stable index in ``range(n)`` for ``key``: picks that differ between keys."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % n


async def _run(shop: Shop, calls: list[Call], ctx_vars: JSON) -> list[str | None]:
    errors: list[str | None] = []
    for n, (name, args) in enumerate(calls):
        ctx = ToolContext(
            session_id="golden",
            step=n + 1,
            call_id=f"call_{n}",
            idempotency_key=f"golden:{n}",
            user_id=None,
            vars=ctx_vars,
            deps=shop,
        )
        try:
            await TOOLS_BY_NAME[name](ctx, dict(args))
        except ToolFailed as exc:
            errors.append(str(exc))
        else:
            errors.append(None)
    return errors


# --- the db-state patch ---------------------------------------------------------


def _merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        return {**base, **{k: _merge(base.get(k), v) for k, v in patch.items()}}
    return patch


def state_patch(before: JSON, after: JSON) -> JSON:
    """The changed top-level fields of each changed record (lists whole), and the outbox.

    Raises ``ValueError`` if a record or a field disappeared (a patch cannot
    say so) or if merging the patch into ``before`` does not give ``after``.
    """
    patch: JSON = {}
    for kind in sorted(before.keys() | after.keys()):
        old, new = before.get(kind), after.get(kind)
        if old == new:
            continue
        if not isinstance(old, dict) or not isinstance(new, dict):
            patch[kind] = new  # the outbox: a list, replaced whole
            continue
        if old.keys() - new.keys():
            raise ValueError(f"{kind}: records removed: {sorted(old.keys() - new.keys())}")
        for rid, record in new.items():
            was = old.get(rid)
            if was is None:
                patch.setdefault(kind, {})[rid] = record
            elif was != record:
                if was.keys() - record.keys():
                    raise ValueError(f"{kind}.{rid}: fields removed")
                fields = {k: v for k, v in record.items() if was.get(k) != v}
                patch.setdefault(kind, {})[rid] = fields
    if _merge(before, patch) != after:
        raise ValueError("the patch does not give the final state")
    return patch


# --- the customer's opening message ----------------------------------------------

# Scenarios whose first sentences do not read as a request.
_REQUESTS = {
    "24": "I want to cancel the grill I ordered.",
    "31": "I just lost the tablet I received, and I want its tracking number.",
    "57": "When will my order #W4284542 arrive?",
    "59": (
        "My two orders #W2702727 and #W8268610 are both pending; I may cancel the older "
        "one and change the address of the other."
    ),
    "63": "I want to check the price of the bluetooth speaker I bought and its battery life.",
    "80": (
        "For #W7209932, I want to exchange the blue S polyester v-neck T-Shirt for a red "
        "XXL cotton crew neck one, using my gift card."
    ),
}

_OBJECT = r"(to|for|with|help|ask|asks|tell|tells|give|let|than|call|contact|send)"
_VOICE = (
    (r"\bthe agent\b", "\x01"),
    (r"\b[Yy]ou are\b", "I am"),
    (r"\b[Yy]ou're\b", "I'm"),
    (r"\b[Yy]ou've\b", "I've"),
    (r"\b[Yy]ou'd\b", "I'd"),
    (r"\b[Yy]ou'll\b", "I'll"),
    (r"\b[Yy]ou were\b", "I was"),
    (r"\bYour\b", "My"),
    (r"\byour\b", "my"),
    (r"\byours\b", "mine"),
    (r"\byourself\b", "myself"),
    (rf"\b{_OBJECT} you\b", r"\1 me"),
    (r"\b[Yy]ou\b", "I"),
    ("\x01", "you"),
)


# A second sentence is kept when it adds to the request, not when it directs the
# simulated customer ("If the agent asks...", "Make sure you mention...").
_GO_ON = ("You want", "You also want", "Also", "You prefer", "You use", "You have", "For ", "Any ")


def first_person(text: str) -> str:
    """A scenario sentence ("You want to...") as the customer says it ("I want to...")."""
    for pattern, replacement in _VOICE:
        text = re.sub(pattern, replacement, text)
    return text


def _request(task: JSON) -> str:
    if task["id"] in _REQUESTS:
        return _REQUESTS[task["id"]]
    reason = task["user_scenario"]["instructions"]["reason_for_call"].strip().lstrip(". ")
    sentences = re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", reason))
    said = sentences[0]
    if len(sentences) > 1 and sentences[1].startswith(_GO_ON) and len(said + sentences[1]) <= 200:
        said += " " + sentences[1]
    return first_person(said).rstrip(";")


def introduction(user: JSON, *, by_email: bool) -> str:
    """How the customer says who they are."""
    name = f"{user['name']['first_name']} {user['name']['last_name']}"
    if by_email:
        return f"Hi, I'm {name}, my email is {user['email']}."
    return f"Hi, I'm {name}, zip code {user['address']['zip']}."


def user_message(task: JSON, user: JSON, *, by_email: bool) -> str:
    """The customer's opening message: who they are, and what they want."""
    return f"{introduction(user, by_email=by_email)} {_request(task)}"
