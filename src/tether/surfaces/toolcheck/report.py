"""What a contract test of an agent's tools found: per tool, per finding.

A *finding* is a bug in a tool (``raised``, ``hung``, ``unstorable``,
``accepted_invalid``); a refusal (``ToolFailed`` and the other tool signals)
and a rejection (arguments that fail the tool's validation) are the tool
working as declared, and are only counted.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Finding", "FindingKind", "InputKind", "ToolCheckReport", "ToolReport"]


class FindingKind(enum.StrEnum):
    """What was wrong with a call."""

    #: the tool raised an exception that is not one of its signals (``ToolFailed``, ``Retry``)
    RAISED = "raised"
    #: the call did not finish within the tool's timeout
    HUNG = "hung"
    #: it returned a value, or set a session var, that the store cannot keep
    UNSTORABLE = "unstorable"
    #: its function ran with arguments its schema forbids (validation let them through)
    ACCEPTED_INVALID = "accepted_invalid"


class InputKind(enum.StrEnum):
    """Where a call's arguments came from."""

    #: drawn from the schema by Hypothesis
    VALID = "valid"
    #: valid, with one argument at an edge of its schema
    BOUNDARY = "boundary"
    #: a valid example broken one way (the schema forbids it)
    INVALID = "invalid"


@dataclass(slots=True, kw_only=True)
class Finding:
    """One bug of one tool, and the smallest arguments that showed it.

    ``detail`` says what happened (``KeyError: 'W9' (shop.py:41)``); calls
    that failed the same way (the same exception raised at the same line)
    are one finding, counted in ``calls``; ``arguments`` is the shortest of
    them (as JSON text), from ``inputs``.
    """

    tool: str
    kind: FindingKind
    detail: str
    arguments: dict[str, Any]
    inputs: InputKind
    calls: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "kind": str(self.kind),
            "detail": self.detail,
            "arguments": self.arguments,
            "inputs": str(self.inputs),
            "calls": self.calls,
        }


@dataclass(slots=True, kw_only=True)
class ToolReport:
    """The calls made to one tool and what they found.

    ``ok``: returned a storable value; ``refused``: raised ``ToolFailed`` or
    another tool signal; ``rejected``: failed the tool's validation, so its
    function never ran (right for invalid arguments); ``rejected_valid``:
    of those, arguments the schema allows (the model is told they are fine,
    then refused: a schema and a validator that disagree; noted, not a
    finding). ``notes`` say what was not tested and why.
    """

    name: str
    calls: int = 0
    ok: int = 0
    refused: int = 0
    rejected: int = 0
    rejected_valid: int = 0
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """Whether no call found a bug."""
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "calls": self.calls,
            "ok": self.ok,
            "refused": self.refused,
            "rejected": self.rejected,
            "rejected_valid": self.rejected_valid,
            "findings": [f.to_dict() for f in self.findings],
            "notes": list(self.notes),
        }


@dataclass(slots=True, kw_only=True)
class ToolCheckReport:
    """A contract test of an agent's tools (:func:`~tether.surfaces.toolcheck.check_tools`)."""

    agent: str
    version: str
    seed: int
    examples: int
    tools: list[ToolReport] = field(default_factory=list)
    #: what concerns the whole run (calls still running in their threads, deps left open)
    notes: list[str] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        """Every finding, tool by tool."""
        return [f for t in self.tools for f in t.findings]

    @property
    def clean(self) -> bool:
        """Whether no tool has a finding."""
        return not self.findings

    @property
    def calls(self) -> int:
        return sum(t.calls for t in self.tools)

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "version": self.version,
            "seed": self.seed,
            "examples": self.examples,
            "clean": self.clean,
            "calls": self.calls,
            "findings": len(self.findings),
            "tools": [t.to_dict() for t in self.tools],
            "notes": list(self.notes),
        }
