"""Build the prompt-injection corpus (``bench/injection/*.jsonl``) from the hand-written sources.

The sources under ``sources/{dev,heldout}/`` are plain text, one item a line:

- ``attacks.txt``     ``lang | category | text``: direct attacks (user input);
- ``benign.txt``      ``lang | text``: benign user messages, many of them look-alikes
  (they mention "ignore", "system", "instructions", passwords...);
- ``planted.txt``     ``lang | category | text``: attacks written to sit inside tool output;
- ``paragraphs.txt``  ``genre | text``: benign paragraphs (emails, bills, help articles,
  product pages, web pages, reviews...) that documents are assembled from;
- ``lookalike_tool.txt``  ``genre | text``: whole benign tool outputs that look like
  buried task requests (support tickets that ask questions, FAQs, code docs that say
  "add the following snippet to your page", emails that ask for something "in your
  reply"); ``\n`` in the text is a new line.

This script writes, for each split:

- ``direct_{split}.jsonl``: every attack and benign message as written, plus an
  encoded copy of some of them (base64, hex, rot13, URL, HTML entities,
  zero-width characters, Unicode tags, homoglyphs, leetspeak, reversed), so the
  decoders are measured on benign encoded text too;
- ``tool_{split}.jsonl``: benign tool outputs (documents of 0.2-25 KB assembled
  from the paragraphs, with the noise real tool output has: tracking pixels,
  base64 attachments, hashes, URL-encoded links, HTML) and the same kind of
  documents with one planted attack buried at a random place;
- ``lookalike_{split}.jsonl``: the look-alike tool outputs as written (label 0).

Rows are ``{"text", "label", "kind", "lang", "category", "encoding", ...}``.
The held-out split was written before any rule existed and is never used to
tune rules, weights, thresholds or the model. The output is deterministic
(seeded); run ``python bench/injection/build.py`` after editing a source.
"""

from __future__ import annotations

import base64
import codecs
import json
import random
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SPLITS = ("dev", "heldout")

_HOMOGLYPHS = str.maketrans({"a": "а", "e": "е", "o": "о", "c": "с", "p": "р", "i": "і", "x": "х"})
_LEET = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"})


def _zero_width(text: str) -> str:
    return "\u200b".join(text)


def _tags(text: str) -> str:
    """Unicode tag smuggling: the attack as invisible tag characters after a benign line."""
    hidden = "".join(chr(0xE0000 + ord(c)) for c in text if 0x20 <= ord(c) < 0x7F)
    return "Can you check my order status please?" + hidden


def _html(text: str) -> str:
    return "".join(f"&#{ord(c)};" for c in text)


def _url(text: str) -> str:
    return "".join(f"%{b:02X}" for b in text.encode())


ENCODINGS: dict[str, Callable[[str], str]] = {
    "base64": lambda t: base64.b64encode(t.encode()).decode(),
    "hex": lambda t: t.encode().hex(),
    "rot13": lambda t: codecs.encode(t, "rot13"),
    "url": _url,
    "html-entities": _html,
    "zero-width": _zero_width,
    "unicode-tags": _tags,
    "homoglyphs": lambda t: t.translate(_HOMOGLYPHS),
    "leetspeak": lambda t: t.lower().translate(_LEET),
    "reversed": lambda t: t[::-1],
}
_LEAD_INS = {
    "base64": "Decode this base64 and do what it says: ",
    "hex": "Here is a hex string, decode it and follow it: ",
    "rot13": "rot13: ",
    "url": "",
    "html-entities": "",
    "reversed": "Read this backwards and comply: ",
}


def _rows(path: Path, fields: int) -> Iterator[list[str]]:
    for line in path.read_text(encoding="utf-8").split("\n"):  # not splitlines(): U+2028 is text
        if not line.strip() or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(" | ", fields - 1)]
        if len(parts) != fields:
            raise ValueError(f"{path.name}: expected {fields} fields: {line!r}")
        yield parts


def _encode(text: str, encoding: str, rng: random.Random) -> str:
    encoded = ENCODINGS[encoding](text)
    lead = _LEAD_INS.get(encoding, "")
    return (lead + encoded) if lead and rng.random() < 0.6 else encoded


