"""Tether's pytest plugin, run in inner pytest sessions (``pytester``).

Inner sessions run in this process (the runtime fixtures' in a subprocess);
the plugin is loaded in them through its ``pytest11`` entry point, as in a
user's project. Tests that need to see
where an allowed connection goes put a recorder in place of
``socket.socket.connect`` first: the plugin wraps whatever is there, so an
allowed connection reaches the recorder and nothing leaves the machine.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from typing import Any

import pytest

from tether.testing import NetworkBlocked

pytest_plugins = ["pytester"]

OUTSIDE = ("203.0.113.1", 80)  # TEST-NET-3: never routed
BLOCKED = "tests may not open network connections (to ('203.0.113.1', 80))"

INI = """
[pytest]
asyncio_mode = {mode}
asyncio_default_fixture_loop_scope = function
addopts = -p no:cacheprovider -ra --strict-markers --strict-config
filterwarnings = error
{extra}
"""

CONNECTS = """
import socket

import pytest


def connect():
    with socket.socket() as s:
        s.settimeout(0.5)
        s.connect(("203.0.113.1", 80))


def test_plain():
    connect()


@pytest.mark.tether_allow_network
def test_marked():
    connect()
"""


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Addresses that got past every guard; such a connection "succeeds" without a packet."""
    seen: list[Any] = []

    def record(sock: socket.socket, address: Any) -> None:
        seen.append(address)

    monkeypatch.setattr(socket.socket, "connect", record)
    return seen


def ini(pytester: pytest.Pytester, *, mode: str = "auto", extra: str = "") -> None:
    pytester.makeini(INI.format(mode=mode, extra=extra))


# --- our own suite ---------------------------------------------------------------


def test_our_own_suite_runs_with_the_plugin(request: pytest.FixtureRequest) -> None:
    assert request.config.pluginmanager.hasplugin("tether")
    with socket.socket() as s, pytest.raises(NetworkBlocked) as info:
        s.connect(OUTSIDE)
    assert BLOCKED in str(info.value)
    assert isinstance(info.value, ConnectionRefusedError)


def test_importing_the_kit_does_not_import_pytest() -> None:
    code = "import sys, tether.testing; print('pytest' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- the network block -------------------------------------------------------------


def test_a_connection_off_the_machine_fails_with_the_address_and_the_way_out(
    pytester: pytest.Pytester, recorder: list[Any]
) -> None:
    ini(pytester)
    pytester.makepyfile(CONNECTS)
    result = pytester.runpytest("-k", "plain")
    result.assert_outcomes(failed=1, deselected=1)
    result.stdout.fnmatch_lines(
        [
            f"E * tether.testing.network.NetworkBlocked: {BLOCKED}: *"
            "mark it @pytest.mark.tether_allow_network or run pytest with --tether-allow-network"
        ]
    )
    assert recorder == []


