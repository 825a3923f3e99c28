"""OpenTelemetry traces of turns, following the GenAI semantic conventions.

:class:`Tracing` is an :class:`~tether.runtime.observe.Observer`: it builds
spans from the events of each turn, after the fact, with explicit start and
end times taken from the events (the runtime's injected clock), so a trace
shows what the session's log says happened::

    invoke_agent retail                     INTERNAL  turn.started .. turn.ended
    ├── chat claude-sonnet-4-5              CLIENT    model.response (- latency_ms)
    ├── execute_tool get_order_details      INTERNAL  tool.started .. tool.finished
    └── chat claude-sonnet-4-5              CLIENT

Attributes follow the GenAI conventions (``gen_ai.operation.name``,
``gen_ai.agent.name``, ``gen_ai.conversation.id`` = the session id,
``gen_ai.request.model``, ``gen_ai.usage.*``, ``gen_ai.response.finish_reasons``,
``gen_ai.tool.*``, ``error.type``); what the conventions have no name for is
under ``tether.*`` (cost, degraded answers, retries, taint, approvals,
guard verdicts). Message content (the user's text, the answer, tool
arguments and results, a failed tool's error text) is recorded only when
asked for (``capture_content=True``): it is likely to hold personal data.
Without it a failed tool's span has ``error.type`` ``tool_error`` and a fixed
status description; with it, the error text (first 200 characters), tool
arguments and results are redacted (:func:`tether.surfaces.logs.redact`: keys, credentials),
as are the failure and fallback reasons recorded either way.

:func:`tracing_from_env` builds one from the standard ``OTEL_*`` variables
(an SDK tracer provider exporting OTLP over HTTP), or returns ``None`` when
tracing is not configured, so that nothing is installed and nothing is paid.

Observers run inline on the turn's task: this one keeps a few dicts of open
spans per session (cleaned at ``turn.ended``, where every span still open is
ended) and never raises into the turn. A turn the sampler drops costs one
non-recording span: its other events are skipped. Spans are not made current
while a turn runs: a provider SDK's own instrumentation does not nest under them.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import (
    Link,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    Tracer,
    TracerProvider,
)

import tether
from tether.exceptions import ConfigError
from tether.runtime.observe import TURN_ENDED, TURN_STARTED, SessionTag
from tether.spec.events import Event, EventType, SessionStatus
from tether.surfaces.logs import redact, redact_value

__all__ = ["Tracing", "capture_content_from_env", "tracing_from_env"]

log = logging.getLogger("tether.traces")

#: the tracer's instrumentation scope
SCOPE = "tether"
#: ``model.response`` ``stop_reason`` -> the conventions' finish reason
_FINISH = {"end": "stop", "tool_use": "tool_call", "max_tokens": "length"}
#: providers whose spec prefix (``anthropic:...``) is the conventions' provider name
_PROVIDERS = frozenset({"anthropic", "openai"})
#: the most sessions remembered between a turn that asked for approval and the one deciding
_MAX_AWAITING = 10_000
_TRUE = frozenset({"1", "true", "yes", "on", "span_only", "span_and_event"})
#: a failed tool call's span status without content capture (its text may hold personal data)
_TOOL_FAILED = "the tool call failed"


def _ns(t: float) -> int:
    return int(t * 1e9)


def _provider_and_model(spec: str) -> tuple[str, str]:
    """``anthropic:claude-x`` -> (``anthropic``, ``claude-x``); others -> (``_OTHER``, spec)."""
    prefix, colon, rest = spec.partition(":")
    if colon and prefix in _PROVIDERS:
        return prefix, rest
    if prefix == "local":
        return "tether.local", spec
    return "_OTHER", spec


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _text_message(role: str, text: str, finish: str | None = None) -> str:
    """One message in the conventions' JSON shape (``role``, ``parts``)."""
    msg: dict[str, Any] = {"role": role, "parts": [{"type": "text", "content": text}]}
    if finish is not None:
        msg["finish_reason"] = finish
    return _json([msg])


