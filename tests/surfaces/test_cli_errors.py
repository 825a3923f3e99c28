"""No tracebacks: what the user gives (agent code, files, settings) fails as one line, exit 2.

Each test drives the real command line (typer's runner on the app, or the
installed ``tether`` script) and checks the exit status, the exact line on
stderr, and that no traceback was printed.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether.surfaces.cli import app

AGENT = "tests.surfaces.cli_agent:agent"
REPO = Path(__file__).resolve().parents[2]
_names = itertools.count()

OK_CASE = "id: ok\nconversation: [{user: hi, model: [{text: hello}]}]\n"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def lines(text: str) -> list[str]:
    return text.rstrip("\n").split("\n") if text.strip() else []


def fails_with(args: tuple[str, ...] | list[str], line: str, code: int = 2) -> str:
    """Run the CLI; it must exit ``code`` with exactly ``error: line`` on stderr."""
    status, out, err = invoke(*args)
    assert "Traceback" not in out + err
    assert lines(err) == [f"error: {line}"], err
    assert status == code
    return out


@pytest.fixture
def where(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder on ``sys.path`` (restored afterwards) for the user's own modules."""
    root = tmp_path.resolve()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.delenv("TETHER_DATABASE_URL", raising=False)
    monkeypatch.delenv("TETHER_LOG_LEVEL", raising=False)
    monkeypatch.delenv("TETHER_DEBUG", raising=False)
    monkeypatch.setenv("TETHER_HOME", str(root / "home"))
    return root


def module(root: Path, source: str) -> tuple[str, Path]:
    """A new module of ``source`` under ``root``: its (unique) name and file."""
    name = f"usercode_{os.getpid()}_{next(_names)}"
    path = root / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    importlib.invalidate_caches()
    return name, path


def package(root: Path, source: str) -> tuple[str, Path]:
    """A new agent folder whose ``agent.py`` is ``source``: its name and agent.py."""
    name = f"userpkg_{os.getpid()}_{next(_names)}"
    folder = root / name
    folder.mkdir()
    (folder / "__init__.py").write_text("", encoding="utf-8")
    (folder / "agent.py").write_text(source, encoding="utf-8")
    importlib.invalidate_caches()
    return name, folder / "agent.py"


def db(root: Path) -> str:
    return f"sqlite+aiosqlite:///{root / 'cli.sqlite'}"


# -- agent modules, folders and factories ----------------------------------------------


@pytest.mark.parametrize("style", ["module", "folder"])
def test_an_agent_module_that_raises_at_import(where: Path, style: str) -> None:
    source = "x = 1\nraise RuntimeError('boom at import')\n"
    if style == "module":
        name, path = module(where, source)
        ref, imported = f"{name}:agent", name
    else:
        name, path = package(where, source)
        ref, imported = str(where / name), f"{name}.agent"
    fails_with(
        ("run", ref, "-m", "hi"),
        f"importing {imported!r} for agent {ref!r} raised RuntimeError: boom at import ({path}:2)",
    )


def test_an_agent_module_with_a_syntax_error(where: Path) -> None:
    source = "import tether\n\ndef agent(:\n    pass\n"
    name, path = package(where, source)
    try:
        compile(source, str(path), "exec")
    except SyntaxError as exc:
        msg, line, column = exc.msg, exc.lineno, exc.offset
    ref = str(where / name)
    fails_with(
        ("run", ref, "-m", "hi"),
        f"agent {ref!r}: syntax error in {path}:{line}: {msg} (column {column})",
    )
    assert line == 3


def test_an_agent_factory_that_raises(where: Path) -> None:
    name, path = module(where, "def agent():\n    raise ValueError('no key for the shop')\n")
    fails_with(
        ("run", f"{name}:agent", "-m", "hi"),
        f"agent factory '{name}:agent' raised ValueError: no key for the shop ({path}:2)",
    )


