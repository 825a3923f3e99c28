"""``tether.spec.text``: the one normal form the leak, marker and provenance checks compare."""

from __future__ import annotations

import re
import sys
import unicodedata

import pytest

from tether.spec.text import INVISIBLE_CLASS, fold, invisible, squash, strip_invisible

_CLASS = re.compile(f"[{INVISIBLE_CLASS}]")


def test_the_written_out_class_holds_every_format_character() -> None:
    # The class is written out so the check is one regex; it must not fall behind
    # the Unicode database of the Python that runs it.
    missing = [
        f"U+{c:04X}"
        for c in range(sys.maxunicode + 1)
        if unicodedata.category(chr(c)) == "Cf" and not _CLASS.match(chr(c))
    ]
    assert missing == []


@pytest.mark.parametrize(
    "ch", ["\u200b", "\u00ad", "\u202e", "\u2066", "\ufeff", "\U000e0041", "\u180b", "\u2800"]
)
def test_invisible_characters_are_dropped(ch: str) -> None:
    assert invisible(ch)
    assert strip_invisible(f"can{ch}celled") == "cancelled"
    assert fold(f"CAN{ch}CELLED") == "cancelled"


def test_visible_text_is_kept() -> None:
    for text in ["café", "日本語", "Ünïcödé", "emoji ✅"]:
        assert strip_invisible(text) == text


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("\uff1c/untrusted\u2010data\uff1e", "</untrusted-data>"),  # fullwidth, hyphen
        ("c\u0430nc\u0435lled", "cancelled"),  # Cyrillic a and e
        ("collect\u3002evil\u3002example", "collect.evil.example"),  # ideographic full stop
        ("Stra\u00dfe  \u2028 NEXT", "strasse next"),  # casefold, separators are spaces
        ("\ufb01le", "file"),  # a ligature
    ],
)
def test_fold(text: str, folded: str) -> None:
    assert fold(text) == folded


def test_squash_drops_every_space() -> None:
    assert squash("The quick\u2028brown\u200b fox") == "thequickbrownfox"
    assert squash("the quick brown fox") == squash("THE\nquick brown\tfox")
