"""Logging set-up for the surfaces: text or JSON lines, with secrets redacted.

**Formats.** ``configure_logging(level, fmt="text")`` writes today's
``time LEVEL logger: message`` lines; ``fmt="json"`` (or env
``TETHER_LOG_FORMAT=json``, which wins) writes one JSON object per line::

    {"time": "2025-01-31T12:00:00.123Z", "level": "WARNING", "logger": "tether.x",
     "message": "...", "session_id": "s_1", "step": 3, "agent": "shop",
     "version": "7", "order": "#W1"}

``session_id``, ``step``, ``agent`` and ``version`` come from
:data:`~tether.runtime.observe.current_turn` when the record is made during a
turn (:class:`TurnFilter`, installed on the handler, so every logger gets
them); fields given with ``extra=`` follow (a value JSON cannot hold is
written as its redacted ``str``); an exception is an ``exc`` field.

**Redaction** (:class:`Redactor`) replaces with ``[REDACTED]``, in the
message, its arguments, exception text, stack text and every ``extra`` field
(nested dicts and lists too):

- the value of any environment variable whose name looks secret
  (``*_API_KEY``, ``*_TOKEN``, ``*_SECRET``, ``*_PASSWORD``, ...), read at each
  record, so a key set after start-up is covered too; the whole value of
  ``TETHER_ALERT_WEBHOOK_URL`` (and its path: a Slack-style webhook's token is
  there) and of ``OTEL_EXPORTER_OTLP_*HEADERS`` (and each header's value); the
  password, and a path with a token-like segment, of every URL-valued variable
  (``*_URL``, ``*_URI``, ``*_DSN``, ``*_ENDPOINT``: ``TETHER_DATABASE_URL``,
  ``TETHER_REDIS_URL``...). Values shorter than 8 characters are not looked for;
- provider keys (``sk-...``, ``xai-...``), GitHub, Slack and AWS access key ids
  (``ghp_...``, ``xoxb-...``, ``AKIA...``), Tether API keys (``tk_<id>_<secret>``,
  the whole token), and the path of a Slack or Discord webhook URL;
- ``Authorization:`` header values and ``Bearer`` tokens; the password in a
  ``scheme://user:password@host`` URL (up to the last ``@`` before the query:
  a password may hold ``/`` or ``@``);
- the value of any key named like a credential, matched by the end of its name
  (``*token``, ``*secret``, ``*signature``, ``*password``, ``*passwd``,
  ``*api_key``/``*apikey``, ``*private_key``, ``*access_key``, ``*credential(s)``):
  in query strings (``?client_secret=``, ``&X-Amz-Signature=``, also ``key``,
  ``sig`` and ``auth``), as ``name=value`` or ``name: value`` in text, headers
  and reprs (libpq's ``password=...``, ``{'x-api-key': '...'}``);
- in structured fields, any string under a key named so, or ``authorization``
  or ``cookie``;
- the operator's own regular expressions, from env ``TETHER_REDACT_PATTERNS``,
  separated by ``;;`` (whitespace around each is ignored, so they may also be
  put one a line after the ``;;``). The whole match is replaced: use a
  look-behind to keep context (``(?<=acct=)\\d+``). A pattern that does not
  compile, or that matches the empty string, is a
  :class:`~tether.exceptions.ConfigError` from :func:`configure_logging` (at
  start-up), never a failure while logging.

A log call whose arguments do not fit its format string logs a redacted
note instead of raising into the caller or printing its raw arguments.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal, TextIO
from urllib.parse import quote, unquote, urlsplit

from tether.exceptions import ConfigError
from tether.runtime.observe import current_turn

__all__ = [
    "PATTERN_SEPARATOR",
    "JsonFormatter",
    "RedactingFilter",
    "Redactor",
    "TurnFilter",
    "configure_logging",
    "parse_patterns",
    "quiet_logs",
    "redact",
    "redact_value",
]

#: what separates the regular expressions in ``TETHER_REDACT_PATTERNS``
PATTERN_SEPARATOR = ";;"
_MASK = "[REDACTED]"

_SECRET_NAME = re.compile(
    r"(API_KEY|ACCESS_KEY|PRIVATE_KEY|SECRET_KEY|TOKEN|SECRET|PASSWORD|PASSWD|(?:^|_)PASS|"
    r"CREDENTIALS)$",
    re.IGNORECASE,
)
#: variables whose whole value is a secret though their name does not say so (a webhook
#: URL carries its token in its path; OTLP headers carry the exporter's API key)
_SECRET_WHOLE = frozenset(
    {
        "TETHER_ALERT_WEBHOOK_URL",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
        "OTEL_EXPORTER_OTLP_LOGS_HEADERS",
    }
)
#: variables holding a URL or DSN: their password, and a path that looks like a token
_URL_NAME = re.compile(r"_(URL|URI|DSN|ENDPOINT)$", re.IGNORECASE)
#: a path segment that looks like a credential: 20 characters or more, with upper and
#: lower case letters and digits mixed (not a database name such as ``orders_2024``)
_TOKEN_SEGMENT = re.compile(
    r"(?=[A-Za-z0-9_\-]*\d)(?=[A-Za-z0-9_\-]*[a-z])(?=[A-Za-z0-9_\-]*[A-Z])[A-Za-z0-9_\-]{20,}"
)
#: any variable :func:`_derived` takes secrets from (one search per variable and record)
_ENV_NAME = re.compile(
    rf"{_SECRET_NAME.pattern}|{_URL_NAME.pattern}|^OTEL_EXPORTER_OTLP_(?:[A-Z]+_)?HEADERS$",
    re.IGNORECASE,
)
#: the shortest environment value replaced wherever it appears (shorter ones would mangle logs)
_MIN_SECRET = 8
#: the end of a key name that says its value is a credential (``client_secret``,
#: ``refresh_token``, ``X-Amz-Signature``, ``x-api-key``, ``PGPASSWORD``...)
_SECRET_SUFFIX = (
    r"(?:token|secret|signature|password|passwd|api[_\-]?key|apikey|private[_\-]?key|"
    r"access[_\-]?key|credentials?)"
)
#: a structured field whose string value is a secret whatever it looks like
_SECRET_FIELD = re.compile(
    rf"(?:{_SECRET_SUFFIX}|authorization|cookie)$",
    re.IGNORECASE,
)
_KEY_SHAPE = re.compile(
    r"\b(sk-[A-Za-z0-9_\-]{12,}|xai-[A-Za-z0-9]{12,}|gh[oprsu]_[A-Za-z0-9]{20,}|"
    r"github_pat_[A-Za-z0-9_]{20,}|xox[abeprs]-[A-Za-z0-9\-]{10,}|AKIA[0-9A-Z]{16})\b"
)
#: chat webhooks whose URL path is the credential
_WEBHOOK_PATH = re.compile(
    r"(\bhooks\.slack\.com/(?:services|workflows|triggers)/|"
    r"\bdiscord(?:app)?\.com/api/webhooks/)[^\s\"'?#]+",
    re.IGNORECASE,
)
_TETHER_KEY = re.compile(r"\btk_[A-Za-z0-9]{1,64}_[A-Za-z0-9_\-]{4,}")
_AUTH_HEADER = re.compile(
    r"""\b((?:proxy-)?authorization["']?\s*[:=]\s*["']?)"""
    r"""(?:(bearer|basic|token|digest)\s+)?(?!\[REDACTED\])[^\s"',;}\]]+""",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(bearer\s+)[A-Za-z0-9._~+/\-]{6,}=*", re.IGNORECASE)
#: ``scheme://user:password@host``: the password runs to the last ``@`` before the query
#: (it may hold ``/`` or ``@``); ``host:8080/`` is a port, not a password
_URL_PASSWORD = re.compile(
    r"\b([a-z][a-z0-9+.\-]*://[^\s/?#@:]*:)(?!\d{1,5}(?:[/?#\s]|$))(?!\[REDACTED\]@)[^\s?#]{0,256}@",
    re.IGNORECASE,
)
#: ``?name=value`` / ``&name=value`` where the name ends like a credential (or is one of
#: the short names that are: ``key``, ``sig``, ``auth``); the value runs to ``&`` or ``#``
_QUERY_CREDENTIAL = re.compile(
    rf"([?&;][A-Za-z0-9_.\-]*?(?:{_SECRET_SUFFIX}|key|sig|auth)=)(?!\[REDACTED\])[^&\s#\"']+",
    re.IGNORECASE,
)
#: ``name=value`` / ``name: value`` in plain text, headers, reprs and JSON text (libpq's
#: ``password=...``, ``{'x-api-key': '...'}``, ``"client_secret": "..."``)
_KEY_VALUE = re.compile(
    rf"""(?<![A-Za-z0-9_.\-])([A-Za-z0-9_.\-]*?{_SECRET_SUFFIX}["']?[ \t]*[:=][ \t]*)"""
    r"""(?:(["'])(?!\[REDACTED\])(?:\\.|(?!\2)[^\\\n])*(?:\2|(?=\n)|\Z)"""
    r"""|(?!\[REDACTED\])[^\s"',;}\]]+)""",
    re.IGNORECASE,
)


def _auth_mask(m: re.Match[str]) -> str:
    scheme = f"{m.group(2)} " if m.group(2) else ""
    return f"{m.group(1)}{scheme}{_MASK}"


def _key_value_mask(m: re.Match[str]) -> str:
    quote = m.group(2) or ""
    return f"{m.group(1)}{quote}{_MASK}{quote}"


def _built_in(text: str) -> str:
    text = _URL_PASSWORD.sub(rf"\1{_MASK}@", text)
    text = _WEBHOOK_PATH.sub(rf"\1{_MASK}", text)
    text = _QUERY_CREDENTIAL.sub(rf"\1{_MASK}", text)
    text = _AUTH_HEADER.sub(_auth_mask, text)
    text = _BEARER.sub(rf"\1{_MASK}", text)
    text = _KEY_VALUE.sub(_key_value_mask, text)
    text = _TETHER_KEY.sub(_MASK, text)
    return _KEY_SHAPE.sub(_MASK, text)


def _url_secrets(value: str) -> list[str]:
    """What in a URL-valued variable is secret: its password, a path that looks like a token."""
    try:
        parts = urlsplit(value.strip())
        password = parts.password
    except ValueError:  # not a URL after all
        return []
    out = [] if password is None else [password, quote(password, safe="")]
    if any(_TOKEN_SEGMENT.fullmatch(seg) for seg in parts.path.split("/")):
        out.append(parts.path)
    return out


def _header_values(value: str) -> list[str]:
    """The values of an ``OTEL_EXPORTER_OTLP_HEADERS``-style ``k=v,k2=v2`` list."""
    out = []
    for item in value.split(","):
        _name, sep, raw = item.partition("=")
        if sep:
            value = unquote(raw.strip())
            out += [raw.strip(), value, *value.split()[-1:]]  # ``Bearer <token>``: the token
    return out


@lru_cache(maxsize=32)
def _derived(items: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    found: list[str] = []
    for name, value in items:
        upper = name.upper()
        if _SECRET_NAME.search(name):
            found.append(value)
        if upper in _SECRET_WHOLE:
            found.append(value)
            if upper == "TETHER_ALERT_WEBHOOK_URL":
                found += _url_secrets(value)
                with suppress(ValueError):
                    found.append(urlsplit(value.strip()).path)  # however the host is written
            else:
                found += _header_values(value)
        elif _URL_NAME.search(name):
            found += _url_secrets(value)
    unique = {v.strip() for v in found if len(v.strip()) >= _MIN_SECRET}
    return tuple(sorted(unique, key=len, reverse=True))


def _secret_values(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The environment's secret values, longest first: secret-named variables whole, the
    alert webhook's URL and the OTLP headers whole, and the passwords and token-like paths
    of URL-valued variables (``*_URL``, ``*_DSN``...)."""
    items = tuple((k, v) for k, v in environ.items() if v and _ENV_NAME.search(k))
    return _derived(items) if items else ()


def parse_patterns(spec: str, *, strict: bool = True) -> tuple[re.Pattern[str], ...]:
    """The regular expressions in ``spec`` (``TETHER_REDACT_PATTERNS``), ``;;``-separated.

    ``strict``: a bad pattern raises :class:`~tether.exceptions.ConfigError`;
    otherwise it is matched as literal text (the lenient form, for
    :func:`redact` called outside a configured process).
    """
    out: list[re.Pattern[str]] = []
    for n, raw in enumerate(spec.split(PATTERN_SEPARATOR), start=1):
        source = raw.strip()
        if not source:
            continue
        try:
            pattern = re.compile(source)
        except re.error as exc:
            if strict:
                raise ConfigError(
                    f"TETHER_REDACT_PATTERNS: pattern {n} ({source!r}) is not a valid regular "
                    f"expression ({exc}); fix it, or separate patterns with {PATTERN_SEPARATOR!r}"
                ) from None
            pattern = re.compile(re.escape(source))
        if pattern.fullmatch(""):
            if strict:
                raise ConfigError(
                    f"TETHER_REDACT_PATTERNS: pattern {n} ({source!r}) matches the empty "
                    "string, so it would redact everything; make it match at least one "
                    "character (use + rather than *)"
                )
            continue
        out.append(pattern)
    return tuple(out)


@lru_cache(maxsize=8)
def _lenient_patterns(spec: str) -> tuple[re.Pattern[str], ...]:
    return parse_patterns(spec, strict=False)


@dataclass(frozen=True, slots=True, eq=False)
class Redactor:
    """Replaces secrets in text and in structured values with ``[REDACTED]``.

    - ``patterns``: the operator's regular expressions (whole match replaced);
    - ``secrets``: literal values to replace, besides the environment's;
    - ``environ``: where secret-named variables are read, at each call
      (``None``: ``os.environ``).
    """

    patterns: tuple[re.Pattern[str], ...] = ()
    secrets: tuple[str, ...] = ()
    environ: Mapping[str, str] | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Redactor:
        """A redactor with ``TETHER_REDACT_PATTERNS``; a bad pattern is a ``ConfigError``."""
        env = os.environ if environ is None else environ
        return cls(patterns=parse_patterns(env.get("TETHER_REDACT_PATTERNS", "")), environ=environ)

    def snapshot(self) -> Redactor:
        """This redactor with the environment's secret values read now and kept (for
        redacting the many fields of one record without reading the environment for each)."""
        env = os.environ if self.environ is None else self.environ
        values = tuple(v for v in (*self.secrets, *_secret_values(env)) if v)
        return Redactor(patterns=self.patterns, secrets=values, environ={})

    def __call__(self, text: str) -> str:
        """``text`` with every secret this redactor knows replaced."""
        env = os.environ if self.environ is None else self.environ
        text = _built_in(text)  # first: a key-shaped token goes whole, not around a known value
        for value in (*self.secrets, *_secret_values(env)):
            if value:
                text = text.replace(value, _MASK)
        for pattern in self.patterns:
            text = pattern.sub(_MASK, text)
        return text

    def value(self, obj: Any) -> Any:
        """``obj`` with every string in it redacted (dict keys and values, lists, tuples).

        A string under a key named like a secret (``password``, ``token``,
        ``api_key``, ``authorization``...) is replaced whole.
        """
        return _walk(self.snapshot(), obj)


def _walk(redactor: Redactor, obj: Any) -> Any:
    if isinstance(obj, str):
        return redactor(obj)
    if isinstance(obj, Mapping):
        out: dict[Any, Any] = {}
        for k, v in obj.items():
            key = k if isinstance(k, int | float | bool) or k is None else redactor(str(k))
            if isinstance(k, str) and isinstance(v, str) and _SECRET_FIELD.search(k):
                out[key] = _MASK
            else:
                out[key] = _walk(redactor, v)
        return out
    if isinstance(obj, list | tuple | set | frozenset):
        return [_walk(redactor, v) for v in obj]
    return obj


def _default() -> Redactor:
    spec = os.environ.get("TETHER_REDACT_PATTERNS", "")
    return Redactor(patterns=_lenient_patterns(spec) if spec else ())


def redact(text: str, secrets: list[str] | None = None) -> str:
    """``text`` with secret values, key-shaped strings and configured patterns replaced.

    ``secrets`` replaces the environment's secret values as the literal
    values to look for. A bad ``TETHER_REDACT_PATTERNS`` entry is matched
    as plain text here (:func:`configure_logging` refuses it at start-up).
    """
    base = _default()
    if secrets is None:
        return base(text)
    return Redactor(patterns=base.patterns, secrets=tuple(secrets), environ={})(text)


def redact_value(obj: Any) -> Any:
    """:meth:`Redactor.value` with the environment's secrets and patterns."""
    return _default().value(obj)


def _message(record: logging.LogRecord, redactor: Redactor) -> str:
    """The record's message, redacted; a format error gives a note, never the raw args."""
    try:
        return redactor(record.getMessage())
    except Exception as exc:
        return redactor(
            f"[log call could not be formatted ({type(exc).__name__}); format: {record.msg!s}]"
        )


class RedactingFilter(logging.Filter):
    """A handler filter that redacts the message, its args, exception and stack text.

    ``redactor``: the one to use (``None``: the environment's, read at each record).
    """

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        redactor = (self._redactor or _default()).snapshot()
        clean = _message(record, redactor)
        record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redactor(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redactor(record.exc_text)
        if record.stack_info:
            record.stack_info = redactor(record.stack_info)
        return True


#: what every JSON line has, before the turn ids and the extras
_BASE_FIELDS = frozenset({"time", "level", "logger", "message"})
#: the ids a record made during a turn carries
_TURN_FIELDS = ("session_id", "step", "agent", "version")


class TurnFilter(logging.Filter):
    """Stamps ``session_id``, ``step``, ``agent`` and ``version`` of the current turn.

    Installed on a handler, it applies to every logger's records; a field
    the caller gave with ``extra=`` is kept.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        info = current_turn.get()
        if info is None:
            return True
        values = (info.tag.session_id, info.step, info.tag.agent, info.tag.version)
        for name, value in zip(_TURN_FIELDS, values, strict=True):
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


#: attributes every LogRecord has: not ``extra`` fields (nor uvicorn's terminal-coloured
#: copy of its message, ``color_message``)
_STANDARD = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
    | {"message", "asctime", "taskName", "color_message"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, turn ids, extras, ``exc``.

    Everything written goes through ``redactor`` (``None``: the environment's).
    """

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        redactor = (self._redactor or _default()).snapshot()
        when = datetime.fromtimestamp(record.created, tz=UTC)
        out: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": _message(record, redactor),
        }
        for name, value in vars(record).items():
            if name in _STANDARD or name.startswith("_") or name in out:
                continue
            if isinstance(value, str) and _SECRET_FIELD.search(name):
                out[name] = _MASK
            else:
                try:
                    out[name] = _walk(redactor, value)
                except RecursionError:  # a structure that holds itself
                    out[name] = redactor(str(value))
        exc = record.exc_text
        if record.exc_info and record.exc_info[1] is not None:
            exc = self.formatException(record.exc_info)
        if exc:
            out["exc"] = redactor(exc)
        if record.stack_info:
            out["stack"] = redactor(record.stack_info)
        try:
            return json.dumps(out, ensure_ascii=False, default=lambda v: redactor(str(v)))
        except (TypeError, ValueError, RecursionError):  # a key JSON refuses, a cycle
            safe = {k: v if k in _BASE_FIELDS else redactor(str(v)) for k, v in out.items()}
            return json.dumps(safe, ensure_ascii=False)


def _level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    value = logging.getLevelNamesMapping().get(level.strip().upper())
    if value is None:
        raise ValueError(f"Unknown level: {level!r}")
    return value


def _format(fmt: str | None) -> Literal["text", "json"]:
    chosen = os.environ.get("TETHER_LOG_FORMAT") or fmt or "text"
    value = chosen.strip().lower()
    if value == "text":
        return "text"
    if value == "json":
        return "json"
    raise ConfigError(
        f"log format {chosen!r} is not known: set TETHER_LOG_FORMAT (or fmt=) to text or json"
    )


#: loggers the ASGI server gives handlers of its own, with ``propagate=False`` (uvicorn's
#: default ``LOGGING_CONFIG``): their lines must go through the redacting handler too
_SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
#: HTTP clients that log every request's full URL at INFO (a webhook's token is in its path)
_CHATTY_LOGGERS = ("httpx", "httpcore")


def configure_logging(
    level: str | int = "WARNING",
    *,
    fmt: str | None = None,
    stream: TextIO | None = None,
) -> None:
    """Log to ``stream`` (stderr) at ``level``, as text or JSON lines, redacting secrets.

    Env ``TETHER_LOG_LEVEL`` wins over ``level`` and ``TETHER_LOG_FORMAT``
    over ``fmt`` (``text``, the default, or ``json``). Raises ``ValueError``
    for an unknown level and :class:`~tether.exceptions.ConfigError` for an
    unknown format or a bad ``TETHER_REDACT_PATTERNS``, before changing
    anything.

    The root logger gets the one handler. uvicorn's loggers (``uvicorn``,
    ``uvicorn.error``, ``uvicorn.access``), which ``uvicorn --factory`` has
    already given handlers of their own that do not propagate, lose those
    handlers and propagate to it, so access lines are redacted and written in
    the same format (one uvicorn silenced, with no handler, is left silent).
    ``httpx`` and ``httpcore`` log at ``WARNING`` at least: at ``INFO`` they
    log every request's full URL.
    """
    value = _level(os.environ.get("TETHER_LOG_LEVEL", level))
    kind = _format(fmt)
    redactor = Redactor.from_env()
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    if kind == "json":
        handler.addFilter(TurnFilter())
        handler.setFormatter(JsonFormatter(redactor))
    else:
        handler.addFilter(RedactingFilter(redactor))
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(value)
    for name in _SERVER_LOGGERS:
        server_log = logging.getLogger(name)
        if server_log.handlers:  # a logger the operator silenced (no handler) stays silent
            server_log.handlers.clear()
            server_log.propagate = True
    for name in _CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(max(value, logging.WARNING))


@contextmanager
def quiet_logs(enabled: bool = True) -> Iterator[None]:
    """Hide log records below CRITICAL for a while (eval cases and attacks log on purpose).

    Whatever ``logging.disable`` level was set before is put back afterwards.
    """
    if not enabled:
        yield
        return
    previous = logging.root.manager.disable
    logging.disable(logging.ERROR)
    try:
        yield
    finally:
        logging.disable(previous)