def test_an_agent_module_that_imports_what_is_not_installed(where: Path) -> None:
    name, path = module(where, "import json\nimport not_installed_anywhere_xyz\n")
    fails_with(
        ("run", f"{name}:agent", "-m", "hi"),
        f"importing {name!r} for agent '{name}:agent' failed: it imports "
        f"'not_installed_anywhere_xyz', which is not installed ({path}:2)",
    )


def test_an_agent_module_that_exits_while_imported(where: Path) -> None:
    name, path = module(where, "import sys\nsys.exit(3)\n")
    fails_with(
        ("run", f"{name}:agent", "-m", "hi"),
        f"importing {name!r} for agent '{name}:agent' called sys.exit(3) ({path}:2)",
    )


def test_an_error_in_library_code_names_the_users_line_that_called_it(where: Path) -> None:
    name, path = module(where, "import json\n\nagent = json.loads('{oops')\n")
    fails_with(
        ("run", f"{name}:agent", "-m", "hi"),
        f"importing {name!r} for agent '{name}:agent' raised JSONDecodeError: Expecting "
        f"property name enclosed in double quotes: line 1 column 2 (char 1) ({path}:3)",
    )


def test_the_message_is_one_line_and_escapes_the_terminal(where: Path) -> None:
    name, path = module(where, "raise RuntimeError('first\\n  second \\x1b[2J')\n")
    fails_with(
        ("run", f"{name}:agent", "-m", "hi"),
        f"importing {name!r} for agent '{name}:agent' raised RuntimeError: first second "
        f"\\x1b[2J ({path}:1)",
    )


@pytest.mark.parametrize(
    "command",
    [
        ("run", "{ref}", "-m", "hi"),
        ("chat", "{ref}"),
        ("audit", "{ref}"),
        ("redteam", "{ref}"),
        ("eval", "{suite}", "--agent", "{ref}"),
        ("resume", "deadbeef", "--agent", "{ref}", "--db", "{db}"),
    ],
)
def test_every_command_that_loads_an_agent_says_the_same(
    where: Path, command: tuple[str, ...]
) -> None:
    name, path = module(where, "raise KeyError('SHOP_URL')\n")
    suite = where / "ok.yaml"
    suite.write_text(OK_CASE, encoding="utf-8")
    ref = f"{name}:agent"
    args = [a.format(ref=ref, suite=suite, db=db(where)) for a in command]
    fails_with(args, f"importing {name!r} for agent {ref!r} raised KeyError: 'SHOP_URL' ({path}:1)")


# -- eval: factories, environments and the user's code they run -------------------------


def test_an_eval_agent_factory_that_raises(where: Path) -> None:
    name, path = module(where, "def make(case):\n    raise ValueError(f'no agent for {case.id}')\n")
    (where / "ok.yaml").write_text(OK_CASE, encoding="utf-8")
    fails_with(
        ("eval", str(where / "ok.yaml"), "--agent", f"{name}:make"),
        f"agent factory '{name}:make' raised ValueError: no agent for ok ({path}:2)",
    )


def test_an_eval_environment_factory_that_raises(where: Path) -> None:
    name, path = module(where, "def env(case):\n    raise OSError('shop template missing')\n")
    suite = where / "suite"
    suite.mkdir()
    (suite / "suite.yaml").write_text(
        f"agent: {AGENT}\nenvironment: {name}:env\n", encoding="utf-8"
    )
    (suite / "cases.yaml").write_text(OK_CASE, encoding="utf-8")
    fails_with(
        ("eval", str(suite)),
        f"environment '{name}:env' raised OSError: shop template missing ({path}:2)",
    )


def test_an_exception_in_the_users_environment_is_theirs_not_an_internal_error(
    where: Path,
) -> None:
    source = (
        "class Env:\n"
        "    def deps(self):\n"
        "        return None\n"
        "    def snapshot(self):\n"
        "        return {}['shop']\n"
        "    def close(self):\n"
        "        pass\n"
        "\n"
        "def env(case):\n"
        "    return Env()\n"
    )
    name, path = module(where, source)
    suite = where / "suite"
    suite.mkdir()
    (suite / "suite.yaml").write_text(
        f"agent: {AGENT}\nenvironment: {name}:env\n", encoding="utf-8"
    )
    (suite / "cases.yaml").write_text(OK_CASE, encoding="utf-8")
    fails_with(
        ("eval", str(suite)),
        f"KeyError: 'shop' ({path}:5); set TETHER_DEBUG=1 for the traceback",
    )


