"""No isolation: a plain subprocess with resource limits, only when the operator says so.

The program runs as a child of this process with the bootstrap's limits
(CPU, address space, processes, file size), a fresh temporary working
directory, a minimal environment, output caps and the wall-clock kill of its
process group. As ``nobody`` when this process is root, so the process limit
binds. It is **not** a sandbox: the program can read every file and reach
every address and service this user can, and a process that leaves its
group (``setsid``) outlives the kill.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile

from tether.controls.sandbox._bootstrap import interpreter_args, limits_arg, payload
from tether.controls.sandbox._host import default_python, default_run_as, launch_as, sandbox_env
from tether.controls.sandbox._process import run_capped
from tether.controls.sandbox._types import Isolation, SandboxBackend, SandboxLimits, SandboxResult
from tether.exceptions import ConfigError

__all__ = ["UNSANDBOXED_RISK", "UnsafeLocalSandbox"]

#: what running code without a sandbox means, for error messages and logs
UNSANDBOXED_RISK = (
    "code then runs as a plain subprocess with resource limits only: it can read every file, "
    "reach every address and call every service this process can"
)


class UnsafeLocalSandbox(SandboxBackend):
    """A plain subprocess with rlimits. Refuses to exist unless ``allow_unsandboxed=True``."""

    name = "unsandboxed"

    def __init__(
        self,
        *,
        allow_unsandboxed: bool = False,
        python: str | None = None,
        run_as: tuple[int, int] | None = None,
        site_packages: bool = False,
    ) -> None:
        if not allow_unsandboxed:
            raise ConfigError(
                "UnsafeLocalSandbox runs code without isolation; pass allow_unsandboxed=True "
                f"only if you accept that {UNSANDBOXED_RISK}"
            )
        self.python = python or default_python()[0]
        self.run_as = run_as if run_as is not None else default_run_as()
        self._launch, self._popen = launch_as(self.run_as)
        self._interpreter = interpreter_args(self.python, site_packages=site_packages)

    async def run(self, code: str, *, stdin: str = "", limits: SandboxLimits) -> SandboxResult:
        workdir = tempfile.mkdtemp(prefix="tether-sandbox-")
        try:
            if self.run_as is not None:
                os.chown(workdir, *self.run_as)
            env = sandbox_env(workdir) | {"TMPDIR": workdir}
            return await run_capped(
                [*self._launch, *self._interpreter, limits_arg(limits)],
                payload(code, stdin),
                limits=limits,
                backend=self.name,
                kill_group_on_exit=True,
                cwd=workdir,
                env=env,
                **self._popen,
            )
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, ignore_errors=True)

    def probe(self) -> Isolation:
        return Isolation("none", f"no isolation, allowed by the operator: {UNSANDBOXED_RISK}", self)
