"""The code sandbox: it runs programs, and every escape attempt is contained and reported.

The escape tests run on the best backend this machine has (bubblewrap in CI:
``scripts/ensure-services.sh`` installs it). Where no backend isolates at all
they are skipped with the probe's reason, and fail instead when
``TETHER_REQUIRE_SERVICES`` is set (``scripts/test.sh``, CI) or ``CI=true``,
so CI cannot pass them by skipping. Nothing here asserts a duration: the
overhead is measured by ``bench/sandbox.py``.
"""

from __future__ import annotations

import ast
import asyncio
import os
import platform
import socket
import uuid
from pathlib import Path

import pytest

from tests.services import skip_or_fail
from tether import Agent
from tether.controls.sandbox import (
    BubblewrapSandbox,
    DockerSandbox,
    Isolation,
    SandboxBackend,
    SandboxFailed,
    SandboxLimits,
    SandboxResult,
    UnsafeLocalSandbox,
    open_sandbox,
    probe,
    run_python_tool,
)
from tether.controls.sandbox._bootstrap import EXIT_MEMORY, classify
from tether.exceptions import ConfigError
from tether.runtime import Runtime
from tether.spec.approval import ApprovalPolicy
from tether.testing import ScriptedModel, call

THIS_FILE = str(Path(__file__).resolve())  # a file of the host's, outside system dirs
FAST = SandboxLimits(cpu_seconds=2, wall_seconds=6, output_bytes=10_000)


@pytest.fixture(scope="module")
def isolation() -> Isolation:
    return probe()


@pytest.fixture
def sandbox(isolation: Isolation) -> SandboxBackend:
    if isolation.sandbox is None:
        skip_or_fail(f"no sandbox backend isolates on this machine: {isolation.reason}")
    return isolation.sandbox


async def run(sandbox: SandboxBackend, code: str, limits: SandboxLimits = FAST) -> SandboxResult:
    return await sandbox.run(code, limits=limits)


def _token() -> str:
    return "tb" + uuid.uuid4().hex[:12]  # fits a process name (15 bytes)


# Sets the process name (inherited by forks) so the host can look for leftovers.
# The program stops at once if the name did not take: a check that looks for
# the name must not pass because naming silently failed.
NAME_PROCESS = (
    "import ctypes\nctypes.CDLL(None).prctl(15, {token!r}.encode(), 0, 0, 0)\n"
    "assert open('/proc/self/comm').read().strip() == {token!r}, 'naming failed'\n"
)


def _processes_named(token: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == token:
                    found.append(int(entry.name))
            except OSError:
                continue  # it ended while we looked
    return found


async def _assert_all_gone(token: str) -> None:
    """No process of the run survives it (polled: the kernel reaps asynchronously)."""
    for _ in range(100):
        if not _processes_named(token):
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"sandboxed processes outlived the run: {_processes_named(token)}")


# --- it runs programs ----------------------------------------------------------------


def test_probe_reports_a_level_and_why(isolation: Isolation) -> None:
    assert isolation.level in ("bubblewrap", "docker", "none")
    assert isolation.reason
    if isolation.level == "bubblewrap":
        assert "network" in isolation.reason
        assert "seccomp filter" in isolation.reason


async def test_hello_world(sandbox: SandboxBackend) -> None:
    result = await run(sandbox, 'print("hello, world")')
    assert result.ok
    assert result.stdout == "hello, world\n"
    assert result.stderr == ""
    assert result.exit_code == 0
    assert result.killed_by is None
    assert result.stopped is None
    assert result.backend == sandbox.name
    assert result.duration > 0


async def test_stdin_reaches_the_program(sandbox: SandboxBackend) -> None:
    code = "import sys\nfor line in sys.stdin:\n    print(line.strip()[::-1])"
    result = await sandbox.run(code, stdin="abc\nxyz\n", limits=FAST)
    assert result.stdout == "cba\nzyx\n"


async def test_errors_and_exit_codes_are_the_programs(sandbox: SandboxBackend) -> None:
    failed = await run(sandbox, "def f():\n    return 1 / 0\n\nf()")
    assert failed.exit_code == 1
    assert failed.killed_by is None
    assert "ZeroDivisionError" in failed.stderr
    assert "return 1 / 0" in failed.stderr  # the program's own source lines
    assert "_tether_sandbox" not in failed.stderr  # and not the bootstrap's frames
    exited = await run(sandbox, "import sys\nprint('bye')\nsys.exit(3)")
    assert (exited.exit_code, exited.stdout, exited.killed_by) == (3, "bye\n", None)
    syntax = await run(sandbox, "def f(:\n    pass")
    assert syntax.exit_code == 1
    assert "SyntaxError" in syntax.stderr


