"""Valid JSON Lines are read whole: line separators other than \\n inside strings.

``str.splitlines()`` also splits on \\r, \\v, \\f, \\x1c-\\x1e, \\x85, U+2028 and
U+2029; JSON may carry each inside a string (U+2028, U+2029 and U+0085 need no
escape, and Python's ``json.dumps(..., ensure_ascii=False)`` writes them raw).
Every JSONL reader here (the shared helper, eval suites, ``eval capture``)
must split on \\n only, and YAML written by capture must keep them too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tether.exceptions import ConfigError
from tether.surfaces.cli import app
from tether.surfaces.evals import load_suite
from tether.surfaces.evals.capture import append_case, case_yaml
from tether.surfaces.jsonl import iter_lines, parse_jsonl

AGENT = "tests.surfaces.cli_agent:agent"

SEPARATORS = ["\u2028", "\u2029", "\x85", "\x1c", "\x1d", "\x1e", "\x0b", "\x0c", "\r"]
IDS = [f"U+{ord(c):04X}" for c in SEPARATORS]


def case(cid: str, text: str) -> dict[str, Any]:
    return {
        "id": cid,
        "conversation": [{"user": f"hi{text}there", "model": [{"text": f"hello{text}world"}]}],
        "expect": [{"final-format": {"regex": "^hello.+world$"}}],
    }


def raw_line(value: Any, sep: str) -> str:
    """``value`` as one JSON line with ``sep`` written as itself, never escaped."""
    escaped = json.dumps(sep)[1:-1]  # "\\u2028", "\\u000b", "\\r"...
    return json.dumps(value, ensure_ascii=False).replace(escaped, sep)


def jsonl(sep: str, *, raw: bool) -> str:
    first, second = case("first", sep), case("second", sep)
    if raw:
        return raw_line(first, sep) + "\n\n" + raw_line(second, sep) + "\n"
    return json.dumps(first, ensure_ascii=False) + "\n" + json.dumps(second) + "\n"


@pytest.mark.parametrize("sep", SEPARATORS, ids=IDS)
def test_the_helper_splits_on_newline_only(sep: str) -> None:
    text = raw_line({"a": f"x{sep}y"}, sep) + "\r\n\n" + raw_line(["b", sep], sep)
    assert sep in text.split("\n")[0]  # the separator really is in the line, unescaped
    assert [n for n, _ in iter_lines(text)] == [1, 3]
    assert parse_jsonl(text, source="t.jsonl") == [(1, {"a": f"x{sep}y"}), (3, ["b", sep])]


def test_the_helper_names_the_line_and_skips_a_byte_order_mark() -> None:
    assert parse_jsonl('\ufeff{"a": 1}\n', source="t.jsonl") == [(1, {"a": 1})]
    with pytest.raises(ConfigError, match=r"^t\.jsonl:3: not valid JSON \(Expecting value"):
        parse_jsonl('{"a": "\u2028"}\n\n{"b": }\n', source="t.jsonl")


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "json.dumps"])
@pytest.mark.parametrize("sep", SEPARATORS, ids=IDS)
def test_an_eval_suite_reads_every_case(tmp_path: Path, sep: str, raw: bool) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text(jsonl(sep, raw=raw), encoding="utf-8", newline="")
    suite = load_suite(path)
    assert [c.id for c in suite.cases] == ["first", "second"]
    assert suite.cases[0].conversation[0].user == f"hi{sep}there"
    step = suite.cases[1].conversation[0].model
    assert step is not None
    assert step[0].text == f"hello{sep}world"


@pytest.mark.parametrize("sep", SEPARATORS, ids=IDS)
def test_capture_appends_to_a_jsonl_file(tmp_path: Path, sep: str) -> None:
    path = tmp_path / "incidents.jsonl"
    path.write_text(raw_line(case("old", sep), sep) + "\n", encoding="utf-8", newline="")
    written = append_case(path, case("old", sep))  # same id: renamed, not a clash
    assert written["id"] == "old-2"
    suite = load_suite(path)
    assert [c.id for c in suite.cases] == ["old", "old-2"]
    assert [c.conversation[0].user for c in suite.cases] == [f"hi{sep}there"] * 2


@pytest.mark.parametrize("sep", SEPARATORS, ids=IDS)
def test_capture_appends_to_a_yaml_file(tmp_path: Path, sep: str) -> None:
    path = tmp_path / "incidents.yaml"
    append_case(path, case("first", sep))
    append_case(path, case("second", sep))
    text = path.read_text(encoding="utf-8")
    assert sep not in text  # YAML reads these as line breaks: they are written as escapes
    suite = load_suite(path)
    assert [c.conversation[0].user for c in suite.cases] == [f"hi{sep}there"] * 2
    assert yaml.safe_load(case_yaml(case("x", sep)))["conversation"][0]["user"] == f"hi{sep}there"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("sep", SEPARATORS, ids=IDS)
def test_tether_eval_runs_every_case_of_the_file(tmp_path: Path, sep: str) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text(jsonl(sep, raw=True), encoding="utf-8", newline="")
    code, out, err = invoke("eval", str(path), "--agent", AGENT, "--json")
    assert code == 0, err
    summary = json.loads(out.strip().split("\n")[-1])
    assert (summary["cases"], summary["passed"]) == (2, 2)


def test_tether_eval_capture_then_eval_with_every_separator(tmp_path: Path) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 's.sqlite'}"
    said = "a" + "b".join(SEPARATORS) + "c"
    code, out, err = invoke("run", AGENT, "-m", said, "--json", "--db", db)
    assert code == 0, err
    result = json.loads(out)
    assert result["output"] == f"You said: {said}"
    path = tmp_path / "incidents.jsonl"
    path.write_text(jsonl("".join(SEPARATORS), raw=True), encoding="utf-8", newline="")
    code, out, err = invoke(
        "eval", "capture", result["session_id"], "--suite", str(path), "--db", db
    )
    assert code == 0, err
    suite = load_suite(path)
    assert [c.id for c in suite.cases][:2] == ["first", "second"]
    assert suite.cases[-1].conversation[0].user == said
    code, out, err = invoke("eval", str(path), "--agent", AGENT, "--json")
    assert code == 0, err
    assert json.loads(out.strip().split("\n")[-1])["passed"] == 3
