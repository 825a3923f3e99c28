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
- case is folded (``casefold``, so ``ß`` matches ``ss``), and common
  look-alikes from other scripts become the Latin letter they imitate
  (Cyrillic a, Greek omicron), as do look-alikes of ``<``, ``/``, ``-``
  and the ideographic full stop;
- runs of whitespace, Unicode line separators included, become one space.

:func:`squash` goes further and drops whitespace altogether, for checks
where an attacker may remove or replace the spaces between words.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["CONFUSABLES", "INVISIBLE_CLASS", "fold", "invisible", "squash", "strip_invisible"]

# The characters a reader does not see: Unicode category Cf (format: zero-width
# space and joiners, soft hyphen, bidi controls, word joiner, byte-order mark,
# the tag characters of "ASCII smuggling"), plus invisible characters of other
# categories (Hangul and Mongolian fillers, the combining grapheme joiner,
# variation selectors, the braille blank). Written out (Unicode 14, Python 3.11) so the check is
# one regex: tests/spec/test_text.py keeps it equal to unicodedata's Cf set.
INVISIBLE_CLASS = (
    "\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2"
    "\u115f-\u1160\u17b4-\u17b5\u180b-\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb"
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


# Letters of other scripts that look like Latin ones (a small skeleton in the
# spirit of Unicode's confusables: Cyrillic and Greek lower case after casefold),
# and look-alikes of the punctuation that matters to the checks.
CONFUSABLES = str.maketrans(
    {
        "\u0430": "a", "\u0435": "e", "\u043e": "o", "\u0440": "p", "\u0441": "c",
        "\u0443": "y", "\u0445": "x", "\u0455": "s", "\u0456": "i", "\u0458": "j",
        "\u04cf": "l", "\u0501": "d", "\u051b": "q", "\u051d": "w", "\u0442": "t",
        "\u043d": "h", "\u0432": "b", "\u043c": "m", "\u043a": "k", "\u0433": "r",
        "\u03b1": "a", "\u03b5": "e", "\u03bf": "o", "\u03c1": "p", "\u03c4": "t",
        "\u03bd": "v", "\u03ba": "k", "\u03b9": "i", "\u03c5": "u", "\u03c7": "x",
        "\u3002": ".", "\uff61": ".",
        "\u2215": "/", "\u2044": "/", "\u29f8": "/",
        "\u02c2": "<", "\u1438": "<", "\u2039": "<", "\u3008": "<", "\u27e8": "<",
        "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
        "\u2015": "-", "\u2212": "-", "\u2043": "-", "\u02d7": "-", "\u058a": "-",
    }
)  # fmt: skip


def fold(text: str) -> str:
    """``text`` in the form checks compare (see the module docstring)."""
    if text.isascii():
        return " ".join(text.lower().split())
    text = strip_invisible(unicodedata.normalize("NFKC", strip_invisible(text)))
    return " ".join(text.casefold().translate(CONFUSABLES).split())


def squash(text: str) -> str:
    """:func:`fold` with every space removed (words joined or split by invisible tricks)."""
    return "".join(fold(text).split())