@dataclass(slots=True)
class _Turn:
    """The open spans of one session's running turn."""

    span: Span
    context: Context  # the context whose current span is ``span``: children's parent
    start: int
    tag: SessionTag
    #: sampled: a turn the sampler dropped gets no children (they would be dropped too)
    recording: bool
    tools: dict[str, tuple[Span, int]] = field(default_factory=dict)
    retries: list[Event] = field(default_factory=list)
    approvals: dict[str, dict[str, Any]] = field(default_factory=dict)  # call id -> attributes
    failure: str | None = None


class Tracing:
    """An observer that turns each turn's events into GenAI spans.

    - ``tracer_provider``: where spans go (an SDK ``TracerProvider`` with its
      processors and exporters); default: the global provider, which is a
      no-op until the application installs one.
    - ``capture_content``: record the user's message, the final answer,
      each model answer, tool arguments and tool results on spans (the
      conventions' opt-in ``gen_ai.input.messages``, ``gen_ai.output.messages``,
      ``gen_ai.tool.call.arguments``, ``gen_ai.tool.call.result``). Off by
      default; :func:`capture_content_from_env` reads the switch.
    - ``owns_provider``: :meth:`shutdown` shuts the provider down (set by
      :func:`tracing_from_env`, which built it).
    """

    __slots__ = (
        "_awaiting",
        "_handlers",
        "_owns",
        "_provider",
        "_tracer",
        "_turns",
        "capture_content",
    )

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        *,
        capture_content: bool = False,
        owns_provider: bool = False,
    ) -> None:
        self._provider = tracer_provider
        self._owns = owns_provider
        self._tracer: Tracer = trace.get_tracer(
            SCOPE, tether.__version__, tracer_provider=tracer_provider
        )
        self.capture_content = capture_content
        self._turns: dict[str, _Turn] = {}
        # session id -> (approval id, call id, tool, the paused call's span): a pause that a
        # later turn decides (that turn's span links to the paused call's)
        self._awaiting: dict[str, tuple[str, str, str, SpanContext]] = {}
        E = EventType
        self._handlers: dict[str, Callable[[_Turn, Event], None]] = {
            E.MODEL_RESPONSE: self._model_response,
            E.MODEL_RETRY: self._model_retry,
            E.MODEL_FALLBACK: self._model_fallback,
            E.TOOL_STARTED: self._tool_started,
            E.TOOL_FINISHED: self._tool_finished,
            E.APPROVAL_REQUESTED: self._approval_requested,
            E.APPROVAL_DECIDED: self._approval_decided,
            E.APPROVAL_EXPIRED: self._approval_decided,
            E.GUARD_FLAGGED: self._guard,
            E.GUARD_JUDGED: self._guard,
            E.SESSION_STATUS: self._session_status,
            E.USER_MESSAGE: self._user_message,
            E.TURN_COMPLETED: self._turn_completed,
        }

    def __repr__(self) -> str:
        return f"Tracing(capture_content={self.capture_content}, open_turns={len(self._turns)})"

    @property
    def open_turns(self) -> int:
        """How many turns have a span open now (0 between turns: nothing is kept)."""
        return len(self._turns)

    def __call__(self, ev: Event, tag: SessionTag) -> None:
        """Record ``ev`` (an :class:`~tether.runtime.observe.Observer`); never raises."""
        try:
            t = ev.type
            if t == TURN_STARTED:
                self._turn_started(ev, tag)
                return
            if t == TURN_ENDED:
                self._turn_ended(ev)
                return
            handler = self._handlers.get(t)
            if handler is None:
                return
            turn = self._turns.get(ev.session_id)
            if turn is not None and turn.recording:
                handler(turn, ev)
        except Exception:  # a trace must never change a turn
            log.exception("tracing failed on a %s event; the turn goes on", ev.type)

    # --- the turn -------------------------------------------------------------------

    def _turn_started(self, ev: Event, tag: SessionTag) -> None:
        old = self._turns.pop(ev.session_id, None)
        if old is not None:  # a turn that never ended (should not happen): close it
            self._close(old, ev, None)
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": tag.agent,
            "gen_ai.agent.version": tag.version,
            "gen_ai.conversation.id": tag.session_id,
            "tether.turn.need": str(ev.data.get("need", "")),
            "tether.turn.step": ev.step,
        }
        if tag.user is not None:
            attrs["user.id"] = tag.user
        if tag.tenant is not None:
            attrs["tether.tenant"] = tag.tenant
        start = _ns(ev.time)
        waiting = self._awaiting.get(ev.session_id)
        links = None if waiting is None else [Link(waiting[3], {"tether.link": "approval"})]
        span = self._tracer.start_span(
            f"invoke_agent {tag.agent}",
            kind=SpanKind.INTERNAL,
            attributes=attrs,
            links=links,
            start_time=start,
        )
        context = trace.set_span_in_context(span)
        self._turns[ev.session_id] = _Turn(span, context, start, tag, span.is_recording())

    def _turn_ended(self, ev: Event) -> None:
        turn = self._turns.pop(ev.session_id, None)
        if turn is not None:
            self._close(turn, ev, ev.data)

    def _close(self, turn: _Turn, ev: Event, data: Mapping[str, Any] | None) -> None:
        """End the turn's span and every child still open, at ``ev``'s time."""
        end = max(_ns(ev.time), turn.start)
        for call_id, (span, start) in turn.tools.items():
            span.set_attribute("tether.tool.executed", False)
            approval = turn.approvals.get(call_id)
            if approval is None or approval.get("tether.approval.status") != "requested":
                # started, never finished: the turn stopped (a crash, a shutdown, a cancel)
                span.set_attribute("error.type", "unfinished")
                span.set_status(Status(StatusCode.ERROR, "the turn ended before the call did"))
            span.end(end_time=max(end, start))
        turn.tools.clear()
        self._flush_retries(turn, turn.span)
        span = turn.span
        status = None if data is None else data.get("status")
        error = None if data is None else data.get("error")
        if status is not None:
            span.set_attribute("tether.session.status", str(status))
        if data is None:
            span.set_attribute("error.type", "unfinished")
            span.set_status(Status(StatusCode.ERROR, "the turn never ended"))
        elif error is not None:
            span.set_attribute("error.type", str(error))
            span.set_status(Status(StatusCode.ERROR, turn.failure or str(error)))
        elif status == SessionStatus.FAILED:
            span.set_attribute("error.type", "session_failed")
            span.set_status(Status(StatusCode.ERROR, turn.failure or "the session failed"))
        span.end(end_time=end)

    def _session_status(self, turn: _Turn, ev: Event) -> None:
        if ev.data.get("status") == SessionStatus.FAILED:
            reason = ev.data.get("reason")
            # an internal error's text is in it: redacted (keys, credentials), then cut
            turn.failure = None if reason is None else redact(str(reason))[:300]

    def _user_message(self, turn: _Turn, ev: Event) -> None:
        if self.capture_content:
            text = str(ev.data.get("text", ""))
            turn.span.set_attribute("gen_ai.input.messages", _text_message("user", text))

    def _turn_completed(self, turn: _Turn, ev: Event) -> None:
        if self.capture_content:
            out = ev.data.get("output")
            text = out if isinstance(out, str) else _json(out)
            msg = _text_message("assistant", text, "stop")
            turn.span.set_attribute("gen_ai.output.messages", msg)

    def _guard(self, turn: _Turn, ev: Event) -> None:
        d = ev.data
        attrs: dict[str, Any] = {"tether.guard.event": ev.type}
        for key in ("source", "tool", "call_id", "action", "verdict", "model"):
            value = d.get(key)
            if value is not None:
                attrs[f"tether.guard.{key}"] = str(value)
        score = d.get("score")
        if isinstance(score, int | float):
            attrs["tether.guard.score"] = float(score)
        categories = d.get("categories")
        if categories:
            attrs["tether.guard.categories"] = [str(c) for c in categories]
        turn.span.add_event("tether.guard", attrs, timestamp=_ns(ev.time))

    # --- model calls ----------------------------------------------------------------

    def _model_retry(self, turn: _Turn, ev: Event) -> None:
        turn.retries.append(ev)

    def _flush_retries(self, turn: _Turn, span: Span) -> int:
        n = len(turn.retries)
        for r in turn.retries:
            d = r.data
            attrs: dict[str, Any] = {
                "tether.retry.model": str(d.get("model", "")),
                "tether.retry.attempt": int(d.get("attempt", 0)),
                "tether.retry.reason": str(d.get("reason", "")),
                "tether.retry.delay_s": float(d.get("delay", 0.0)),
            }
            span.add_event("tether.retry", attrs, timestamp=_ns(r.time))
        turn.retries.clear()
        return n

    def _model_fallback(self, turn: _Turn, ev: Event) -> None:
        d = ev.data
        attrs = {
            "tether.fallback.from": str(d.get("from", "")),
            "tether.fallback.to": str(d.get("to", "")),
            "tether.fallback.reason": redact(str(d.get("reason", "")))[:300],
        }
        turn.span.add_event("tether.fallback", attrs, timestamp=_ns(ev.time))
        turn.span.set_attribute("tether.fallback", True)

    def _model_response(self, turn: _Turn, ev: Event) -> None:
        d = ev.data
        spec = str(d.get("model", ""))
        provider, model = _provider_and_model(spec)
        end = max(_ns(ev.time), turn.start)
        start = max(end - int(float(d.get("latency_ms", 0.0)) * 1e6), turn.start)
        stop = str(d.get("stop_reason", "end"))
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
            "gen_ai.response.model": model,
            "gen_ai.conversation.id": turn.tag.session_id,
            "gen_ai.response.finish_reasons": (_FINISH.get(stop, stop),),
            "tether.cost_usd": float(d.get("cost", 0.0)),
        }
        u = ev.usage
        if u is not None:
            # the conventions count cached input in the input tokens; Tether keeps it apart
            attrs["gen_ai.usage.input_tokens"] = (
                u.input_tokens + u.cache_read_tokens + u.cache_write_tokens
            )
            attrs["gen_ai.usage.output_tokens"] = u.output_tokens
            if u.cache_read_tokens:
                attrs["gen_ai.usage.cache_read.input_tokens"] = u.cache_read_tokens
            if u.cache_write_tokens:
                attrs["gen_ai.usage.cache_creation.input_tokens"] = u.cache_write_tokens
        if d.get("degraded"):
            attrs["tether.degraded"] = True
            attrs["tether.fallback.primary"] = str(d.get("primary", ""))
        if d.get("wrap_up"):
            attrs["tether.wrap_up"] = True
        if d.get("priced") is False:
            attrs["tether.priced"] = False
        if turn.retries:
            attrs["tether.retries"] = len(turn.retries)
        if self.capture_content:
            msg = d.get("message") or {}
            attrs["gen_ai.output.messages"] = _json(
                [
                    {
                        "role": "assistant",
                        "parts": _parts(msg),
                        "finish_reason": _FINISH.get(stop, stop),
                    }
                ]
            )
        span = self._tracer.start_span(
            f"chat {model}",
            context=turn.context,
            kind=SpanKind.CLIENT,
            attributes=attrs,
            start_time=start,
        )
        self._flush_retries(turn, span)
        span.end(end_time=end)

    # --- tool calls -----------------------------------------------------------------

    def _tool_span(self, turn: _Turn, call_id: str, name: str, start: int) -> Span:
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.call.id": call_id,
            "gen_ai.tool.type": "function",
            "gen_ai.conversation.id": turn.tag.session_id,
        }
        approval = turn.approvals.get(call_id)
        if approval is not None:
            attrs.update(approval)
        return self._tracer.start_span(
            f"execute_tool {name}",
            context=turn.context,
            kind=SpanKind.INTERNAL,
            attributes=attrs,
            start_time=start,
        )

    def _tool_started(self, turn: _Turn, ev: Event) -> None:
        d = ev.data
        call_id = str(d.get("call_id", ""))
        start = max(_ns(ev.time), turn.start)
        span = self._tool_span(turn, call_id, str(d.get("name", "")), start)
        if self.capture_content and "arguments" in d:
            span.set_attribute("gen_ai.tool.call.arguments", _json(redact_value(d["arguments"])))
        turn.tools[call_id] = (span, start)

    def _tool_finished(self, turn: _Turn, ev: Event) -> None:
        d = ev.data
        call_id = str(d.get("call_id", ""))
        end = max(_ns(ev.time), turn.start)
        opened = turn.tools.pop(call_id, None)
        if opened is None:  # no tool.started seen: a refusal, a denial, a stored result
            start = max(end - int(float(d.get("duration_ms", 0.0)) * 1e6), turn.start)
            span = self._tool_span(turn, call_id, str(d.get("name", "")), start)
        else:
            span, start = opened
        if d.get("untrusted"):
            span.set_attribute("tether.tool.untrusted", True)
        approval = turn.approvals.get(call_id)
        if approval is not None and approval["tether.approval.status"] in ("denied", "expired"):
            span.set_attribute("tether.tool.executed", False)
        if d.get("is_error"):
            span.set_attribute("error.type", "tool_error")
            # the error text may quote a key or personal data: only with content capture on,
            # and redacted; otherwise a fixed description (error.type says what failed)
            why = _TOOL_FAILED
            if self.capture_content:
                why = redact(str(d.get("content", "")))[:200] or _TOOL_FAILED
            span.set_status(Status(StatusCode.ERROR, why))
        if self.capture_content:
            span.set_attribute("gen_ai.tool.call.result", redact(str(d.get("content", ""))))
        span.end(end_time=max(end, start))

    def _approval_requested(self, turn: _Turn, ev: Event) -> None:
        d = ev.data
        call_id, tool = str(d.get("call_id", "")), str(d.get("tool", ""))
        approval_id = str(d.get("approval_id", ""))
        attrs: dict[str, Any] = {
            "tether.approval.id": approval_id,
            "tether.approval.status": "requested",
            "tether.approval.mode": str(d.get("mode", "")),
        }
        if d.get("flagged"):
            attrs["tether.approval.flagged"] = len(d["flagged"])
        turn.approvals[call_id] = attrs
        start = max(_ns(ev.time), turn.start)
        span = self._tool_span(turn, call_id, tool, start)
        span.add_event("tether.approval.requested", attrs, timestamp=start)
        turn.tools[call_id] = (span, start)
        awaiting = self._awaiting
        awaiting.pop(turn.tag.session_id, None)
        if len(awaiting) >= _MAX_AWAITING:  # sessions left waiting for ever: forget the oldest
            del awaiting[next(iter(awaiting))]
        awaiting[turn.tag.session_id] = (approval_id, call_id, tool, span.get_span_context())

    def _approval_decided(self, turn: _Turn, ev: Event) -> None:
        d = ev.data
        approval_id = str(d.get("approval_id", ""))
        if ev.type == EventType.APPROVAL_EXPIRED:
            outcome = "expired"
        else:
            outcome = "approved" if d.get("approved") else "denied"
        attrs: dict[str, Any] = {
            "tether.approval.id": approval_id,
            "tether.approval.status": outcome,
            "tether.approval.by": str(d.get("by", "")),
        }
        waiting = self._awaiting.get(turn.tag.session_id)
        if waiting is not None and waiting[0] == approval_id:
            del self._awaiting[turn.tag.session_id]
            attrs["gen_ai.tool.call.id"] = waiting[1]
            attrs["gen_ai.tool.name"] = waiting[2]
            turn.approvals[waiting[1]] = {
                k: v for k, v in attrs.items() if k.startswith("tether.approval.")
            }
        turn.span.add_event("tether.approval", attrs, timestamp=_ns(ev.time))

    # --- lifecycle ------------------------------------------------------------------

    def shutdown(self) -> None:
        """Flush and shut down the tracer provider, if this :class:`Tracing` built it."""
        provider = self._provider
        if self._owns and provider is not None:
            stop = getattr(provider, "shutdown", None)
            if stop is not None:
                stop()


