"""Tool declarations: ``@tool`` turns a typed, documented function into a :class:`Tool`.

The argument JSON Schema comes from the type hints, the descriptions from
the docstring (Google, reST or NumPy style). A parameter annotated with
:class:`ToolContext` is not part of the schema: the runtime passes the call's
context there (session id, idempotency key, session vars, the agent's deps).
:meth:`Tool.from_schema` declares a tool from a schema that already exists
(a JSON Schema or a pydantic model) and a function taking its arguments.

Risk flags say what the tool can do; the runtime (not the prompt) acts on
them: ``reads``, ``writes``, ``irreversible``, ``high_stakes``,
``external_comms``, ``critical``, and ``egress`` (its arguments leave the
system: a URL it fetches, a web search, any call to a third party);
``untrusted_output`` marks output that may carry instructions (web pages,
emails), and ``trusted_fields`` names the fields of such a result that are
the application's own (an id, a price, a status); ``idempotent`` says a
repeated call is harmless (so it may be retried or re-run after a crash).

``cost`` says what a call costs in dollars besides the model's tokens (a
paid search API, an SMS): a fixed price per call, or a function of what the
tool returned. The runtime records it on the call's ``tool.finished`` event
and adds it to the session's cost (see :class:`Tool` for when a call is
charged).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import math
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias, TypedDict, overload

import docstring_parser
import pydantic

from tether.exceptions import ToolDefinitionError
from tether.spec import tool_schema
from tether.spec.model import ToolSpec
from tether.spec.policy import RetryPolicy

__all__ = [
    "DEFAULT_MAX_OUTPUT_CHARS",
    "Executor",
    "Risk",
    "Tool",
    "ToolContext",
    "ToolCost",
    "tool",
]

#: what a tool's result may show the model, in characters, unless the tool says otherwise
DEFAULT_MAX_OUTPUT_CHARS = 20_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Risk:
    """What a tool can do. All false means a pure computation."""

    reads: bool = False
    writes: bool = False
    irreversible: bool = False
    high_stakes: bool = False
    external_comms: bool = False
    critical: bool = False
    #: its arguments leave the system (a fetched URL, a search query, a third-party call)
    egress: bool = False

    def names(self) -> tuple[str, ...]:
        """The flags that are set, in declaration order."""
        return tuple(
            n
            for n in (
                "reads",
                "writes",
                "irreversible",
                "high_stakes",
                "external_comms",
                "critical",
                "egress",
            )
            if getattr(self, n)
        )


@dataclass(slots=True)
class ToolContext:
    """What a tool may know about the call it serves.

    ``vars`` is the session's small key-value store (for example the
    authenticated user id); changes a tool makes to it are recorded in the
    ``tool.finished`` event and so survive restarts. Its values must be
    storable as JSON: the runtime passes a dict that checks each value as it
    is set, keeps a ``datetime`` as its ISO text and refuses what cannot be
    stored (see :mod:`tether.spec.jsonsafe`). ``deps`` is whatever the
    agent's ``deps`` factory built (a database handle, an HTTP client).
    ``idempotency_key`` is stable for this call across retries and resumes:
    pass it downstream so a repeated call is de-duplicated there too.
    """

    session_id: str
    step: int
    call_id: str
    idempotency_key: str
    user_id: str | None
    vars: dict[str, Any]
    deps: Any = None


class Executor(Protocol):
    """Where a tool's plain (blocking) function runs: the runtime's own worker threads.

    ``run`` calls ``fn(**kwargs)`` off the event loop and returns its result
    (or raises its exception). The runtime's implementation is
    ``tether.runtime.executor.ToolExecutor``.
    """

    async def run(self, fn: Callable[..., Any], /, **kwargs: Any) -> Any: ...


ToolFn = Callable[..., Any]
#: what a call costs besides tokens: dollars per call, or a function of the
#: tool's return value giving dollars
ToolCost: TypeAlias = float | Callable[[Any], float]
# Built once: a subscripted type written inside ``cast`` is rebuilt on every call.
_AsyncToolFn = Callable[..., Awaitable[Any]]


class _Arguments(Protocol):
    """How a :meth:`Tool.from_schema` tool checks its arguments (a decorated one: its model).

    ``validate`` returns the keyword arguments for the tool's function, or
    raises ``pydantic.ValidationError`` listing what is wrong, so the runtime
    treats both kinds of tool alike.
    """

    def validate(self, arguments: dict[str, Any], /) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Tool:
    """A declared tool. Call it with ``await tool(ctx, arguments)``.

    Async functions run on the event loop; plain functions run in a worker
    thread (they may block), so a plain function must be thread-safe.
    ``max_output_chars`` bounds what the model is shown of one result: a
    longer one reaches it cut, with a note saying so.

    ``cost`` is what a call costs in dollars besides the model's tokens:
    a fixed price (``0.005``: a paid search API) or a function of what the
    tool returned (``lambda r: 0.0079 * r["segments"]``: an SMS billed by
    segment). The runtime records it as ``cost`` on the call's
    ``tool.finished`` event and adds it to the session's cost
    (``SessionState.cost``, the session row, ``TurnResult.cost``). When a
    call is charged:

    - a fixed price is charged each time the tool's function ran (it was
      entered: the API may have been called), error or not: a call that
      raised, refused (``ToolFailed``) or timed out is charged; an
      idempotent call retried after a transient failure is charged for
      each attempt that ran. After a crash, a call that started but never
      reported is charged once: as "outcome unknown" (not idempotent, not
      run again), or for its re-run (idempotent; the lost run left no
      record);
    - never for a call whose function did not run: refused by a gate,
      waiting for approval, denied or expired, stopped by an open breaker,
      arguments that failed validation, no free worker thread; and a call
      whose result was stored before a crash is not run again on resume,
      so it is not charged again (exactly once);
    - a function of the result is called only when the call succeeded,
      with the value the function returned (before it is rendered for the
      model); a failed call costs 0. It runs on the event loop: keep it
      cheap, and plain (not ``async``). If it raises or returns something
      that is not a non-negative, finite number, the call is recorded at 0
      with ``cost_error`` (a short message) on the event and a warning is
      logged; the turn goes on.

    A tool with a cost has ``cost`` on every ``tool.finished`` event, 0
    when it was not charged; a tool without one never has it.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    fn: ToolFn
    risk: Risk = field(default_factory=Risk)
    untrusted_output: bool = False
    idempotent: bool = False
    timeout: float = 30.0
    retry: RetryPolicy | None = None
    #: ``None``: by the agent's approval flags; ``True``/``False`` overrides them
    needs_approval: bool | None = None
    #: the approval summary, a ``str.format`` template over the arguments
    summary: str | None = None
    #: what a caller must hold to trigger this tool (empty: any caller)
    scopes: frozenset[str] = frozenset()
    is_async: bool = False
    context_param: str | None = None
    #: a pydantic model (``@tool``), or a :meth:`from_schema` tool's own argument check
    validator: type[pydantic.BaseModel] | _Arguments | None = None
    #: last, so that a Tool built with positional arguments before it still works
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS
    #: fields of an ``untrusted_output`` result (a JSON object, or a list of them) that
    #: the application itself wrote (ids, prices, statuses): they do not taint and
    #: count as trusted provenance for later arguments
    trusted_fields: frozenset[str] = frozenset()
    #: whether the author said if the output is trusted (``untrusted_output`` given);
    #: ``tether audit`` warns about read tools returning free text that did not
    trust_declared: bool = False
    #: what taint means for this tool: ``approve``, ``block``, ``off``; ``None``: the
    #: agent's :class:`~tether.spec.approval.ApprovalPolicy` decides by its flags
    taint: str | None = None
    #: dollars per call, or a function of the returned value giving dollars (``None``: free)
    cost: ToolCost | None = None

    def __post_init__(self) -> None:
        if self.cost is not None:
            # frozen: set through object (an int price is kept as a float)
            object.__setattr__(self, "cost", _checked_cost(self.cost, self.name))

    @property
    def spec(self) -> ToolSpec:
        """What the model is told about this tool."""
        return ToolSpec(self.name, self.description, self.parameters)

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Check ``arguments`` against the schema; return the function's keyword arguments.

        Raises ``pydantic.ValidationError`` with every problem listed (for a
        JSON Schema tool, up to 10 of them).
        """
        check = self.validator
        if check is None:
            return arguments
        if isinstance(check, type):
            model = check.model_validate(arguments)
            return {k: getattr(model, k) for k in type(model).model_fields}
        return check.validate(arguments)

    async def __call__(
        self,
        ctx: ToolContext,
        arguments: dict[str, Any],
        *,
        executor: Executor | None = None,
        started: Callable[[], None] | None = None,
    ) -> Any:
        """Validate ``arguments`` and run the function.

        A plain function runs on ``executor`` (the runtime passes its own
        bounded worker threads) or, without one, on the event loop's default
        thread pool (``asyncio.to_thread``). ``started`` is called as the
        function is entered (for a plain one, in its worker thread), never
        when it did not run (invalid arguments, no free thread): the
        runtime counts the runs of a tool with a ``cost`` this way.
        """
        kwargs = self.validate(arguments)
        if self.context_param is not None:
            kwargs[self.context_param] = ctx
        if self.is_async:
            if started is not None:
                started()
            return await typing.cast(_AsyncToolFn, self.fn)(**kwargs)
        fn = self.fn if started is None else _announcing(self.fn, started)
        # A plain function may block (a database query, a file read): run it in
        # a worker thread so the event loop, and every other session, keeps going
        # and the runtime's timeout can still fire.
        if executor is not None:
            return await executor.run(fn, **kwargs)
        return await asyncio.to_thread(fn, **kwargs)

    @classmethod
    def from_schema(
        cls,
        name: str,
        description: str,
        parameters: dict[str, Any] | type[pydantic.BaseModel],
        fn: ToolFn,
        *,
        reads: bool = False,
        writes: bool = False,
        irreversible: bool = False,
        high_stakes: bool = False,
        external_comms: bool = False,
        critical: bool = False,
        egress: bool = False,
        untrusted_output: bool | None = None,
        trusted_fields: tuple[str, ...] | frozenset[str] = (),
        taint: str | None = None,
        idempotent: bool | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        needs_approval: bool | None = None,
        summary: str | None = None,
        scopes: tuple[str, ...] | frozenset[str] = (),
        max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
        cost: ToolCost | None = None,
    ) -> Tool:
        """Declare a tool from a schema that already exists and a function that does the work.

        ``parameters`` is either

        - a JSON Schema of an object (``{"type": "object", "properties":
          ...}``), checked against its meta-schema (Draft 2020-12 unless its
          ``$schema`` names another). Each call's arguments are validated
          against it with ``jsonschema`` (``format`` included) and ``fn``
          receives them as keyword arguments, as the model sent them; a
          property the model left out that has a ``default`` in the schema
          gets that default. Keys ``fn`` takes no parameter for (when the
          schema allows extra properties and ``fn`` has no ``**kwargs``) are
          dropped;
        - or a pydantic model class: its JSON Schema is what the model is
          told, and each call's arguments are parsed into it. If ``fn``'s
          only parameter (besides a context) is annotated with that model,
          it receives the instance (``def run(args: SearchArgs)``);
          otherwise it receives the fields as keyword arguments, by their
          Python names (``def run(query: str, limit: int)``).

        Either way the arguments are checked before ``fn`` runs: invalid
        ones never reach it, the model gets an error result listing the
        problems and may call again. ``fn`` may be sync (run in a worker
        thread) or async, and may take a parameter annotated
        :class:`ToolContext` (any name, any position) to receive the
        call's context, as with ``@tool``. Every keyword is the decorator's,
        with the same default and meaning (see :func:`tool`).

        A schema that is not an object, is not a valid JSON Schema or
        cannot be sent as JSON, a function whose parameters do not match
        the schema (a property it does not take, a required parameter the
        schema does not declare or lets the model leave out), an empty name
        or description: each is a
        :class:`~tether.exceptions.ToolDefinitionError` saying how to fix it.
        """
        flags = _flags(
            name,
            reads=reads,
            writes=writes,
            irreversible=irreversible,
            high_stakes=high_stakes,
            external_comms=external_comms,
            critical=critical,
            egress=egress,
            untrusted_output=untrusted_output,
            trusted_fields=trusted_fields,
            taint=taint,
            idempotent=idempotent,
            timeout=timeout,
            retry=retry,
            needs_approval=needs_approval,
            summary=summary,
            scopes=scopes,
            max_output_chars=max_output_chars,
            cost=cost,
        )
        return _from_schema(name, description, parameters, fn, flags)


def _announcing(fn: ToolFn, started: Callable[[], None]) -> ToolFn:
    """``fn`` calling ``started()`` first, in the thread that runs it (same name, for logs)."""

    @functools.wraps(fn)
    def run(**kwargs: Any) -> Any:
        started()
        return fn(**kwargs)

    return run


def _checked_cost(cost: Any, name: str | None) -> ToolCost:
    """``cost`` if it is a valid tool cost (a float for a number); else a ToolDefinitionError."""
    what = "tool cost" if name is None else f"tool {name!r}: cost"
    fix = (
        "give dollars per call as a number >= 0 (cost=0.005), or a plain function of the "
        "tool's result returning dollars (cost=lambda result: 0.001 * len(result))"
    )
    if callable(cost):
        if inspect.iscoroutinefunction(cost) or inspect.iscoroutinefunction(type(cost).__call__):
            raise ToolDefinitionError(
                f"{what} is an async function, but it is called on the event loop after "
                f"each successful call and must return dollars at once; {fix}"
            )
        return typing.cast(Callable[[Any], float], cost)
    if isinstance(cost, bool) or not isinstance(cost, int | float):
        raise ToolDefinitionError(f"{what} must be a number or a function, not {cost!r}; {fix}")
    price = float(cost)
    if not math.isfinite(price) or price < 0:
        raise ToolDefinitionError(
            f"{what} must be a finite number of dollars >= 0, not {cost!r}; {fix}"
        )
    return price


def _is_context(annotation: Any) -> bool:
    return annotation is ToolContext or (
        isinstance(annotation, str) and annotation.split(".")[-1] == "ToolContext"
    )


class _Flags(TypedDict):
    """What ``@tool`` and :meth:`Tool.from_schema` declare alike, checked: ``Tool``'s fields."""

    risk: Risk
    untrusted_output: bool
    idempotent: bool
    timeout: float
    retry: RetryPolicy | None
    needs_approval: bool | None
    summary: str | None
    scopes: frozenset[str]
    max_output_chars: int
    trusted_fields: frozenset[str]
    trust_declared: bool
    taint: str | None
    cost: ToolCost | None


