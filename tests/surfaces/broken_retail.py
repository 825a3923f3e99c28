"""A deliberately broken retail agent for the eval CLI tests.

``agent`` is the retail suite's factory, except that ``cancel_pending_order``
no longer stops for approval: ``Tool.needs_approval=False`` overrides the
agent's risk flags (see :func:`tether.runtime.approvals.needs_approval`), so
the cancellation runs unasked. ``tether eval examples/retail/evals --agent
tests.surfaces.broken_retail:agent`` must fail on ``asked-approval-before``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from examples.retail.evals import harness

from tether import Agent, Model
from tether.surfaces.evals import Case

BROKEN_TOOL = "cancel_pending_order"


def agent(case: Case, models: Sequence[str | Model] | None = None) -> Agent:
    """The retail agent with the approval of ``cancel_pending_order`` removed."""
    good = harness.agent(case, models)
    tools = tuple(
        dataclasses.replace(t, needs_approval=False) if t.name == BROKEN_TOOL else t
        for t in good.tools
    )
    # without the taint too (a session that read untrusted content would still ask)
    approval = dataclasses.replace(good.approval, taint="off")
    return dataclasses.replace(good, tools=tools, approval=approval)
