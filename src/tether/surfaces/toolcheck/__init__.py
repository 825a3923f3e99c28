"""Contract tests for an agent's tools: ``tether tools test AGENT``.

:func:`check_tools` calls each tool with arguments generated from its
schema (valid ones drawn by Hypothesis, boundary ones, and invalid ones),
exactly as the runtime calls it (its validation, then its function, under
its timeout), against a throwaway copy of the agent's dependencies
(``Agent.test_deps``). It reports every call that

- ``raised`` an exception other than the tool's own signals (``ToolFailed``,
  ``Retry``): a ``KeyError`` on an unknown id is a bug, a ``ToolFailed``
  saying "no such order" is the tool doing its job;
- ``hung`` past the tool's timeout;
- returned a value, or set a session var, that is ``unstorable``;
- ``accepted_invalid`` arguments: its function ran with arguments its
  schema forbids, because its validation let them through.

Calls that fail the tool's validation (``rejected``) and refusals
(``refused``) are counted, not reported: they are the contract kept.
"""

from tether.surfaces.toolcheck.check import MAX_HANGS, check_tools
from tether.surfaces.toolcheck.report import (
    Finding,
    FindingKind,
    InputKind,
    ToolCheckReport,
    ToolReport,
)

__all__ = [
    "MAX_HANGS",
    "Finding",
    "FindingKind",
    "InputKind",
    "ToolCheckReport",
    "ToolReport",
    "check_tools",
]