def _flags(
    name: str | None,
    *,
    reads: bool,
    writes: bool,
    irreversible: bool,
    high_stakes: bool,
    external_comms: bool,
    critical: bool,
    egress: bool,
    untrusted_output: bool | None,
    trusted_fields: tuple[str, ...] | frozenset[str],
    taint: str | None,
    idempotent: bool | None,
    timeout: float,
    retry: RetryPolicy | None,
    needs_approval: bool | None,
    summary: str | None,
    scopes: tuple[str, ...] | frozenset[str],
    max_output_chars: int,
    cost: ToolCost | None,
) -> _Flags:
    """The declared flags as ``Tool`` fields, or a ToolDefinitionError saying which is wrong."""
    if taint not in (None, "approve", "block", "off"):
        raise ToolDefinitionError(
            f"tool taint must be 'approve', 'block', 'off' or None, not {taint!r}"
        )
    if trusted_fields and not untrusted_output:
        raise ToolDefinitionError(
            "trusted_fields names the trusted parts of an untrusted result: "
            "set untrusted_output=True too"
        )
    if timeout <= 0:
        raise ToolDefinitionError(f"tool timeout must be positive, got {timeout}")
    if (
        not isinstance(max_output_chars, int)
        or isinstance(max_output_chars, bool)
        or max_output_chars <= 0
    ):
        raise ToolDefinitionError(
            f"tool max_output_chars must be a positive whole number of characters, got "
            f"{max_output_chars!r}; leave it out for the default of {DEFAULT_MAX_OUTPUT_CHARS:,}"
        )
    if cost is not None:
        _checked_cost(cost, name)  # here, before a function is given; Tool checks it again
    risk = Risk(
        reads=reads,
        writes=writes or irreversible,
        irreversible=irreversible,
        high_stakes=high_stakes,
        external_comms=external_comms,
        critical=critical,
        egress=egress,
    )
    effectful = risk.writes or external_comms or high_stakes or critical
    return _Flags(
        risk=risk,
        untrusted_output=bool(untrusted_output),
        idempotent=(not effectful) if idempotent is None else idempotent,
        timeout=timeout,
        retry=retry,
        needs_approval=needs_approval,
        summary=summary,
        scopes=frozenset(scopes),
        max_output_chars=max_output_chars,
        trusted_fields=frozenset(trusted_fields),
        trust_declared=untrusted_output is not None,
        taint=taint,
        cost=cost,  # checked by Tool itself
    )


