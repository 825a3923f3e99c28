"""The detector's working records: hits, windows, the whole document, and signals across windows.

Private to :mod:`.detector`: a :class:`Hit` is one matched signal, a
:class:`Window` the score of one window and the hits behind it, a
:class:`Document` the whole text of a tool output (for signals that compare
a window with the rest), and :func:`stitch` combines neighbouring signals
that fell in different windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tether.controls.guards._build import combine
from tether.controls.guards._requests import Topic
from tether.controls.guards.normalize import normalize

__all__ = ["NEAR", "Document", "Hit", "Window", "stitch", "strongest_group"]

NEAR = 200  # characters: signals further apart than this do not add up


@dataclass(frozen=True, slots=True)
class Hit:
    """One signal in a window: the rule, its weight, what it matched and where."""

    rule: str
    category: str
    weight: float
    excerpt: str
    start: int
    end: int
    decoded_by: tuple[str, ...]
    placed: bool = False  # start/end are the excerpt's own place in the original text


class Document:
    """The whole text of a tool output, for signals that compare a window with the rest."""

    __slots__ = ("_lowered", "text", "topic")

    def __init__(self, text: str) -> None:
        self.text = text
        self.topic = Topic(text)
        self._lowered: str | None = None

    @property
    def lowered(self) -> str:
        """The whole text normalised and lower-cased (computed on first use)."""
        if self._lowered is None:
            self._lowered = normalize(self.text)[0].lower()
        return self._lowered


@dataclass(slots=True)
class Window:
    """A window's score, the hits that made it, and its hits placed in the original text."""

    score: float = 0.0
    hits: list[Hit] = field(default_factory=list)
    decoded_by: tuple[str, ...] = ()
    placed: list[Hit] = field(default_factory=list)


def strongest_group(kept: list[Hit]) -> tuple[float, list[Hit]]:
    """The best noisy-OR of hits whose centres lie within :data:`NEAR` of one another."""
    best_score, group = 0.0, kept[:1]
    for h in kept:
        centre = (h.start + h.end) / 2
        near = [k for k in kept if abs((k.start + k.end) / 2 - centre) <= NEAR]
        near = list({k.rule: k for k in reversed(near)}.values())  # a rule counts once
        score = combine(k.weight for k in near)
        if score > best_score:
            best_score, group = score, near
    return best_score, group


def stitch(windows: list[Window]) -> Window | None:
    """Signals near each other in the original text, whichever windows they were found in.

    Windows overlap, so every signal lies whole in one of them; but two
    neighbouring signals (a request to adopt a snippet, and the snippet's
    payload) can fall in different windows. Only hits located in the
    original text take part.
    """
    unique: dict[tuple[str, int], Hit] = {}
    for window in windows:
        for h in window.placed:
            unique.setdefault((h.rule, h.start), h)
    if len(unique) < 2:
        return None
    kept: list[Hit] = []
    for h in sorted(unique.values(), key=lambda h: -h.weight):
        if not any(k.category == h.category and k.start < h.end and h.start < k.end for k in kept):
            kept.append(h)
    score, group = strongest_group(kept)
    return Window(score, group)
