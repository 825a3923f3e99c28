"""How the command line ends on an error: one line on stderr and an exit status, never a traceback.

Commands turn the errors they expect into a message themselves (``_fail``
in :mod:`tether.surfaces.cli.app`). :class:`GuardedGroup`, the class of the
root ``tether`` group, is the last line of defence for everything else that
escapes a command:

- a :class:`~tether.exceptions.TetherError`: its message; exit 1 for a
  :class:`~tether.exceptions.RunError` (the run failed), 2 for the rest
  (a developer or configuration mistake);
- an ``OSError`` about a file (the OS refused a path the user gave): the
  path and the reason; exit 2;
- an exception raised by the user's own code outside Tether (an eval
  environment's ``snapshot()``, say): its type, message and the line that
  raised it; exit 2;
- anything else is a bug in Tether: ``internal error:`` with the exception's
  type, message and the line that raised it; exit 1.

The full traceback is logged at DEBUG on the ``tether.cli`` logger
(``tether --log-level DEBUG ...``) and printed above the line when the
environment variable ``TETHER_DEBUG`` is set to ``1`` (secrets redacted,
control characters escaped, as everywhere else).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import traceback
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperGroup
from typer.exceptions import TyperException

from tether.exceptions import RunError, TetherError
from tether.surfaces.cli.render import SafeConsole
from tether.surfaces.loader import describe_exception, raising_frame
from tether.surfaces.logs import redact

__all__ = ["DEBUG_ENV", "GuardedGroup", "failure", "one_line", "report"]

#: set to ``1`` to see the traceback of an unexpected error
DEBUG_ENV = "TETHER_DEBUG"

log = logging.getLogger("tether.cli")
_TETHER = Path(__file__).resolve().parents[2]  # the tether package
_stderr = SafeConsole(stderr=True)


_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def one_line(text: str) -> str:
    """``text`` on one line: every line break (``\\n``, ``\\r``, U+2028...) and the
    indentation after it become one space."""
    joined = " ".join(part.strip() for part in text.splitlines() if part.strip())
    # rich.Text drops some controls (BEL, BS, VT, FF) before any console escapes
    # them: show them as escapes here so nothing is silently hidden
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", joined)


def failure(exc: BaseException) -> tuple[str, int]:
    """What to say about ``exc``, escaped from a command, and the exit status."""
    if isinstance(exc, TetherError):
        return str(exc), 1 if isinstance(exc, RunError) else 2
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"cannot use {exc.filename}: {exc.strerror or exc}", 2
    hint = f"set {DEBUG_ENV}=1 for the traceback"
    frame = raising_frame(exc.__traceback__)
    if frame is not None and not Path(frame.filename).resolve().is_relative_to(_TETHER):
        return f"{describe_exception(exc)}; {hint}", 2
    return f"internal error: {describe_exception(exc)}; {hint}, and please report it", 1


def report(exc: BaseException, console: Console | None = None) -> int:
    """Print ``exc`` as one line (with the traceback first under ``TETHER_DEBUG=1``)
    and return the exit status for it."""
    console = console or _stderr
    message, code = failure(exc)
    log.debug("the command failed", exc_info=exc)
    if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
        lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
        console.print(Text(redact("".join(lines)).rstrip("\n")), soft_wrap=True, highlight=False)
    console.print(Text(f"error: {one_line(message)}", style="bold red"), soft_wrap=True)
    return code


def _passes(exc: Exception) -> bool:
    """Whether ``exc`` is typer's to handle: an exit, an abort, a usage error, a broken pipe."""
    if isinstance(exc, typer.Exit | typer.Abort | TyperException):
        return True
    return isinstance(exc, OSError) and exc.errno == errno.EPIPE


class GuardedGroup(TyperGroup):
    """A typer group that turns any exception a command lets escape into one line and
    an exit status (see the module docstring)."""

    # ``ctx`` is a context of the click copy typer ships privately (``typer._click``).
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if _passes(exc):
                raise
            raise typer.Exit(report(exc)) from None
