"""The second backend: a throwaway Docker container, where an engine and the image are here.

``docker run --rm`` with no network, a read-only root, private tmpfs for the
working directory and ``/tmp``, an unprivileged user, every capability
dropped, ``no-new-privileges``, a pids cgroup, a memory cgroup without swap,
one CPU, and the same bootstrap (CPU time, address space, file size). The
image must already be on the machine: nothing is pulled at run time
(``--pull never``); without it the backend is unavailable, and the probe
says which ``docker pull`` would fix that. Stopping a run (wall clock,
output) kills the container by name, not only the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import uuid

from tether.controls.sandbox._bootstrap import interpreter_args, limits_arg, payload
from tether.controls.sandbox._host import PROBE_LIMITS, WORKDIR, run_probe, sandbox_env
from tether.controls.sandbox._process import run_capped
from tether.controls.sandbox._types import Isolation, SandboxBackend, SandboxLimits, SandboxResult

__all__ = ["DEFAULT_IMAGE", "DockerSandbox"]

#: the image used unless another is named; it must be pulled beforehand
DEFAULT_IMAGE = "python:3.12-slim"
#: seconds to wait for the engine to answer ``docker info`` / ``docker kill``
_ENGINE_TIMEOUT = 10.0


class DockerSandbox(SandboxBackend):
    """Run code in a Docker container of ``image`` (present locally; never pulled).

    ``docker`` defaults to ``docker`` on ``PATH``; ``python`` is the
    interpreter's name in the image; ``user`` the container's ``uid:gid``.
    """

    name = "docker"

    def __init__(
        self,
        *,
        image: str = DEFAULT_IMAGE,
        docker: str | None = None,
        python: str = "python3",
        user: str = "65534:65534",
        site_packages: bool = False,
    ) -> None:
        self.image = image
        self.docker = docker or shutil.which("docker")
        self.user = user
        self._interpreter = interpreter_args(python, site_packages=site_packages)

    def argv(self, limits: SandboxLimits, *, name: str) -> list[str]:
        """The ``docker run`` command line for one run, in a container called ``name``."""
        disk = f"size={limits.disk_mb}m,mode=1777,nosuid,nodev"
        # the memory cgroup also holds the tmpfs pages: leave room for both mounts
        memory = f"{limits.memory_mb + 2 * limits.disk_mb}m"
        env: list[str] = []
        for key, value in sandbox_env(WORKDIR).items():
            env += ["--env", f"{key}={value}"]
        python, *args = self._interpreter
        return [
            self.docker or "docker",
            "run",
            "--rm",
            "--interactive",
            "--name",
            name,
            "--pull",
            "never",
            "--network",
            "none",
            "--read-only",
            "--tmpfs",
            f"{WORKDIR}:rw,{disk}",
            "--tmpfs",
            f"/tmp:rw,{disk}",
            "--workdir",
            WORKDIR,
            "--hostname",
            "sandbox",
            "--user",
            self.user,
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "--pids-limit",
            str(limits.processes),
            "--memory",
            memory,
            "--memory-swap",
            memory,
            "--cpus",
            "1",
            "--ulimit",
            "core=0:0",
            "--ulimit",
            f"cpu={limits.cpu_seconds}:{limits.cpu_seconds + 1}",
            "--log-driver",
            "none",
            *env,
            "--entrypoint",
            python,
            self.image,
            *args,
            limits_arg(limits, nproc=False),
        ]

    async def _kill(self, name: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            self.docker or "docker",
            "kill",
            name,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await asyncio.wait_for(proc.wait(), timeout=_ENGINE_TIMEOUT)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    async def run(self, code: str, *, stdin: str = "", limits: SandboxLimits) -> SandboxResult:
        name = f"tether-sandbox-{uuid.uuid4().hex[:16]}"
        return await run_capped(
            self.argv(limits, name=name),
            payload(code, stdin),
            limits=limits,
            backend=self.name,
            on_stop=lambda: self._kill(name),
        )

    def _engine(self, *args: str) -> str | None:
        """Run ``docker ARGS``; ``None`` if it worked, else what went wrong."""
        try:
            done = subprocess.run(
                [self.docker or "docker", *args],
                capture_output=True,
                timeout=_ENGINE_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
        if done.returncode != 0:
            return done.stderr.decode("utf-8", "replace").strip()[-300:] or "failed"
        return None

    def probe(self) -> Isolation:
        if self.docker is None:
            return Isolation("none", "Docker is not installed (no `docker` on PATH)")
        problem = self._engine("info", "--format", "{{.ServerVersion}}")
        if problem is not None:
            return Isolation("none", f"no Docker engine answers (`docker info`: {problem})")
        if self._engine("image", "inspect", "--format", "{{.Id}}", self.image) is not None:
            return Isolation(
                "none",
                f"the image {self.image} is not on this machine, and the sandbox never pulls "
                f"one: run `docker pull {self.image}` first",
            )
        name = f"tether-sandbox-probe-{uuid.uuid4().hex[:12]}"
        seen = run_probe(self.argv(PROBE_LIMITS, name=name), timeout=60)
        if not seen.ok:
            self._engine("kill", name)
            return Isolation("none", f"Docker does not work here: {seen.detail}")
        if not seen.isolated:
            return Isolation(
                "none",
                seen.not_isolated("Docker"),
            )
        reason = (
            f"Docker ({self.image}, Python {seen.python}): no network, read-only root, "
            f"private tmpfs, user {self.user}, no capabilities, pids and memory cgroups"
        )
        return Isolation("docker", reason, self)
