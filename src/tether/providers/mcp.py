"""MCP servers as tool sources, on the official ``mcp`` SDK (stdio or streamable HTTP).

``mcp_server("stdio", name="shop", command=["python", "shop.py"])`` declares a
server; put it in an agent's ``tools`` and the runtime starts it (a
subprocess it owns) or reaches it (a URL) on the agent's first turn, lists
its tools and offers them to the model as ordinary tools. Each call goes
through the same timeout, breaker and retry policy as any tool.

An MCP server is a third party, and its annotations are hints it wrote
about itself: they may only tighten policy (DESIGN.md, "Tools from
anywhere"). :func:`flags_for` is the whole mapping:

====================================  =========================================
annotation                            Tether flags
====================================  =========================================
none, or ``destructiveHint`` true     ``irreversible`` (a call needs approval)
``readOnlyHint`` true                 ``reads`` only, *if the server is trusted*;
                                      from an untrusted server: still
                                      ``irreversible``
``destructiveHint`` false             ``writes`` (no approval), if trusted;
                                      else ``irreversible``
``idempotentHint`` true               ``idempotent`` (retried on a transient
                                      failure, re-run after a crash), if
                                      trusted; otherwise never
``openWorldHint`` true or missing     ``untrusted_output`` (spotlighted, taints
                                      the session) and ``egress``
``openWorldHint`` false               trusted output, if the server is trusted
====================================  =========================================

An operator's ``overrides`` (per tool, in code or a YAML file through
:func:`load_overrides`) are applied last and win over all of it.

Failures: a result with ``isError`` is the tool's refusal
(:class:`~tether.exceptions.ToolFailed`: the model is told, the breaker
counts the server as healthy). A server that dies or drops the connection
mid-call is a transient failure (:class:`~tether.exceptions.Retry`: retried
only for an idempotent tool, counted by the tool's breaker) and the next
call starts a new connection (a new subprocess for stdio).

``tools/list_changed``: the next turn lists the tools again; new tools are
added, removed ones dropped, and a tool whose definition changed is built
anew. :meth:`McpConnection.definitions` gives each listed tool's definition
as the server wrote it, which the runtime pins by hash
(``tether.runtime.pins``): a changed or new tool is quarantined there, hidden
from the model until an operator accepts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pydantic

from tether.exceptions import ConfigError, Retry, ToolDefinitionError, ToolFailed
from tether.spec.tools import Tool
from tether.spec.toolsource import ToolSourceUnavailable

if TYPE_CHECKING:  # the SDK loads only when a server is opened
    from mcp import Client
    from mcp.types import CallToolResult
    from mcp.types import Tool as McpTool

__all__ = ["McpServer", "definition_of", "flags_for", "load_overrides", "mcp_server"]

log = logging.getLogger("tether.mcp")

Transport = Literal["stdio", "http"]
#: seconds to wait for a server to start and answer ``initialize``
CONNECT_TIMEOUT = 30.0
#: seconds to wait for a connection (and its subprocess) to close
CLOSE_TIMEOUT = 5.0
# MCP's JSON-RPC codes for a closed connection and a request that timed out
_CONNECTION_CLOSED = -32000
_REQUEST_TIMEOUT = -32001


class _Override(pydantic.BaseModel):
    """What an operator may set for one tool (the keywords of ``Tool.from_schema``)."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True)

    reads: bool | None = None
    writes: bool | None = None
    irreversible: bool | None = None
    high_stakes: bool | None = None
    external_comms: bool | None = None
    critical: bool | None = None
    egress: bool | None = None
    untrusted_output: bool | None = None
    idempotent: bool | None = None
    needs_approval: bool | None = None
    taint: Literal["approve", "block", "off"] | None = None
    summary: str | None = None
    timeout: float | None = pydantic.Field(default=None, gt=0)
    trusted_fields: tuple[str, ...] | None = None


_Overrides = pydantic.RootModel[dict[str, _Override]]


