"""Nothing a person reads in the terminal can be forged by the text it shows.

Model answers, tool results and arguments, and error messages quoting them,
are printed through :class:`SafeConsole`, which shows control characters as
escapes instead of letting the terminal obey them (clear the screen, retitle
the window, rewrite the line above).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.table import Table
from rich.text import Text
from typer.testing import CliRunner

from tether.spec.events import Event, EventType
from tether.surfaces.cli import app
from tether.surfaces.cli.render import LiveTurnPrinter, SafeConsole, visible

HOSTILE = [
    "\x1b[2J\x1b[H",  # clear the screen, cursor home
    "\x1b]0;owned\x07",  # retitle the window
    "\r\x1b[1A\x1b[2Kagent> All done, refund approved.",  # overwrite the line above
    "\x9b31m",  # C1 CSI: the 8-bit form of ESC [
    "\x08\x08\x08\x7f",  # backspaces and DEL
]


#: what a terminal would obey: control characters but tab and newline
OBEYED = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal(color_system: str | None = None) -> SafeConsole:
    """A terminal console; without colours, so any escape in its output came from the text."""
    return SafeConsole(
        file=io.StringIO(), force_terminal=True, width=120, color_system=color_system
    )


def printed(console: SafeConsole) -> str:
    out = console.file
    assert isinstance(out, io.StringIO)
    return out.getvalue()


@pytest.mark.parametrize("attack", HOSTILE)
def test_text_tables_and_strings_show_control_characters(attack: str) -> None:
    console = terminal()
    console.print(Text(f"answer: {attack} end", style="bold"))
    console.print(f"plain: {attack}", markup=False)
    table = Table("tool", "arguments")
    table.add_row("refund", f'{{"note": "{attack}"}}')
    console.print(table)
    shown = printed(console)
    assert OBEYED.search(shown) is None, repr(shown)
    assert shown.count("\\x") >= 3  # shown, escaped, in each of the three
    assert "answer:" in shown
    assert "refund" in shown


def test_rich_styling_still_reaches_the_terminal() -> None:
    console = terminal("standard")
    console.print(Text("bold \x1b[31m", style="bold"))
    shown = printed(console)
    assert "\x1b[1m" in shown  # rich's own escape sequence, obeyed
    assert "\\x1b[31m" in shown  # the text's, shown


def test_the_live_printer_shows_a_streamed_answer_escaped() -> None:
    console = terminal()
    printer = LiveTurnPrinter(console)
    delta = Event(EventType.MODEL_DELTA, "s", 1, 0.0, {"text": "hi \x1b]0;owned\x07 there"})
    printer(delta)
    shown = printed(console)
    assert OBEYED.search(shown) is None, repr(shown)
    assert "\\x1b]0;owned" in shown


def test_tabs_newlines_and_text_outside_ascii_are_left_alone() -> None:
    assert visible("a\tb\nc — é 用户 ☃") == "a\tb\nc — é 用户 ☃"
    assert visible("\x1b[31m") == "\\x1b[31m"


def test_the_cli_prints_a_hostile_answer_escaped(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite'}"
    attack = "\x1b[2J\x1b]0;owned\x07"
    result = CliRunner().invoke(
        app,
        ["run", "tests.surfaces.cli_agent:agent", "-m", f"hello {attack}", "--db", db],
        catch_exceptions=False,
    )
    assert result.exit_code == 0
    assert "You said: hello" in result.stdout  # the agent echoes the message
    assert OBEYED.search(result.stdout) is None, repr(result.stdout)
    assert "\\x1b[2J\\x1b]0;owned" in result.stdout
