"""Host-side details every backend needs: the interpreter, the user, the env, the probe."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from tether.controls.sandbox._bootstrap import MARKER, payload
from tether.controls.sandbox._types import SandboxLimits

__all__ = [
    "PROBE_CODE",
    "PROBE_LIMITS",
    "WORKDIR",
    "ProbeRun",
    "default_python",
    "default_run_as",
    "launch_as",
    "run_probe",
    "sandbox_env",
]

#: the program's working directory and home inside the sandbox (a private tmpfs)
WORKDIR = "/home/sandbox"

#: how many forks the probe asks for (the process limit must stop it short)
PROBE_FORKS = 8
#: what a probe runs: is the network reachable, does the process limit bind?
PROBE_CODE = f"""\
import os, socket, sys
s = socket.socket()
s.settimeout(1.0)
try:
    s.connect(("1.1.1.1", 53))
    net = "open"
except OSError:
    net = "closed"
pids = []
try:
    for _ in range({PROBE_FORKS}):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        pids.append(pid)
except OSError:
    pass
print("{MARKER} python=%s net=%s forks=%d" % (sys.version.split()[0], net, len(pids)))
"""
#: four processes: the sandbox's init and the program leave room for two forks of eight
PROBE_LIMITS = SandboxLimits(processes=4, wall_seconds=20)


def default_python() -> tuple[str, str | None]:
    """The interpreter to run sandboxed code with, and a directory to bind for it.

    The system's ``/usr/bin/python3`` when there is one (it lives in the
    read-only ``/usr`` already); otherwise the interpreter behind this
    process (a virtual environment's base), whose install prefix must then be
    bound too. The virtual environment itself is never exposed.
    """
    if os.access("/usr/bin/python3", os.X_OK):
        return "/usr/bin/python3", None
    real = os.path.realpath(sys.executable)
    if real.startswith("/usr/"):
        return real, None
    prefix = os.path.realpath(sys.base_prefix)
    if not real.startswith(prefix + os.sep):
        prefix = os.path.dirname(os.path.dirname(real))
    return real, prefix


def default_run_as() -> tuple[int, int] | None:
    """``(uid, gid)`` to start the sandbox as: ``nobody`` when this process is root.

    The kernel does not apply ``RLIMIT_NPROC`` to root (a fork bomb would not
    be stopped), and root's files should not be one bug away; an
    unprivileged user is. Other users run the sandbox as themselves.
    """
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:  # pragma: no cover - every Linux has nobody
        return (65534, 65534)
    return (entry.pw_uid, entry.pw_gid)


def launch_as(run_as: tuple[int, int] | None) -> tuple[list[str], dict[str, Any]]:
    """How to start a launcher as ``run_as``: a command prefix and ``Popen`` arguments.

    With ``setpriv`` (util-linux) the switch happens in a small program that
    then runs the launcher, so Python can still start it with ``vfork``;
    ``Popen(user=...)`` needs a full ``fork`` of this process, which costs
    more the more memory the runtime holds (~20 ms at 300 MB). Either way
    the launcher has no supplementary groups.
    """
    if run_as is None:
        return [], {}
    uid, gid = run_as
    setpriv = shutil.which("setpriv")
    if setpriv is not None:
        return [setpriv, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"], {}
    return [], {"user": uid, "group": gid, "extra_groups": []}


def sandbox_env(home: str) -> dict[str, str]:
    """The whole environment a sandboxed program sees: nothing from the host."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "USER": "sandbox",
        "LOGNAME": "sandbox",
    }


@dataclass(frozen=True, slots=True)
class ProbeRun:
    """The outcome of running :data:`PROBE_CODE`: did it run, and what did it see?"""

    ok: bool
    detail: str
    net: str = ""
    forks: int = -1
    python: str = ""

    @property
    def isolated(self) -> bool:
        """No network, and the process limit held (fewer forks than asked for)."""
        return self.ok and self.net == "closed" and 0 <= self.forks < PROBE_FORKS

    def not_isolated(self, backend: str) -> str:
        """Why ``backend`` runs the probe but cannot be trusted to isolate."""
        return (
            f"{backend} runs but does not isolate (network {self.net}, {self.forks} of "
            f"{PROBE_FORKS} forks allowed under a limit of {PROBE_LIMITS.processes}): "
            f"{self.detail}"
        )


def run_probe(argv: list[str], *, timeout: float, **popen: Any) -> ProbeRun:
    """Run the probe program through ``argv`` (a backend's command line) and read its answer."""
    try:
        done = subprocess.run(
            argv,
            input=payload(PROBE_CODE, ""),
            capture_output=True,
            timeout=timeout,
            check=False,
            **popen,
        )
    except subprocess.TimeoutExpired:
        return ProbeRun(False, f"a test program did not finish within {timeout:g} s")
    except OSError as exc:
        return ProbeRun(False, f"cannot start it: {exc}")
    out = done.stdout.decode("utf-8", "replace").strip()
    err = done.stderr.decode("utf-8", "replace").strip()
    line = next((x for x in out.splitlines() if x.startswith(MARKER)), "")
    if done.returncode != 0 or not line:
        tail = (err or out or "no output")[-400:]
        return ProbeRun(False, f"a test program failed (exit {done.returncode}): {tail}")
    fields = dict(part.split("=", 1) for part in line.split()[1:])
    return ProbeRun(
        True,
        line,
        net=fields.get("net", ""),
        forks=int(fields.get("forks", "-1")),
        python=fields.get("python", ""),
    )