def _checked_overrides(raw: Any, where: str) -> dict[str, dict[str, Any]]:
    """``raw`` (tool name -> flags) checked: unknown flags or wrong types are a ConfigError."""
    if raw is None:
        return {}
    try:
        parsed = _Overrides.model_validate(raw)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        raise ConfigError(
            f"{where}: invalid MCP tool overrides ({problems}); give a mapping of tool name to "
            "flags such as {'search': {'reads': True, 'irreversible': False}}"
        ) from None
    return {name: o.model_dump(exclude_unset=True) for name, o in parsed.root.items()}


def load_overrides(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Per-tool overrides from a YAML file: ``{tool: {flag: value}}``; unknown keys are an error.

    Example file::

        search:
          reads: true
          irreversible: false
          untrusted_output: true
        delete_page:
          needs_approval: true
    """
    import yaml

    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read MCP overrides from {p}: {exc}") from exc
    return _checked_overrides(raw if raw is not None else {}, str(p))


def flags_for(annotations: Mapping[str, Any] | None, *, trusted: bool) -> dict[str, bool]:
    """Tether's flags for an MCP tool's annotations; hints only ever tighten policy.

    ``annotations`` uses the protocol's names (``readOnlyHint``,
    ``destructiveHint``, ``idempotentHint``, ``openWorldHint``); a missing one
    means the cautious default. ``trusted``: the operator marked the server
    trusted; only then may a hint lift a gate (see the module's table).
    """
    a = annotations or {}
    read_only = trusted and a.get("readOnlyHint") is True
    additive = trusted and not read_only and a.get("destructiveHint") is False
    flags = {
        "reads": read_only,
        "writes": additive,
        "irreversible": not (read_only or additive),
        # A read is idempotent unless the server says otherwise; a write only when it says so.
        "idempotent": trusted
        and (
            a.get("idempotentHint") is not False if read_only else a.get("idempotentHint") is True
        ),
    }
    closed_world = trusted and a.get("openWorldHint") is False
    flags["untrusted_output"] = not closed_world
    flags["egress"] = not closed_world
    return flags


def definition_of(tool: McpTool) -> dict[str, Any]:
    """What is pinned of a listed tool, with the protocol's names, as the server listed it."""
    ann = tool.annotations
    return {
        "name": tool.name,
        "description": tool.description,
        "inputSchema": tool.input_schema,
        "annotations": None
        if ann is None
        else ann.model_dump(mode="json", by_alias=True, exclude_none=True),
    }


def _hints(tool: McpTool) -> dict[str, Any] | None:
    ann = tool.annotations
    if ann is None:
        return None
    return {
        "readOnlyHint": ann.read_only_hint,
        "destructiveHint": ann.destructive_hint,
        "idempotentHint": ann.idempotent_hint,
        "openWorldHint": ann.open_world_hint,
    }


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class McpServer:
    """A declared MCP server (build it with :func:`mcp_server`); a tool source.

    One connection per object per runtime: declare it once (a module-level
    constant) and share it between agents.
    """

    name: str
    transport: Transport
    command: tuple[str, ...] = ()
    env: Mapping[str, str] | None = None
    cwd: str | None = None
    url: str | None = None
    headers: Mapping[str, str] | None = None
    trust: bool = False
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    timeout: float = 30.0

    async def open(self) -> McpConnection:
        """Start or reach the server and list its tools (``ToolSourceUnavailable`` if not)."""
        conn = McpConnection(self)
        await conn.tools()
        return conn

    def build_tool(self, tool: McpTool, conn: McpConnection) -> Tool:
        """The Tether tool for one listed MCP tool: flags from annotations, then overrides."""
        kw: dict[str, Any] = {"timeout": self.timeout}
        kw.update(flags_for(_hints(tool), trusted=self.trust))
        kw.update(self.overrides.get(tool.name, {}))
        description = tool.description or f"{tool.name} (a tool of MCP server {self.name})"
        return Tool.from_schema(
            tool.name, description, dict(tool.input_schema), _McpCall(conn, tool.name), **kw
        )


def mcp_server(
    transport: str,
    *,
    name: str,
    command: Sequence[str] | None = None,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    url: str | None = None,
    headers: Mapping[str, str] | None = None,
    trust: bool = False,
    overrides: Mapping[str, Mapping[str, Any]] | str | os.PathLike[str] | None = None,
    timeout: float = 30.0,
) -> McpServer:
    """Declare an MCP server whose tools an agent may call.

    - ``transport``: ``"stdio"`` (the runtime starts ``command`` + ``args`` as
      a subprocess, with ``env`` added to its environment and ``cwd``, and
      stops it on ``Runtime.aclose()``) or ``"http"`` (streamable HTTP at
      ``url``, sending ``headers``).
    - ``name``: how logs and errors name the server.
    - ``trust``: the operator vouches for the server, so its ``readOnlyHint``,
      ``destructiveHint: false``, ``idempotentHint`` and ``openWorldHint:
      false`` are believed. Untrusted (the default), every tool needs approval
      and its output is untrusted unless ``overrides`` say otherwise.
    - ``overrides``: per-tool flags applied last (they win), as a mapping
      (``{"search": {"reads": True, "irreversible": False}}``) or the path
      of a YAML file of the same shape. Keys: the risk flags, ``untrusted_output``,
      ``idempotent``, ``needs_approval``, ``taint``, ``summary``, ``timeout``,
      ``trusted_fields``; any other is a :class:`~tether.exceptions.ConfigError`.
    - ``timeout``: seconds one call may take (a tool's ``timeout``).
    """
    kind = {"stdio": "stdio", "http": "http", "streamable-http": "http"}.get(transport)
    if kind is None:
        raise ConfigError(
            f"MCP server {name!r}: transport must be 'stdio' or 'http', not {transport!r}"
        )
    if not name or not name.strip():
        raise ConfigError("an MCP server needs a name (mcp_server(..., name='docs'))")
    if not (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0):
        raise ConfigError(f"MCP server {name!r}: timeout must be positive seconds, not {timeout!r}")
    cmd: tuple[str, ...] = ()
    if kind == "stdio":
        if isinstance(command, str):
            raise ConfigError(
                f"MCP server {name!r}: command is a list (['python', 'server.py']), not one string"
            )
        cmd = (*(command or ()), *args)
        if not cmd:
            raise ConfigError(f"MCP server {name!r}: a stdio server needs command=[...]")
        if url is not None or headers is not None:
            raise ConfigError(f"MCP server {name!r}: url and headers are for transport 'http'")
    else:
        if not url or not url.startswith(("http://", "https://")):
            raise ConfigError(f"MCP server {name!r}: transport 'http' needs url='http(s)://...'")
        if command is not None or args or env is not None or cwd is not None:
            raise ConfigError(f"MCP server {name!r}: command, args, env and cwd are for 'stdio'")
    if isinstance(overrides, str | os.PathLike):
        checked = load_overrides(overrides)
    else:
        checked = _checked_overrides(overrides, f"MCP server {name!r}")
    return McpServer(
        name=name,
        transport=kind,  # type: ignore[arg-type]  # reason: narrowed by the table above
        command=cmd,
        env=dict(env) if env is not None else None,
        cwd=None if cwd is None else os.fspath(cwd),
        url=url,
        headers=dict(headers) if headers is not None else None,
        trust=trust,
        overrides=checked,
        timeout=float(timeout),
    )


class _McpCall:
    """A discovered tool's function: ``tools/call`` on its server's connection."""

    __slots__ = ("_conn", "_name")

    def __init__(self, conn: McpConnection, name: str) -> None:
        self._conn = conn
        self._name = name

    async def __call__(self, **arguments: Any) -> Any:
        return await self._conn.call(self._name, arguments)


class McpConnection:
    """One runtime's connection to one MCP server (an ``OpenToolSource``).

    The SDK's client lives in a task of its own (its task groups must be
    entered and left by one task); calls are made from the turns' tasks.
    A connection that dropped is replaced on the next call.
    """

    def __init__(self, spec: McpServer) -> None:
        self.spec = spec
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()
        self._connect_lock = asyncio.Lock()
        self._changed = False
        self._closed = False
        #: the tools as last listed, by name: (their definition, the Tether tool)
        self._known: dict[str, tuple[McpTool, Tool]] = {}
        self._current: tuple[Tool, ...] | None = None
        self._definitions: dict[str, dict[str, Any]] = {}

    async def tools(self) -> tuple[Tool, ...]:
        """The server's tools: listed once, again after ``tools/list_changed``."""
        if self._current is not None and not self._changed:
            return self._current
        async with self._lock:
            if self._current is not None and not self._changed:
                return self._current
            try:
                client = await self._connected()
                listed = await self._list(client)
            except ToolSourceUnavailable:
                if self._current is None:
                    raise
                log.warning("MCP server %s: could not list tools again", self.spec.name)
                return self._current
            except Exception as exc:
                if self._current is None:
                    raise ToolSourceUnavailable(
                        f"MCP server {self.spec.name!r} did not list its tools "
                        f"({type(exc).__name__}: {exc})"
                    ) from exc
                log.warning("MCP server %s: listing tools again failed: %s", self.spec.name, exc)
                return self._current
            self._changed = False
            self._current = self._adopt(listed)
            return self._current

    def definitions(self) -> dict[str, dict[str, Any]]:
        """Each tool of the last listing (those offered), by name, as :func:`definition_of`."""
        return dict(self._definitions)

    def _adopt(self, listed: list[McpTool]) -> tuple[Tool, ...]:
        out: list[Tool] = []
        definitions: dict[str, dict[str, Any]] = {}
        for t in listed:
            known = self._known.get(t.name)
            if known is not None and known[0] == t:  # unchanged: the same Tool object
                out.append(known[1])
                definitions[t.name] = definition_of(t)
                continue
            try:
                built = self.spec.build_tool(t, self)
            except ToolDefinitionError as exc:
                log.warning(
                    "MCP server %s: tool %s is not offered: %s", self.spec.name, t.name, exc
                )
                continue
            if known is not None:
                log.info("MCP server %s changed the definition of tool %s", self.spec.name, t.name)
            elif self._current is not None:
                log.info("MCP server %s added tool %s", self.spec.name, t.name)
            self._known[t.name] = (t, built)
            out.append(built)
            definitions[t.name] = definition_of(t)
        self._definitions = definitions
        for unknown in sorted(set(self.spec.overrides) - set(self._known)):
            log.warning("MCP server %s: overrides name no tool %r", self.spec.name, unknown)
        return tuple(out)

    async def _list(self, client: Client) -> list[McpTool]:
        tools: list[McpTool] = []
        cursor: str | None = None
        for _ in range(100):  # a server whose pages never end cannot hang a turn
            async with asyncio.timeout(self.spec.timeout):
                page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        return tools

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        """Call tool ``name``; its output, or a Tether tool signal saying what failed."""
        from mcp import MCPError

        try:
            client = await self._connected()
        except ToolSourceUnavailable as exc:  # a server that died and cannot be started again
            raise Retry(str(exc)) from exc
        try:
            result = await client.call_tool(name, arguments, read_timeout_seconds=self.spec.timeout)
        except MCPError as exc:
            if exc.code == _CONNECTION_CLOSED:
                self._drop(client)
                raise Retry(
                    f"MCP server {self.spec.name!r} closed the connection during the call "
                    "(it may have crashed); the call may or may not have taken effect"
                ) from exc
            if exc.code == _REQUEST_TIMEOUT:
                raise TimeoutError(f"MCP server {self.spec.name!r} did not answer") from exc
            raise ToolFailed(f"the MCP server refused the call: {exc.message}") from exc
        except (OSError, EOFError) as exc:  # the transport itself broke
            self._drop(client)
            raise Retry(f"lost the connection to MCP server {self.spec.name!r}: {exc}") from exc
        return _output(result)

    async def _connected(self) -> Client:
        """The live client, connecting (again) if there is none."""
        client = self._client
        if client is not None:
            return client
        if self._closed:
            raise ToolSourceUnavailable(f"MCP server {self.spec.name!r}: the runtime is closing")
        async with self._connect_lock:
            if self._client is not None:
                return self._client
            await self._stop_task()
            return await self._start()

    async def _start(self) -> Client:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[Client] = loop.create_future()
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(
            self._serve(ready, self._stop), name=f"mcp:{self.spec.name}"
        )
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                client = await asyncio.shield(ready)
        except Exception as exc:
            await self._stop_task()
            where = " ".join(self.spec.command) if self.spec.transport == "stdio" else self.spec.url
            raise ToolSourceUnavailable(
                f"MCP server {self.spec.name!r} could not be started or reached ({where}): "
                f"{type(exc).__name__}: {exc}. Check the command or URL, then try again."
            ) from exc
        self._client = client
        return client

    async def _serve(self, ready: asyncio.Future[Client], stop: asyncio.Event) -> None:
        """Hold one SDK client open until ``stop`` (entered and left in this task)."""
        try:
            async with self._client_cm() as client:
                if not ready.done():
                    ready.set_result(client)
                await stop.wait()
        except BaseException as exc:  # whatever ends the connection goes to ready, or the log
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else ConnectionError(exc))
            elif not isinstance(exc, asyncio.CancelledError):
                log.info("MCP server %s: connection ended: %r", self.spec.name, exc)
            if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
                raise
        finally:
            if self._task is asyncio.current_task():
                self._client = None

    def _client_cm(self) -> Client:
        from mcp import Client, StdioServerParameters

        async def on_message(message: Any) -> None:
            method = getattr(getattr(message, "root", message), "method", None)
            if method == "notifications/tools/list_changed":
                log.info("MCP server %s: its tool list changed", self.spec.name)
                self._changed = True

        spec = self.spec
        if spec.transport == "stdio":
            params = StdioServerParameters(
                command=spec.command[0],
                args=list(spec.command[1:]),
                env=None if spec.env is None else dict(spec.env),
                cwd=spec.cwd,
            )
            server: Any = params
        elif spec.headers:
            server = _http_transport(spec.url or "", spec.headers)
        else:
            server = spec.url
        # "legacy": the initialize handshake every server speaks, where the server sends
        # tools/list_changed unasked; no response cache, so a re-list reaches the server.
        return Client(server, mode="legacy", cache=None, message_handler=on_message)

    def _drop(self, client: Client) -> None:
        """Forget a connection that broke; the next call opens a new one."""
        if self._client is client:
            self._client = None
            log.warning("MCP server %s: connection lost; the next call reconnects", self.spec.name)

    async def _stop_task(self) -> None:
        task, self._task = self._task, None
        self._client = None
        if task is None:
            return
        self._stop.set()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await asyncio.shield(task)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        except BaseException:  # the connection is gone either way
            log.debug("MCP server %s: connection closed with an error", self.spec.name)

    async def aclose(self) -> None:
        """Close the connection; a stdio server's process is stopped."""
        self._closed = True
        await self._stop_task()


def _http_transport(url: str, headers: Mapping[str, str]) -> Any:
    """Streamable HTTP to ``url`` sending ``headers``, on a client the transport closes."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    @contextlib.asynccontextmanager
    async def transport() -> Any:
        timeout = httpx2.Timeout(30.0, read=300.0)
        async with (
            httpx2.AsyncClient(headers=dict(headers), timeout=timeout) as http,
            streamable_http_client(url, http_client=http) as streams,
        ):
            yield streams

    return transport()


def _output(result: CallToolResult) -> Any:
    """What a tool returned, for the model: its text, else its structured content."""
    from mcp.types import TextContent

    parts = [
        b.text if isinstance(b, TextContent) else f"[{b.type} content not shown]"
        for b in result.content
    ]
    text = "\n".join(parts)
    if result.is_error:
        raise ToolFailed(text or "the MCP server reported an error and gave no message")
    if parts:
        return text
    if result.structured_content is not None:
        return result.structured_content
    return ""
