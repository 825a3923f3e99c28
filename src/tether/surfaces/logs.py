"""Logging set-up for the surfaces, with secrets redacted.

Any value of an environment variable whose name looks secret
(``*_API_KEY``, ``*_TOKEN``, ``*_SECRET``, ``*_PASSWORD``) and anything that
looks like a provider key (``sk-...``) is replaced by ``[REDACTED]`` in
every log record, whatever logger wrote it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["RedactingFilter", "configure_logging", "quiet_logs", "redact"]

_SECRET_NAME = re.compile(r"(API_KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)
_KEY_SHAPE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{12,}|xai-[A-Za-z0-9]{12,})")


def _secret_values() -> list[str]:
    return sorted(
        (v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= 8),
        key=len,
        reverse=True,
    )


def redact(text: str, secrets: list[str] | None = None) -> str:
    """``text`` with secret values and key-shaped strings replaced."""
    for value in _secret_values() if secrets is None else secrets:
        text = text.replace(value, "[REDACTED]")
    return _KEY_SHAPE.sub("[REDACTED]", text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts secrets from the formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def configure_logging(level: str | int = "WARNING") -> None:
    """Log to stderr at ``level`` (env ``TETHER_LOG_LEVEL`` wins), redacting secrets."""
    level = os.environ.get("TETHER_LOG_LEVEL", level)
    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level if isinstance(level, int) else level.upper())


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