# -- eval case files ---------------------------------------------------------------------


MARKER_FACTORY = (
    "from pathlib import Path\n"
    "from tests.surfaces.cli_agent import agent as _agent\n"
    "\n"
    "def make(case):\n"
    "    Path(__file__).with_suffix('.called').touch()\n"
    "    return _agent\n"
)


@pytest.mark.parametrize("suffix", [".yaml", ".jsonl"])
def test_a_bad_final_format_regex_is_reported_before_any_model_runs(
    where: Path, suffix: str
) -> None:
    name, path = module(where, MARKER_FACTORY)
    good = {"id": "fine", "conversation": [{"user": "hi", "model": [{"text": "hello"}]}]}
    bad = {**good, "id": "bad-regex", "expect": [{"final-format": {"regex": "order (#W\\d+"}}]}
    cases = where / f"cases{suffix}"
    if suffix == ".yaml":
        cases.write_text(json.dumps({"cases": [good, bad]}), encoding="utf-8")
        at = f"{cases}"
    else:
        cases.write_text(f"{json.dumps(good)}\n{json.dumps(bad)}\n", encoding="utf-8")
        at = f"{cases}:2"
    fails_with(
        ("eval", str(cases), "--agent", f"{name}:make"),
        f"{at}: case bad-regex: expect.0.final-format: regex 'order (#W\\\\d+' is invalid: "
        "missing ), unterminated subpattern at position 6",
    )
    assert not path.with_suffix(".called").exists()  # no case ran


def test_a_final_format_json_schema_that_is_no_schema(where: Path) -> None:
    cases = where / "cases.yaml"
    cases.write_text(
        OK_CASE + "expect:\n  - final-format: {json-schema: {type: objekt}}\n", encoding="utf-8"
    )
    fails_with(
        ("eval", str(cases), "--agent", AGENT),
        f"{cases}: case ok: expect.0.final-format: json-schema is not a valid JSON Schema "
        "at type: 'objekt' is not valid under any of the given schemas",
    )


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("bad.yaml", b"id: x\nconversation: [\n  - user: hi: there\n", "cannot be parsed"),
        ("latin.yaml", b"id: caf\xe9\n", "not UTF-8 text (byte 0xe9 at offset 7)"),
        ("lines.jsonl", b'{"id": "a"\n', "{file}:1: not valid JSON"),
        ("list.yaml", b"defaults: [1, 2]\ncases: []\n", "defaults must be a mapping"),
    ],
)
def test_a_case_file_that_cannot_be_read_is_one_line(
    where: Path, name: str, content: bytes, problem: str
) -> None:
    path = where / name
    path.write_bytes(content)
    code, _, err = invoke("eval", str(path), "--agent", AGENT)
    assert code == 2
    assert "Traceback" not in err
    (line,) = lines(err)
    assert line.startswith(f"error: {path}")
    assert problem.format(file=path) in line


def test_a_yaml_error_says_line_and_column(where: Path) -> None:
    path = where / "bad.yaml"
    path.write_text("id: x\nconversation: [{user: hi}\n", encoding="utf-8")
    fails_with(
        ("eval", str(path), "--agent", AGENT),
        f"{path}: cannot be parsed (line 3, column 1: while parsing a flow sequence "
        "expected ',' or ']', but got '<stream end>')",
    )


def test_tags_in_defaults_that_are_not_a_list(where: Path) -> None:
    path = where / "tags.yaml"
    path.write_text(
        "defaults: {tags: 3}\ncases:\n  - id: ok\n    tags: [a]\n"
        "    conversation: [{user: hi, model: [{text: hello}]}]\n",
        encoding="utf-8",
    )
    fails_with(
        ("eval", str(path), "--agent", AGENT),
        f"{path}: defaults.tags must be a list of tags, not 3",
    )


