"""How rules are written: the :class:`Rule` record, the noisy-OR, and pattern helpers."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "CATEGORIES",
    "EX",
    "FD",
    "IO",
    "PE",
    "RH",
    "TC",
    "Rule",
    "alt",
    "combine",
    "gap",
    "rule",
]

CATEGORIES = (
    "instruction-override",
    "role-hijack",
    "prompt-extraction",
    "tool-coercion",
    "fake-delimiters",
    "exfiltration",
    "task-hijack",
    "code-payload",
    "obfuscation",
)


@dataclass(frozen=True, slots=True)
class Rule:
    """One signal: ``pattern`` runs on lower-cased text only when every group of ``needs`` is met.

    A group is met when one of its words starts a word of the text (compared on
    their first five characters: ``ignor`` meets "ignore", "ignoring",
    "ignoriere") or one of its literals (written ``=...``) occurs in it.
    ``tool_only`` rules run on tool output and never on user input (a request
    that is normal from the user is out of place in a document).
    """

    name: str
    category: str
    weight: float
    pattern: re.Pattern[str]
    needs: tuple[tuple[str, ...], ...]
    tool_only: bool = False


def combine(weights: Iterable[float]) -> float:
    """Noisy-OR: the chance that at least one independent signal is right."""
    miss = 1.0
    for w in weights:
        miss *= 1.0 - w
    return 1.0 - miss


def alt(*words: str) -> str:
    return "(?:" + "|".join(words) + ")"


# Between words of one phrase: anything but a letter or the end of a sentence, so that a
# phrase never spans two sentences ("... override it. A system prompt is ...").
_SEP = r"(?:[^\w.!?\n]|\.(?=\S))+"


def gap(n: int) -> str:
    """Up to ``n`` words between two parts of a phrase, within one sentence."""
    return rf"{_SEP}(?:[\w'’-]+{_SEP}){{0,{n}}}?"


def rule(
    name: str, category: str, weight: float, pattern: str, *needs: str, tool_only: bool = False
) -> Rule:
    """A rule. ``\\W+`` in ``pattern`` means a separator within one sentence (:data:`_SEP`);
    each of ``needs`` is a group of anchors separated by ``|``."""
    compiled = re.compile(pattern.replace(r"\W+", _SEP), re.DOTALL)
    groups = tuple(tuple(n.split("|")) for n in needs)
    return Rule(name, category, weight, compiled, groups, tool_only)


IO = "instruction-override"
RH = "role-hijack"
PE = "prompt-extraction"
TC = "tool-coercion"
FD = "fake-delimiters"
EX = "exfiltration"