def _build(fn: ToolFn, *, name: str | None, description: str | None, flags: _Flags) -> Tool:
    if not callable(fn):
        raise ToolDefinitionError(f"@tool needs a function, got {fn!r}")
    tool_name = name or fn.__name__
    doc = docstring_parser.parse(inspect.getdoc(fn) or "")
    param_docs = {p.arg_name: (p.description or "") for p in doc.params}
    doc_text = "\n\n".join(x for x in (doc.short_description, doc.long_description) if x)
    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:  # NameError from unresolvable forward refs, mostly
        raise ToolDefinitionError(
            f"tool {tool_name!r}: cannot resolve its type hints ({exc}); "
            "import the types it names at module level"
        ) from exc
    fields: dict[str, Any] = {}
    context_param: str | None = None
    for pname, param in inspect.signature(fn).parameters.items():
        ann = hints.get(pname, param.annotation)
        if _is_context(ann):
            context_param = pname
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ToolDefinitionError(
                f"tool {tool_name!r}: *args/**kwargs cannot be described to a model; "
                "declare each argument with a type"
            )
        if ann is inspect.Parameter.empty:
            raise ToolDefinitionError(
                f"tool {tool_name!r}: argument {pname!r} has no type hint; "
                "add one so its JSON Schema can be derived"
            )
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (ann, pydantic.Field(default, description=param_docs.get(pname) or None))
    try:
        validator = pydantic.create_model(
            f"{tool_name}_args",
            __config__=pydantic.ConfigDict(extra="forbid"),
            **fields,
        )
        schema = validator.model_json_schema()
    except Exception as exc:
        raise ToolDefinitionError(
            f"tool {tool_name!r}: its argument types cannot become a JSON Schema ({exc})"
        ) from exc
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    if not doc_text:
        raise ToolDefinitionError(
            f"tool {tool_name!r} has no docstring; the model needs a description "
            "to know when to call it"
        )
    return Tool(
        name=tool_name,
        description=description or doc_text,
        parameters=schema,
        fn=fn,
        is_async=inspect.iscoroutinefunction(fn),
        context_param=context_param,
        validator=validator,
        **flags,
    )


