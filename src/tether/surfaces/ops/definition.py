"""An agent version's full definition as data, its content hash, and the diff of two.

:func:`definition_of` turns an :class:`~tether.spec.agent.Agent` into plain
JSON: instructions, model chain, every tool (schema, risk flags, scopes,
timeouts, costs, the approval it gets, and its code: module, qualified name
and a SHA-256 of its source where Python can find it), every policy and
limit. :func:`content_hash` is the SHA-256 of that JSON with sorted keys
and without the version label, so two labels with the same content have the
same hash, and any change (a word of the instructions, a flag, an edited
tool body) changes it.

:func:`diff` says what changed from one definition to another, and marks as
a *risk* every change that loosens oversight: a tool that lost its approval
requirement or a risk flag, a new tool, scopes removed, a guard turned off
or weakened, a budget or limit raised.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import hashlib
import inspect
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pydantic

from tether.spec.agent import Agent
from tether.spec.tools import Tool
from tether.surfaces.audit import audit_agent

__all__ = ["Change", "Diff", "code_of", "content_hash", "definition_of", "diff"]

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")

#: fields of a Tool that are derived from others or carry the function itself
_TOOL_SKIP = frozenset({"fn", "validator", "is_async", "context_param"})
#: fields of an Agent handled on their own (``test_deps`` only serves contract tests: it
#: does not change what a version does)
_AGENT_SKIP = frozenset({"tools", "models", "deps", "output_schema", "test_deps", "toolsets"})
#: fields of a tool source whose values may be credentials: only their keys are recorded
_SOURCE_SECRETS = frozenset({"env", "headers"})


def _source_hash(obj: Any) -> str | None:
    try:
        source = inspect.getsource(obj)
    except (OSError, TypeError):
        return None
    return hashlib.sha256(source.encode()).hexdigest()


def code_of(fn: Callable[..., Any], _depth: int = 0) -> dict[str, Any]:
    """Where ``fn`` lives, a hash of its source, and what it carries.

    What a callable carries changes what it does as surely as its source: a
    ``functools.partial`` is recorded with its function and arguments, a
    bound method with its object's state, a callable object with its class's
    source and its attributes. Without source (a builtin, code made at run
    time), ``source_sha256`` is ``None`` and :func:`diff` reports any change
    of the rest.
    """
    if _depth > 4:
        return {"repr": repr(fn)[:200]}
    if isinstance(fn, functools.partial):
        return {
            "partial": code_of(fn.func, _depth + 1),
            "args": _plain(fn.args),
            "keywords": _plain(fn.keywords),
        }
    target = inspect.unwrap(fn)
    module = getattr(target, "__module__", None)
    out: dict[str, Any] = {"module": module}
    if inspect.isfunction(target) or inspect.isbuiltin(target):
        out["qualname"] = target.__qualname__
        out["source_sha256"] = _source_hash(target)
    elif inspect.ismethod(target):
        out["qualname"] = target.__func__.__qualname__
        out["source_sha256"] = _source_hash(target.__func__)
        out["self"] = _state(target.__self__, _depth)
    else:  # a callable object: its class and its state
        cls = type(target)
        out["module"] = cls.__module__
        out["qualname"] = cls.__qualname__
        out["source_sha256"] = _source_hash(cls)
        out["state"] = _state(target, _depth)
    return out


def _state(obj: Any, depth: int) -> Any:
    attrs = getattr(obj, "__dict__", None)
    if attrs is None:
        slots = getattr(type(obj), "__slots__", ())
        attrs = {k: getattr(obj, k) for k in slots if hasattr(obj, k)}
    return {
        str(k): (code_of(v, depth + 1) if callable(v) and not isinstance(v, type) else _plain(v))
        for k, v in sorted(attrs.items(), key=lambda kv: str(kv[0]))
        if not str(k).startswith("__")
    }


def _plain(value: Any) -> Any:
    """``value`` as JSON data: dataclasses by field, sets sorted, callables by their code."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return (
            value if value == value and value not in (float("inf"), float("-inf")) else str(value)
        )
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((_plain(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, type) and issubclass(value, pydantic.BaseModel):
        return {"pydantic": value.__qualname__, "schema": value.model_json_schema()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if callable(value):
        return {"code": code_of(value)}
    # an object's address changes with every process: it must not change the hash
    return _ADDRESS.sub("", repr(value))[:500]


def _model_name(model: Any) -> str:
    return model if isinstance(model, str) else str(getattr(model, "name", type(model).__name__))


def definition_of(agent: Agent) -> dict[str, Any]:
    """Everything that makes ``agent`` behave as it does, as JSON-ready data."""
    audit = {t.name: t for t in audit_agent(agent).tools}
    tools = []
    for t in sorted(agent.tools, key=lambda t: t.name):
        row = {f.name: _plain(getattr(t, f.name)) for f in dataclasses.fields(Tool)}
        for name in _TOOL_SKIP:
            row.pop(name, None)
        row["code"] = code_of(t.fn)
        row["approval"] = audit[t.name].approval if t.name in audit else "never"
        tools.append(row)
    out: dict[str, Any] = {
        f.name: _plain(getattr(agent, f.name))
        for f in dataclasses.fields(Agent)
        if f.name not in _AGENT_SKIP
    }
    out["models"] = [_model_name(m) for m in agent.models]
    out["toolsets"] = [_source(t) for t in getattr(agent, "toolsets", ())]
    out["tools"] = tools
    out["deps"] = None if agent.deps is None else code_of(agent.deps)
    schema = agent.output_schema
    if isinstance(schema, type) and issubclass(schema, pydantic.BaseModel):
        out["output_schema"] = schema.model_json_schema()
    else:
        out["output_schema"] = _plain(schema)
    return out


def _source(source: Any) -> Any:
    """A tool source (an MCP server) as data, without the values of its env and headers
    (tokens live there; the definition is stored and shown) or a URL's credentials."""
    if not (dataclasses.is_dataclass(source) and not isinstance(source, type)):
        return {"source": type(source).__qualname__, "name": getattr(source, "name", None)}
    out: dict[str, Any] = {"source": type(source).__qualname__}
    for f in dataclasses.fields(source):
        value = getattr(source, f.name)
        if f.name in _SOURCE_SECRETS and isinstance(value, Mapping):
            out[f.name] = sorted(str(k) for k in value)
        elif f.name == "url" and isinstance(value, str):
            parts = urlsplit(value)
            host = parts.hostname or ""
            port = f":{parts.port}" if parts.port else ""
            out[f.name] = f"{parts.scheme}://{host}{port}{parts.path}"
        else:
            out[f.name] = _plain(value)
    return out


def canonical(definition: Mapping[str, Any]) -> str:
    """The definition as canonical JSON (sorted keys, no spaces, ASCII)."""
    return json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def content_hash(definition: Mapping[str, Any]) -> str:
    """SHA-256 over the definition without its version label."""
    body = {k: v for k, v in definition.items() if k != "version"}
    return hashlib.sha256(canonical(body).encode()).hexdigest()


# --- diff -----------------------------------------------------------------------

_APPROVAL_RANK = {
    "always": 3,
    "blocked after untrusted content": 3,
    "after untrusted content": 2,
    "after untrusted content, for arguments not from the user": 1,
    "after untrusted content, when it carries planted values": 1,
    "never": 0,
}
_RISK_FLAGS = ("irreversible", "high_stakes", "critical", "external_comms", "writes", "egress")


@dataclass(frozen=True, slots=True)
class Change:
    """One difference: where (``tools.cancel_order.risk.irreversible``), old, new, and
    ``risk``: a sentence when the change loosens oversight, else ``None``."""

    path: str
    old: Any
    new: Any
    risk: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "old": self.old, "new": self.new, "risk": self.risk}


@dataclass(frozen=True, slots=True)
class Diff:
    """What changed from version ``a`` to version ``b``."""

    a: str
    b: str
    instructions: tuple[str, ...] = ()
    added_tools: tuple[str, ...] = ()
    removed_tools: tuple[str, ...] = ()
    changes: tuple[Change, ...] = ()
    same_content: bool = False
    risks: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "same_content": self.same_content,
            "instructions": list(self.instructions),
            "added_tools": list(self.added_tools),
            "removed_tools": list(self.removed_tools),
            "changes": [c.to_dict() for c in self.changes],
            "risks": list(self.risks),
        }


def _walk(path: str, old: Any, new: Any, out: list[tuple[str, Any, Any]]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            _walk(f"{path}.{key}" if path else key, old.get(key), new.get(key), out)
    elif old != new:
        out.append((path, old, new))


def _tool_risk(tool: str, path: str, old: Any, new: Any) -> str | None:
    leaf = path.rsplit(".", 1)[-1]
    if path.endswith(".approval"):
        if _APPROVAL_RANK.get(str(new), 0) < _APPROVAL_RANK.get(str(old), 0):
            return f"tool {tool} lost its approval requirement ({old} -> {new})"
    elif ".risk." in path and leaf in _RISK_FLAGS and old is True and not new:
        return f"tool {tool} is no longer marked {leaf}"
    elif leaf == "needs_approval" and old is True and new is not True:
        return f"tool {tool} no longer demands approval (needs_approval {old} -> {new})"
    elif leaf == "untrusted_output" and old is True and not new:
        return f"tool {tool}'s output is now trusted (its content is no longer treated as data)"
    elif leaf == "scopes" and isinstance(old, list) and set(old) - set(new or []):
        return f"tool {tool} needs fewer scopes ({sorted(set(old) - set(new or []))} dropped)"
    return None


def _agent_risk(path: str, old: Any, new: Any) -> str | None:
    if path == "approval.enabled" and old is True and not new:
        return "approvals are turned off for the whole agent"
    if path == "approval.flags" and isinstance(old, list) and set(old) - set(new or []):
        return f"approval no longer covers flags {sorted(set(old) - set(new or []))}"
    if path == "guard" and old is not None and new is None:
        return "the prompt-injection guard is turned off"
    if path.startswith("guard.") and old != new and path in ("guard.user", "guard.tool"):
        return f"the injection guard's {path.split('.')[1]} action changed ({old} -> {new})"
    if path == "no_downgrade" and old is True and not new:
        return "a backup model may now answer (no_downgrade was on)"
    if path.startswith(("budget.", "limits.")) and isinstance(old, (int, float)):
        if isinstance(new, (int, float)) and new > old and not path.endswith("compress_at"):
            return f"{path} raised ({old} -> {new})"
        if new is None:
            return f"{path} removed (was {old})"
    return None


def diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> Diff:
    """What changed from definition ``a`` to definition ``b``, risks first."""
    instructions = tuple(
        difflib.unified_diff(
            str(a.get("instructions", "")).splitlines(),
            str(b.get("instructions", "")).splitlines(),
            fromfile=f"v{a.get('version')}",
            tofile=f"v{b.get('version')}",
            lineterm="",
        )
    )
    old_tools = {t["name"]: t for t in a.get("tools", [])}
    new_tools = {t["name"]: t for t in b.get("tools", [])}
    added = tuple(sorted(set(new_tools) - set(old_tools)))
    removed = tuple(sorted(set(old_tools) - set(new_tools)))
    changes: list[Change] = []
    for name in sorted(set(old_tools) & set(new_tools)):
        found: list[tuple[str, Any, Any]] = []
        _walk("", old_tools[name], new_tools[name], found)
        for path, old, new in found:
            changes.append(
                Change(f"tools.{name}.{path}", old, new, _tool_risk(name, "." + path, old, new))
            )
    rest_a = {k: v for k, v in a.items() if k not in ("tools", "instructions", "version")}
    rest_b = {k: v for k, v in b.items() if k not in ("tools", "instructions", "version")}
    found = []
    _walk("", rest_a, rest_b, found)
    changes.extend(Change(p, o, n, _agent_risk(p, o, n)) for p, o, n in found)
    risks = [c.risk for c in changes if c.risk]
    for name in added:
        approval = new_tools[name].get("approval", "never")
        risks.append(f"new tool {name} (approval: {approval})")
    return Diff(
        a=str(a.get("version")),
        b=str(b.get("version")),
        instructions=instructions,
        added_tools=added,
        removed_tools=removed,
        changes=tuple(sorted(changes, key=lambda c: (c.risk is None, c.path))),
        same_content=content_hash(a) == content_hash(b),
        risks=tuple(risks),
    )
