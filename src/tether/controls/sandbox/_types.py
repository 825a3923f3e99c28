"""What every backend shares: the limits, the result, the protocol, the stop messages."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Literal, Protocol

from tether.exceptions import ToolFailed

__all__ = [
    "Isolation",
    "IsolationLevel",
    "KilledBy",
    "Sandbox",
    "SandboxBackend",
    "SandboxFailed",
    "SandboxLimits",
    "SandboxResult",
    "stop_message",
]

#: why a run was stopped before it ended by itself
KilledBy = Literal["timeout", "cpu", "memory", "output", "processes", "filesize"]
#: what :func:`~tether.controls.sandbox.probe` found: the strongest backend that works
IsolationLevel = Literal["bubblewrap", "docker", "none"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxLimits:
    """The resources one run may use. Every limit is enforced by the kernel or the caller.

    ``cpu_seconds`` is CPU time per process (``RLIMIT_CPU``: ``SIGXCPU`` at the
    limit, ``SIGKILL`` one second later); ``memory_mb`` is the address space
    per process (``RLIMIT_AS``: an allocation beyond it fails, in Python with
    ``MemoryError``); ``processes`` counts processes and threads, the
    program's own included (``RLIMIT_NPROC``, made to bind by running as an
    unprivileged user in a user namespace; a pids cgroup under Docker);
    ``file_size_mb`` is the largest file it may write (``RLIMIT_FSIZE``);
    ``disk_mb`` is the size of each writable tmpfs (the working directory,
    ``/tmp``); ``output_bytes`` caps stdout and stderr each (the run is killed
    when one goes over, and what was kept ends with a marker);
    ``wall_seconds`` is the wall-clock time after which the caller kills the
    whole sandbox.
    """

    cpu_seconds: int = 5
    memory_mb: int = 256
    processes: int = 32
    file_size_mb: int = 16
    disk_mb: int = 64
    output_bytes: int = 64_000
    wall_seconds: float = 10.0

    def __post_init__(self) -> None:
        for name in ("cpu_seconds", "memory_mb", "processes", "file_size_mb", "disk_mb"):
            if getattr(self, name) < 1:
                raise ValueError(f"SandboxLimits.{name} must be at least 1")
        if self.output_bytes < 1 or self.wall_seconds <= 0:
            raise ValueError("SandboxLimits.output_bytes and wall_seconds must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxResult:
    """What one run produced and how it ended.

    ``exit_code`` is the program's status (``128 + N`` when signal ``N``
    ended it) and ``None`` when the caller killed it (``killed_by``
    ``"timeout"`` or ``"output"``). ``killed_by`` says which limit stopped
    it, or ``None`` if it ended by itself. ``stdout`` and ``stderr`` hold at
    most ``limits.output_bytes`` bytes each (decoded as UTF-8), followed by a
    marker line when there was more. ``duration`` is wall-clock seconds from
    start to exit, sandbox set-up included.
    """

    stdout: str
    stderr: str
    exit_code: int | None
    killed_by: KilledBy | None
    duration: float
    backend: str
    limits: SandboxLimits

    @property
    def ok(self) -> bool:
        """Whether the program ended by itself with status 0."""
        return self.killed_by is None and self.exit_code == 0

    @property
    def stopped(self) -> str | None:
        """``"stopped: it used more than 5 s of CPU"`` and the like, or ``None``."""
        if self.killed_by is None:
            return None
        return f"stopped: {stop_message(self.killed_by, self.limits)}"


def stop_message(killed_by: KilledBy, limits: SandboxLimits) -> str:
    """Which limit a run went over, in words a user can read."""
    if killed_by == "timeout":
        return f"it ran for more than {limits.wall_seconds:g} s"
    if killed_by == "cpu":
        return f"it used more than {limits.cpu_seconds} s of CPU"
    if killed_by == "memory":
        return f"it used more than {limits.memory_mb} MB of memory"
    if killed_by == "output":
        return f"it printed more than {limits.output_bytes:,} bytes"
    if killed_by == "processes":
        return f"it tried to run more than {limits.processes} processes or threads"
    return f"it tried to write a file larger than {limits.file_size_mb} MB"


class SandboxFailed(ToolFailed):
    """The sandbox itself could not run the program (not the program failing).

    A :class:`~tether.ToolFailed`, so a tool that runs code reports it to the
    model as a clean failure ("the sandbox could not start: ...").
    """


class Sandbox(Protocol):
    """Runs untrusted code in isolation. The one seam every backend implements."""

    async def run(self, code: str, *, stdin: str = "", limits: SandboxLimits) -> SandboxResult:
        """Run the Python program ``code`` with ``stdin`` under ``limits``.

        Never raises for what the program does (an error, a crash, a limit
        reached): that is in the result. Raises :class:`SandboxFailed` when
        the sandbox itself cannot start.
        """
        ...


class SandboxBackend(abc.ABC):
    """A :class:`Sandbox` that can also check, by running a tiny program, that it works."""

    #: the backend's name, as in :attr:`SandboxResult.backend`
    name: str

    @abc.abstractmethod
    async def run(self, code: str, *, stdin: str = "", limits: SandboxLimits) -> SandboxResult:
        """See :meth:`Sandbox.run`."""

    @abc.abstractmethod
    def probe(self) -> Isolation:
        """Run a tiny program now; say whether this backend isolates, and why not if not."""


@dataclass(frozen=True, slots=True)
class Isolation:
    """What a probe found: the isolation ``level``, why, and the backend that works.

    ``sandbox`` is ``None`` when the probed backend does not work here;
    ``reason`` then says why and what would fix it.
    """

    level: IsolationLevel
    reason: str
    sandbox: SandboxBackend | None = None