def _from_schema(
    name: str,
    description: str,
    parameters: dict[str, Any] | type[pydantic.BaseModel],
    fn: ToolFn,
    flags: _Flags,
) -> Tool:
    """The tool :meth:`Tool.from_schema` declares (see there for the rules)."""
    if not isinstance(name, str) or not name.strip():
        raise ToolDefinitionError(
            f"Tool.from_schema needs the tool's name as a non-empty string, got {name!r}"
        )
    what = f"tool {name!r}"
    if not isinstance(description, str) or not description.strip():
        raise ToolDefinitionError(
            f"{what} has no description; the model needs one to know when to call it"
        )
    if not callable(fn):
        raise ToolDefinitionError(f"{what}: fn must be a function, got {fn!r}")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise ToolDefinitionError(
            f"{what}: cannot read the function's parameters ({exc}); wrap it in a def "
            "that takes the arguments by name"
        ) from exc
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # a forward ref to a local class, a callable object: read them as written
        hints = {}
    context_param: str | None = None
    params: dict[str, inspect.Parameter] = {}
    annotations: dict[str, Any] = {}
    for pname, param in signature.parameters.items():
        ann = hints.get(pname, param.annotation)
        if context_param is None and _is_context(ann):
            context_param = pname
        else:
            params[pname] = param
            annotations[pname] = ann
    validator: type[pydantic.BaseModel] | _Arguments
    if isinstance(parameters, type) and issubclass(parameters, pydantic.BaseModel):
        schema = tool_schema.model_schema(what, parameters)
        names = tuple(parameters.model_fields)
        whole = next(iter(params)) if len(params) == 1 else None
        if whole is not None and _names_model(annotations[whole], parameters):
            if params[whole].kind not in tool_schema.BY_NAME:
                raise ToolDefinitionError(
                    f"{what}: the function's parameter {whole!r} cannot be passed by name; "
                    "make it a plain parameter"
                )
            validator = tool_schema.ModelArgument(parameters, whole)
        else:
            tool_schema.fitting(what, params, context_param, names, given=names)
            validator = parameters  # as @tool's own model: the fields, by their Python names
    elif isinstance(parameters, dict):
        schema, check = tool_schema.object_schema(what, parameters)
        props: dict[str, Any] = schema.get("properties", {})
        defaults = {
            k: v["default"] for k, v in props.items() if isinstance(v, dict) and "default" in v
        }
        given = {*schema.get("required", ()), *defaults}
        accepted = tool_schema.fitting(what, params, context_param, props, given)
        validator = tool_schema.SchemaArguments(name, check, defaults, accepted)
    else:
        raise ToolDefinitionError(
            f"{what}: parameters must be a JSON Schema (a dict) or a pydantic model class, "
            f"not {parameters!r}"
        )
    return Tool(
        name=name,
        description=description,
        parameters=schema,
        fn=fn,
        is_async=inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__),
        context_param=context_param,
        validator=validator,
        **flags,
    )