async def test_the_working_directory_is_private_and_writable(sandbox: SandboxBackend) -> None:
    code = (
        "import os\n"
        "print(os.getcwd(), sorted(os.listdir('.')))\n"
        "open('notes.txt', 'w').write('kept during the run')\n"
        "print(open('notes.txt').read())\n"
    )
    first = await run(sandbox, code)
    assert first.stdout.splitlines() == ["/home/sandbox []", "kept during the run"]
    second = await run(sandbox, "import os\nprint(sorted(os.listdir('.')))")
    assert second.stdout == "[]\n"  # nothing survives from one run to the next


# --- escapes: network ------------------------------------------------------------------


async def test_no_route_to_the_internet(sandbox: SandboxBackend) -> None:
    code = (
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('1.1.1.1', 53), timeout=3)\n"
        "    print('CONNECTED')\n"
        "except OSError as exc:\n"
        "    print('refused', exc.errno)\n"
    )
    result = await run(sandbox, code)
    assert result.ok
    assert "CONNECTED" not in result.stdout
    assert result.stdout.startswith("refused")


async def test_the_hosts_loopback_is_not_reachable(sandbox: SandboxBackend) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        port = server.getsockname()[1]
        code = (
            "import socket\n"
            "try:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
            "    print('CONNECTED')\n"
            "except OSError as exc:\n"
            "    print('refused', exc.errno)\n"
        )
        result = await run(sandbox, code)
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody knocked
    assert result.ok
    assert result.stdout.startswith("refused")


# --- escapes: files --------------------------------------------------------------------


@pytest.fixture
def host_secret(tmp_path: Path) -> Path:
    secret = tmp_path / "secret.txt"
    secret.write_text("the host's secret")
    secret.chmod(0o644)  # readable by anyone on the host: only the sandbox hides it
    tmp_path.chmod(0o755)
    return secret


def _host_untouched(secret: Path) -> bool:
    return secret.read_text() == "the host's secret" and not any(
        Path(p).exists() for p in ("/usr/pwned", "/etc/pwned", "/pwned")
    )


async def test_host_files_are_not_visible(sandbox: SandboxBackend, host_secret: Path) -> None:
    targets = [str(host_secret), "/etc/shadow", "/etc/passwd", THIS_FILE]
    code = (
        "import os\n"
        f"for path in {targets!r}:\n"
        "    try:\n"
        "        print('READ', path, open(path).read()[:40])\n"
        "    except OSError as exc:\n"
        "        print('hidden', path, type(exc).__name__)\n"
        "print('root', sorted(os.listdir('/')))\n"
        "print('processes', sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))\n"
    )
    result = await run(sandbox, code)
    assert result.ok, result.stderr
    assert "READ" not in result.stdout
    assert "the host's secret" not in result.stdout
    assert result.stdout.count("hidden") == len(targets)
    if result.backend == "bubblewrap":
        root = result.stdout.split("root ", 1)[1].splitlines()[0]
        for host_only in ("'root'", "'work'", "'var'", "'run'", "'srv'", "'opt'"):
            assert host_only not in root
        # a PID namespace: the sandbox's init and the program, not the host's processes
        listed = result.stdout.split("processes ", 1)[1]
        assert len(ast.literal_eval(listed.strip())) <= 3


async def test_writes_outside_the_working_directory_fail(
    sandbox: SandboxBackend, host_secret: Path
) -> None:
    targets = ["/usr/pwned", "/etc/pwned", "/pwned", "/dev/pwned", str(host_secret)]
    code = (
        f"for path in {targets!r}:\n"
        "    try:\n"
        "        with open(path, 'w') as f:\n"
        "            f.write('pwned')\n"
        "        print('WROTE', path)\n"
        "    except OSError as exc:\n"
        "        print('refused', path, type(exc).__name__)\n"
    )
    result = await run(sandbox, code)
    assert result.ok, result.stderr
    assert "WROTE" not in result.stdout
    assert result.stdout.count("refused") == len(targets), result.stdout  # each was tried
    assert _host_untouched(host_secret)


