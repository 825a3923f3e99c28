"""The public development data (``../shared/data/injection/``), read and split deterministically.

Neither file is copied into this repository; both are read at run time when present.

- **deepset** (``deepset_train.jsonl``): direct attacks. Split by a hash of
  the text: ``crc32(text) % 10 < 3`` is held out (30%), the rest is dev.
- **BIPIA** (``bipia_train.jsonl``): emails, tables and code snippets, each
  once clean (label 0) and once with one attack inserted at its start,
  middle or end (label 1). Split two ways at once:

  1. by *carrier*: a line's group is its clean text (an attacked line is
     matched to the clean line it was made from: the clean text is its
     prefix and suffix around the inserted attack). ``crc32(clean) % 10 < 3``
     is a held-out carrier, so the clean and attacked versions of one email
     always land on the same side, and a carrier repeated with several
     attacks never straddles the split;
  2. by *attack category*: the categories fall into four families (questions
     and tasks unrelated to the carrier, content to slip into the answer,
     ways to garble the answer, code to plant). In each family the categories
     with the lowest ``crc32(name)`` are held out (2 of 5, 3 of 10):
     :data:`HELDOUT_CATEGORIES`. Their attacks are never used for tuning,
     on any carrier.

  ``bipia("dev")`` is dev carriers with dev-category attacks (and those
  carriers' clean versions); ``bipia("heldout")`` is every held-out carrier,
  clean and attacked, each attacked row marked ``seen`` (its category was
  tuned on) or not. The honest figure is recall on the ``unseen`` rows.

JSON Lines are split on ``"\\n"`` only: the texts contain U+2028 and other
characters that :meth:`str.splitlines` would also break on.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

__all__ = [
    "BIPIA",
    "DEEPSET",
    "FAMILIES",
    "HELDOUT_CATEGORIES",
    "bipia",
    "deepset",
    "group_carriers",
    "read_jsonl",
]

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "injection"
DEEPSET = DATA / "deepset_train.jsonl"
BIPIA = DATA / "bipia_train.jsonl"

#: BIPIA's attack categories by family (our grouping, fixed before any tuning).
FAMILIES: dict[str, tuple[str, ...]] = {
    "task": (
        "Information Retrieval", "Content Creation", "Learning and Tutoring",
        "Language Translation", "Programming Help",
    ),
    "content": (
        "Instruction", "Persuasion", "Social Interaction", "Clickbait", "Malware Distribution",
    ),
    "format": (
        "Alphanumeric Substitution", "Homophonic Substitution", "Anagramming",
        "Misspelling Intentionally", "Space Removal & Grouping",
    ),
    "code": (
        "Cryptocurrency Mining", "Sending Out Spam Emails", "Exploiting System Vulnerabilities",
        "Memory Scanning", "Cookie Theft", "Dumpster Diving", "Crippling Critical Infrastructures",
        "Network Propagation", "Environment Variable Analysis", "Device and Driver Enumeration",
    ),
}  # fmt: skip


def _crc(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def _held_out_categories() -> frozenset[str]:
    out: set[str] = set()
    for names in FAMILIES.values():
        ranked = sorted(names, key=_crc)
        out.update(ranked[: 3 if len(names) >= 10 else 2])
    return frozenset(out)


#: Attack categories never tuned on: the lowest-hash 2 of 5 (3 of 10) of each family.
HELDOUT_CATEGORIES = _held_out_categories()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON Lines file, split on ``\\n`` only (texts may hold U+2028)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]


def _spread(rows: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    if limit is None or len(rows) <= limit:
        return rows
    step = len(rows) / limit
    return [rows[int(i * step)] for i in range(limit)]


def deepset(split: str, limit: int | None = None, path: Path = DEEPSET) -> list[dict[str, Any]]:
    """deepset rows of ``split`` (``dev`` or ``heldout``); ``[]`` when the file is absent."""
    if not path.exists():
        return []
    rows = [r for r in read_jsonl(path) if (_crc(r["text"]) % 10 < 3) == (split == "heldout")]
    return _spread(rows, limit)


def _made_from(clean: str, attacked: str) -> bool:
    """Whether ``attacked`` is ``clean`` with one run of text inserted somewhere."""
    if len(attacked) <= len(clean):
        return False
    head = 0
    limit = len(clean)
    while head < limit and clean[head] == attacked[head]:
        head += 1
    tail = 0
    while tail < limit - head and clean[-1 - tail] == attacked[-1 - tail]:
        tail += 1
    return head + tail == len(clean)


def group_carriers(rows: list[dict[str, Any]]) -> list[str | None]:
    """Each row's clean carrier text (``None`` for an attacked row no clean row explains)."""
    clean = sorted({r["text"] for r in rows if r["label"] == 0}, key=len, reverse=True)
    key = 24
    by_head: dict[str, list[str]] = {}
    by_tail: dict[str, list[str]] = {}
    for text in clean:
        by_head.setdefault(text[:key], []).append(text)
        by_tail.setdefault(text[-key:], []).append(text)
    out: list[str | None] = []
    for row in rows:
        text = row["text"]
        if row["label"] == 0:
            out.append(text)
            continue
        candidates = [*by_head.get(text[:key], ()), *by_tail.get(text[-key:], ())]
        found = [c for c in candidates if _made_from(c, text)]
        if not found:  # a carrier shorter than the keys, the attack inside both: look at all
            found = [c for c in clean if _made_from(c, text)]
        out.append(max(found, key=len) if found else None)
    return out


def bipia(split: str, limit: int | None = None, path: Path = BIPIA) -> list[dict[str, Any]]:
    """BIPIA rows of ``split``, each with ``family`` and ``seen`` added (see the module docs).

    ``[]`` when the file is absent. An attacked row whose carrier cannot be
    found is dropped rather than guessed.
    """
    if not path.exists():
        return []
    rows = read_jsonl(path)
    out: list[dict[str, Any]] = []
    family_of = {c: f for f, names in FAMILIES.items() for c in names}
    for row, carrier in zip(rows, group_carriers(rows), strict=True):
        if carrier is None:
            continue
        held_carrier = _crc(carrier) % 10 < 3
        category = row.get("attack_category")
        seen = category not in HELDOUT_CATEGORIES
        if split == "dev" and (held_carrier or (row["label"] == 1 and not seen)):
            continue
        if split == "heldout" and not held_carrier:
            continue
        out.append({**row, "family": family_of.get(category) if category else None, "seen": seen})
    return _spread(out, limit)
