"""The ``run_python`` tool type: a model writes a program, a sandbox runs it."""

from __future__ import annotations

from tether.controls.sandbox._types import Sandbox, SandboxLimits, SandboxResult
from tether.spec.tools import Tool, tool

__all__ = ["format_result", "run_python_tool"]

#: seconds the tool's own timeout leaves beyond the sandbox's wall clock (set-up, kill, reap)
_TOOL_GRACE = 15.0


def format_result(result: SandboxResult) -> str:
    """What the model reads: how the run ended, then stdout and stderr."""
    lines: list[str] = []
    if result.stopped is not None:
        lines.append(result.stopped)
    status = "none (killed)" if result.exit_code is None else str(result.exit_code)
    lines.append(f"exit code: {status}")
    lines.append("stdout:" + (f"\n{result.stdout}" if result.stdout else " (empty)"))
    lines.append("stderr:" + (f"\n{result.stderr}" if result.stderr else " (empty)"))
    return "\n".join(line.rstrip("\n") for line in lines)


def run_python_tool(
    sandbox: Sandbox,
    *,
    name: str = "run_python",
    limits: SandboxLimits | None = None,
    description: str | None = None,
) -> Tool:
    """A tool that runs a Python program, written by the model, in ``sandbox``.

    The model gets back the exit code, stdout and stderr (each capped), and,
    when a limit stopped the program, which one ("stopped: it used more than
    5 s of CPU").

    Its risk flags: none of ``reads``, ``writes``, ``external_comms`` and the
    rest, because the program can reach nothing (no network, no host file, a
    working directory thrown away after the run), which is what the sandbox
    is for; so no approval is asked by default. ``untrusted_output=True``:
    the program was written by the model, maybe steered by untrusted content
    in its context, and its output can carry instructions, so the runtime
    treats the output as quoted data, like a web page's. Not ``idempotent``:
    a run can take the whole CPU and wall-clock allowance and may not repeat
    (time, randomness), so the runtime must not silently run it again on a
    retry or after a crash. Its timeout is the sandbox's wall clock plus a
    margin, so the sandbox's own kill always comes first.
    """
    lim = limits or SandboxLimits()

    async def run_python(code: str, stdin: str = "") -> str:
        """Run a Python 3 program in an isolated sandbox and return what it printed.

        Args:
            code: the whole program; print what you need to see
            stdin: text the program reads on standard input
        """
        return format_result(await sandbox.run(code, stdin=stdin, limits=lim))

    text = description or (
        "Run a Python 3 program in an isolated sandbox and return its exit code, stdout "
        "and stderr. Standard library only; no network; no files but its own working "
        "directory, which is empty and discarded after the run. Limits: "
        f"{lim.cpu_seconds} s of CPU, {lim.wall_seconds:g} s in all, {lim.memory_mb} MB of "
        f"memory, {lim.processes} processes, files up to {lim.file_size_mb} MB, "
        f"{lim.output_bytes:,} bytes of output. Print the results you need."
    )
    return tool(
        name=name,
        description=text,
        untrusted_output=True,
        idempotent=False,
        timeout=lim.wall_seconds + _TOOL_GRACE,
    )(run_python)
