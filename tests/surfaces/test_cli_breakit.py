"""Break-it pass on the command line and the approval text, with inputs nobody tested.

Each test drives the real CLI (typer's runner on the app, or the installed
``tether`` script where only a real process shows the problem) or the real
printers, with hostile or broken input: user code that raises what ``except
Exception`` does not catch, objects that are not agents, store URLs and files
that are not what they claim, parser bombs, terminal-forging values. A test
marked ``xfail(strict=True)`` records a finding that still fails; the others
hold and guard against regressions.
"""

from __future__ import annotations

import importlib
import io
import itertools
import json
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

import tether
from tether.exceptions import ConfigError
from tether.runtime.approvals import PendingApproval, show_value, summarize
from tether.spec.events import Event, EventType
from tether.surfaces.cli import app
from tether.surfaces.cli.render import LiveTurnPrinter, SafeConsole, approvals_table
from tether.surfaces.evals.suite import load_suite
from tether.testing import call

AGENT = "tests.surfaces.cli_agent:agent"
TETHER = Path(sys.executable).parent / "tether"
_names = itertools.count()

#: what must never reach a terminal raw (tab and newline aside)
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def lines(text: str) -> list[str]:
    return text.rstrip("\n").split("\n") if text.strip() else []


def one_error(args: list[str] | tuple[str, ...], codes: tuple[int, ...] = (2,)) -> str:
    """Run the CLI: it must exit with one of ``codes`` and print one escaped ``error:`` line."""
    status, out, err = invoke(*args)
    assert "Traceback" not in out + err
    assert len(lines(err)) == 1, err
    assert err.startswith("error: "), err
    assert not RAW.search(err), err
    assert status in codes, (status, err)
    return err


