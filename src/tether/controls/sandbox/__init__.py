"""Running untrusted code: a sandbox protocol, its backends, the start-up probe, a tool.

DESIGN.md guarantee 10: tools that run code do so in a sandbox, never in
the runtime's own process::

    sandbox = open_sandbox()                 # probes; ConfigError if none isolates
    result = await sandbox.run("print(6 * 7)", limits=SandboxLimits())
    agent = Agent(..., tools=[run_python_tool(sandbox)])

- :class:`Sandbox` is the seam: one method, ``run(code, *, stdin, limits)``
  returning a :class:`SandboxResult` (stdout and stderr capped, exit code,
  ``killed_by``, duration, backend). It never raises for what the program
  does; :class:`SandboxFailed` when the sandbox itself cannot start.
- :class:`SandboxLimits`: CPU seconds, memory, processes, file size, disk,
  output bytes, wall clock.
- Backends: :class:`BubblewrapSandbox` (the default on Linux),
  :class:`DockerSandbox` (where an engine and the image are present; never
  pulls), :class:`UnsafeLocalSandbox` (no isolation, only with
  ``allow_unsandboxed=True``).
- :func:`probe` runs a tiny program in each backend and reports the
  isolation level (``"bubblewrap"``, ``"docker"``, ``"none"``) and why;
  :func:`open_sandbox` picks the best or refuses.
- :func:`run_python_tool` declares the tool a model calls.

``docs/security.md`` ("Sandboxed code") says what each mechanism stops and what it does not.
"""

from tether.controls.sandbox._bwrap import BubblewrapSandbox
from tether.controls.sandbox._docker import DEFAULT_IMAGE, DockerSandbox
from tether.controls.sandbox._local import UnsafeLocalSandbox
from tether.controls.sandbox._probe import open_sandbox, probe
from tether.controls.sandbox._tool import format_result, run_python_tool
from tether.controls.sandbox._types import (
    Isolation,
    IsolationLevel,
    KilledBy,
    Sandbox,
    SandboxBackend,
    SandboxFailed,
    SandboxLimits,
    SandboxResult,
    stop_message,
)

__all__ = [
    "DEFAULT_IMAGE",
    "BubblewrapSandbox",
    "DockerSandbox",
    "Isolation",
    "IsolationLevel",
    "KilledBy",
    "Sandbox",
    "SandboxBackend",
    "SandboxFailed",
    "SandboxLimits",
    "SandboxResult",
    "UnsafeLocalSandbox",
    "format_result",
    "open_sandbox",
    "probe",
    "run_python_tool",
    "stop_message",
]