def test_connect_ex_is_blocked_too(pytester: pytest.Pytester, recorder: list[Any]) -> None:
    ini(pytester)
    pytester.makepyfile(
        """
        import socket

        import pytest
        from tether.testing import NetworkBlocked


        def test_connect_ex():
            with socket.socket() as s, pytest.raises(NetworkBlocked, match="203.0.113.1"):
                s.connect_ex(("203.0.113.1", 80))
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_the_marker_lets_one_test_through(pytester: pytest.Pytester, recorder: list[Any]) -> None:
    ini(pytester)  # with --strict-markers: the marker is registered
    pytester.makepyfile(CONNECTS)
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["E *NetworkBlocked: *", "FAILED *::test_plain*"])
    assert recorder == [OUTSIDE]  # the marked test's connection, and only it
    assert socket.socket.connect.__name__ == "record"  # the plugin put back what it wrapped


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (["--tether-allow-network"], ""),
        ([], "tether_allow_network = true"),
        (["-p", "no:tether"], ""),
    ],
    ids=["flag", "ini", "plugin-off"],
)
def test_a_whole_run_can_allow_the_network(
    pytester: pytest.Pytester, recorder: list[Any], args: list[str], extra: str
) -> None:
    ini(pytester, extra=extra)
    pytester.makepyfile(CONNECTS.replace("@pytest.mark.tether_allow_network", ""))
    pytester.runpytest(*args).assert_outcomes(passed=2)
    assert recorder == [OUTSIDE, OUTSIDE]


def test_the_block_covers_collection(pytester: pytest.Pytester, recorder: list[Any]) -> None:
    ini(pytester)
    pytester.makepyfile(
        """
        import socket

        socket.create_connection(("203.0.113.1", 80), timeout=0.5)


        def test_never_collected():
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*NetworkBlocked: {BLOCKED}*"])
    assert recorder == []


def test_loopback_is_allowed(pytester: pytest.Pytester) -> None:
    ini(pytester)
    pytester.makepyfile(
        """
        import socket


        def test_loopback():
            with socket.socket() as server:
                server.bind(("127.0.0.1", 0))
                server.listen(1)
                for host in ("127.0.0.1", "localhost"):
                    with socket.create_connection((host, server.getsockname()[1]), timeout=5):
                        conn, _ = server.accept()
                        conn.close()


        def test_unix_socket(tmp_path):
            path = str(tmp_path / "s")
            with socket.socket(socket.AF_UNIX) as server, socket.socket(socket.AF_UNIX) as c:
                server.bind(path)
                server.listen(1)
                c.connect(path)
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


# --- the fixtures ------------------------------------------------------------------

FIXTURES = """
import pytest

from tether import Agent, Runtime
from tether.store import open_store
from tether.testing import EventLog, FakeClock, ScriptedModel

CLOSED = []
SEEN = {}


def agent(model):
    return Agent(name="helper", instructions="Answer.", models=(model,))


def record_close(runtime, name):
    store = runtime.store
    real = store.aclose

    async def aclose():
        CLOSED.append(name)
        await real()

    store.aclose = aclose


{mark}
async def test_memory_runtime(tether_runtime, tether_events, fake_clock):
    assert isinstance(tether_runtime, Runtime)
    assert isinstance(tether_events, EventLog)
    assert isinstance(fake_clock, FakeClock)
    model = ScriptedModel(["Hello."])
    result = await tether_runtime.run(agent(model), "hi", on_event=tether_events)
    assert (result.status, result.output) == ("idle", "Hello.")
    assert tether_events.types()[-1] == "turn.completed"
    record = await tether_runtime.store.get(result.session_id)
    assert record.created_at == fake_clock() == 1_700_000_000.0  # the runtime's clock
    SEEN["memory"] = (tether_runtime, result.session_id)
    record_close(tether_runtime, "memory")


{mark}
async def test_sqlite_runtime(tether_sqlite_runtime, tmp_path):
    model = ScriptedModel(["Done."])
    result = await tether_sqlite_runtime.run(agent(model), "hi")
    assert result.output == "Done."
    assert (tmp_path / "tether.db").is_file()
    SEEN["sqlite"] = (tmp_path / "tether.db", result.session_id)
    record_close(tether_sqlite_runtime, "sqlite")


{mark}
async def test_both_were_closed_and_the_sqlite_file_kept_the_session():
    assert CLOSED == ["memory", "sqlite"]
    runtime, session_id = SEEN["memory"]
    with pytest.raises(RuntimeError, match="was closed"):
        await runtime.store.get(session_id)
    path, session_id = SEEN["sqlite"]
    store = await open_store(f"sqlite+aiosqlite:///{path}")
    try:
        assert (await store.get(session_id)).status == "idle"
    finally:
        await store.aclose()


{mark}
async def test_retries_wait_on_the_fake_clock(tether_runtime, fake_clock):
    from tether import ProviderError

    model = ScriptedModel([ProviderError("overloaded", status=529, retryable=True), "Back."])
    result = await tether_runtime.run(agent(model), "hi")
    assert result.output == "Back."
    assert len(fake_clock.sleeps) == 1 and fake_clock() > 1_700_000_000.0
"""


@pytest.mark.parametrize(
    ("mode", "mark"), [("auto", ""), ("strict", "@pytest.mark.asyncio")], ids=["auto", "strict"]
)
def test_the_runtime_fixtures_run_a_turn_and_close(
    pytester: pytest.Pytester, mode: str, mark: str
) -> None:
    ini(pytester, mode=mode)
    pytester.makepyfile(FIXTURES.replace("{mark}", mark))
    # a fresh interpreter: SQLAlchemy does not survive pytester unloading its modules
    pytester.runpytest_subprocess().assert_outcomes(passed=4)


def test_the_fixtures_are_listed_with_their_docs(pytester: pytest.Pytester) -> None:
    ini(pytester)
    result = pytester.runpytest("--fixtures")
    result.stdout.fnmatch_lines_random(
        [
            "tether_runtime*",
            "*A Runtime on an in-memory store and ``fake_clock``, closed after the test.",
            "tether_sqlite_runtime*",
            "fake_clock*",
            "tether_events*",
        ]
    )