def _names_model(annotation: Any, model: type[pydantic.BaseModel]) -> bool:
    """Whether a parameter's annotation is ``model`` (or its name, when left unresolved)."""
    if isinstance(annotation, str):
        return annotation in (model.__name__, model.__qualname__)
    return annotation is model


@overload
def tool(fn: ToolFn, /) -> Tool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    reads: bool = False,
    writes: bool = False,
    irreversible: bool = False,
    high_stakes: bool = False,
    external_comms: bool = False,
    critical: bool = False,
    egress: bool = False,
    untrusted_output: bool | None = None,
    trusted_fields: tuple[str, ...] | frozenset[str] = (),
    taint: str | None = None,
    idempotent: bool | None = None,
    timeout: float = 30.0,
    retry: RetryPolicy | None = None,
    needs_approval: bool | None = None,
    summary: str | None = None,
    scopes: tuple[str, ...] | frozenset[str] = (),
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
    cost: ToolCost | None = None,
) -> Callable[[ToolFn], Tool]: ...


def tool(
    fn: ToolFn | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    reads: bool = False,
    writes: bool = False,
    irreversible: bool = False,
    high_stakes: bool = False,
    external_comms: bool = False,
    critical: bool = False,
    egress: bool = False,
    untrusted_output: bool | None = None,
    trusted_fields: tuple[str, ...] | frozenset[str] = (),
    taint: str | None = None,
    idempotent: bool | None = None,
    timeout: float = 30.0,
    retry: RetryPolicy | None = None,
    needs_approval: bool | None = None,
    summary: str | None = None,
    scopes: tuple[str, ...] | frozenset[str] = (),
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
    cost: ToolCost | None = None,
) -> Tool | Callable[[ToolFn], Tool]:
    """Declare a tool. Use bare (``@tool``) or with flags (``@tool(reads=True)``).

    ``idempotent`` defaults to true for tools that do not write and have no
    external effect, and false otherwise. ``timeout`` (seconds) bounds each call.
    ``retry`` overrides the agent's :class:`~tether.spec.policy.RetryPolicy`
    for this tool; only idempotent tools are ever retried. ``needs_approval``
    overrides the agent's approval flags for this tool; ``summary`` is what
    the person approving reads, a template over the call's real arguments
    (``"Cancel order {order_id}"``), never the model's words. ``scopes``
    are what a caller must hold to trigger it (``Runtime.run(scopes=...)``);
    none means any caller may. ``max_output_chars`` is how much of one
    result the model is shown (20,000 characters by default); a longer
    result reaches it cut, with a note saying so, and the full text is kept
    with the session's events (up to the store's own cap).

    ``egress`` says the arguments leave the system (a URL fetched, a search
    query, a message to a third party): after untrusted content, such a call
    whose arguments carry values planted by that content needs approval
    (``ApprovalPolicy.taint_egress``). ``untrusted_output`` says whether the
    output may carry text anyone could have written (``None``: not said;
    ``tether audit`` warns for read tools returning free text);
    ``trusted_fields`` names the fields of such a result the application
    wrote itself. ``taint`` overrides, for this tool, what the agent's
    policy does with a call after untrusted content (``approve``, ``block``,
    ``off``).

    ``cost`` is what a call costs in dollars besides tokens: a number (per
    call) or a function of the tool's result (``lambda r: 0.01 * len(r)``);
    see :class:`Tool` for when a call is charged. A negative, infinite or
    NaN price, or anything else, is a :class:`~tether.exceptions.ToolDefinitionError`.
    """
    flags = _flags(
        name,
        reads=reads,
        writes=writes,
        irreversible=irreversible,
        high_stakes=high_stakes,
        external_comms=external_comms,
        critical=critical,
        egress=egress,
        untrusted_output=untrusted_output,
        trusted_fields=trusted_fields,
        taint=taint,
        idempotent=idempotent,
        timeout=timeout,
        retry=retry,
        needs_approval=needs_approval,
        summary=summary,
        scopes=scopes,
        max_output_chars=max_output_chars,
        cost=cost,
    )

    def wrap(f: ToolFn) -> Tool:
        return _build(f, name=name, description=description, flags=flags)

    if fn is not None:
        return wrap(fn)
    return wrap