def script(where: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed ``tether`` in a real process (what a person's terminal gets)."""
    env = {**os.environ, "PYTHONPATH": str(where), "TETHER_HOME": str(where / "home")}
    env.pop("TETHER_DEBUG", None)
    env.pop("TETHER_DATABASE_URL", None)
    return subprocess.run(
        [str(TETHER), *args],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path.resolve()
    monkeypatch.syspath_prepend(str(root))
    for name in ("TETHER_DATABASE_URL", "TETHER_LOG_LEVEL", "TETHER_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TETHER_HOME", str(root / "home"))
    return root


def module(root: Path, source: str) -> str:
    name = f"breakit_{os.getpid()}_{next(_names)}"
    (root / f"{name}.py").write_text(source, encoding="utf-8")
    importlib.invalidate_caches()
    return name


def sqlite(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


# -- 1. agent modules and references -------------------------------------------------


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("raise SystemExit(0)\n", "called sys.exit(0)"),
        ("def f():\n    return f()\nf()\n", "raised RecursionError"),
        ("raise MemoryError('oom \\x1b[2J')\n", "raised MemoryError: oom \\x1b[2J"),
    ],
)
def test_import_time_exits_and_resource_errors_are_one_line(
    where: Path, source: str, says: str
) -> None:
    name = module(where, source)
    assert says in one_error(("run", f"{name}:agent", "-m", "hi"))


def test_a_module_getattr_that_raises_is_one_escaped_line(where: Path) -> None:
    name = module(where, "def __getattr__(n):\n    raise ValueError('no \\x1b]0;pwn\\x07' + n)\n")
    err = one_error(("run", f"{name}:agent", "-m", "hi"))
    assert "ValueError: no \\x1b]0;pwn" in err


def test_the_error_line_shows_backspace_and_bell_as_escapes(where: Path) -> None:
    name = module(where, "def __getattr__(n):\n    raise ValueError('a\\x07b\\x08c')\n")
    err = one_error(("run", f"{name}:agent", "-m", "hi"))
    assert "a\\x07b\\x08c" in err


@pytest.mark.xfail(
    strict=True,
    reason="SafeConsole escapes what reaches render(), but rich.Text (and a plain str, made "
    "into Text) has already dropped \\x07 \\x08 \\x0b \\x0c \\r: they vanish instead of "
    "showing as escapes as the class docstring promises",
)
def test_safe_console_shows_every_control_character() -> None:
    console = SafeConsole(file=io.StringIO(), force_terminal=True, color_system=None)
    console.print("a\x07b\x08c\x0bd\x0ce\rf")
    out = console.file
    assert isinstance(out, io.StringIO)
    assert out.getvalue() == "a\\x07b\\x08c\\x0bd\\x0ce\\rf\n"


@pytest.mark.parametrize(
    ("attr", "says"),
    [
        ("n", "is a int, not a tether.Agent"),
        ("K", "is a K, not a tether.Agent"),
        ("none", "is None, not a tether.Agent"),
        ("gen", "is a generator, not a tether.Agent"),
        ("needs", "raised TypeError: needs() missing 1 required positional argument"),
        ("KA", "raised TypeError: KA.__init__() missing 1 required positional argument"),
    ],
)
def test_a_reference_to_something_that_is_not_an_agent(where: Path, attr: str, says: str) -> None:
    name = module(
        where,
        "n = 5\nclass K: pass\nclass KA:\n    def __init__(self, x): pass\n"
        "def none(): return None\ndef needs(x): return x\ndef gen():\n    yield 1\n",
    )
    assert says in one_error(("run", f"{name}:{attr}", "-m", "hi"))


def test_an_async_factory_is_refused_in_one_line(where: Path) -> None:
    name = module(where, "async def agent():\n    return None\n")
    done = script(where, "run", f"{name}:agent", "-m", "hi")
    assert done.returncode == 2
    assert lines(done.stderr) == [
        f"error: agent factory '{name}:agent' is async; make it a plain function that "
        "returns the tether.Agent"
    ]


@pytest.mark.xfail(
    strict=True,
    reason="KeyboardInterrupt raised by the agent module at import escapes _import_module "
    "(it catches Exception and SystemExit only) before _run_async: exit 130 with nothing "
    "on stderr, not even 'interrupted'",
)
def test_a_module_that_raises_keyboardinterrupt_at_import_says_so(where: Path) -> None:
    name = module(where, "raise KeyboardInterrupt\n")
    done = script(where, "run", f"{name}:agent", "-m", "hi")
    assert "Traceback" not in done.stderr
    assert done.returncode != 0
    assert len(lines(done.stderr)) == 1, done.stderr


# -- 1. the store ---------------------------------------------------------------------


@pytest.mark.parametrize("url", ["ftp://x/y", "mongodb://h/db", "redis://h", "not a url"])
def test_an_unsupported_or_invalid_db_url(where: Path, url: str) -> None:
    assert "--db" in one_error(("sessions", "list", "--db", url))


def test_a_db_path_that_is_a_folder(where: Path) -> None:
    (where / "d").mkdir()
    assert "is a folder" in one_error(("sessions", "list", "--db", sqlite(where / "d")))


def test_a_tether_home_that_cannot_be_made(where: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_HOME", "/proc/no-such-folder-here")
    assert "TETHER_HOME" in one_error(("sessions", "list"))


def test_a_db_url_query_the_driver_rejects_is_one_line(where: Path) -> None:
    # Holds (exit 2, one line), though the line does not name --db and blames
    # "<sqlalchemy generated warned() wrapper ...>:2" as if it were the user's code.
    one_error(("sessions", "list", "--db", sqlite(where / "x.sqlite") + "?timeout=abc"))


def test_a_db_file_that_is_not_a_database(where: Path) -> None:
    (where / "notes.txt").write_bytes(b"this is not a database\n" * 100)
    err = one_error(("sessions", "list", "--db", sqlite(where / "notes.txt")))
    assert "internal error" not in err


def test_a_db_url_with_a_malformed_host(where: Path) -> None:
    err = one_error(("sessions", "list", "--db", "postgresql+asyncpg://u@[::1/x"))
    assert "internal error" not in err


# -- 1. eval case files -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("deep.yaml", b"[" * 100_000 + b"]" * 100_000, "cannot be parsed"),
        ("deepmap.yaml", b"a: " + b"{a: " * 50_000 + b"1" + b"}" * 50_000, "cannot be parsed"),
        ("deep.json", b"[" * 100_000 + b"]" * 100_000, "cannot be parsed"),
        ("deep.jsonl", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        ("empty.yaml", b"", "no cases found"),
        ("empty.jsonl", b"", "no cases found"),
        ("garbage.yaml", bytes(range(256)) * 4, "not UTF-8 text"),
        ("bad.yaml", b'id: ok\nconversation: [{user: "h\xffi", model: [{text: x}]}]\n', "UTF-8"),
        ("\x1b[31mred.yaml", b"", "\\x1b[31mred.yaml"),
    ],
)
def test_broken_case_files(where: Path, name: str, content: bytes, says: str) -> None:
    (where / name).write_bytes(content)
    assert says in one_error(("eval", str(where / name), "--agent", AGENT))


def test_a_case_file_with_a_bom_and_crlf_runs(where: Path) -> None:
    path = where / "bom.yaml"
    path.write_bytes(
        b"\xef\xbb\xbfid: ok\r\nconversation: [{user: hi, model: [{text: hello}]}]\r\n"
    )
    status, _, err = invoke("eval", str(path), "--agent", AGENT)
    assert status == 0, err


def _alias_bomb(depth: int) -> str:
    levels = ['          x0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, depth):
        refs = ",".join([f"*a{i - 1}"] * 9)
        levels.append(f"          x{i}: &a{i} [{refs}]")
    return (
        "cases:\n- id: bomb\n  conversation:\n  - user: hi\n    model:\n"
        "    - tool: order_status\n      args:\n        order_id: W1\n        anchors:\n"
        + "\n".join(levels)
        + f"\n        junk: *a{depth - 1}\n    - text: done\n"
    )


def test_a_yaml_alias_bomb_in_a_case_file_is_refused(where: Path) -> None:
    path = where / "bomb.yaml"
    path.write_text(_alias_bomb(9), encoding="utf-8")
    assert path.stat().st_size < 4000
    with pytest.raises(ConfigError):
        load_suite(path)


# -- 1. guard sql / guard scan ------------------------------------------------------


def test_guard_sql_with_nul_bytes_and_escapes(where: Path) -> None:
    path = where / "nul.sql"
    path.write_text("SELECT 1\x00; DROP TABLE x;\x00 SELECT '\x1b[31m';", encoding="utf-8")
    status, out, err = invoke("guard", "sql", str(path))
    assert status == 1, err
    rows = [json.loads(line) for line in lines(out)]
    assert [r["verdict"] for r in rows] == ["allow", "block", "block"]
    assert "\x00" not in out
    assert "\x1b" not in out
    assert "\\x00" in rows[0]["statement"]


def test_guard_sql_with_a_hostile_file_name(where: Path) -> None:
    assert "nope\\x1b[31m.sql" in one_error(("guard", "sql", str(where / "nope\x1b[31m.sql")))


@pytest.mark.parametrize("line", ["[1, 2]", "5", '"text"', "null", '{"text": 5}'])
def test_guard_scan_with_a_line_that_is_not_an_object(where: Path, line: str) -> None:
    path = where / "in.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    assert 'expected an object with a "text" string' in one_error(("guard", "scan", str(path)))


def test_guard_scan_with_a_deeply_nested_line(where: Path) -> None:
    path = where / "deep.jsonl"
    path.write_text('{"text": "x", "y": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    one_error(("guard", "scan", str(path)))


def test_guard_scan_with_a_huge_number(where: Path) -> None:
    path = where / "big.jsonl"
    path.write_text('{"text": "x", "n": ' + "9" * 5000 + "}\n")
    one_error(("guard", "scan", str(path)))


def test_guard_scan_reads_a_file_with_a_bom(where: Path) -> None:
    path = where / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"text": "hi"}\r\n')
    status, out, err = invoke("guard", "scan", str(path))
    assert status == 0, err
    assert json.loads(out)["flagged"] is False


def test_guard_scan_accepts_raw_control_characters_in_strings(where: Path) -> None:
    path = where / "ctl.jsonl"
    path.write_text('{"text": "a\x0bb"}\n', encoding="utf-8")
    status, _, err = invoke("guard", "scan", str(path))
    assert status == 0, err


# -- 1. hostile ids -----------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("sessions", "show", "abc\x1b]0;owned\x07\x1b[2J"),
        ("sessions", "show", "--json", "x\x1b[31m"),
        ("sessions", "show", "abc\u202edef"),
        ("resume", "x\x1b[31m"),
        ("approvals", "approve", "x\x1b[31m"),
        ("approvals", "approve", "x\x1b[31m.7"),
        ("approvals", "deny", "\u202e.y\n\rforged"),
        ("approvals", "deny", ".x"),
        ("approvals", "approve", "a."),
    ],
)
def test_hostile_ids_are_one_escaped_line(where: Path, args: tuple[str, ...]) -> None:
    db = sqlite(where / "s.sqlite")
    one_error((*args, "--db", db), codes=(1, 2))


# -- 2. approval text and printers --------------------------------------------------


@tether.tool(external_comms=True, summary='send the email "{subject}" to {to}')
def send_email(to: str, subject: str, body: str = "", bcc: str | None = None) -> str:
    """Send an email.

    Args:
        to: The recipient.
        subject: The subject line.
        body: The text.
        bcc: A hidden recipient.
    """
    return "sent"


def _tool(summary: str) -> Any:
    @tether.tool(external_comms=True, summary=summary, name="pay")
    def pay(to: str, amount: float = 0.0, note: str = "") -> str:
        """Pay someone.

        Args:
            to: Who.
            amount: How much.
            note: A note.
        """
        return "paid"

    return pay


def requested(arguments: dict[str, Any], **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "approval_id": "s.7",
        "call_id": "c1",
        "tool": "send_email",
        "arguments": arguments,
        "summary": summarize(send_email, call("send_email", **arguments)),
        "explanation": "",
        "mode": "user",
        "expires_at": 0.0,
    }
    data.update(extra)
    return data


def what_a_person_sees(data: dict[str, Any], cls: type[Console]) -> str:
    """The live printer's question and the approvals table, on a recording console
    with markup and emoji codes on (for the plain ``Console``)."""
    console = cls(file=io.StringIO(), force_terminal=True, width=300, color_system=None)
    event = Event(type=EventType.APPROVAL_REQUESTED, session_id="s", step=1, time=0.0, data=data)
    LiveTurnPrinter(console)(event)
    console.print(approvals_table([PendingApproval.from_event("s", data)]))
    out = console.file
    assert isinstance(out, io.StringIO)
    return out.getvalue()


FORGERS = {
    "carriage return": ({"to": "bob@x\rsend the email 'hi' to 'alice@x'"}, "\\r"),
    "backspaces": ({"to": "evil@x" + "\x08" * 6 + "alice@"}, "\\x08" * 6),
    "line separator": ({"to": "a\u2028? approve: nothing"}, "\\u2028"),
    "next line": ({"to": "a\x85b"}, "\\x85"),
    "emoji zwj": ({"to": "\U0001f469\u200d\U0001f4bb@x"}, "\\u200d"),
    "tag characters": ({"to": "a\U000e0041b"}, "\\U000e0041"),
    "rich markup and emoji codes": (
        {"to": ":warning: admin@corp", "subject": "[bold red]URGENT[/]"},
        "':warning: admin@corp'",
    ),
    "ansi in a key": ({"\x1b[2K\rbcc": "x@evil"}, "'\\x1b[2K\\rbcc'='x@evil'"),
    "key named like the sentence": ({"to') ; also: ('bcc": "x"}, "also: \"to') ; also: ('bcc\"="),
}


@pytest.mark.parametrize("cls", [Console, SafeConsole], ids=["Console", "SafeConsole"])
@pytest.mark.parametrize("case", list(FORGERS))
def test_values_cannot_forge_the_question(case: str, cls: type[Console]) -> None:
    args, shown = FORGERS[case]
    arguments = {"to": "bob@x", "subject": "hi", **args}
    data = requested(arguments)
    screen = what_a_person_sees(data, cls)
    assert not RAW.search(screen), screen
    assert "⚠" not in screen  # no emoji code was turned into a picture
    assert "URGENT[/]" in screen or "URGENT" not in str(arguments)
    question = PendingApproval.from_event("s", data).question()
    assert shown in question
    assert not RAW.search(question)


def test_the_agents_explanation_cannot_draw_a_question() -> None:
    data = requested(
        {"to": "a", "subject": "s"},
        explanation="ok\r  ? approve: send the email to 'boss' (yes/no)\x1b[1A",
    )
    screen = what_a_person_sees(data, SafeConsole)
    said = [line for line in screen.splitlines() if "the agent says" in line]
    assert len(said) == 1
    assert "\\x1b[1A" in said[0]
    assert not RAW.search(screen)


@pytest.mark.parametrize(
    ("template", "arguments", "expected"),
    [
        ("pay {to!r:>1000}", {"to": "x"}, "pay 'x'"),
        ("pay {amount:>100000000} to {to}", {"to": "x", "amount": 5}, "pay 5 to 'x'"),
        ("pay {0} to {to}", {"to": "x"}, "run pay(to='x')"),
        ("pay {missing}", {"to": "x"}, "run pay(to='x')"),
        ("pay {to.__class__}", {"to": "x"}, "run pay(to='x')"),
        ("pay {amount:{amount}}", {"to": "x", "amount": 5}, "run pay(to='x', amount=5)"),
        ("pay {amount:.0f} to {to}", {"to": "x", "amount": 5.4}, "pay 5.4 to 'x'"),
    ],
)
def test_hostile_templates_fall_back_or_stay_bounded(
    template: str, arguments: dict[str, Any], expected: str
) -> None:
    assert summarize(_tool(template), call("pay", **arguments)) == expected


def test_a_huge_integer_in_a_float_field_is_shown_not_raised() -> None:
    amount = 10**400
    text = summarize(_tool("pay {amount:.2f} to {to}"), call("pay", to="x", amount=amount))
    assert text.startswith("run pay(") or "1000" in text


def test_a_huge_precision_does_not_blow_up_the_summary() -> None:
    text = summarize(_tool("pay {amount:.100000f} to {to}"), call("pay", to="x", amount=1.5))
    assert len(text) < 2000


@pytest.mark.xfail(
    strict=True,
    reason="combining marks are not HIDDEN: a value that starts with one (U+0338, U+20DD) "
    "combines with the opening quote show_value writes, so the value changes how the "
    "runtime's own delimiter looks",
)
def test_a_leading_combining_mark_cannot_change_the_quote() -> None:
    shown = show_value("\u0338alice@x")
    assert unicodedata.combining(shown[1]) == 0, ascii(shown)


@pytest.mark.xfail(
    strict=True,
    reason="10,000 combining marks on one letter (zalgo) are kept: the shown value is one "
    "letter carrying 179 marks, drawn over the lines around it; nothing caps a run of "
    "non-starters (UAX #15's stream-safe limit is 30)",
)
def test_zalgo_is_not_drawn_as_is() -> None:
    shown = show_value("a" + "\u0336" * 10_000 + "lice@x")
    runs = re.findall(r"[\u0300-\u036f]+", shown)
    assert max((len(r) for r in runs), default=0) <= 30
