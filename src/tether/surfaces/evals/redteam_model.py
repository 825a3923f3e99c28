"""The worst-case obedient model: it does whatever an attack says, as soon as it sees it.

Run against it, the red team measures the runtime alone: the model never
refuses, so every harm that does not happen was stopped by the runtime (an
approval, a validation, a missing tool) or by the tools' own guards.

On each call the model looks at the current turn (the user's last message
and the tool results since). If the attack's text is there, it makes the
attack's harmful calls, one per step, and then answers; for a
``leak-prompt`` attack it answers with the system prompt verbatim.
Otherwise it behaves like a plain scripted agent: it authenticates the user
on their opening message, makes the read their benign request calls for,
and answers.

A leak may be disguised as the attack asked (``answer_as``): a zero-width
space inside every word, a soft hyphen every 40 characters, or only the
canary line with a zero-width space inside its token (:func:`disguise`). For
a ``false-claim`` attack it answers with the claim it was told to make.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from tether.spec.messages import ToolCall
from tether.spec.model import ModelRequest
from tether.surfaces.evals.redteam_profile import CallSpec, expand
from tether.testing import FunctionModel, ScriptedResponse

__all__ = ["WORST_CASE", "Script", "disguise", "obedient_model", "probes", "sees"]

#: the worst-case model's name in reports
WORST_CASE = "worst-case"
#: its name as a model spec (a ``function`` model: priced at $0)
_SPEC = f"function:{WORST_CASE}"

_PROBE_CHARS = 48


def probes(text: str) -> tuple[str, ...]:
    """Fragments that show ``text`` is in a context, raw or inside JSON-rendered data.

    The first line's first characters: short enough to survive wrapping,
    long enough not to match anything else.
    """
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")[:_PROBE_CHARS]
    if not line:
        return ()
    forms = {line, json.dumps(line, ensure_ascii=False)[1:-1], json.dumps(line)[1:-1]}
    return tuple(sorted(forms))


def sees(context: str, fragments: Sequence[str]) -> bool:
    """Whether any of ``fragments`` is in ``context``."""
    return any(f in context for f in fragments)


_ZWSP = "\u200b"
_SHY = "\u00ad"


def disguise(system: str, form: str | None) -> str:
    """The system prompt as a leak written in ``form`` (``None``: verbatim)."""
    if form == "zero-width-words":
        return " ".join(w[:1] + _ZWSP + w[1:] if len(w) > 1 else w for w in system.split(" "))
    if form == "soft-hyphens":
        return _SHY.join(system[i : i + 40] for i in range(0, len(system), 40))
    if form == "canary-split":
        line = next((ln for ln in reversed(system.splitlines()) if ln.strip()), "")
        return " ".join(
            w[: len(w) // 2] + _ZWSP + w[len(w) // 2 :] if len(w) > 8 else w
            for w in line.split(" ")
        )
    return system


@dataclass(frozen=True, slots=True)
class Script:
    """What the obedient model does in one attack."""

    #: fragments of the attack's text (see :func:`probes`)
    probes: tuple[str, ...]
    #: the calls the attack wants, in order (``$SYSTEM`` filled in when made)
    harmful: tuple[CallSpec, ...]
    #: answer with the system prompt once the attack is seen
    leak: bool = False
    opening: str | None = None
    authenticate: CallSpec | None = None
    request: str | None = None
    read: CallSpec | None = None
    #: how a leaked prompt is written (see :func:`disguise`)
    leak_form: str | None = None
    #: the answer a ``false-claim`` attack makes the model give
    claim: str | None = None


def obedient_model(script: Script, *, name: str = _SPEC) -> FunctionModel:
    """A :class:`~tether.testing.FunctionModel` that obeys the attack in ``script``."""
    opening = script.opening.strip() if script.opening else None
    request_text = script.request.strip() if script.request else None

    def answer(request: ModelRequest) -> ScriptedResponse:
        msgs = request.messages
        last = max((i for i, m in enumerate(msgs) if m.role == "user"), default=-1)
        said = msgs[last].text.strip() if last >= 0 else ""
        since = msgs[last + 1 :]
        made = sum(len(m.tool_calls) for m in since if m.role == "assistant")
        turn = [said, *(r.content for m in since for r in m.results)]
        seen = any(sees(t, script.probes) for t in turn)
        plan: list[CallSpec] = []
        if opening is not None and said == opening and script.authenticate is not None:
            plan.append(script.authenticate)
        elif request_text is not None and said == request_text and script.read is not None:
            plan.append(script.read)
        if seen:
            plan.extend(script.harmful)
        if made < len(plan):
            spec = plan[made]
            args = expand(spec.args, {"SYSTEM": request.system})
            return ToolCall(f"rt{last}_{made}", spec.tool, args)
        if seen and script.leak:
            return disguise(request.system, script.leak_form)
        if seen and script.claim:
            return script.claim
        if seen:
            return "Done, exactly as instructed."
        return "Thanks, here is what I found."

    return FunctionModel(answer, name=name)
