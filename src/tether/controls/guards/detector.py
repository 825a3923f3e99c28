"""The prompt-injection detector: normalise, decode, match rules window by window, score.

:class:`InjectionDetector` is the default :class:`Detector`. For a text it:

1. cuts it into overlapping windows (512 characters, 192 of overlap by
   default), so an attack buried in a long benign document is scored on its
   own and not diluted, and an attack shorter than the overlap is never cut
   in two;
2. normalises each window (:func:`~tether.controls.guards.normalize.normalize`)
   and runs the rules (:data:`~tether.controls.guards.rules.RULES`) whose
   anchors occur in it;
3. decodes the whole text once (base64, hex, URL, HTML entities, Unicode
   tags, rot13, reversed, leetspeak, spaced letters) and scans each decoding
   the same way; a hit found only through a decoding, or in text that had
   to be de-obfuscated (zero-width characters, homoglyphs...), adds the
   ``obfuscation`` signal: hiding an instruction is itself a sign;
4. scores each window as the noisy-OR of its distinct signals
   (:func:`~tether.controls.guards.rules.combine`) and the text as the
   highest window score.

``flagged`` is ``score >= threshold``, with a threshold per source: tool
output is long and full of words like "system" and "instructions", so its
bar is higher. The result lists the categories and spans (offsets in the
original text, the matched excerpt, the rule) of the windows that crossed
the threshold, or of the best window when none did, and the decodings that
revealed the attack. Scanning is pure: no I/O, no state between calls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from tether.controls.guards.normalize import Variant, decode, normalize
from tether.controls.guards.rules import RULES, Rule, combine

__all__ = [
    "DEFAULT_THRESHOLDS",
    "Detector",
    "InjectionDetector",
    "ScanResult",
    "Source",
    "Span",
]

Source = Literal["user", "tool"]

#: Calibrated on the development corpus only (``bench/guard.py``): the user
#: threshold maximises balanced accuracy on direct messages, the tool
#: threshold sits above the highest benign tool output score (0.45) with a margin.
DEFAULT_THRESHOLDS: dict[str, float] = {"user": 0.5, "tool": 0.6}

_OBFUSCATION_WEIGHT = 0.35
_HIDDEN_TEXT_WEIGHT = 0.4
_OBFUSCATIONS = frozenset(
    {"unicode-tags", "zero-width", "nfkc", "combining-marks", "homoglyphs", "base64", "hex",
     "url", "html-entities", "rot13", "reversed", "leetspeak", "spaced-letters"}
)  # fmt: skip
_MAX_SPANS = 12
_NEAR = 200  # characters: signals further apart than this do not add up
_PREFIX = 5  # anchors and words are compared on this many first characters
_WORD = re.compile(r"\w+")


def _compile_need(group: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    """One group of a rule's needs: word prefixes (a set) and ``=literal`` substrings."""
    prefixes = frozenset(a[:_PREFIX] for a in group if not a.startswith("="))
    literals = tuple(a[1:] for a in group if a.startswith("="))
    return prefixes, literals


@dataclass(frozen=True, slots=True)
class Span:
    """Where a signal matched: ``start``/``end`` in the original text, and what it matched."""

    start: int
    end: int
    rule: str
    category: str
    excerpt: str
    decoded_by: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "rule": self.rule,
            "category": self.category,
            "excerpt": self.excerpt,
            "decoded_by": list(self.decoded_by),
        }


@dataclass(frozen=True, slots=True)
class ScanResult:
    """The verdict on one text.

    ``score`` is in [0, 1]; ``flagged`` is ``score >= threshold`` for the
    source it was scanned as. ``categories`` are ordered by weight, the
    strongest first. ``decoded_by`` names the decodings that revealed the
    attack (empty when it was in plain sight).
    """

    score: float
    flagged: bool
    categories: tuple[str, ...] = ()
    spans: tuple[Span, ...] = ()
    decoded_by: tuple[str, ...] = ()
    source: Source = "user"
    threshold: float = DEFAULT_THRESHOLDS["user"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 4),
            "flagged": self.flagged,
            "categories": list(self.categories),
            "spans": [s.to_dict() for s in self.spans],
            "decoded_by": list(self.decoded_by),
            "source": self.source,
            "threshold": self.threshold,
        }