def test_an_answer_nested_too_deeply_for_json_fails_its_check_not_the_run(where: Path) -> None:
    answer = "[" * 5000
    path = where / "deep.yaml"
    path.write_text(
        f"id: deep\nconversation: [{{user: hi, model: [{{text: '{answer}'}}]}}]\n"
        "expect:\n  - final-format: {json-schema: {type: array}}\n",
        encoding="utf-8",
    )
    code, out, err = invoke("eval", str(path), "--agent", AGENT)
    assert code == 1  # the case failed; the run did not crash
    assert "Traceback" not in out + err
    assert "final-format: expected a JSON answer; got '[[[[" in out


def test_capture_into_a_jsonl_file_with_a_broken_line(where: Path) -> None:
    code, out, _ = invoke("run", AGENT, "-m", "hello", "--json", "--db", db(where))
    assert code == 0
    sid = json.loads(out)["session_id"]
    target = where / "incidents.jsonl"
    target.write_text('{"id": "a", "conversation": []}\n{"id": \n', encoding="utf-8")
    fails_with(
        ("eval", "capture", sid, "--suite", str(target), "--db", db(where)),
        f"{target}:2: not valid JSON (Expecting value, column 8)",
    )
    assert target.read_text(encoding="utf-8").endswith('{"id": \n')  # left as it was


# -- red team ------------------------------------------------------------------------------


def test_a_red_team_profile_that_is_not_utf8(where: Path) -> None:
    profile = where / "redteam.yaml"
    profile.write_bytes(b"name: caf\xe9\n")
    fails_with(
        ("redteam", AGENT, "--profile", str(profile)),
        f"{profile}: not UTF-8 text (byte 0xe9 at offset 9)",
    )


def test_a_red_team_profile_whose_agent_factory_raises(where: Path) -> None:
    name, path = module(where, "def make(case, models):\n    raise RuntimeError('no shop')\n")
    profile = where / "redteam.yaml"
    profile.write_text(f"agent: {name}:make\n", encoding="utf-8")
    fails_with(
        ("redteam", AGENT, "--profile", str(profile), "--attack", "di-ignore-previous"),
        f"red-team agent '{name}:make' raised RuntimeError: no shop ({path}:2)",
    )


# -- settings: the store, the log level ---------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ("sessions", "list"),
        ("sessions", "show", "deadbeef"),
        ("run", AGENT, "-m", "hi"),
        ("cost",),
        ("approvals", "list"),
        ("eval", "capture", "deadbeef", "--suite", "x.yaml"),
    ],
)
def test_tether_home_pointing_to_a_file(
    where: Path, monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...]
) -> None:
    home = where / "not-a-folder"
    home.write_text("", encoding="utf-8")
    monkeypatch.setenv("TETHER_HOME", str(home))
    fails_with(
        command,
        f"TETHER_HOME={home} is not a folder: point it at a folder (it is created if "
        "missing), or unset it",
    )


