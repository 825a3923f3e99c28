"""An incident into an eval case: a stored session's events replayed as a scripted case.

:func:`case_from_events` reads a session's log and writes down what the
model answered, turn by turn, so the same conversation can be played again
against the agent (``mode: scripted``): each user message is a turn; the
model's answers (``model.response``) become its ``model`` steps (text and
tool calls; a provider error that was retried becomes an ``error`` step);
approval decisions become its ``approvals`` (a decision that came too late
is given just as late); a reply to a ``clarify`` question, or a reply to an
approval request that was neither yes nor no, is a turn of its own, as it
was in the session.

Its ``expect:`` is only a starting point: the tools that ran, exactly, and
an approval before each tool that stopped for one. What *should* have
happened is for a person to write (the YAML carries a ``TODO`` comment).

Limits: a model answer with several tool calls is played as several answers
of one call each (same tools, same order); a retried timeout is not
replayed (only HTTP errors are); an operator's decision is replayed with
the default ``approver`` role. The world the tools ran on is not captured:
give the case a ``state`` its suite's environment understands.

:func:`append_case` adds the case to a case file (YAML with ``cases:``, or
JSONL), keeping the cases and comments already there, and checks that the
file still loads.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from tether.exceptions import ConfigError
from tether.runtime.approvals import CLARIFY
from tether.spec.events import Event, EventType
from tether.surfaces.evals.suite import parse_cases, parse_error, read_text
from tether.surfaces.jsonl import parse_jsonl

__all__ = ["TODO", "append_case", "case_from_events", "case_yaml"]

#: the comment put above a captured case's ``expect:``
TODO = "# TODO: state the expected outcome (below: what happened, as a starting point)"

_HTTP = re.compile(r"\bHTTP (\d{3})\b")
_ANSWERED = "The user answered: "
_ID_CHARS = re.compile(r"[^A-Za-z0-9_.:\-]")


def case_from_events(events: Sequence[Event], *, session_id: str | None = None) -> dict[str, Any]:
    """A scripted eval case (as a dict, in the case-file format) replaying ``events``.

    Raises :class:`~tether.exceptions.ConfigError` when the log holds no
    user message (there is nothing to replay).
    """
    sid = session_id or (events[0].session_id if events else "")
    turns: list[dict[str, Any]] = []
    ran: list[str] = []
    asked: list[str] = []
    retried: list[int] = []
    requested: dict[str, Event] = {}
    clarify_calls: set[str] = set()
    created: Event | None = None

    def turn(text: str) -> dict[str, Any]:
        turns.append({"user": text, "model": [], "approvals": []})
        return turns[-1]

    for ev in events:
        d = ev.data
        t = ev.type
        if t == EventType.SESSION_CREATED:
            created = ev
        elif t == EventType.USER_MESSAGE:
            turn(str(d.get("text", "")))
        elif not turns:
            continue  # nothing before the first user message is replayed
        elif t == EventType.MODEL_RETRY:
            status = _HTTP.search(str(d.get("reason", "")))
            if status:
                retried.append(int(status.group(1)))
        elif t == EventType.MODEL_FALLBACK:
            # the replay has one scripted model: the backup's answer comes straight away
            retried.clear()
        elif t == EventType.MODEL_RESPONSE:
            steps = turns[-1]["model"]
            steps += [{"error": s} for s in retried]
            retried.clear()
            steps += _steps(d.get("message") or {})
        elif t == EventType.TOOL_STARTED:
            ran.append(str(d["name"]))
        elif t == EventType.APPROVAL_REQUESTED:
            requested[str(d.get("approval_id"))] = ev
            if d.get("tool") not in asked:
                asked.append(str(d.get("tool")))
        elif t == EventType.APPROVAL_DECIDED:
            req = requested.get(str(d.get("approval_id")))
            turns[-1]["approvals"].append(_decision(bool(d.get("approved")), req))
        elif t == EventType.APPROVAL_EXPIRED:
            req = requested.get(str(d.get("approval_id")))
            late = _decision(True, req)
            if req is not None:
                ttl = float(req.data.get("expires_at", req.time)) - req.time
                late = late if isinstance(late, dict) else {"approve": True}
                late["after_s"] = round(max(ev.time - req.time, ttl + 1.0), 3)
            turns[-1]["approvals"].append(late)
        elif t == EventType.APPROVAL_REASKED:
            turn(str(d.get("text", "")))
        elif t == EventType.CLARIFY_ASKED:
            clarify_calls.add(str(d.get("call_id")))
        elif t == EventType.TOOL_FINISHED and d.get("call_id") in clarify_calls:
            clarify_calls.discard(str(d.get("call_id")))
            content = str(d.get("content", ""))
            turn(content.removeprefix(_ANSWERED) if d.get("name") == CLARIFY else content)
    if not turns:
        raise ConfigError(f"session {sid} has no user message: there is nothing to capture")
    for t_ in turns:
        if not t_["approvals"]:
            del t_["approvals"]
    case: dict[str, Any] = {
        "id": "captured-" + _ID_CHARS.sub("-", sid)[:12],
        "description": _description(sid, created),
        "tags": ["captured"],
        "mode": "scripted",
    }
    if created is not None and created.data.get("user_id"):
        case["user_id"] = str(created.data["user_id"])
    case["source"] = f"session {sid}"
    case["conversation"] = turns
    case["expect"] = [{"tool-sequence": {"tools": ran, "mode": "exact"}}] + [
        {"asked-approval-before": name} for name in asked
    ]
    return case


def _steps(message: dict[str, Any]) -> list[dict[str, Any]]:
    text = str(message.get("text") or "")
    calls = list(message.get("tool_calls") or [])
    if not calls:
        return [{"text": text}]
    steps: list[dict[str, Any]] = []
    for n, c in enumerate(calls):
        step: dict[str, Any] = {}
        if n == 0 and text:
            step["text"] = text
        step["tool"] = str(c["name"])
        step["args"] = dict(c.get("arguments") or {})
        steps.append(step)
    return steps


def _decision(approve: bool, requested: Event | None) -> Any:
    if requested is not None and requested.data.get("mode") == "operator":
        return {"approve": approve, "roles": ["approver"]}
    return "yes" if approve else "no"


def _description(sid: str, created: Event | None) -> str:
    if created is None:
        return f"Captured from session {sid}."
    d = created.data
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(created.time))
    return f"Captured from session {sid} ({d.get('agent')} v{d.get('version')}, {when})."


#: what YAML reads as a line break besides \n and \r: written raw inside a quoted
#: string (as PyYAML does), a later edit that splits the file into lines cuts it
_YAML_BREAKS = ("\x85", "\u2028", "\u2029")


class _Dumper(yaml.SafeDumper):
    """Block style, and lists indented under their key (as people write YAML)."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    """A string with a YAML line break other than \n in it is double-quoted, where
    the break is written as an escape (``\\L``), never as the character."""
    if any(c in value for c in _YAML_BREAKS):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')
    return dumper.represent_str(value)


_Dumper.add_representer(str, _str)


def case_yaml(case: dict[str, Any]) -> str:
    """``case`` as YAML, with the :data:`TODO` comment above its ``expect:``."""
    text = yaml.dump(
        case,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
        default_flow_style=False,
    )
    return re.sub(r"^expect:", TODO + "\nexpect:", text, count=1, flags=re.MULTILINE)


def _unique_id(case: dict[str, Any], taken: set[str]) -> dict[str, Any]:
    base = case["id"]
    cid, n = base, 1
    while cid in taken:
        n += 1
        cid = f"{base}-{n}"
    return {**case, "id": cid}


def _ids(data: Any) -> set[str]:
    items = data.get("cases") if isinstance(data, dict) and "cases" in data else data
    items = items if isinstance(items, list) else [items]
    return {str(c["id"]) for c in items if isinstance(c, dict) and "id" in c}


def _item(case_text: str, indent: str) -> str:
    lines = case_text.rstrip("\n").split("\n")
    first = f"{indent}- {lines[0]}"
    rest = [f"{indent}  {line}" if line else "" for line in lines[1:]]
    return "\n".join([first, *rest]) + "\n"


_TOP_KEY = re.compile(r"^([A-Za-z_][\w-]*):", re.MULTILINE)
_CASES_LINE = re.compile(r"^cases:[ \t]*(\[\])?[ \t]*(#.*)?$", re.MULTILINE)
_ITEM = re.compile(r"^([ \t]*)- ", re.MULTILINE)


def _appended_yaml(text: str, data: Any, case: dict[str, Any]) -> str:
    """``text`` with ``case`` added as the last item of its case list."""
    item = case_yaml(case)
    if data is None:  # a new file, or only comments
        kept = text.rstrip("\n") + "\n\n" if text.strip() else ""
        return kept + "cases:\n" + _item(item, "  ")
    keys = _TOP_KEY.findall(text)
    line = list(_CASES_LINE.finditer(text))
    if isinstance(data, dict) and keys[-1:] == ["cases"] and line:
        # `cases:` is the last block, in block style: the case goes at its end
        # and everything above (other cases, defaults, comments) stays as it is
        at = line[-1]
        head, tail = text[: at.start()], text[at.end() :]
        first = _ITEM.search(tail)
        indent = first.group(1) if first is not None else "  "
        cases_line = "cases:" if at.group(1) else at.group(0)
        body = (head + cases_line + tail).rstrip("\n") + "\n"
        return body + ("\n" if data.get("cases") else "") + _item(item, indent)
    if isinstance(data, list) and not keys:
        return text.rstrip("\n") + "\n\n" + _item(item, "")
    # Anything else (one case, flow style, `cases:` not last): the file is written anew.
    if isinstance(data, dict) and "cases" in data:
        rest = {k: v for k, v in data.items() if k != "cases"}
        cases = list(data["cases"] or [])
    else:
        rest, cases = {}, (data if isinstance(data, list) else [data])
    body = yaml.dump(rest, Dumper=_Dumper, sort_keys=False, allow_unicode=True) if rest else ""
    listed = "".join(_item(case_yaml(c).replace(TODO + "\n", ""), "  ") + "\n" for c in cases)
    return body + "cases:\n" + listed + _item(item, "  ")


def append_case(path: str | Path, case: dict[str, Any]) -> dict[str, Any]:
    """Add ``case`` to the case file at ``path`` (created if missing); return it as written.

    Its id gets a ``-2``, ``-3``... suffix if the file already has it. The
    result is loaded back before it is written; a file that would not load
    is left as it was (:class:`~tether.exceptions.ConfigError`).
    """
    p = Path(path)
    text = read_text(p) if p.exists() else ""
    if p.suffix == ".jsonl":
        existing = [data for _, data in parse_jsonl(text, source=str(p))]
        case = _unique_id(case, {str(c.get("id")) for c in existing if isinstance(c, dict)})
        sep = "" if not text or text.endswith("\n") else "\n"
        new = text + sep + json.dumps(case, ensure_ascii=False) + "\n"
        parsed = [data for _, data in parse_jsonl(new, source=str(p))]
    elif p.suffix in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: cannot be parsed ({parse_error(exc)})") from None
        case = _unique_id(case, _ids(data))
        new = _appended_yaml(text, data, case)
        parsed = yaml.safe_load(new)
    else:
        raise ConfigError(f"{p}: a case file ends in .yaml, .yml or .jsonl")
    cases = parse_cases(parsed, source=str(p))
    if not cases or cases[-1].id != case["id"]:
        raise ConfigError(f"{p}: the captured case did not come out last; add it by hand")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(new, encoding="utf-8")
    return case
