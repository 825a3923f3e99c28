"""Loading a suite: case files (YAML or JSONL), a folder of them, and its ``suite.yaml``.

Errors say which file, which case and which key (or line and column, for a
file that does not parse), as one line: a golden set with a typo must fail
loudly, never test nothing. Everything in a case that is compiled later (a
``final-format`` regex or JSON Schema) is checked here, before any model runs.
JSONL files are split on ``\n`` only (:mod:`tether.surfaces.jsonl`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tether.exceptions import ConfigError
from tether.surfaces.evals.cases import Case, SuiteConfig, problems
from tether.surfaces.jsonl import parse_jsonl

__all__ = ["Suite", "load_suite", "parse_cases", "parse_error", "read_text"]

_CASE_SUFFIXES = (".yaml", ".yml", ".jsonl", ".json")


@dataclass(slots=True)
class Suite:
    """The cases of a suite, in file order, and its configuration."""

    path: Path
    cases: list[Case] = field(default_factory=list)
    config: SuiteConfig = field(default_factory=SuiteConfig)

    @property
    def name(self) -> str:
        return self.config.name or self.path.stem


def _merge_defaults(raw: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    out = {**defaults, **raw}
    common, own = defaults.get("tags"), raw.get("tags")
    if isinstance(common, list) and isinstance(own, list):  # else validation says what is wrong
        out["tags"] = list(dict.fromkeys([*common, *own]))
    return out


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping of keys every case gets, not {value!r:.80}")
    return value


def read_text(path: Path) -> str:
    """The text of a file someone gave (UTF-8, a byte-order mark skipped), its line ends
    as they are (a \\r inside a JSON string stays one); :class:`ConfigError` if it
    cannot be read."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})"
        ) from None


def parse_error(exc: Exception) -> str:
    """A YAML or JSON parse error as one line: ``line L, column C: problem``."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        what = " ".join(str(x) for x in (exc.context, exc.problem) if x)
        return f"line {mark.line + 1}, column {mark.column + 1}: {what}"
    if isinstance(exc, json.JSONDecodeError):
        return f"line {exc.lineno}, column {exc.colno}: {exc.msg}"
    return " ".join(str(exc).split())


def parse_cases(data: Any, *, source: str, defaults: dict[str, Any] | None = None) -> list[Case]:
    """Cases from parsed YAML/JSON: one case, a list, or ``{cases: [...], defaults: {...}}``."""
    defaults = dict(defaults or {})
    if isinstance(data, dict) and "cases" in data:
        extra = set(data) - {"cases", "defaults"}
        if extra:
            raise ConfigError(f"{source}: unknown top-level key(s) {sorted(extra)}")
        defaults.update(_mapping(data.get("defaults"), f"{source}: defaults"))
        data = data["cases"]
    if "tags" in defaults and not isinstance(defaults["tags"], list):
        raise ConfigError(
            f"{source}: defaults.tags must be a list of tags, not {defaults['tags']!r:.80}"
        )
    items = data if isinstance(data, list) else [data]
    cases: list[Case] = []
    for n, raw in enumerate(items):
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: case #{n + 1} is not a mapping")
        try:
            cases.append(Case.model_validate(_merge_defaults(raw, defaults)))
        except ValidationError as exc:
            who = raw.get("id") or f"#{n + 1}"
            detail = problems(exc, root="(case)")
            raise ConfigError(f"{source}: case {who}: {detail}") from None
    return cases


class _NoAliases(yaml.SafeLoader):
    """Safe YAML without anchors and aliases: a few lines of aliases can expand to
    gigabytes (the "billion laughs"), and case files have no need for them."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]  # reason: PyYAML is untyped
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in case files", event.start_mark
            )
        return super().compose_node(parent, index)


def _yaml(text: str) -> Any:
    return yaml.load(text, Loader=_NoAliases)


def _read(path: Path, defaults: dict[str, Any]) -> list[Case]:
    text = read_text(path)
    if path.suffix == ".jsonl":
        cases: list[Case] = []
        for line_no, data in parse_jsonl(text, source=str(path)):
            cases += parse_cases(data, source=f"{path}:{line_no}", defaults=defaults)
        return cases
    try:
        data = _yaml(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise ConfigError(f"{path}: cannot be parsed ({parse_error(exc)})") from None
    if data is None:
        return []
    return parse_cases(data, source=str(path), defaults=defaults)


def load_suite(path: str | Path) -> Suite:
    """Read a case file, or every case file under a folder (sorted), with its ``suite.yaml``."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"no eval suite at {p}: give a case file or a folder of them")
    config = SuiteConfig()
    files: list[Path]
    if p.is_dir():
        conf = p / "suite.yaml"
        if conf.exists():
            try:
                config = SuiteConfig.model_validate(_yaml(read_text(conf)) or {})
            except (ValidationError, yaml.YAMLError) as exc:
                if isinstance(exc, ValidationError):
                    detail = problems(exc, root="(file)")
                else:
                    detail = f"cannot be parsed ({parse_error(exc)})"
                raise ConfigError(f"{conf}: {detail}") from None
        files = sorted(
            f
            for f in p.rglob("*")
            if f.suffix in _CASE_SUFFIXES and f.name != "suite.yaml" and f.is_file()
        )
    else:
        files = [p]
    suite = Suite(path=p, config=config)
    seen: dict[str, Path] = {}
    for f in files:
        for case in _read(f, config.defaults):
            if case.id in seen:
                raise ConfigError(f"{f}: case id {case.id!r} is already used in {seen[case.id]}")
            seen[case.id] = f
            suite.cases.append(case)
    if not suite.cases:
        raise ConfigError(f"{p}: no cases found (files ending in {', '.join(_CASE_SUFFIXES)})")
    return suite
