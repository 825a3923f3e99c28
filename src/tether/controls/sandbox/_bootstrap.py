"""The few lines of Python that start every sandboxed program, and how its end is read.

Every backend runs ``python3 -I -S -B -c BOOTSTRAP LIMITS``. The bootstrap
lowers its own resource limits (they are inherited by everything the
program starts, and an unprivileged process cannot raise a hard limit
again), reads the program from stdin (a decimal length, a newline, the
source; the rest of stdin is the program's), and runs it as ``__main__``.
A program that dies of a limit gets a reserved exit status, so the caller
can say which limit stopped it. The program travels on stdin, not in argv:
no size limit, and it never shows in the host's process list.
"""

from __future__ import annotations

import signal

from tether.controls.sandbox._types import KilledBy, SandboxLimits

__all__ = [
    "BOOTSTRAP",
    "EXIT_FILESIZE",
    "EXIT_MEMORY",
    "EXIT_PROCESSES",
    "MARKER",
    "classify",
    "interpreter_args",
    "limits_arg",
    "payload",
]

#: a word in every sandboxed process's command line (tests look for leftovers by it)
MARKER = "tether-sandbox"
#: the reserved exit statuses (a program that exits with one itself is reported as stopped)
EXIT_MEMORY = 201
EXIT_PROCESSES = 202
EXIT_FILESIZE = 203
#: open files per process
NOFILE = 256

# Runs on the sandbox's interpreter, which may be older than the host's: plain
# Python 3.8. It keeps no global names, since it clears ``__main__`` for the program.
BOOTSTRAP = f"""\
def _tether_sandbox():  # {MARKER}
    import builtins, os, resource, sys
    names = ("RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_NPROC", "RLIMIT_FSIZE",
             "RLIMIT_NOFILE")
    values = [0] + [int(v) for v in sys.argv[1].split(",")]
    for name, soft in zip(names, values):
        if soft < 0:
            continue
        which = getattr(resource, name)
        hard = soft + 1 if name == "RLIMIT_CPU" else soft
        old = resource.getrlimit(which)[1]
        if old != resource.RLIM_INFINITY:
            hard = min(hard, old)
            soft = min(soft, hard)
        resource.setrlimit(which, (soft, hard))
    header = b""
    while not header.endswith(b"\\n"):
        byte = os.read(0, 1)
        if not byte or len(header) > 12:
            sys.exit("{MARKER}: no program on stdin")
        header += byte
    size, chunks = int(header), []
    while size > 0:
        chunk = os.read(0, min(size, 1 << 16))
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    source, path = b"".join(chunks), "main.py"

    def show(exc, tb):  # a traceback with the program's lines, like `python main.py`
        import linecache, traceback
        text = source.decode("utf-8", "replace")
        linecache.cache[path] = (len(text), None, text.splitlines(True), path)
        traceback.print_exception(type(exc), exc, tb)

    try:
        code = compile(source, path, "exec")
    except (SyntaxError, ValueError) as exc:
        show(exc, None)
        sys.exit(1)
    sys.argv = [path]
    main = sys.modules["__main__"].__dict__
    main.clear()
    main.update(__name__="__main__", __builtins__=builtins, __file__=path, __doc__=None,
                __spec__=None, __loader__=None, __package__=None)
    try:
        exec(code, main)
    except SystemExit:
        raise
    except MemoryError:
        try:
            sys.stdout.flush()
        finally:
            os.write(2, b"MemoryError: the sandbox's memory limit was reached\\n")
            os._exit({EXIT_MEMORY})
    except BaseException as exc:
        import errno
        status = 1
        if isinstance(exc, OSError) and exc.errno == errno.EAGAIN:
            status = {EXIT_PROCESSES}
        elif isinstance(exc, RuntimeError) and "can't start new thread" in str(exc):
            status = {EXIT_PROCESSES}
        elif isinstance(exc, OSError) and exc.errno == errno.EFBIG:
            status = {EXIT_FILESIZE}
        show(exc, exc.__traceback__.tb_next)  # the program's frames only
        sys.exit(status)


_tether_sandbox()
"""


def interpreter_args(python: str, *, site_packages: bool = False) -> list[str]:
    """The command line that runs the bootstrap on ``python`` (limits appended by the caller).

    ``-I`` ignores ``PYTHON*`` variables and the user's site directory, ``-B``
    writes no bytecode, ``-S`` (unless ``site_packages``) skips the system's
    site-packages and the ``.pth`` files there, which would run code at start-up.
    """
    flags = "-IB" if site_packages else "-ISB"
    return [python, flags, "-c", BOOTSTRAP]


def limits_arg(limits: SandboxLimits, *, nproc: bool = True) -> str:
    """``LIMITS`` for the bootstrap: CPU s, address space, processes, file size, open files.

    ``nproc=False`` leaves ``RLIMIT_NPROC`` alone (Docker counts processes in a
    pids cgroup instead; its per-uid count would be shared with the host).
    """
    mb = 1 << 20
    return ",".join(
        str(v)
        for v in (
            limits.cpu_seconds,
            limits.memory_mb * mb,
            limits.processes if nproc else -1,
            limits.file_size_mb * mb,
            NOFILE,
        )
    )


def payload(code: str, stdin: str) -> bytes:
    """What the bootstrap reads on stdin: the program's length, the program, then its stdin."""
    source = code.encode("utf-8")
    return b"%d\n" % len(source) + source + stdin.encode("utf-8")


def classify(
    status: int | None, *, stopped: KilledBy | None, duration: float, limits: SandboxLimits
) -> tuple[int | None, KilledBy | None]:
    """``(exit_code, killed_by)`` from a raw wait status (negative: a signal, as Popen says).

    ``stopped`` is what the caller itself killed it for (``timeout``,
    ``output``); then the exit code is ``None``. Otherwise the status tells:
    ``SIGXCPU`` is the CPU limit, the reserved statuses are the bootstrap's,
    ``SIGXFSZ`` a file too large. A ``SIGKILL`` the caller did not send is
    the CPU hard limit when the run lasted at least ``cpu_seconds``, and the
    memory limit (an out-of-memory kill) otherwise.
    """
    if stopped is not None:
        return None, stopped
    if status is None:
        return None, None
    code = 128 - status if status < 0 else status
    by_status: dict[int, KilledBy] = {
        128 + signal.SIGXCPU: "cpu",
        128 + signal.SIGXFSZ: "filesize",
        EXIT_MEMORY: "memory",
        EXIT_PROCESSES: "processes",
        EXIT_FILESIZE: "filesize",
    }
    if code in by_status:
        return code, by_status[code]
    if code == 128 + signal.SIGKILL:
        return code, "cpu" if duration >= limits.cpu_seconds else "memory"
    return code, None