def _parts(msg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A stored assistant message as the conventions' message parts (text, tool calls)."""
    parts: list[dict[str, Any]] = []
    text = msg.get("text")
    if text:
        parts.append({"type": "text", "content": text})
    for call in msg.get("tool_calls") or ():
        if isinstance(call, Mapping):
            parts.append(
                {
                    "type": "tool_call",
                    "id": call.get("id"),
                    "name": call.get("name"),
                    "arguments": call.get("arguments"),
                }
            )
    return parts


def capture_content_from_env(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for message content on spans.

    ``TETHER_TRACE_CONTENT=1`` or OpenTelemetry's
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`` (also
    ``span_only`` and ``span_and_event``).
    """
    for name in ("TETHER_TRACE_CONTENT", "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"):
        if environ.get(name, "").strip().lower() in _TRUE:
            return True
    return False


def _configured(environ: Mapping[str, str]) -> list[str]:
    """The trace exporters the environment asks for (empty: tracing is off)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if named:
        exporters = [e.strip() for e in named.split(",") if e.strip()]
        return [] if "none" in exporters else exporters
    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return ["otlp"] if endpoint else []


def _sampler(environ: Mapping[str, str]) -> Any:
    """The sampler ``OTEL_TRACES_SAMPLER`` (and ``_ARG``) name; default: parent-based, all."""
    from opentelemetry.sdk.trace import sampling

    name = environ.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    raw = environ.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
    try:
        ratio = float(raw) if raw else 1.0
    except ValueError as exc:
        raise ConfigError(
            f"OTEL_TRACES_SAMPLER_ARG={raw!r} is not a number: give a ratio such as 0.1"
        ) from exc
    samplers: dict[str, Callable[[], Any]] = {
        "always_on": lambda: sampling.ALWAYS_ON,
        "always_off": lambda: sampling.ALWAYS_OFF,
        "traceidratio": lambda: sampling.TraceIdRatioBased(ratio),
        "parentbased_always_on": lambda: sampling.ParentBased(sampling.ALWAYS_ON),
        "parentbased_always_off": lambda: sampling.ParentBased(sampling.ALWAYS_OFF),
        "parentbased_traceidratio": lambda: sampling.ParentBasedTraceIdRatio(ratio),
    }
    make = samplers.get(name)
    if make is None:
        raise ConfigError(
            f"OTEL_TRACES_SAMPLER={name!r} is not supported: use one of {', '.join(samplers)}"
        )
    return make()


def _otlp_exporter(environ: Mapping[str, str]) -> Any:
    protocol = (
        environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol != "http/protobuf":
        raise ConfigError(
            f"OTLP protocol {protocol!r} is not supported: Tether exports traces over "
            "http/protobuf (port 4318); set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not endpoint and environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        endpoint = environ["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
    # headers, timeout, compression and certificates: the exporter reads OTEL_* itself
    return OTLPSpanExporter(endpoint=endpoint or None)


def tracing_from_env(environ: Mapping[str, str] = os.environ) -> Tracing | None:
    """A :class:`Tracing` exporting where the ``OTEL_*`` variables say, or ``None``.

    Tracing is on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set, or ``OTEL_TRACES_EXPORTER``
    names an exporter (``otlp``, ``console``; ``none`` turns it off);
    ``OTEL_SDK_DISABLED=true`` turns it off. Then an SDK tracer provider
    (``service.name`` from ``OTEL_SERVICE_NAME``, default ``tether``; the
    sampler from ``OTEL_TRACES_SAMPLER``) batches spans to an OTLP/HTTP
    exporter. It is not installed as the global provider; call
    :meth:`Tracing.shutdown` to flush it when the process stops. Content
    capture follows :func:`capture_content_from_env`.
    Raises :class:`~tether.exceptions.ConfigError` for an exporter, protocol or
    sampler it does not support.
    """
    exporters = _configured(environ)
    if not exporters:
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    sampler = _sampler(environ)
    made: list[Any] = []
    for name in exporters:
        if name == "otlp":
            made.append(_otlp_exporter(environ))
        elif name == "console":
            made.append(ConsoleSpanExporter())
        else:
            raise ConfigError(
                f"OTEL_TRACES_EXPORTER={name!r} is not supported: use otlp, console or none"
            )
    service = environ.get("OTEL_SERVICE_NAME") or "tether"
    resource = Resource.create({"service.name": service, "service.version": tether.__version__})
    provider = SdkTracerProvider(resource=resource, sampler=sampler)
    for exporter in made:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(provider, capture_content=capture_content_from_env(environ), owns_provider=True)
