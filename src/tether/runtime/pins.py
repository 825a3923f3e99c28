"""Pinned tool definitions: a tool source's tools are trusted as first seen, not as changed.

A tool source (an MCP server) is a third party that may change what its
tools say and do between two listings. So the runtime *pins* each listed
tool, per agent name and version and per server: the pin is the SHA-256
of the canonical JSON of the definition as the server listed it
(``name``, ``description``, ``inputSchema``, ``annotations``; see
:func:`definition_hash`).

- The first listing of a server for an agent version is trusted on first
  use: every tool is recorded ``accepted``, except one whose description
  the injection detector flags (``quarantined``, reason ``injection``).
- Later, a tool whose hash changed (``changed``) and a tool never seen
  (``new``) are ``quarantined``: hidden from the model, nothing served
  under the name (not the old definition: the server would run its new
  code anyway), and reported once (a ``tool.definition_changed`` event)
  until an operator accepts it (``tether tools accept``).

:func:`review` is the whole decision, a pure function; :class:`ToolPins` is
where pins are kept (one protocol; :class:`InMemoryToolPins` here, the SQL
one in ``tether.store.pins``). A store that keeps pins exposes them as its
``tool_pins`` attribute; the runtime falls back to a per-runtime in-memory one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "InMemoryToolPins",
    "PinState",
    "Quarantine",
    "QuarantineReason",
    "Review",
    "ToolPin",
    "ToolPins",
    "accepted",
    "definition_diff",
    "definition_hash",
    "review",
]

#: the parts of a listed tool that are pinned (the protocol's names)
PINNED_FIELDS = ("name", "description", "inputSchema", "annotations")
#: characters of one text kept in a diff (an event, an alert, ``tether tools pins``)
_DIFF_CHARS = 500


class PinState(StrEnum):
    ACCEPTED = "accepted"
    QUARANTINED = "quarantined"


class QuarantineReason(StrEnum):
    #: the definition differs from the accepted one
    CHANGED = "changed"
    #: a tool that appeared after the server's first listing
    NEW = "new"
    #: the injection detector flagged its description
    INJECTION = "injection"


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolPin:
    """One tool of one server, for one agent version: what was accepted, what waits.

    ``hash``/``definition``: the accepted definition (``None`` for a tool
    never accepted). ``pending_hash``/``pending_definition``/``reason``: the
    quarantined definition, while ``state`` is ``quarantined``.
    ``decided_by`` is who accepted it (``None``: trusted on first use).
    """

    agent: str
    version: str
    server: str
    tool: str
    state: PinState
    first_seen: float
    hash: str | None = None
    definition: Mapping[str, Any] | None = None
    pending_hash: str | None = None
    pending_definition: Mapping[str, Any] | None = None
    reason: QuarantineReason | None = None
    decided_by: str | None = None
    decided_at: float | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.agent, self.version, self.server, self.tool)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "agent": self.agent,
            "version": self.version,
            "server": self.server,
            "tool": self.tool,
            "state": str(self.state),
            "hash": self.hash,
            "first_seen": self.first_seen,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at,
        }
        if self.state == PinState.QUARANTINED:
            d["reason"] = None if self.reason is None else str(self.reason)
            d["pending_hash"] = self.pending_hash
            d["diff"] = definition_diff(self.definition, self.pending_definition or {})
        return d


def accepted(pin: ToolPin, *, by: str, at: float) -> ToolPin:
    """``pin`` with its quarantined definition accepted by ``by`` at ``at``."""
    return replace(
        pin,
        state=PinState.ACCEPTED,
        hash=pin.pending_hash,
        definition=pin.pending_definition,
        pending_hash=None,
        pending_definition=None,
        reason=None,
        decided_by=by,
        decided_at=at,
    )


@runtime_checkable
class ToolPins(Protocol):
    """Where pins are kept, keyed by (agent, version, server, tool)."""

    async def pins(self, agent: str, version: str | None = None) -> list[ToolPin]:
        """The pins of ``agent`` (of one ``version``, or all), ordered by version, server, tool."""
        ...

    async def record(self, pins: Sequence[ToolPin]) -> None:
        """Insert or replace each pin (by its key)."""
        ...

    async def accept(
        self,
        agent: str,
        version: str | None = None,
        *,
        server: str | None = None,
        tool: str | None = None,
        by: str,
        at: float,
    ) -> list[ToolPin]:
        """Accept the quarantined pins that match; the pins as accepted (none: ``[]``)."""
        ...


class InMemoryToolPins:
    """Pins in process memory (tests, ``InMemoryStore``, a runtime without a SQL store)."""

    def __init__(self) -> None:
        self._pins: dict[tuple[str, str, str, str], ToolPin] = {}

    async def pins(self, agent: str, version: str | None = None) -> list[ToolPin]:
        return sorted(
            (
                p
                for p in self._pins.values()
                if p.agent == agent and (version is None or p.version == version)
            ),
            key=lambda p: p.key,
        )

    async def record(self, pins: Sequence[ToolPin]) -> None:
        for p in pins:
            self._pins[p.key] = p

    async def accept(
        self,
        agent: str,
        version: str | None = None,
        *,
        server: str | None = None,
        tool: str | None = None,
        by: str,
        at: float,
    ) -> list[ToolPin]:
        done = []
        for p in await self.pins(agent, version):
            if p.state != PinState.QUARANTINED or not _matches(p, server, tool):
                continue
            self._pins[p.key] = ok = accepted(p, by=by, at=at)
            done.append(ok)
        return done


def _matches(pin: ToolPin, server: str | None, tool: str | None) -> bool:
    return (server is None or pin.server == server) and (tool is None or pin.tool == tool)


def canonical_json(value: Any) -> str:
    """``value`` as canonical JSON: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def definition_hash(definition: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of a listed tool's pinned fields."""
    pinned = {k: definition.get(k) for k in PINNED_FIELDS}
    return hashlib.sha256(canonical_json(pinned).encode("utf-8")).hexdigest()


def _cut(text: str) -> str:
    return text if len(text) <= _DIFF_CHARS else text[: _DIFF_CHARS - 1] + "…"


def definition_diff(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """A short account of what differs between two definitions (``old`` ``None``: a new tool).

    ``description`` and ``annotations``: ``{"old": ..., "new": ...}``;
    ``inputSchema``: the properties ``added``, ``removed`` and ``changed``,
    and ``required`` (old and new) when it changed. Texts are cut to a few
    hundred characters.
    """
    before = old or {}
    out: dict[str, Any] = {}
    if old is None or before.get("description") != new.get("description"):
        d_old, d_new = before.get("description"), new.get("description")
        out["description"] = {
            "old": None if d_old is None else _cut(str(d_old)),
            "new": None if d_new is None else _cut(str(d_new)),
        }
    s_old, s_new = before.get("inputSchema") or {}, new.get("inputSchema") or {}
    if old is None or s_old != s_new:
        p_old = s_old.get("properties") or {} if isinstance(s_old, Mapping) else {}
        p_new = s_new.get("properties") or {} if isinstance(s_new, Mapping) else {}
        schema: dict[str, Any] = {
            "added": sorted(set(p_new) - set(p_old)),
            "removed": sorted(set(p_old) - set(p_new)),
            "changed": sorted(k for k in set(p_old) & set(p_new) if p_old[k] != p_new[k]),
        }
        r_old = s_old.get("required") if isinstance(s_old, Mapping) else None
        r_new = s_new.get("required") if isinstance(s_new, Mapping) else None
        if r_old != r_new:
            schema["required"] = {"old": r_old, "new": r_new}
        if not any(schema.values()):  # something else in the schema (a type, $defs, ...)
            schema["other"] = _cut(canonical_json(s_new))
        out["inputSchema"] = schema
    if old is None or before.get("annotations") != new.get("annotations"):
        out["annotations"] = {"old": before.get("annotations"), "new": new.get("annotations")}
    return out


@dataclass(frozen=True, slots=True)
class Quarantine:
    """A tool newly quarantined: what a ``tool.definition_changed`` event says."""

    server: str
    tool: str
    reason: QuarantineReason
    old_hash: str | None
    new_hash: str
    diff: Mapping[str, Any]

    def to_data(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "tool": self.tool,
            "reason": str(self.reason),
            "old_hash": self.old_hash,
            "new_hash": self.new_hash,
            "diff": dict(self.diff),
        }


@dataclass(frozen=True, slots=True)
class Review:
    """What one listing of one server means for one agent version.

    ``visible``: the tools the model may see; ``record``: pins to write;
    ``quarantined``: the tools quarantined by this listing (each reported once).
    """

    visible: frozenset[str]
    record: tuple[ToolPin, ...]
    quarantined: tuple[Quarantine, ...]


def review(
    agent: str,
    version: str,
    server: str,
    listed: Mapping[str, Mapping[str, Any]],
    pinned: Mapping[str, ToolPin],
    *,
    flagged: Callable[[str], bool],
    now: float,
) -> Review:
    """Decide which of ``listed`` (tool name -> definition) the model sees, given ``pinned``.

    ``pinned``: this agent version's pins of this server, by tool name; none
    means this is the first listing (trust on first use). ``flagged``: the
    injection detector's verdict on a description; asked only about a
    definition not yet accepted.
    """
    first = not pinned
    visible: set[str] = set()
    record: list[ToolPin] = []
    quarantined: list[Quarantine] = []
    for name, definition in listed.items():
        h = definition_hash(definition)
        pin = pinned.get(name)
        if pin is not None and pin.hash == h:
            visible.add(name)
            if pin.state == PinState.QUARANTINED:  # the server went back to the accepted one
                record.append(
                    replace(
                        pin,
                        state=PinState.ACCEPTED,
                        pending_hash=None,
                        pending_definition=None,
                        reason=None,
                    )
                )
            continue
        if pin is not None and pin.state == PinState.QUARANTINED and pin.pending_hash == h:
            continue  # still waiting for an operator; reported when first seen
        injected = flagged(str(definition.get("description") or ""))
        if first and not injected:
            visible.add(name)
            record.append(
                ToolPin(
                    agent=agent,
                    version=version,
                    server=server,
                    tool=name,
                    state=PinState.ACCEPTED,
                    first_seen=now,
                    hash=h,
                    definition=dict(definition),
                    decided_at=now,
                )
            )
            continue
        if injected:
            reason = QuarantineReason.INJECTION
        elif pin is None or pin.hash is None:
            reason = QuarantineReason.NEW
        else:
            reason = QuarantineReason.CHANGED
        base = pin or ToolPin(
            agent=agent,
            version=version,
            server=server,
            tool=name,
            state=PinState.QUARANTINED,
            first_seen=now,
        )
        record.append(
            replace(
                base,
                state=PinState.QUARANTINED,
                pending_hash=h,
                pending_definition=dict(definition),
                reason=reason,
            )
        )
        quarantined.append(
            Quarantine(
                server=server,
                tool=name,
                reason=reason,
                old_hash=base.hash,
                new_hash=h,
                diff=definition_diff(base.definition, definition),
            )
        )
    return Review(frozenset(visible), tuple(record), tuple(quarantined))