async def test_the_hosts_environment_does_not_leak(
    sandbox: SandboxBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TETHER_FAKE_SECRET", "sk-do-not-leak")
    code = (
        "import os\n"
        "print(sorted(os.environ))\n"
        "print(open('/proc/self/environ', 'rb').read())\n"
        "print(os.environ.get('TETHER_FAKE_SECRET'))\n"
    )
    result = await run(sandbox, code)
    assert result.ok
    assert "sk-do-not-leak" not in result.stdout
    assert "TETHER_FAKE_SECRET" not in result.stdout
    assert "TETHER_HOME" not in result.stdout  # set by the suite's conftest


# --- escapes: resources ----------------------------------------------------------------


async def test_fork_bomb_is_stopped_by_the_process_limit(sandbox: SandboxBackend) -> None:
    token = _token()
    code = NAME_PROCESS.format(token=token) + "import os\nwhile True:\n    os.fork()\n"
    result = await run(sandbox, code)
    assert result.killed_by in ("processes", "timeout")
    assert result.stopped is not None
    await _assert_all_gone(token)
    after = await run(sandbox, "print('still fine')")
    assert after.stdout == "still fine\n"


async def test_fork_bomb_that_ignores_failures_is_killed(sandbox: SandboxBackend) -> None:
    token = _token()
    code = NAME_PROCESS.format(token=token) + (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    )
    limits = SandboxLimits(cpu_seconds=30, wall_seconds=2)
    result = await sandbox.run(code, limits=limits)
    assert result.killed_by in ("timeout", "processes", "cpu")
    await _assert_all_gone(token)
    assert (await run(sandbox, "print(1)")).stdout == "1\n"


async def test_processes_that_leave_the_session_die_with_the_sandbox(
    sandbox: SandboxBackend,
) -> None:
    token = _token()
    code = NAME_PROCESS.format(token=token) + (
        "import os, time\n"
        "for _ in range(3):\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        time.sleep(600)\n"
        "print('parent exits', flush=True)\n"
    )
    result = await run(sandbox, code)
    assert result.stdout.startswith("parent exits")
    await _assert_all_gone(token)


async def test_memory_bomb_is_stopped(sandbox: SandboxBackend) -> None:
    code = "chunks = []\nwhile True:\n    chunks.append(bytearray(10_000_000))\n"
    result = await run(sandbox, code, SandboxLimits(memory_mb=128, wall_seconds=10))
    assert result.killed_by == "memory"
    assert result.stopped == "stopped: it used more than 128 MB of memory"


async def test_one_huge_allocation_is_stopped(sandbox: SandboxBackend) -> None:
    result = await run(sandbox, "x = bytearray(4 * 1024**3)\nprint('GOT IT')")
    assert result.killed_by == "memory"
    assert "GOT IT" not in result.stdout


async def test_infinite_loop_is_stopped_by_the_cpu_limit(sandbox: SandboxBackend) -> None:
    result = await run(sandbox, "while True:\n    pass\n", SandboxLimits(cpu_seconds=1))
    assert result.killed_by == "cpu"
    assert result.stopped == "stopped: it used more than 1 s of CPU"


async def test_a_program_that_ignores_sigxcpu_is_still_stopped(sandbox: SandboxBackend) -> None:
    code = "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass\n"
    result = await run(sandbox, code, SandboxLimits(cpu_seconds=1, wall_seconds=8))
    assert result.killed_by in ("cpu", "timeout")  # SIGKILL at the hard limit, 1 s later


async def test_sleeping_forever_is_stopped_by_the_wall_clock(sandbox: SandboxBackend) -> None:
    result = await run(sandbox, "import time\ntime.sleep(600)\n", SandboxLimits(wall_seconds=1))
    assert result.killed_by == "timeout"
    assert result.exit_code is None
    assert result.stopped == "stopped: it ran for more than 1 s"


async def test_huge_output_is_truncated_and_stopped(sandbox: SandboxBackend) -> None:
    result = await run(sandbox, "while True:\n    print('x' * 1000)\n")
    assert result.killed_by == "output"
    assert result.stopped == "stopped: it printed more than 10,000 bytes"
    kept, marker = result.stdout.rsplit("\n[... truncated", 1)
    assert len(kept.encode()) <= FAST.output_bytes
    assert "more than 10,000 bytes" in marker


async def test_huge_stderr_is_capped_too(sandbox: SandboxBackend) -> None:
    result = await run(sandbox, "import sys\nwhile True:\n    sys.stderr.write('e' * 4096)\n")
    assert result.killed_by == "output"
    assert len(result.stderr.encode()) < FAST.output_bytes + 200


async def test_a_file_over_the_size_limit_is_refused(sandbox: SandboxBackend) -> None:
    code = "with open('big.bin', 'wb') as f:\n    f.write(b'0' * (3 * 1024 * 1024))\n"
    result = await run(sandbox, code, SandboxLimits(file_size_mb=1))
    assert result.killed_by == "filesize"
    assert result.stopped == "stopped: it tried to write a file larger than 1 MB"


async def test_many_small_files_cannot_fill_the_host(sandbox: SandboxBackend) -> None:
    code = (
        "import errno\n"
        "try:\n"
        "    for i in range(100):\n"
        "        with open(f'part{i}', 'wb') as f:\n"
        "            f.write(b'0' * 1024 * 1024)\n"
        "    print('WROTE ALL')\n"
        "except OSError as exc:\n"
        "    print('full', errno.errorcode[exc.errno])\n"
    )
    result = await run(sandbox, code, SandboxLimits(disk_mb=8, file_size_mb=2))
    assert result.stdout.strip() == "full ENOSPC"


# --- escapes: the kernel surface (bubblewrap) ---------------------------------------


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the seccomp filter is x86-64 only")
async def test_dangerous_system_calls_are_refused(sandbox: SandboxBackend) -> None:
    if not isinstance(sandbox, BubblewrapSandbox):
        pytest.skip("the filter is bubblewrap's")
    code = (
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "for name, number in [('bpf', 321), ('io_uring_setup', 425), ('userfaultfd', 323),\n"
        "                     ('unshare', 272), ('keyctl', 250), ('ptrace', 101)]:\n"
        "    ret = libc.syscall(number, 0, 0, 0, 0)\n"
        "    print(name, ret, ctypes.get_errno())\n"
    )
    result = await run(sandbox, code)
    assert result.ok, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 6, result.stdout  # every call was tried
    for line in lines:
        name, ret, err = line.split()
        assert (ret, err) == ("-1", "1"), f"{name} was not refused with EPERM"


async def test_no_new_user_namespace_and_no_capabilities(sandbox: SandboxBackend) -> None:
    if not isinstance(sandbox, BubblewrapSandbox):
        pytest.skip("bubblewrap's user namespace")
    code = (
        "import subprocess\n"
        "status = dict(l.split(':', 1) for l in open('/proc/self/status') if ':' in l)\n"
        "print(status['CapEff'].strip(), status['NoNewPrivs'].strip())\n"
        "done = subprocess.run(['unshare', '--user', 'true'], capture_output=True)\n"
        "print(done.returncode)\n"
    )
    result = await run(sandbox, code)
    cap_eff, no_new_privs, unshare = result.stdout.split()
    assert int(cap_eff, 16) == 0
    assert no_new_privs == "1"
    assert unshare != "0"


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the seccomp filter is x86-64 only")
async def test_an_older_bwrap_still_refuses_nested_user_namespaces(
    sandbox: SandboxBackend,
) -> None:
    if not isinstance(sandbox, BubblewrapSandbox):
        pytest.skip("bubblewrap's options")
    old = BubblewrapSandbox(bwrap=sandbox.bwrap)
    old.options = frozenset()  # as if bwrap had neither --disable-userns nor --size
    assert "--disable-userns" not in old.argv(FAST)
    assert "--size" not in old.argv(FAST)
    code = (
        "import ctypes, os, subprocess, threading\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "print('clone3', libc.syscall(435, 0, 0), ctypes.get_errno())\n"
        "threads = [threading.Thread(target=print, args=('thread',)) for _ in range(3)]\n"
        "for t in threads:\n"
        "    t.start()\n"
        "for t in threads:\n"
        "    t.join()\n"
        "done = subprocess.run(['unshare', '--user', 'true'], capture_output=True)\n"
        "print('unshare', done.returncode)\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(7)\n"
        "print('fork', os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n"
    )
    result = await run(old, code)
    assert result.ok, result.stderr
    lines = result.stdout.splitlines()
    assert "clone3 -1 38" in lines  # ENOSYS: the C library falls back to clone
    assert lines.count("thread") == 3  # threads still start through clone
    assert "unshare 0" not in lines
    assert "fork 7" in lines  # fork goes through clone without CLONE_NEWUSER


async def test_cancelling_a_run_kills_the_sandbox(sandbox: SandboxBackend) -> None:
    token = _token()
    code = NAME_PROCESS.format(token=token) + "import time\ntime.sleep(600)\n"
    task = asyncio.ensure_future(sandbox.run(code, limits=SandboxLimits(wall_seconds=60)))
    for _ in range(200):
        if _processes_named(token):
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the sandboxed program never started")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _assert_all_gone(token)


# --- the tool, through the runtime -----------------------------------------------------


def _agent(model: ScriptedModel, sandbox: SandboxBackend, limits: SandboxLimits) -> Agent:
    return Agent(
        name="coder",
        instructions="Compute with Python.",
        models=(model,),
        tools=(run_python_tool(sandbox, limits=limits),),
        approval=ApprovalPolicy(enabled=False),
    )


async def test_the_tool_returns_the_output_to_the_model(sandbox: SandboxBackend) -> None:
    model = ScriptedModel(
        [
            call(
                "run_python", code="import sys\nprint(6 * 7)\nprint(sys.stdin.read())", stdin="hi"
            ),
            "It is 42.",
        ]
    )
    async with Runtime() as rt:
        result = await rt.run(_agent(model, sandbox, FAST), "What is 6 times 7?")
    model.assert_all_used()
    assert result.output == "It is 42."
    seen = model.requests[1].messages[-1].results[0]
    assert seen.name == "run_python"
    assert not seen.is_error
    assert "exit code: 0" in seen.content
    assert "42\nhi" in seen.content


async def test_the_tool_tells_the_model_which_limit_stopped_the_program(
    sandbox: SandboxBackend,
) -> None:
    model = ScriptedModel([call("run_python", code="while True:\n    pass\n"), "It never ended."])
    limits = SandboxLimits(cpu_seconds=1, wall_seconds=8)
    async with Runtime() as rt:
        await rt.run(_agent(model, sandbox, limits), "Loop forever.")
    seen = model.requests[1].messages[-1].results[0]
    assert "stopped: it used more than 1 s of CPU" in seen.content


async def test_a_broken_sandbox_is_a_tool_failure_not_program_output() -> None:
    broken = BubblewrapSandbox(bwrap="/nonexistent/bwrap")
    with pytest.raises(SandboxFailed, match="could not start"):
        await broken.run("print(1)", limits=FAST)
    model = ScriptedModel([call("run_python", code="print(1)"), "The sandbox is down."])
    async with Runtime() as rt:
        await rt.run(_agent(model, broken, FAST), "Run it.")
    seen = model.requests[1].messages[-1].results[0]
    assert seen.is_error
    assert "could not start" in seen.content


def test_the_tool_is_declared_as_untrusted_and_not_idempotent() -> None:
    limits = SandboxLimits(wall_seconds=10)
    tool = run_python_tool(UnsafeLocalSandbox(allow_unsandboxed=True), limits=limits)
    assert tool.name == "run_python"
    assert tool.untrusted_output
    assert not tool.idempotent
    assert tool.risk.names() == ()  # it can touch nothing: no approval by default
    assert tool.timeout > limits.wall_seconds  # the sandbox's own kill comes first
    assert set(tool.parameters["properties"]) == {"code", "stdin"}
    assert tool.parameters["required"] == ["code"]
    assert "no network" in tool.description


# --- refusing to run unsandboxed -------------------------------------------------------


def test_open_sandbox_refuses_when_nothing_isolates() -> None:
    missing = [BubblewrapSandbox(bwrap="/nonexistent/bwrap"), DockerSandbox(docker="/nonexistent")]
    with pytest.raises(ConfigError) as excinfo:
        open_sandbox(backends=missing)
    message = str(excinfo.value)
    assert "apt-get install bubblewrap" in message
    assert "allow_unsandboxed=True" in message
    assert "read every file" in message


def test_unsafe_local_sandbox_needs_the_explicit_flag() -> None:
    with pytest.raises(ConfigError, match="allow_unsandboxed=True"):
        UnsafeLocalSandbox()


async def test_allow_unsandboxed_runs_code_without_isolation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("WARNING", logger="tether.sandbox"):
        chosen = open_sandbox(
            allow_unsandboxed=True, backends=[BubblewrapSandbox(bwrap="/nonexistent/bwrap")]
        )
    assert isinstance(chosen, UnsafeLocalSandbox)
    assert "UNSANDBOXED" in caplog.text
    result = await chosen.run("import os\nprint(sorted(os.listdir('.')))", limits=FAST)
    assert (result.stdout, result.backend) == ("[]\n", "unsandboxed")
    loop = await chosen.run("while True:\n    print('y' * 100)", limits=FAST)
    assert loop.killed_by == "output"  # its limits still hold


def test_an_unusable_backend_says_why() -> None:
    found = BubblewrapSandbox(bwrap="/nonexistent/bwrap").probe()
    assert (found.level, found.sandbox) == ("none", None)
    assert "bwrap" in found.reason
    both = probe([BubblewrapSandbox(bwrap="/nonexistent/bwrap")])
    assert both.level == "none"
    assert both.reason.startswith("bubblewrap: ")


# --- Docker ---------------------------------------------------------------------------


def test_docker_is_skipped_cleanly_without_an_engine() -> None:
    found = DockerSandbox().probe()
    if found.sandbox is not None:
        assert found.level == "docker"
    else:
        assert found.level == "none"
        assert any(
            why in found.reason
            for why in ("not installed", "no Docker engine answers", "never pulls", "does not")
        )


def test_docker_command_isolates_and_never_pulls() -> None:
    argv = DockerSandbox(docker="docker").argv(SandboxLimits(processes=7), name="t1")
    joined = " ".join(argv)
    for flag in (
        "--rm",
        "--pull never",
        "--network none",
        "--read-only",
        "--cap-drop ALL",
        "--security-opt no-new-privileges",
        "--pids-limit 7",
        "--user 65534:65534",
    ):
        assert flag in joined
    assert "--privileged" not in argv
    assert not any(arg.startswith("--volume") or arg == "-v" for arg in argv)


async def test_docker_runs_code_where_an_engine_is_present() -> None:
    found = DockerSandbox().probe()
    if found.sandbox is None:
        pytest.skip(f"Docker backend unavailable: {found.reason}")
    result = await found.sandbox.run("print(6 * 7)", limits=FAST)
    assert (result.stdout, result.backend) == ("42\n", "docker")
    net = await found.sandbox.run(
        "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=3)\n"
        "    print('CONNECTED')\nexcept OSError:\n    print('refused')\n",
        limits=FAST,
    )
    assert net.stdout == "refused\n"


# --- how an end is read ----------------------------------------------------------------


def test_classify_reads_signals_and_reserved_statuses() -> None:
    limits = SandboxLimits(cpu_seconds=2)
    assert classify(0, stopped=None, duration=0.1, limits=limits) == (0, None)
    assert classify(-24, stopped=None, duration=2.1, limits=limits) == (152, "cpu")
    assert classify(152, stopped=None, duration=2.1, limits=limits) == (152, "cpu")
    assert classify(EXIT_MEMORY, stopped=None, duration=0.3, limits=limits) == (201, "memory")
    assert classify(137, stopped=None, duration=3.0, limits=limits) == (137, "cpu")
    assert classify(137, stopped=None, duration=0.5, limits=limits) == (137, "memory")
    assert classify(-9, stopped="timeout", duration=9, limits=limits) == (None, "timeout")


def test_limits_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="memory_mb"):
        SandboxLimits(memory_mb=0)
    with pytest.raises(ValueError, match="wall_seconds"):
        SandboxLimits(wall_seconds=0)


def test_bubblewrap_runs_as_an_unprivileged_user_when_root() -> None:
    sandbox = BubblewrapSandbox()
    if os.geteuid() == 0:
        assert sandbox.run_as is not None
        assert sandbox.run_as[0] != 0
    argv = sandbox.argv(FAST)
    for flag in ("--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent"):
        assert flag in argv
    assert "--clearenv" in argv


def test_a_probe_that_escapes_says_how() -> None:
    from tether.controls.sandbox._host import PROBE_FORKS, PROBE_LIMITS, ProbeRun

    held = ProbeRun(True, "", net="closed", forks=PROBE_LIMITS.processes - 2)
    leaky = ProbeRun(True, "ran", net="open", forks=PROBE_FORKS)
    assert held.isolated
    assert not leaky.isolated
    assert leaky.not_isolated("Docker") == (
        f"Docker runs but does not isolate (network open, {PROBE_FORKS} of {PROBE_FORKS} "
        f"forks allowed under a limit of {PROBE_LIMITS.processes}): ran"
    )
