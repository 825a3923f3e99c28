"""Normalising text before it is scanned, and decoding what hides an attack.

Two steps, both pure functions:

- :func:`normalize` makes look-alike text match: Unicode NFKC (fullwidth and
  mathematical letters become plain ones), zero-width, bidi and other
  invisible characters removed, stray combining marks dropped, Cyrillic and
  Greek look-alikes mapped to Latin where they sit among Latin letters,
  literal ``\\n`` escapes made newlines, runs of spaces collapsed to one
  space and runs of blank lines to one newline. It
  returns the text and the names of the obfuscation steps that changed it.
- :func:`decode` finds wrappers and returns what they hold, each as a
  :class:`Variant` that remembers where in the original it came from:
  base64 and hex runs that decode to mostly printable text, URL-encoded
  (``%xx``) tokens, HTML character references, Unicode tag characters
  (U+E0000 block: invisible ASCII), rot13 and reversed text (only when the
  decoding would contain a trigger word, so ordinary text costs nothing),
  leetspeak tokens and letters spaced apart (``i g n o r e``).

:func:`variants` is both: the normalised text first, then every decoding.
A detector scans them all and says which decoding revealed an attack.
Nothing here knows about attacks beyond the short list of trigger words that
decides whether rot13 or reversing is worth a look.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import html
import re
import unicodedata
import urllib.parse
from dataclasses import dataclass

__all__ = ["Variant", "decode", "normalize", "variants"]


@dataclass(frozen=True, slots=True)
class Variant:
    """One reading of the input: the text to scan and where it came from.

    ``decoded_by`` names the decoding (``()`` for the plain text; several
    names when normalising a decoding also undid an obfuscation).
    ``start``/``end`` is the slice of the original text it was decoded from.
    ``aligned`` means offsets in ``text`` are offsets from ``start`` in the
    original (the decoding kept every character in place).
    """

    text: str
    decoded_by: tuple[str, ...]
    start: int
    end: int
    aligned: bool = False


# -- normalisation --------------------------------------------------------------------------

_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180e\u200b-\u200f"
    "\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0]"
)
# Invisible characters inside a word hide it from matching; elsewhere they are mostly benign
# (soft hyphens, joiners in emoji), so only these count as an obfuscation.
_HIDING = re.compile("\\w[\u200b-\u200d\u2060-\u2064\ufeff\u180e\u034f]+\\w")
# Fullwidth, mathematical, enclosed and small-capital letters: what NFKC undoes to hide words.
_STYLED = re.compile(
    "[\uff01-\uff5e\U0001d400-\U0001d7ff\u2460-\u24ff\U0001f130-\U0001f189\u1d00-\u1d2b]"
)
_TAGS = re.compile("[\U000e0000-\U000e007f]+")
_COMBINING = re.compile("[\u0300-\u036f\u0489\u1ab0-\u1aff\u20d0-\u20ff]+")
_SPACES = re.compile(r"[^\S\n]+")
_NEWLINES = re.compile(r" ?\n\s*")

# Cyrillic and Greek letters that look like Latin ones (lower and upper case).
_GLYPHS = {
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o",
    "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i",
    "ј": "j", "ԁ": "d", "ԛ": "q", "ԝ": "w", "һ": "h", "ӏ": "l", "ɡ": "g", "ь": "b",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
    "С": "C", "Т": "T", "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J", "Ԁ": "D",
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "γ": "y", "ω": "w",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M",
    "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
}  # fmt: skip
_GLYPH_TABLE = str.maketrans(_GLYPHS)
_NON_LATIN = re.compile("[\u0370-\u03ff\u0400-\u052f]")
_LATIN = re.compile("[A-Za-z]")
# A word that mixes Latin letters with look-alikes is disguised, whatever the rest says.
_MIXED_WORD = re.compile(
    "(?=[^\\W\\d_]*[A-Za-z])(?=[^\\W\\d_]*[" + "".join(_GLYPHS) + "])[^\\W\\d_]+"
)


def _map_glyphs(text: str) -> str:
    latin = len(_LATIN.findall(text))
    other = len(_NON_LATIN.findall(text))
    if latin >= 4 * other:  # Latin text with a few look-alikes in it: map them all
        return text.translate(_GLYPH_TABLE)
    # Real Cyrillic or Greek text: map only the words that mix scripts.
    return _MIXED_WORD.sub(lambda m: m.group().translate(_GLYPH_TABLE), text)


def normalize(text: str) -> tuple[str, tuple[str, ...]]:
    """The text made comparable, and the obfuscations undone on the way.

    The steps reported are ``unicode-tags``, ``zero-width`` (invisible
    characters inside a word), ``nfkc`` (styled letters: fullwidth,
    mathematical, enclosed), ``combining-marks`` and ``homoglyphs``, each
    only when it changed something. Whitespace is always collapsed and not
    reported, nor is NFKC folding ordinary compatibility characters.
    """
    steps: list[str] = []
    if not text.isascii():
        stripped = _TAGS.sub("", text)
        if stripped != text:
            steps.append("unicode-tags")
        if _HIDING.search(stripped):
            steps.append("zero-width")
        text = _INVISIBLE.sub("", stripped)
        if not unicodedata.is_normalized("NFKC", text):
            if _STYLED.search(text):
                steps.append("nfkc")
            text = unicodedata.normalize("NFKC", text)
        marked = _COMBINING.sub("", text)
        if marked != text:
            steps.append("combining-marks")
            text = marked
        if _NON_LATIN.search(text):
            mapped = _map_glyphs(text)
            if mapped != text:
                steps.append("homoglyphs")
                text = mapped
    if "\\" in text:  # literal escapes, as pasted from a JSON string or a log
        text = text.replace("\\n", "\n").replace("\\r", "\n").replace("\\t", " ")
    return _NEWLINES.sub("\n", _SPACES.sub(" ", text)).strip(), tuple(steps)


# -- decoders -------------------------------------------------------------------------------

_B64 = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{16,}={0,2}")
_HEX = re.compile(r"(?<![0-9A-Za-z])(?:\\x|0x)?(?:[0-9a-fA-F]{2}(?:\\x|[ :])?){8,}(?![0-9A-Za-z])")
_URL_TOKEN = re.compile(r"\S*%[0-9a-fA-F]{2}\S*")
_URL_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")
_NUMERIC_ENTITY = re.compile(r"&#(?:[0-9]{2,7}|[xX][0-9a-fA-F]{2,6});")
_SPACED = re.compile(r"(?<!\S)(?:[^\W\d_] {1,2}){5,}[^\W\d_](?!\S)")
# A whole word (not part of a URL or an escape) mixing letters with digits that stand for them.
_LEET_TOKEN = re.compile(
    r"(?<![^\s(\"'])(?=[a-zA-Z0-9@$!|]*[a-zA-Z])(?=[a-zA-Z0-9@$!|]*[0134578@$][a-zA-Z@$])"
    r"[a-zA-Z0-9@$!|]{3,}(?=[\s.,;:!?)\"']|$)"
)
_LEET = str.maketrans("0134578@$!|", "oieastbasil")
_PRINTABLE_JUNK = re.compile(r"[^\w\s.,;:!?'\"()\[\]{}<>@#$%&*+=/\\|~`^-]")

# Words whose rot13 or reverse in a text makes decoding it worth a look.
_TRIGGERS = (
    "ignore", "instruction", "previous", "prompt", "system", "forget", "disregard",
    "pretend", "jailbreak", "reveal", "password", "assistant", "override", "rules",
    "anweisung", "vergiss", "secret", "execute", "forward", "previous", "customer",
    "vorherig", "regeln", "instrucciones", "reglas", "olvida", "ignora", "consignes",
    "administrat", "passwort",
)  # fmt: skip
# A text that asks for a decoding gets it, trigger words or not.
_ASKS = re.compile(r"rot-?13|backwards|reversed|in reverse|rückwärts|à l'envers|al revés|leet")
_TRIGGER = re.compile("|".join(_TRIGGERS))
_ROT13_HINT = re.compile("|".join(codecs.encode(w, "rot13") for w in _TRIGGERS))
_REVERSED_HINT = re.compile("|".join(w[::-1] for w in _TRIGGERS if len(w) > 5))


def _readable(raw: bytes) -> str | None:
    """The bytes as text if they are mostly printable words, else None."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(text) < 8 or (
        not text.isprintable()
        and text.count("\n") + text.count("\t") < len([c for c in text if not c.isprintable()])
    ):
        return None
    letters = sum(c.isalpha() for c in text)
    junk = len(_PRINTABLE_JUNK.findall(text)) - sum(not c.isascii() and c.isalpha() for c in text)
    if letters < 0.5 * len(text) or junk > 0.1 * len(text) or " " not in text.strip():
        return None
    return text


