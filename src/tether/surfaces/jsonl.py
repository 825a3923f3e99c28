"""Reading JSON Lines: one JSON value per line, lines split on ``\\n`` and nothing else.

``str.splitlines()`` also splits on ``\\r``, ``\\v``, ``\\f``, ``\\x1c``-``\\x1e``,
``\\x85``, U+2028 and U+2029, and JSON may carry several of those inside a
string: U+2028, U+2029 and U+0085 need no escape at all (``json.dumps(...,
ensure_ascii=False)`` writes them as they are), so a valid file read with
``splitlines()`` is cut in the middle of a string and fails to parse. Here a
record ends at ``\\n`` only; a ``\\r`` before it (Windows line ends) is
whitespace to JSON. Control characters that some writers leave unescaped
inside strings (``\\v``, ``\\f``, ``\\x1c``...) are accepted too. A UTF-8
byte-order mark at the start is skipped; blank lines are skipped.

Errors name the source and the line (``cases.jsonl:3: not valid JSON
(Expecting ',' delimiter, column 17)``), as
:class:`~tether.exceptions.ConfigError`: a file of records is input someone
wrote, and can fix.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tether.exceptions import ConfigError

__all__ = ["iter_lines", "parse_jsonl"]

_BOM = "\ufeff"


def iter_lines(text: str) -> Iterator[tuple[int, str]]:
    """The non-blank lines of ``text`` with their numbers (from 1), split on ``\\n`` only."""
    for number, line in enumerate(text.removeprefix(_BOM).split("\n"), start=1):
        if line.strip():
            yield number, line


def parse_jsonl(text: str, *, source: str) -> list[tuple[int, Any]]:
    """Each non-blank line of ``text`` parsed as JSON, with its line number.

    Raises :class:`ConfigError` naming ``source`` and the line of the first
    line that is not JSON.
    """
    records: list[tuple[int, Any]] = []
    for number, line in iter_lines(text):
        try:
            records.append((number, json.loads(line, strict=False)))
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{source}:{number}: not valid JSON ({exc.msg}, column {exc.colno})"
            ) from None
        except RecursionError:
            raise ConfigError(f"{source}:{number}: JSON nested too deeply") from None
        except ValueError as exc:  # a number of more than 4,300 digits, and the like
            raise ConfigError(f"{source}:{number}: not valid JSON ({exc})"[:300]) from None
    return records
