"""The default backend: bubblewrap (``bwrap``), unprivileged namespaces and rlimits.

What one run gets:

- **Namespaces**: user, PID, network, IPC, UTS and mount (``--unshare-all``
  with ``--unshare-user``); no further user namespaces inside
  (``--disable-userns``). The network namespace has only its own loopback:
  no route anywhere, the host's ``127.0.0.1`` included. The PID namespace
  hides every host process and dies with its init, which dies with the
  launcher (``--die-with-parent``): killing the launcher kills everything.
- **Filesystem**: an empty root, read-only; ``/usr`` (and the ``/bin``,
  ``/lib*`` links into it) bound read-only; from ``/etc`` only the linker
  cache and the time zone; fresh ``/proc`` and ``/dev`` (read-only, with a
  sized ``/dev/shm``); a private, sized tmpfs as working directory and
  another as ``/tmp``, gone after the run. Nothing else of the host exists.
- **Identity**: when this process is root the launcher runs as ``nobody``
  (so ``RLIMIT_NPROC`` binds and no root file is readable through a bug);
  inside, the program is uid 1000 with no capabilities and ``no_new_privs``.
- **Environment**: cleared (``--clearenv``), then a fixed minimal one.
- **Terminal**: a new session (``--new-session``), so it cannot push input
  into the caller's terminal (TIOCSTI).
- **System calls**: a seccomp filter refusing the kernel surfaces code never
  needs (:mod:`._seccomp`), on x86-64.
- **Limits**: set by the bootstrap before the program runs (CPU, address
  space, processes, file size, open files, no core dumps); output and wall
  clock by the caller (:mod:`._process`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator

from tether.controls.sandbox._bootstrap import interpreter_args, limits_arg, payload
from tether.controls.sandbox._host import (
    PROBE_LIMITS,
    WORKDIR,
    default_python,
    default_run_as,
    launch_as,
    run_probe,
    sandbox_env,
)
from tether.controls.sandbox._process import run_capped
from tether.controls.sandbox._seccomp import seccomp_filter
from tether.controls.sandbox._types import (
    Isolation,
    SandboxBackend,
    SandboxFailed,
    SandboxLimits,
    SandboxResult,
)

__all__ = ["BubblewrapSandbox"]

#: the program's uid and gid inside the sandbox (mapped to the launcher's outside)
_INSIDE_ID = "1000"
#: top-level system directories: bound read-only, or re-created as the same symlink
_SYSTEM_DIRS = ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
#: options older bubblewraps lack; used only where ``bwrap --help`` lists them
_NEWER_OPTIONS = ("--disable-userns", "--size")
#: how bwrap and setpriv start their own error messages
_LAUNCHER_ERRORS = ("bwrap: ", "setpriv: ")
#: files from /etc the interpreter may want; nothing else of /etc is visible
_ETC_FILES = ("/etc/ld.so.cache", "/etc/localtime")


def bwrap_options(bwrap: str | None) -> frozenset[str]:
    """Which of the newer options this ``bwrap`` knows (from its ``--help``).

    Both are recent (bubblewrap 0.8 has them) and distributions still ship
    older versions. Without them the sandbox still runs: the seccomp filter
    refuses nested user namespaces, and the tmpfs mounts are unsized (the
    probe's reason says so).
    """
    if bwrap is None:
        return frozenset()
    try:
        done = subprocess.run([bwrap, "--help"], capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    text = done.stdout.decode("utf-8", "replace")
    return frozenset(opt for opt in _NEWER_OPTIONS if f"{opt} " in text)


def _system_binds(python_prefix: str | None) -> list[str]:
    args: list[str] = []
    for name in _SYSTEM_DIRS:
        path = "/" + name
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for path in _ETC_FILES:
        args += ["--ro-bind-try", path, path]
    if python_prefix is not None:
        args += ["--ro-bind", python_prefix, python_prefix]
    return args


class BubblewrapSandbox(SandboxBackend):
    """Run code under bubblewrap. See the module docstring for what it isolates.

    ``bwrap`` and ``python`` default to ``bwrap`` on ``PATH`` and the
    system's ``/usr/bin/python3``. ``run_as`` is ``(uid, gid)`` for the
    launcher; by default ``nobody`` when this process is root, itself
    otherwise. ``site_packages`` lets programs import the system's
    site-packages (off: the standard library only). ``seccomp=False`` turns
    the system-call filter off (it is on wherever the machine supports it).
    Construction reads ``bwrap --help`` once (:func:`bwrap_options`).
    """

    name = "bubblewrap"

    def __init__(
        self,
        *,
        bwrap: str | None = None,
        python: str | None = None,
        run_as: tuple[int, int] | None = None,
        site_packages: bool = False,
        seccomp: bool = True,
    ) -> None:
        self.bwrap = bwrap or shutil.which("bwrap")
        #: the newer bwrap options this one has (see :func:`bwrap_options`)
        self.options = bwrap_options(self.bwrap)
        if python is None:
            self.python, prefix = default_python()
        else:
            real = os.path.realpath(python)
            self.python = python
            prefix = None if real.startswith("/usr/") else os.path.dirname(os.path.dirname(real))
        self.run_as = run_as if run_as is not None else default_run_as()
        self._launch, self._popen = launch_as(self.run_as)
        self.seccomp = seccomp_filter() if seccomp else None
        self._interpreter = interpreter_args(self.python, site_packages=site_packages)
        self._binds = _system_binds(prefix)
        env: list[str] = []
        for key, value in sandbox_env(WORKDIR).items():
            env += ["--setenv", key, value]
        self._env = env

    def argv(self, limits: SandboxLimits, *, seccomp_fd: int | None = None) -> list[str]:
        """The launcher's command line for one run (``seccomp_fd``: the filter's read end)."""
        sized = "--size" in self.options
        size = ["--size", str(limits.disk_mb << 20)] if sized else []
        nested = ["--disable-userns"] if "--disable-userns" in self.options else []
        args = [
            self.bwrap or "bwrap",
            "--unshare-all",
            "--unshare-user",
            *nested,
            "--die-with-parent",
            "--new-session",
            "--uid",
            _INSIDE_ID,
            "--gid",
            _INSIDE_ID,
            "--hostname",
            "sandbox",
            *self._binds,
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            *size,
            "--tmpfs",
            "/dev/shm",
            *size,
            "--tmpfs",
            "/tmp",
            *size,
            "--tmpfs",
            WORKDIR,
            "--remount-ro",
            "/dev",
            "--remount-ro",
            "/",
            "--chdir",
            WORKDIR,
            "--clearenv",
            *self._env,
        ]
        if seccomp_fd is not None:
            args += ["--seccomp", str(seccomp_fd)]
        return [*self._launch, *args, "--", *self._interpreter, limits_arg(limits)]

    @contextlib.contextmanager
    def _filter_fd(self) -> Iterator[int | None]:
        # bwrap reads the compiled filter from a file descriptor; a pipe holds it
        # (a few hundred bytes, well under a pipe's buffer).
        if self.seccomp is None:
            yield None
            return
        read, write = os.pipe()
        try:
            os.write(write, self.seccomp)
            os.close(write)
            yield read
        finally:
            with contextlib.suppress(OSError):
                os.close(write)
            os.close(read)

    async def run(self, code: str, *, stdin: str = "", limits: SandboxLimits) -> SandboxResult:
        with self._filter_fd() as fd:
            result = await run_capped(
                self.argv(limits, seccomp_fd=fd),
                payload(code, stdin),
                limits=limits,
                backend=self.name,
                pass_fds=() if fd is None else (fd,),
                cwd="/",
                env={"PATH": "/usr/bin:/bin"},
                **self._popen,
            )
        if (
            result.exit_code in (1, 126, 127)
            and not result.stdout
            and result.stderr.startswith(_LAUNCHER_ERRORS)
        ):
            # the launcher failed before the program existed (no namespace, no mount...)
            raise SandboxFailed(f"the bubblewrap sandbox could not start: {result.stderr.strip()}")
        return result

    def probe(self) -> Isolation:
        if self.bwrap is None:
            return Isolation("none", "bubblewrap is not installed (no `bwrap` on PATH)")
        if not os.access(self.python, os.X_OK):
            return Isolation("none", f"no Python interpreter at {self.python}")
        with self._filter_fd() as fd:
            seen = run_probe(
                self.argv(PROBE_LIMITS, seccomp_fd=fd),
                timeout=PROBE_LIMITS.wall_seconds,
                pass_fds=() if fd is None else (fd,),
                cwd="/",
                env={"PATH": "/usr/bin:/bin"},
                **self._popen,
            )
        if not seen.ok:
            return Isolation("none", f"bubblewrap does not work here: {seen.detail}")
        if not seen.isolated:
            return Isolation(
                "none",
                seen.not_isolated("bubblewrap"),
            )
        who = "itself" if self.run_as is None else f"uid {self.run_as[0]}"
        notes = []
        if "--size" not in self.options:
            notes.append("tmpfs sizes NOT enforced (this bwrap has no --size)")
        if "--disable-userns" not in self.options:
            notes.append("nested user namespaces refused by the seccomp filter only")
        reason = (
            f"bubblewrap ({self.bwrap}, launched as {who}): user, PID, network, IPC, UTS and "
            f"mount namespaces; read-only system; private tmpfs; "
            f"seccomp filter {'on' if self.seccomp is not None else 'off'}; "
            f"Python {seen.python} at {self.python}"
        )
        if notes:
            reason += "; " + "; ".join(notes)
        return Isolation("bubblewrap", reason, self)
