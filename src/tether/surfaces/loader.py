"""Turning an AGENT reference into an :class:`~tether.spec.agent.Agent`.

A reference is either ``module:attribute`` (``examples.retail.agent:agent``)
or a folder holding an agent definition: a package folder whose
``agent.py`` (or ``__init__.py``) defines ``agent``. A folder's parent is put
on ``sys.path`` so the package imports the normal way.

This is where the user's own code runs first (a module's top level, an
agent factory), so whatever it raises is turned into one
:class:`~tether.exceptions.AgentLoadError` saying what failed and where: a
syntax error with its file and line, any other exception with its type, its
message and the line that raised it. :func:`guard_factory` does the same
for factories called later (an eval's agent or environment per case).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
import sysconfig
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from tether.exceptions import AgentLoadError
from tether.spec.agent import Agent

__all__ = [
    "describe_exception",
    "guard_factory",
    "load_agent",
    "load_object",
    "raising_frame",
]

_MESSAGE_CHARS = 500


def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    return tuple({paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths})


def raising_frame(tb: TracebackType | None) -> traceback.FrameSummary | None:
    """The frame of ``tb`` to blame: the innermost outside Python's import
    machinery and this module, preferring one outside the standard library and
    installed packages (the line of *the user's* code that called into a
    library that raised); ``None`` for an empty traceback."""
    frames = [
        f
        for f in traceback.extract_tb(tb)
        if not f.filename.startswith("<frozen") and f.filename != __file__
    ]
    if not frames:
        return None
    libraries = _library_dirs()
    own = [f for f in frames if not f.filename.startswith(libraries)]
    return (own or frames)[-1]


def _where(tb: TracebackType | None) -> str:
    frame = raising_frame(tb)
    return "" if frame is None else f"{frame.filename}:{frame.lineno}"


def describe_exception(exc: BaseException) -> str:
    """``Type: message (file:line)``: an exception in one line's worth of words, with the
    line of code (the user's, where there is one) that raised it."""
    text = str(exc).strip()
    if len(text) > _MESSAGE_CHARS:
        text = text[: _MESSAGE_CHARS - 1] + "…"
    head = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    where = _where(exc.__traceback__)
    return f"{head} ({where})" if where else head


def _import_module(module: str, what: str, ref: str) -> ModuleType:
    """``module`` imported; whatever goes wrong becomes an :class:`AgentLoadError`."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module == missing or module.startswith(missing + ".")):
            raise AgentLoadError(
                f"cannot import {module!r} for {what} {ref!r} ({exc}); run from the folder "
                "that contains it, or give a path to the agent's folder"
            ) from exc
        raise AgentLoadError(
            f"importing {module!r} for {what} {ref!r} failed: it imports {missing!r}, which "
            f"is not installed ({_where(exc.__traceback__)})"
        ) from exc
    except SyntaxError as exc:
        at = f"{exc.filename}:{exc.lineno}" if exc.filename else f"line {exc.lineno}"
        raise AgentLoadError(
            f"{what} {ref!r}: syntax error in {at}: {exc.msg}"
            + (f" (column {exc.offset})" if exc.offset else "")
        ) from None
    except SystemExit as exc:
        raise AgentLoadError(
            f"importing {module!r} for {what} {ref!r} called sys.exit({exc.code!r}) "
            f"({_where(exc.__traceback__)})"
        ) from None
    except AgentLoadError:
        raise
    except Exception as exc:
        raise AgentLoadError(
            f"importing {module!r} for {what} {ref!r} raised {describe_exception(exc)}"
        ) from exc


def guard_factory(
    fn: Callable[..., Any],
    *,
    what: str,
    ref: str,
    failures: list[AgentLoadError] | None = None,
) -> Callable[..., Any]:
    """``fn`` (a factory the user wrote) raising :class:`AgentLoadError` when it fails.

    The message names ``what`` and ``ref``, the exception and the line that
    raised it; each error is also appended to ``failures`` when given (for
    callers whose runner records errors per case). The wrapper keeps ``fn``'s
    signature (``inspect.signature`` follows ``__wrapped__``).
    """

    def failed(error: AgentLoadError) -> AgentLoadError:
        if failures is not None:
            failures.append(error)
        return error

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AgentLoadError as exc:  # a factory that loads another agent itself
            failed(exc)
            raise
        except SystemExit as exc:
            where = _where(exc.__traceback__)
            message = f"{what} {ref!r} called sys.exit({exc.code!r}) ({where})"
            raise failed(AgentLoadError(message)) from exc
        except Exception as exc:
            raise failed(
                AgentLoadError(f"{what} {ref!r} raised {describe_exception(exc)}")
            ) from exc

    return call


def _import(module: str, attr: str, ref: str) -> Agent:
    mod = _import_module(module, "agent", ref)
    try:
        obj = getattr(mod, attr)
    except AttributeError as exc:
        raise AgentLoadError(
            f"module {module!r} has no attribute {attr!r} (agent {ref!r})"
        ) from exc
    if callable(obj) and not isinstance(obj, Agent):
        obj = guard_factory(obj, what="agent factory", ref=ref)()
        if inspect.iscoroutine(obj):
            obj.close()  # never awaited: close it, so no warning follows the error line
            raise AgentLoadError(
                f"agent factory {ref!r} is async; make it a plain function that returns "
                "the tether.Agent"
            )
    if not isinstance(obj, Agent):
        what = "None" if obj is None else f"a {type(obj).__name__}"
        raise AgentLoadError(f"{ref!r} is {what}, not a tether.Agent")
    return obj


def load_agent(ref: str) -> Agent:
    """Load the agent ``ref`` names. Raises :class:`AgentLoadError` with a fix."""
    path = Path(ref)
    if path.is_dir():
        folder = path.resolve()
        if not (folder / "__init__.py").exists() and not (folder / "agent.py").exists():
            raise AgentLoadError(f"folder {ref!r} has no agent.py or __init__.py defining `agent`")
        parent = str(folder.parent)
        if parent not in sys.path:
            sys.path.insert(0, parent)
        # Nested package folders (examples/retail) import by their dotted path.
        package = folder.name
        probe = folder.parent
        while (probe / "__init__.py").exists():
            package = f"{probe.name}.{package}"
            if str(probe.parent) not in sys.path:
                sys.path.insert(0, str(probe.parent))
            probe = probe.parent
        module = f"{package}.agent" if (folder / "agent.py").exists() else package
        return _import(module, "agent", ref)
    module, sep, attr = ref.partition(":")
    if not sep or not module or not attr:
        raise AgentLoadError(
            f"agent reference {ref!r} is neither a folder nor 'module:attribute' "
            "(e.g. examples.retail.agent:agent or examples/retail)"
        )
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    return _import(module, attr, ref)


def load_object(ref: str, *, what: str = "object") -> object:
    """The object ``module:attribute`` names (a factory, an environment), imported.

    Raises :class:`AgentLoadError` with the fix when it cannot be found or
    its module fails to import.
    """
    module, sep, attr = ref.partition(":")
    if not sep or not module or not attr:
        raise AgentLoadError(f"{what} reference {ref!r} is not 'module:attribute'")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")
    mod = _import_module(module, what, ref)
    try:
        obj: object = getattr(mod, attr)
    except AttributeError as exc:
        raise AgentLoadError(
            f"module {module!r} has no attribute {attr!r} ({what} {ref!r})"
        ) from exc
    return obj
