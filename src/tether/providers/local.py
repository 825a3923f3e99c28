"""The embedded ``local`` model: llama.cpp in-process, no key, no network.

:class:`LocalModel` runs a GGUF model with ``xllamacpp`` (llama.cpp's server
code as a Python extension, called in-process, no HTTP round trip). By
default it runs the embedded Qwen2.5-Coder-0.5B-Instruct, joined and
hash-checked by :mod:`tether.providers.gguf`; ``LocalModel("/path/x.gguf")``
(spec ``local:PATH``) runs any other GGUF file.

Tool calls follow :mod:`tether.providers._local_protocol`: the model sees
the tools through its own chat template, and every tool call it returns was
generated under llama.cpp's JSON-schema constrained decoding (the chat
completion's ``response_format``), so its arguments match the tool's schema.
A tool whose schema llama.cpp cannot turn into a grammar gets free-form
object arguments (the runtime validates them before running the tool). How
each call is decoded is in :meth:`LocalModel.stream`.

Answers stream as they are generated (from JSON too: the ``answer`` string
is decoded incrementally); a tool call yields no text. ``temperature=None``
means 0 (greedy, deterministic). Usage follows Anthropic's convention:
``input_tokens`` excludes prompt tokens served from llama.cpp's prefix
cache, which are counted as ``cache_read_tokens``. One slot keeps its KV
cache between calls, so a conversation that grows by appending pays only for
its new tokens.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.exceptions import ConfigError, ModelTimeout, ProviderError
from tether.providers import gguf
from tether.providers._local_protocol import (
    AnswerDecoder,
    parse_reply,
    partial_answer,
    render_messages,
    reply_schema,
    tool_specs,
    usage_from,
)
from tether.spec.messages import Message
from tether.spec.model import ModelRequest, ModelResponse, ModelStreamEvent, TextDelta, ToolSpec

__all__ = ["THREADS_ENV", "LocalModel"]

logger = logging.getLogger(__name__)

THREADS_ENV = "TETHER_LOCAL_THREADS"
_CACHE_RAM_MIB = 512  # cap on llama.cpp's host-memory cache of idle prompt prefixes


def _threads(threads: int | None, env: Mapping[str, str]) -> int:
    if threads is None:
        text = env.get(THREADS_ENV, "").strip()
        try:
            threads = int(text) if text else 1
        except ValueError:
            raise ConfigError(f"{THREADS_ENV}={text!r} is not a whole number of threads") from None
    if threads < 1:
        raise ConfigError(f"the local model needs at least 1 thread, got {threads}")
    return threads


class LocalModel:
    """A GGUF model run in-process by llama.cpp (spec ``local`` or ``local:PATH``).

    ``path=None`` is the embedded Qwen2.5-Coder-0.5B-Instruct (hash-verified,
    cached under ``cache_dir``, see :mod:`tether.providers.gguf`); any other
    path must be an existing GGUF file (no hash is required for it).
    ``threads`` defaults to ``TETHER_LOCAL_THREADS`` or 1; ``n_ctx`` is the
    context size in tokens. ``timeout`` bounds each call and ``load_timeout``
    the first load (join, hash, load); both raise
    :class:`~tether.exceptions.ModelTimeout`. The model loads on the first
    call, once, off the event loop. Close with ``await model.aclose()`` or
    ``async with``.
    """

    def __init__(
        self,
        path: str | None = None,
        *,
        timeout: float = 120.0,
        threads: int | None = None,
        n_ctx: int = 8192,
        load_timeout: float = 600.0,
        cache_dir: str | Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._path = path
        self.timeout = timeout
        self.load_timeout = load_timeout
        self.threads = _threads(threads, os.environ if env is None else env)
        self.n_ctx = n_ctx
        self._cache_dir = cache_dir
        self._server: Any = None
        self._lock = asyncio.Lock()
        self._loose: dict[str, bool] = {}  # tool schema JSON -> llama.cpp cannot compile it

    @property
    def name(self) -> str:
        return "local" if self._path is None else f"local:{self._path}"

    def __repr__(self) -> str:
        return f"LocalModel({self.name!r}, threads={self.threads}, n_ctx={self.n_ctx})"

    async def __aenter__(self) -> LocalModel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Free the model (llama.cpp's server loop stops); a later call loads it again."""
        holder = [self._server]
        self._server = None
        await asyncio.to_thread(holder.clear)  # the destructor joins a thread: not on the loop

    def check(self) -> None:
        """Raise :class:`~tether.exceptions.ConfigError` now if the model cannot load: the
        llama.cpp bindings or the model file (or the embedded model's packages) are missing.
        Cheap (nothing is read or hashed); the runtime calls it before it stores anything."""
        import importlib.util

        if importlib.util.find_spec("xllamacpp") is None:
            raise ConfigError(
                "the local model needs llama.cpp bindings: pip install 'tether[local]'"
            )
        if self._path is None:
            cache = self._cache_dir
            directory = Path(cache).expanduser() if cache is not None else None
            cached = (directory or gguf.default_cache_dir()) / gguf.MODEL_FILENAME
            if not cached.is_file():
                gguf.find_chunks()  # the packages the model is joined from, or the fix
            return
        path = Path(self._path).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"local model file {str(path)!r} does not exist; give the path of a .gguf "
                "file (spec local:PATH.gguf), or use spec 'local' for the embedded model"
            )
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise ConfigError(f"local model file {str(path)!r} cannot be read: {exc}") from None

    async def prepare(self) -> None:
        """Join, verify and load the model now (the runtime calls this before the
        first call, outside the per-call timeout; ``load_timeout`` bounds it)."""
        await self._loaded()

    async def _loaded(self) -> Any:
        if self._server is None:
            async with self._lock:
                if self._server is None:
                    try:
                        self._server = await asyncio.wait_for(
                            asyncio.to_thread(self._load), self.load_timeout
                        )
                    except TimeoutError:
                        raise ModelTimeout(
                            f"{self.name}: the model did not load within {self.load_timeout:g}s; "
                            "raise load_timeout on a slow disk or CPU",
                            provider="local",
                            model=self.name,
                        ) from None
        return self._server

    def _model_file(self) -> Path:
        if self._path is None:
            return gguf.ensure_model(cache_dir=self._cache_dir)
        path = Path(self._path).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"local model file {str(path)!r} does not exist; give the path of a .gguf "
                "file (spec local:PATH.gguf), or use spec 'local' for the embedded model"
            )
        with path.open("rb") as f:
            if f.read(4) != b"GGUF":
                raise ConfigError(f"{str(path)!r} is not a GGUF model file (wrong magic bytes)")
        return path

    def _load(self) -> Any:
        try:
            import xllamacpp
        except ImportError:
            raise ConfigError(
                "the local model needs llama.cpp bindings: pip install 'tether[local]'"
            ) from None
        path = self._model_file()
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = self.n_ctx
        params.n_parallel = 1  # one slot: its KV cache carries over between calls
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.cache_ram_mib = _CACHE_RAM_MIB
        params.verbosity = 3 if logger.isEnabledFor(logging.DEBUG) else 1
        # llama.cpp also serves HTTP on a random loopback port; require a key nobody has.
        params.api_keys = [secrets.token_urlsafe(32)]
        params.endpoint_slots = False
        logger.info("loading %s with %d thread(s), n_ctx=%d", path, self.threads, self.n_ctx)
        try:
            return xllamacpp.Server(params)
        except RuntimeError as exc:
            raise ProviderError(
                f"{self.name}: llama.cpp could not load {str(path)!r} ({exc}); the file may be "
                "damaged or of an unsupported architecture, or memory ran out. Enable DEBUG "
                "logging for llama.cpp's own log.",
                provider="local",
                model=self.name,
            ) from exc

    def _loose_tools(self, tools: tuple[ToolSpec, ...]) -> frozenset[str]:
        """Tools whose parameter schema llama.cpp cannot compile into a grammar."""
        import xllamacpp

        loose = set()
        for tool in tools:
            key = json.dumps(tool.parameters, sort_keys=True)
            if key not in self._loose:
                try:
                    xllamacpp.json_schema_to_grammar(tool.parameters)
                    self._loose[key] = False
                except ValueError as exc:
                    logger.warning("tool %s: schema not enforceable (%s)", tool.name, exc)
                    self._loose[key] = True
            if self._loose[key]:
                loose.add(tool.name)
        return frozenset(loose)

    def _body(self, request: ModelRequest, mode: str) -> dict[str, Any]:
        """The chat completion for ``mode``: text, probe (free, tools listed),
        json (call or answer), call (calls only) or answer (answer only)."""
        body: dict[str, Any] = {
            "messages": render_messages(request),
            "max_tokens": request.max_tokens,
            "temperature": 0.0 if request.temperature is None else request.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
            "cache_prompt": True,
        }
        if mode == "text":
            return body
        loose = self._loose_tools(request.tools)
        body["tools"] = tool_specs(request.tools, loose)
        if mode in ("json", "call", "answer"):
            offered = () if mode == "answer" else request.tools
            schema = reply_schema(offered, loose, answer=mode != "call")
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": schema},
            }
        return body

    def _error(self, error: Mapping[str, Any]) -> ProviderError:
        status = int(error.get("code", 500) or 500)
        if error.get("type") == "exceed_context_size_error":
            message = (
                f"{self.name}: the conversation ({error.get('n_prompt_tokens')} tokens) does "
                f"not fit the model's context ({error.get('n_ctx')} tokens); raise n_ctx or "
                "shorten the conversation or tool output"
            )
        else:
            message = f"{self.name}: llama.cpp refused the call: {error.get('message', error)}"
        return ProviderError(
            message, provider="local", model=self.name, status=status, retryable=status >= 500
        )

    async def _pieces(
        self, server: Any, body: dict[str, Any], deadline: float, outcome: _Outcome
    ) -> AsyncGenerator[str | None, None]:
        """Content pieces of one llama.cpp call (``None``: a native tool call began).

        Generation runs in a daemon thread (not the default executor, so a
        stuck call cannot block shutdown); its chunks reach the loop through
        ``call_soon_threadsafe``. Closing this generator, or the deadline,
        makes the next chunk tell llama.cpp to stop.
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        cancel = threading.Event()

        def put(item: tuple[str, Any]) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the event loop is closed: nobody is listening
                cancel.set()

        def on_chunk(chunk: dict[str, Any]) -> bool:
            if not cancel.is_set():
                put(("chunk", chunk))
            return cancel.is_set()  # True makes llama.cpp stop and cancel the task

        def generate() -> None:
            try:
                server.handle_chat_completions(body, on_chunk)
            except Exception as exc:  # handed to the event loop
                put(("error", exc))
            else:
                put(("done", None))

        threading.Thread(target=generate, name="tether-local-gen", daemon=True).start()
        try:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        kind, payload = await queue.get()
                except TimeoutError:
                    raise ModelTimeout(
                        f"{self.name}: no complete answer within the {self.timeout:g}s timeout; "
                        "raise the timeout, lower max_tokens, or use more threads",
                        provider="local",
                        model=self.name,
                    ) from None
                if kind == "done":
                    return
                if kind == "error":
                    invalid = isinstance(payload, ValueError)  # e.g. a schema it cannot compile
                    raise ProviderError(
                        f"{self.name}: llama.cpp failed the call: {payload}",
                        provider="local",
                        model=self.name,
                        status=400 if invalid else 500,
                        retryable=not invalid,
                    ) from payload
                if isinstance(payload.get("error"), Mapping):
                    raise self._error(payload["error"])
                if "usage" in payload or "timings" in payload:
                    outcome.final.update(payload)
                for choice in payload.get("choices") or ():
                    outcome.finish = choice.get("finish_reason") or outcome.finish
                    delta = choice.get("delta") or {}
                    if delta.get("tool_calls"):
                        yield None
                    if delta.get("content"):
                        yield str(delta["content"])
        finally:
            cancel.set()

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelStreamEvent]:
        """Yield text deltas as generated, then one :class:`ModelResponse`.

        Without tools the model writes plain text. With tools, a first free
        pass lets it choose as it was trained to: text is streamed as the
        answer, while a reply that starts like a call (``{``, ``<tool_call>``,
        a code fence) is stopped at once and generated again under the
        calls-only schema (the prompt is in the KV cache by then, so only the
        call's tokens are paid twice). Right after tool results the reply is
        constrained to call-or-answer JSON instead: left free, this model
        tends to repeat the call it just made. ``tool_choice="required"``
        skips the free pass (calls only); ``"none"`` generates plain text,
        or right after tool results the answer-only JSON (the results' turn
        asks for ``{"answer": ...}``, and in plain text the model writes that
        JSON literally).
        """
        server = await self._loaded()
        deadline = asyncio.get_running_loop().time() + self.timeout
        tools = request.tools
        after_results = bool(request.messages) and request.messages[-1].role == "tool"
        if tools and request.tool_choice == "none" and after_results:
            mode = "answer"
        elif not tools or request.tool_choice == "none":
            mode = "text"
        elif request.tool_choice == "required":
            mode = "call"
        elif after_results:
            mode = "json"
        else:
            mode = "probe"
        content: list[str] = []
        outcome = _Outcome()
        if mode in ("text", "probe"):
            body = await asyncio.to_thread(self._body, request, mode)
            head = None if mode == "probe" else ""
            async with aclosing(self._pieces(server, body, deadline, outcome)) as pieces:
                async for piece in pieces:
                    if head is None:  # undecided: an answer, or the start of a call?
                        if piece is None or piece.lstrip()[:1] in ("{", "<", "`"):
                            mode = "call"
                            break
                        if not piece.strip():
                            continue
                        head, piece = "", piece.lstrip()
                    if piece:
                        content.append(piece)
                        yield TextDelta(piece)
        decoder = AnswerDecoder() if mode in ("json", "answer") else None
        if mode in ("json", "call", "answer"):
            outcome = _Outcome()
            body = await asyncio.to_thread(self._body, request, mode)
            async with aclosing(self._pieces(server, body, deadline, outcome)) as pieces:
                async for piece in pieces:
                    if piece:
                        content.append(piece)
                        text = decoder.feed(piece) if decoder is not None else ""
                        if text:
                            yield TextDelta(text)
        raw = "".join(content)
        call = None
        if mode in ("text", "probe"):
            text = raw
        elif outcome.finish == "length":
            text = partial_answer(raw)
            if not text:
                logger.warning("%s: reply cut off by max_tokens before it was usable", self.name)
        else:
            text, call = parse_reply(raw, tools)
        stop = "max_tokens" if outcome.finish == "length" else "tool_use" if call else "end"
        message = Message(
            role="assistant", text=text, tool_calls=(call,) if call else (), model=self.name
        )
        usage = usage_from(outcome.final)
        yield ModelResponse(message=message, usage=usage, model=self.name, stop_reason=stop)


@dataclass
class _Outcome:
    """How one llama.cpp call ended: its finish reason and its last (usage) chunk."""

    finish: str | None = None
    final: dict[str, Any] = field(default_factory=dict)