class Detector(Protocol):
    """What the runtime needs from an injection detector: one method."""

    def scan(self, text: str, source: Source = "user") -> ScanResult:
        """Score ``text`` as user input or tool output."""
        ...


@dataclass(frozen=True, slots=True)
class _Hit:
    rule: str
    category: str
    weight: float
    excerpt: str
    start: int
    end: int
    decoded_by: tuple[str, ...]


@dataclass(slots=True)
class _Window:
    score: float = 0.0
    hits: list[_Hit] = field(default_factory=list)
    decoded_by: tuple[str, ...] = ()


class InjectionDetector:
    """Rules over normalised and decoded text, window by window (see the module docs).

    ``thresholds`` maps a source to its threshold (missing sources take
    :data:`DEFAULT_THRESHOLDS`); ``window`` and ``overlap`` size the chunks
    (characters); ``rules`` replaces the rule set (for tests and experiments).
    """

    def __init__(
        self,
        *,
        thresholds: dict[str, float] | None = None,
        window: int = 512,
        overlap: int = 192,
        rules: tuple[Rule, ...] = RULES,
    ) -> None:
        if not 0 <= overlap < window:
            raise ValueError(f"need 0 <= overlap < window, got overlap={overlap}, window={window}")
        self.thresholds = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
        for name, value in self.thresholds.items():
            if not 0.0 < value <= 1.0:
                raise ValueError(f"threshold for {name!r} must be in (0, 1], got {value}")
        self.window = window
        self.overlap = overlap
        self._rules = rules
        self._needs = tuple(tuple(_compile_need(group) for group in r.needs) for r in rules)
        # An index on each rule's first need, so a window is checked against the
        # few rules one of its words (or a literal in it) can start, not every
        # rule: the same rules match, in the same order.
        self._by_prefix: dict[str, list[int]] = {}
        self._by_literal: list[tuple[int, tuple[str, ...]]] = []
        self._always: list[int] = []
        for i, needs in enumerate(self._needs):
            if not needs:
                self._always.append(i)
                continue
            prefixes, literals = needs[0]
            for prefix in prefixes:
                self._by_prefix.setdefault(prefix, []).append(i)
            if literals:
                self._by_literal.append((i, literals))

    def scan(self, text: str, source: Source = "user") -> ScanResult:
        if source not in self.thresholds:
            raise ValueError(
                f"unknown source {source!r}: expected one of {sorted(self.thresholds)}"
            )
        threshold = self.thresholds[source]
        windows = self._plain_windows(text)
        decoded = decode(text)
        if decoded:
            seen = normalize(text)[0].lower()
            for variant in decoded:
                windows.extend(self._decoded_windows(variant, seen))
        best = max(windows, key=lambda w: w.score, default=_Window())
        crossed = [w for w in windows if w.score >= threshold] or ([best] if best.hits else [])
        return self._result(best, crossed, source, threshold)

    def score(self, text: str) -> float:
        """The score alone (what ``scan`` computes before thresholds)."""
        return self.scan(text).score

    # -- windows ---------------------------------------------------------------------------

    def _spans(self, length: int) -> list[tuple[int, int]]:
        if length <= self.window:
            return [(0, length)]
        step = self.window - self.overlap
        starts = list(range(0, length - self.overlap, step))
        return [(s, min(s + self.window, length)) for s in starts]

    def _plain_windows(self, text: str) -> list[_Window]:
        out: list[_Window] = []
        for start, end in self._spans(len(text)):
            chunk = text[start:end]
            clear, steps = normalize(chunk)
            window = self._match(clear, steps, start, end, chunk)
            if window.hits:
                out.append(window)
        return out

    def _decoded_windows(self, variant: Variant, seen: str) -> list[_Window]:
        """Windows of a decoding, counting only what the plain text did not already show."""
        clear, steps = normalize(variant.text)
        names = (*variant.decoded_by, *steps)
        out: list[_Window] = []
        for start, end in self._spans(len(clear)):
            piece = clear[start:end]
            if variant.aligned:
                at = (variant.start + start, variant.start + end)
            else:
                at = (variant.start, variant.end)
            window = self._match(piece, names, *at, None, seen)
            if window.hits:
                out.append(window)
        if variant.decoded_by == ("unicode-tags",) and sum(c.isalpha() for c in clear) >= 8:
            hidden = _Hit(
                "obfuscation.hidden-text",
                "obfuscation",
                _HIDDEN_TEXT_WEIGHT,
                clear[:80],
                variant.start,
                variant.end,
                names,
            )
            out.append(_Window(_HIDDEN_TEXT_WEIGHT, [hidden], names))
        return out

    def _match(
        self,
        clear: str,
        steps: tuple[str, ...],
        start: int,
        end: int,
        original: str | None,
        seen: str | None = None,
    ) -> _Window:
        low = clear.lower()
        words = {w[:_PREFIX] for w in _WORD.findall(low)}
        candidates = set(self._always)
        by_prefix = self._by_prefix
        for word in words:
            started = by_prefix.get(word)
            if started is not None:
                candidates.update(started)
        for i, literals in self._by_literal:
            if i not in candidates and any(lit in low for lit in literals):
                candidates.add(i)
        found: list[tuple[Rule, int, int, str]] = []
        rules, all_needs = self._rules, self._needs
        for i in sorted(candidates):  # the rules' own order, as without the index
            for prefixes, literals in all_needs[i][1:]:
                if prefixes.isdisjoint(words) and not any(lit in low for lit in literals):
                    break
            else:
                rule = rules[i]
                m = rule.pattern.search(low)
                if m is not None:
                    excerpt = m.group().strip()
                    if seen is None or excerpt not in seen:  # else the plain windows count it
                        found.append((rule, m.start(), m.end(), excerpt))
        if not found:
            return _Window()
        # Rules of one category that match overlapping text are one signal, not several:
        # keep the strongest ("ignore all previous instructions" is English and French).
        found.sort(key=lambda f: -f[0].weight)
        kept: list[tuple[Rule, int, int, str]] = []
        for f in found:
            if not any(
                k[0].category == f[0].category and k[1] < f[2] and f[1] < k[2] for k in kept
            ):
                kept.append(f)
        # Signals combine only with their neighbours: weak words in unrelated paragraphs of
        # one window ("system prompt" here, "developer mode" there) are not an attack.
        hidden = tuple(s for s in steps if s in _OBFUSCATIONS)
        best_score, group = 0.0, kept[:1]
        for _, a, b, _ in kept:
            centre = (a + b) / 2
            near = [k for k in kept if abs((k[1] + k[2]) / 2 - centre) <= _NEAR]
            score = combine(k[0].weight for k in near)
            if hidden:
                score = combine((score, _OBFUSCATION_WEIGHT))
            if score > best_score:
                best_score, group = score, near
        hits: list[_Hit] = []
        lowered_original = original.lower() if original is not None else None
        for rule, _, _, excerpt in group:
            s, e = start, end
            if lowered_original is not None:
                at = lowered_original.find(excerpt)
                if at >= 0:
                    s, e = start + at, start + at + len(excerpt)
            hits.append(_Hit(rule.name, rule.category, rule.weight, excerpt, s, e, steps))
        if hidden:
            hits.append(
                _Hit(
                    "obfuscation.decoded", "obfuscation", _OBFUSCATION_WEIGHT, "", start, end, steps
                )
            )
        return _Window(best_score, hits, hidden)

    # -- result ----------------------------------------------------------------------------

    def _result(
        self, best: _Window, crossed: list[_Window], source: Source, threshold: float
    ) -> ScanResult:
        weight: dict[str, float] = {}
        spans: dict[tuple[int, int, str], Span] = {}
        for window in crossed:
            for h in window.hits:
                weight[h.category] = max(weight.get(h.category, 0.0), h.weight)
                key = (h.start, h.end, h.rule)
                if h.excerpt and key not in spans and len(spans) < _MAX_SPANS:
                    spans[key] = Span(h.start, h.end, h.rule, h.category, h.excerpt, h.decoded_by)
        categories = tuple(sorted(weight, key=lambda c: -weight[c]))
        return ScanResult(
            score=best.score,
            flagged=best.score >= threshold,
            categories=categories,
            spans=tuple(sorted(spans.values(), key=lambda s: (s.start, -s.end))),
            decoded_by=best.decoded_by,
            source=source,
            threshold=threshold,
        )