def test_tether_home_with_an_unknown_user(where: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_HOME", "~no_such_user_xyz/tether")
    fails_with(("sessions", "list"), "TETHER_HOME=~no_such_user_xyz/tether: cannot expand its ~")


def test_a_db_under_a_file_or_at_a_folder(where: Path) -> None:
    (where / "file").write_text("", encoding="utf-8")
    fails_with(
        ("sessions", "list", "--db", f"sqlite:///{where / 'file' / 'sub' / 'x.db'}"),
        f"--db: {where / 'file'} is a file, so the database {where / 'file' / 'sub' / 'x.db'} "
        "cannot be made under it",
    )
    fails_with(
        ("sessions", "list", "--db", f"sqlite:///{where}"),
        f"--db: {where} is a folder; give the path of a database file",
    )


def test_a_db_in_a_missing_folder_is_created(where: Path) -> None:
    url = f"sqlite:///{where / 'new' / 'deeper' / 'x.db'}"
    code, out, err = invoke("sessions", "list", "--json", "--db", url)
    assert (code, json.loads(out)) == (0, []), err
    assert (where / "new" / "deeper" / "x.db").is_file()


def test_a_malformed_database_url(where: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_DATABASE_URL", "not a url")
    fails_with(
        ("sessions", "list"),
        "TETHER_DATABASE_URL: invalid database URL 'not a url': Could not parse SQLAlchemy "
        "URL from given URL string. Expected e.g. 'sqlite:///path/to/tether.sqlite' or "
        "'postgresql://user@host/db'",
    )


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        (
            "TETHER_REDIS_URL",
            "notaurl",
            "TETHER_REDIS_URL: invalid Redis URL 'notaurl' for circuit breakers (Redis URL "
            "must specify one of the following schemes (redis://, rediss://, unix://)); "
            "expected redis://[user:password@]host[:port][/db]",
        ),
        (
            "TETHER_PRICES",
            "{tmp}",
            "TETHER_PRICES: cannot read the price file {tmp}: Is a directory",
        ),
    ],
)
def test_a_setting_that_cannot_work_is_named(
    where: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, line: str
) -> None:
    monkeypatch.setenv(variable, value.format(tmp=where))
    fails_with(("run", AGENT, "-m", "hi", "--db", db(where)), line.format(tmp=where))


def test_a_db_that_is_a_plain_path(where: Path) -> None:
    fails_with(
        ("sessions", "list", "--db", "x.sqlite"),
        "--db: invalid database URL 'x.sqlite': Could not parse SQLAlchemy URL from given "
        "URL string. Expected e.g. 'sqlite:///path/to/tether.sqlite' or "
        "'postgresql://user@host/db'",
    )


def test_a_log_level_that_is_none(where: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fails_with(
        ("--log-level", "loud", "sessions", "list"),
        "--log-level loud is not a log level: use DEBUG, INFO, WARNING, ERROR or CRITICAL",
    )
    monkeypatch.setenv("TETHER_LOG_LEVEL", "chatty")
    fails_with(
        ("sessions", "list"),
        "TETHER_LOG_LEVEL=chatty is not a log level: use DEBUG, INFO, WARNING, ERROR or CRITICAL",
    )


# -- the last line of defence --------------------------------------------------------------

INTERNAL = re.compile(
    r"error: internal error: TypeError: int\(\) argument must be .*, not 'list' "
    r"\(.*/tether/surfaces/cli/app\.py:\d+\); set TETHER_DEBUG=1 for the traceback, "
    r"and please report it"
)


def test_a_bug_is_one_line_exit_1_and_the_traceback_is_there_on_demand(
    where: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli_app = importlib.import_module("tether.surfaces.cli.app")  # the name `app` is the Typer
    # a bug inside Tether: the table builder fails (in C code, so the line is Tether's)
    monkeypatch.setattr(cli_app, "sessions_table", int)
    code, _, err = invoke("sessions", "list", "--db", db(where))
    assert code == 1
    assert "Traceback" not in err
    (line,) = lines(err)
    assert INTERNAL.fullmatch(line), line

    monkeypatch.setenv("TETHER_DEBUG", "1")
    code, _, err = invoke("sessions", "list", "--db", db(where))
    assert code == 1
    assert lines(err)[0] == "Traceback (most recent call last):"
    assert "in sessions_list" in err
    assert INTERNAL.fullmatch(lines(err)[-1]), err


def test_the_installed_command_prints_one_line(where: Path) -> None:
    name, path = module(where, "raise RuntimeError('boom')\n")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(where), str(REPO / "src"), str(REPO)]),
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "tether"), "run", f"{name}:agent", "-m", "hi"],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert lines(done.stderr) == [
        f"error: importing {name!r} for agent '{name}:agent' raised RuntimeError: boom ({path}:1)"
    ]
    assert done.stdout == ""
