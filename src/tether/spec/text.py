"""Text compared as a person reads it: the one normal form for finding one text in another.

Checks that look for a text inside another (a leaked system prompt in an
answer, an argument value copied from an email, a spoofed closing marker)
must not be fooled by characters a reader does not see or does not tell
apart. :func:`fold` maps a text to the form those checks compare:

- Unicode compatibility forms are folded (NFKC): fullwidth less-than (U+FF1C) is ``<``,
  ``ﬁ`` is ``fi``, superscript digits are digits;
- format characters are dropped (Unicode category ``Cf``: zero-width space
  and joiners, soft hyphen, bidi controls, word joiner, byte-order mark),
  and so are other invisible fillers (the Hangul and Mongolian fillers,
  combining grapheme joiner, variation selectors);
- case is folded (``casefold``, so ``ß`` matches ``ss``);
- runs of whitespace, Unicode line separators included, become one space.

:func:`squash` goes further and drops whitespace altogether, for checks
where an attacker may remove or replace the spaces between words.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["INVISIBLE_CLASS", "fold", "invisible", "squash", "strip_invisible"]

# The characters a reader does not see: Unicode category Cf (format: zero-width
# space and joiners, soft hyphen, bidi controls, word joiner, byte-order mark,
# the tag characters of "ASCII smuggling"), plus invisible characters of other
# categories (Hangul and Mongolian fillers, the combining grapheme joiner,
# variation selectors). Written out (Unicode 14, Python 3.11) so the check is
# one regex: tests/spec/test_text.py keeps it equal to unicodedata's Cf set.
INVISIBLE_CLASS = (
    "\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2"
    "\u115f-\u1160\u17b4-\u17b5\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U00013438\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f\U000e0100-\U000e01ef"
)
_INVISIBLE = re.compile(f"[{INVISIBLE_CLASS}]")
_SPACE = re.compile(r"\s+")


def invisible(ch: str) -> bool:
    """Whether ``ch`` renders as nothing (a format character or a filler)."""
    return _INVISIBLE.match(ch) is not None or unicodedata.category(ch) == "Cf"


def strip_invisible(text: str) -> str:
    """``text`` without the characters a reader does not see."""
    if text.isascii():
        return text
    return _INVISIBLE.sub("", text)


def fold(text: str) -> str:
    """``text`` in the form checks compare (see the module docstring)."""
    if text.isascii():
        return " ".join(text.lower().split())
    text = strip_invisible(unicodedata.normalize("NFKC", strip_invisible(text)))
    return " ".join(text.casefold().split())


def squash(text: str) -> str:
    """:func:`fold` with every space removed (words joined or split by invisible tricks)."""
    return "".join(fold(text).split())
