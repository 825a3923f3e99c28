"""The prompt-injection detector: normalise, decode, match rules window by window, score.

:class:`InjectionDetector` is the default :class:`Detector`. For a text it:

1. cuts it into overlapping windows (512 characters, 192 of overlap by
   default), so an attack buried in a long benign document is scored on its
   own and not diluted, and an attack shorter than the overlap is never cut
   in two;
2. normalises each window (:func:`~tether.controls.guards.normalize.normalize`)
   and runs the rules (:data:`~tether.controls.guards.rules.RULES`) whose
   anchors occur in it; on tool output also the ``tool_only`` rules (answer
   instructions, code to adopt, code payloads: :mod:`._tasks`) and the
   search for request sentences the rest of the document is not about
   (:mod:`._requests`): in a user's message those are the point, in an
   email or a table they are out of place;
3. decodes the whole text once (base64, hex, URL, HTML entities, Unicode
   tags, rot13, reversed, leetspeak, spaced letters) and scans each decoding
   the same way; a hit found only through a decoding, or in text that had
   to be de-obfuscated (zero-width characters, homoglyphs...), adds the
   ``obfuscation`` signal: hiding an instruction is itself a sign;
4. scores each window as the noisy-OR of its distinct signals near each
   other (:func:`~tether.controls.guards.rules.combine`), and neighbouring
   signals that fell in different windows together (a request to adopt a
   snippet and the snippet's payload); the text's score is the highest.

``flagged`` is ``score >= threshold``, with a threshold per source: tool
output is long and full of words like "system" and "instructions", so its
bar is higher. The result lists the categories and spans (offsets in the
original text, the matched excerpt, the rule) of the windows that crossed
the threshold, or of the best window when none did, and the decodings that
revealed the attack. Scanning is pure: no I/O, no state between calls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from tether.controls.guards._requests import OPENER_WORDS, find_requests, weigh
from tether.controls.guards._tasks import TASK
from tether.controls.guards._windows import NEAR, Document, Hit, Window, stitch
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

#: Calibrated on development data only (``bench/guard.py --split dev``): the user
#: threshold maximises balanced accuracy on direct messages, the tool threshold
#: sits above the highest benign development tool output scores (0.44 on ours, 0.50
#: on clean BIPIA carriers) with a margin.
DEFAULT_THRESHOLDS: dict[str, float] = {"user": 0.5, "tool": 0.6}

_OBFUSCATION_WEIGHT = 0.35
_HIDDEN_TEXT_WEIGHT = 0.4
_OBFUSCATIONS = frozenset(
    {"unicode-tags", "zero-width", "nfkc", "combining-marks", "homoglyphs", "base64", "hex",
     "url", "html-entities", "rot13", "reversed", "leetspeak", "spaced-letters"}
)  # fmt: skip
_MAX_SPANS = 12
_HEAD = 12  # characters: the shortest first line of an excerpt worth looking for
_PREFIX = 5  # anchors and words are compared on this many first characters
_WORD = re.compile(r"\w+")
_NEVER = re.compile(r"(?!)")  # the pattern of signals computed in code, not matched
# First five letters of the words a request can open with (a cheap test before the regex).
_OPENERS = frozenset(w[:_PREFIX] for w in OPENER_WORDS)


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
    attack (empty when it was in plain sight). ``judge`` is set by
    :func:`~tether.controls.guards.judge.with_verdict` when a model was asked;
    its yes flags the result whatever the score.
    """

    score: float
    flagged: bool
    categories: tuple[str, ...] = ()
    spans: tuple[Span, ...] = ()
    decoded_by: tuple[str, ...] = ()
    source: Source = "user"
    threshold: float = DEFAULT_THRESHOLDS["user"]
    #: the model judge's verdict (``injection``, ``clean``, ``unknown``), if one was asked
    judge: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "score": round(self.score, 4),
            "flagged": self.flagged,
            "categories": list(self.categories),
            "spans": [s.to_dict() for s in self.spans],
            "decoded_by": list(self.decoded_by),
            "source": self.source,
            "threshold": self.threshold,
        }
        if self.judge is not None:
            data["judge"] = self.judge
        return data