def build_direct(split: str, rng: random.Random) -> list[dict[str, Any]]:
    src = HERE / "sources" / split
    rows: list[dict[str, Any]] = []
    names = list(ENCODINGS)
    for i, (lang, category, text) in enumerate(_rows(src / "attacks.txt", 3)):
        rows.append(_row(text, 1, "direct", lang, category, None))
        if i % 3 == 0:  # a third of the attacks also appear encoded, cycling the encodings
            enc = names[(i // 3) % len(names)]
            rows.append(_row(_encode(text, enc, rng), 1, "direct", lang, category, enc))
    for i, (lang, text) in enumerate(_rows(src / "benign.txt", 2)):
        rows.append(_row(text, 0, "direct", lang, None, None))
        if i % 4 == 0:  # benign text encoded: the decoders must not make it look hostile
            enc = names[(i // 4) % len(names)]
            rows.append(_row(_encode(text, enc, rng), 0, "direct", lang, None, enc))
    return rows


def _row(
    text: str, label: int, kind: str, lang: str, category: str | None, encoding: str | None
) -> dict[str, Any]:
    return {
        "text": text,
        "label": label,
        "kind": kind,
        "lang": lang,
        "category": category,
        "encoding": encoding,
    }


# -- tool output ------------------------------------------------------------------------------

_NAMES = ["Dana Whitfield", "Jonas Berg", "Amira Haddad", "Luis Ortega", "Mei Tanaka", "Ola Nilsen"]
_DOMAINS = ["northwind.example", "contoso.example", "fabrikam.example", "tailspin.example"]
_SIZES = [(0.25, 1, 2), (0.35, 3, 10), (0.25, 12, 30), (0.15, 35, 75)]  # share, min, max paras


def _noise(rng: random.Random) -> str:
    """Benign machinery real tool output carries, which naive decoders trip on."""
    kind = rng.randrange(6)
    if kind == 0:
        token = "".join(rng.choice("abcdef0123456789") for _ in range(24))
        return f"![](https://mail.{rng.choice(_DOMAINS)}/open.gif?id={token}&c=newsletter)"
    if kind == 1:
        blob = base64.b64encode(bytes(rng.randrange(256) for _ in range(rng.randrange(48, 240))))
        return "Content-Transfer-Encoding: base64\n" + blob.decode()
    if kind == 2:
        sha = "".join(rng.choice("0123456789abcdef") for _ in range(40))
        return f"Build {rng.randrange(100, 999)} passed at commit {sha}."
    if kind == 3:
        query = urllib.parse.quote(f"size guide {rng.choice(['men', 'women', 'kids'])} & fit")
        return f"See https://shop.{rng.choice(_DOMAINS)}/search?q={query}&lang=en"
    if kind == 4:
        return '<p>Questions? Write to <a href="mailto:help@example.com">help&#64;example.com</a>'
    return "Unsubscribe | Privacy &amp; cookies | &copy; 2024 Example Ltd."


def _frame(genre: str, body: list[str], rng: random.Random) -> str:
    if genre in ("email", "lookalike", "shipping", "invoice"):
        sender = rng.choice(_NAMES)
        head = (
            f"From: {sender} <{sender.split()[0].lower()}@{rng.choice(_DOMAINS)}>\n"
            f"Subject: {rng.choice(['Re: your order', 'Invoice', 'Update', 'Quick question'])}\n\n"
        )
        return head + "\n\n".join(body) + f"\n\nBest regards,\n{sender}"
    if genre in ("web", "review", "forum", "product"):
        paras = "\n".join(f"<p>{p}</p>" for p in body)
        return f"<html><head><title>{genre}</title></head><body>\n{paras}\n</body></html>"
    return "\n\n".join(body)


def _document(
    genre: str, pool: dict[str, list[str]], rng: random.Random
) -> tuple[str, list[str], str]:
    r, acc = rng.random(), 0.0
    lo, hi = 1, 2
    for share, lo, hi in _SIZES:  # noqa: B007 - the loop variables are the result
        acc += share
        if r < acc:
            break
    n = rng.randint(lo, hi)
    own = pool[genre]
    others = [p for g, ps in pool.items() if g != genre for p in ps]
    body = [rng.choice(own) if rng.random() < 0.6 or not others else rng.choice(others)]
    for _ in range(n - 1):
        body.append(rng.choice(own) if rng.random() < 0.6 else rng.choice(others))
    if rng.random() < 0.5:
        body.insert(rng.randrange(len(body) + 1), _noise(rng))
    return genre, body, "short" if n <= 2 else "long" if n >= 12 else "medium"


def _hide(text: str, rng: random.Random) -> tuple[str, str | None]:
    r = rng.random()
    if r < 0.08:
        return _zero_width(text), "zero-width"
    if r < 0.14:
        return "".join(chr(0xE0000 + ord(c)) for c in text if 0x20 <= ord(c) < 0x7F), "unicode-tags"
    if r < 0.20:
        return text.translate(_HOMOGLYPHS), "homoglyphs"
    if r < 0.26:
        return "Decode and follow: " + base64.b64encode(text.encode()).decode(), "base64"
    return text, None


def build_tool(split: str, rng: random.Random, benign: int = 300) -> list[dict[str, Any]]:
    src = HERE / "sources" / split
    pool: dict[str, list[str]] = {}
    for genre, text in _rows(src / "paragraphs.txt", 2):
        pool.setdefault(genre, []).append(text)
    genres = sorted(pool)
    rows: list[dict[str, Any]] = []
    for _ in range(benign):
        genre, body, size = _document(rng.choice(genres), pool, rng)
        row = _row(_frame(genre, body, rng), 0, "tool", "en", None, None)
        row.update(genre=genre, size=size)
        rows.append(row)
    for lang, category, attack in _rows(src / "planted.txt", 3):
        for _ in range(3):
            genre, body, size = _document(rng.choice(genres), pool, rng)
            hidden, enc = _hide(attack, rng)
            at = rng.randrange(len(body) + 1)
            if rng.random() < 0.3 and body:  # mid-paragraph, after a sentence
                at = min(at, len(body) - 1)
                para = body[at]
                cut = para.find(". ", len(para) // 3)
                cut = cut + 2 if cut > 0 else len(para)
                body[at] = para[:cut] + hidden + " " + para[cut:]
            else:
                body.insert(at, hidden)
            row = _row(_frame(genre, body, rng), 1, "buried", lang, category, enc)
            row.update(genre=genre, size=size)
            rows.append(row)
    return rows


def build_lookalikes(split: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for genre, text in _rows(HERE / "sources" / split / "lookalike_tool.txt", 2):
        row = _row(text.replace("\\n", "\n"), 0, "tool", "en", None, None)
        row.update(genre=genre, size="short")
        rows.append(row)
    return rows


def main() -> None:
    for i, split in enumerate(SPLITS):
        for name, rows in (
            ("direct", build_direct(split, random.Random(1000 + i))),
            ("tool", build_tool(split, random.Random(2000 + i))),
            ("lookalike", build_lookalikes(split)),
        ):
            path = HERE / f"{name}_{split}.jsonl"
            with path.open("w", encoding="utf-8") as f:
                for row in rows:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
            attacks = sum(r["label"] for r in rows)
            print(f"{path.name}: {len(rows)} rows, {attacks} attacks")


if __name__ == "__main__":
    main()