def _base64(text: str) -> list[Variant]:
    found: list[Variant] = []
    for m in _B64.finditer(text):
        run = m.group().replace("-", "+").replace("_", "/").rstrip("=")
        if len(run) % 4 == 1:
            continue
        try:
            raw = base64.b64decode(run + "=" * (-len(run) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        decoded = _readable(raw)
        if decoded is not None:
            found.append(Variant(decoded, ("base64",), m.start(), m.end()))
    return _joined(found, "base64")


def _joined(found: list[Variant], name: str) -> list[Variant]:
    """Adjacent runs (a base64 payload wrapped over lines) as one decoding, plus the pieces."""
    if len(found) < 2:
        return found
    text = "".join(v.text for v in found)
    return [*found, Variant(text, (name,), found[0].start, found[-1].end)]


def _hex(text: str) -> list[Variant]:
    found: list[Variant] = []
    for m in _HEX.finditer(text):
        digits = re.sub(r"\\x|0x|[ :]", "", m.group())
        if len(digits) % 2:
            digits = digits[:-1]
        decoded = _readable(bytes.fromhex(digits))
        if decoded is not None:
            found.append(Variant(decoded, ("hex",), m.start(), m.end()))
    return found


def _url(text: str) -> list[Variant]:
    tokens = [m for m in _URL_TOKEN.finditer(text) if len(_URL_ESCAPE.findall(m.group())) >= 2]
    if not tokens:
        return []
    decoded = " ".join(urllib.parse.unquote_plus(m.group()) for m in tokens)
    return [Variant(decoded, ("url",), tokens[0].start(), tokens[-1].end())]


def _entities(text: str) -> list[Variant]:
    if len(_NUMERIC_ENTITY.findall(text)) < 3 and "&lt;" not in text:
        return []
    return [Variant(html.unescape(text), ("html-entities",), 0, len(text))]


def _tag_text(original: str) -> list[Variant]:
    found: list[Variant] = []
    for m in _TAGS.finditer(original):
        hidden = "".join(chr(ord(c) - 0xE0000) for c in m.group() if ord(c) < 0xE007F)
        if len(hidden.strip()) >= 4:
            found.append(Variant(hidden, ("unicode-tags",), m.start(), m.end()))
    return found


def _rot13(text: str) -> list[Variant]:
    low = text.lower()
    if not _ROT13_HINT.search(low) and not ("rot" in low and _ASKS.search(low)):
        return []
    return [Variant(codecs.encode(text, "rot13"), ("rot13",), 0, len(text), aligned=True)]


def _reversed(text: str) -> list[Variant]:
    low = text.lower()
    if not _REVERSED_HINT.search(low) and not _ASKS.search(low):
        return []
    return [Variant(text[::-1], ("reversed",), 0, len(text))]


def _leet(text: str) -> list[Variant]:
    tokens = _LEET_TOKEN.findall(text)
    if len(tokens) < 2:
        return []
    dense = len(tokens) >= 4 and len(tokens) >= 0.3 * len(text.split())
    if not dense and not _TRIGGER.search(" ".join(tokens).lower().translate(_LEET)):
        return []
    mapped = _LEET_TOKEN.sub(lambda m: m.group().lower().translate(_LEET), text)
    return [Variant(mapped, ("leetspeak",), 0, len(text), aligned=True)]


def _spaced(text: str) -> list[Variant]:
    runs = list(_SPACED.finditer(text))
    if not runs:
        return []
    joined = " ".join(
        re.sub(" {2,}", "\0", m.group()).replace(" ", "").replace("\0", " ") for m in runs
    )
    return [Variant(joined, ("spaced-letters",), runs[0].start(), runs[-1].end())]


_DECODERS = (_base64, _hex, _url, _entities, _rot13, _reversed, _leet, _spaced)


def decode(text: str, *, max_chars: int | None = None) -> list[Variant]:
    """Every wrapped payload found in ``text``, decoded (not normalised).

    ``max_chars`` bounds the total decoded text (default: four times the
    input plus 4 KB), so a hostile input cannot make scanning explode.
    """
    budget = max_chars if max_chars is not None else 4 * len(text) + 4096
    found: list[Variant] = []
    if not text.isascii():
        found.extend(_tag_text(text))
    for decoder in _DECODERS:
        for variant in decoder(text):
            budget -= len(variant.text)
            if budget < 0:
                return found
            found.append(variant)
    return found


def variants(text: str) -> list[Variant]:
    """The normalised text, then each decoding of it (normalised too).

    A decoding is itself decoded once more (base64 inside URL-encoding...),
    but no deeper.
    """
    plain, steps = normalize(text)
    out = [Variant(plain, steps, 0, len(text))]
    seen = {plain}
    for first in decode(text):
        for variant in (first, *decode(first.text, max_chars=4 * len(first.text))):
            clear, more = normalize(variant.text)
            if clear in seen:
                continue
            seen.add(clear)
            names = (*first.decoded_by, *(n for n in variant.decoded_by if variant is not first))
            out.append(Variant(clear, (*names, *more), first.start, first.end, first.aligned))
    return out