class Detector(Protocol):
    """What the runtime needs from an injection detector: one method."""

    def scan(self, text: str, source: Source = "user") -> ScanResult:
        """Score ``text`` as user input or tool output."""
        ...


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
        window: int = 1024,
        overlap: int = 448,
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
        doc = Document(text) if source == "tool" else None
        windows = self._plain_windows(text, doc)
        decoded = decode(text)
        if decoded:
            seen = doc.lowered if doc is not None else normalize(text)[0].lower()
            for variant in decoded:
                windows.extend(self._decoded_windows(variant, seen, tool=doc is not None))
        if len(text) > self.window:
            stitched = stitch(windows)
            if stitched is not None:
                windows.append(stitched)
        best = max(windows, key=lambda w: w.score, default=Window())
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

    def _plain_windows(self, text: str, doc: Document | None) -> list[Window]:
        out: list[Window] = []
        for start, end in self._spans(len(text)):
            chunk = text[start:end]
            clear, steps = normalize(chunk)
            window = self._match(clear, steps, start, end, chunk, doc=doc)
            if window.hits:
                out.append(window)
        return out

    def _decoded_windows(self, variant: Variant, seen: str, *, tool: bool) -> list[Window]:
        """Windows of a decoding, counting only what the plain text did not already show."""
        clear, steps = normalize(variant.text)
        names = (*variant.decoded_by, *steps)
        out: list[Window] = []
        for start, end in self._spans(len(clear)):
            piece = clear[start:end]
            if variant.aligned:
                at = (variant.start + start, variant.start + end)
            else:
                at = (variant.start, variant.end)
            window = self._match(piece, names, *at, None, seen, tool=tool)
            if window.hits:
                out.append(window)
        if variant.decoded_by == ("unicode-tags",) and sum(c.isalpha() for c in clear) >= 8:
            hidden = Hit(
                "obfuscation.hidden-text",
                "obfuscation",
                _HIDDEN_TEXT_WEIGHT,
                clear[:80],
                variant.start,
                variant.end,
                names,
            )
            out.append(Window(_HIDDEN_TEXT_WEIGHT, [hidden], names))
        return out

    def _match(
        self,
        clear: str,
        steps: tuple[str, ...],
        start: int,
        end: int,
        original: str | None,
        seen: str | None = None,
        *,
        tool: bool = False,
        doc: Document | None = None,
    ) -> Window:
        tool = tool or doc is not None
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
                if rule.tool_only and not tool:
                    continue
                m = rule.pattern.search(low)
                if m is not None:
                    excerpt = m.group().strip()
                    if seen is None or excerpt not in seen:  # else the plain windows count it
                        found.append((rule, m.start(), m.end(), excerpt))
        if doc is not None and not words.isdisjoint(_OPENERS):
            first, last = start == 0, end == len(doc.text)
            requests = find_requests(clear, doc.topic, first=first, last=last)
            req = max(requests, key=weigh, default=None)  # one signal, as for any rule
            if req is not None and (weight := weigh(req)) > 0:
                pseudo = Rule("task.off-topic-request", TASK, weight, _NEVER, ())
                found.append((pseudo, req.start, req.end, low[req.start : req.end].strip()))
        if not found:
            return Window()
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
            near = [k for k in kept if abs((k[1] + k[2]) / 2 - centre) <= NEAR]
            score = combine(k[0].weight for k in near)
            if hidden:
                score = combine((score, _OBFUSCATION_WEIGHT))
            if score > best_score:
                best_score, group = score, near
        lowered = original.lower() if original is not None else None
        located = [self._locate(k, lowered, start, end, steps) for k in kept]
        hits = [h for h, k in zip(located, kept, strict=True) if k in group]
        if hidden:
            hits.append(
                Hit(
                    "obfuscation.decoded", "obfuscation", _OBFUSCATION_WEIGHT, "", start, end, steps
                )
            )
        # Plain-text hits found at their place in the original, for signals across windows.
        placed = [h for h in located if h.placed] if lowered is not None and not hidden else []
        return Window(best_score, hits, hidden, placed)

    @staticmethod
    def _locate(
        found: tuple[Rule, int, int, str],
        lowered: str | None,
        start: int,
        end: int,
        steps: tuple[str, ...],
    ) -> Hit:
        """A hit at its offsets in the original text (the window's, when it cannot be found)."""
        rule, _, _, excerpt = found
        if lowered is not None:
            at = lowered.find(excerpt)
            if at >= 0:
                s = start + at
                return Hit(rule.name, rule.category, rule.weight, excerpt, s, s + len(excerpt),
                             steps, placed=True)  # fmt: skip
            head = excerpt.split("\n", 1)[0]  # normalising collapsed the whitespace after it
            at = lowered.find(head) if len(head) >= _HEAD else -1
            if at >= 0:
                s = start + at
                e = min(end, s + len(excerpt))
                return Hit(rule.name, rule.category, rule.weight, excerpt, s, e, steps,
                            placed=True)  # fmt: skip
        return Hit(rule.name, rule.category, rule.weight, excerpt, start, end, steps)

    # -- result ----------------------------------------------------------------------------

    def _result(
        self, best: Window, crossed: list[Window], source: Source, threshold: float
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
