"""Loading a suite: case files (YAML or JSONL), a folder of them, and its ``suite.yaml``.

Errors say which file, which case and which key: a golden set with a typo
must fail loudly, never test nothing.
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

__all__ = ["Suite", "load_suite", "parse_cases"]

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
    if "tags" in defaults and "tags" in raw:
        out["tags"] = list(dict.fromkeys([*defaults["tags"], *raw["tags"]]))
    return out


def parse_cases(data: Any, *, source: str, defaults: dict[str, Any] | None = None) -> list[Case]:
    """Cases from parsed YAML/JSON: one case, a list, or ``{cases: [...], defaults: {...}}``."""
    defaults = dict(defaults or {})
    if isinstance(data, dict) and "cases" in data:
        extra = set(data) - {"cases", "defaults"}
        if extra:
            raise ConfigError(f"{source}: unknown top-level key(s) {sorted(extra)}")
        defaults.update(data.get("defaults") or {})
        data = data["cases"]
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


def _read(path: Path, defaults: dict[str, Any]) -> list[Case]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        cases: list[Case] = []
        for line_no, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError as exc:
                raise ConfigError(f"{path}:{line_no}: not valid JSON ({exc})") from None
            cases += parse_cases(data, source=f"{path}:{line_no}", defaults=defaults)
        return cases
    try:
        data = yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else json.loads(text)
    except (yaml.YAMLError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot be parsed ({exc})") from None
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
                config = SuiteConfig.model_validate(yaml.safe_load(conf.read_text()) or {})
            except (ValidationError, yaml.YAMLError) as exc:
                if isinstance(exc, ValidationError):
                    detail = problems(exc, root="(case)")
                else:
                    detail = str(exc)
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
