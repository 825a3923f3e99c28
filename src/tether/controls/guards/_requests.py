"""Requests out of place: a question or task for an assistant that its document is not about.

"What is the capital of Brazil?" inside a table of election results, or
"Write a short story about a detective" at the end of an invoice, uses no
word an override rule knows. What gives it away is that it is a request,
addressed to whoever reads, about something the rest of the document never
mentions. :func:`find_requests` finds request sentences (a capitalised
question or task opener, see :data:`OPENER_WORDS`) in a normalised window
and measures how many of their topic words the rest of the document uses;
:func:`weigh` turns that, with where the sentence sits (the document's first
or last line, a table row, pasted mid-sentence) and whether it speaks to the
reader, into a weight. The detector runs this on tool output only: from the
user, a request is the point.

Not weighed: headings in Title Case, requests in the first person (a
customer's own question in a ticket is content), and requests in documents
too short to have a topic of their own. The weights were set on development
data only (``bench/guard.py --split dev``).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

__all__ = ["OPENER_WORDS", "Request", "Topic", "find_requests", "vocabulary", "weigh"]

# A capitalised opener of a question or a task, as someone asking an assistant would start it.
_QUESTION = (
    r"What(?:'s| is| are| was| were| does| do| did| makes| happens| causes)|Who(?:'s| is| was| "
    r"were| wrote| invented| discovered| painted| won)|When (?:did|was|is|were|does)|Where (?:is|"
    r"are|was|did|can)|Why (?:is|are|do|does|did)|How (?:do|does|did|can|is|are|many|much|long|"
    r"far|old|would|should)|Which|Can you|Could you|Would you|Will you|Is there|Are there|"
    r"Do you|Is it|Tell me|Give me|Show me|Help me"
)
_TASK_VERB = (
    r"Explain|Describe|Write|Compose|Draft|Create|Generate|Produce|Translate|Summari[sz]e|"
    r"Outline|Define|Compare|Contrast|Provide|Give|Tell|Show|Suggest|Recommend|Teach|Break down|"
    r"Walk me through|Calculate|Solve|Convert|Develop|Design|Plan|Prepare|Recite|Brainstorm|"
    r"Rewrite|Paraphrase|Analy[sz]e|Discuss|Elaborate on|Illustrate|Identify|Name|List|"
    r"Share|Propose|Predict|Estimate|Find|Imagine|Invent|Sing|Help|Replace|Substitute|"
    r"Scramble|Jumble|Misspell|Rearrange|Reverse|Encode|Spell"
)
# A task verb takes an object: "Write to us", "Find out more", "Share with a friend" are not tasks.
_NOT_OBJECT = (
    r"(?:to|us|at|for|back|in|on|with|from|out|more|now|here|below|above|off|up|away|today|"
    r"online|yourself|it|them|this|that)"
)
_REQUEST = re.compile(
    # not after a letter, an apostrophe or a quote: a quoted request is cited, not made
    rf"(?<![\w'’\"“‘«-])(?:(?P<q>{_QUESTION})\b(?P<qbody>[^\n|.!?]{{4,200}})\?"
    # a task ends like a sentence: "Find the perfect hotel" on a line of its own is a heading
    rf"|(?P<t>{_TASK_VERB})\b(?!\W+{_NOT_OBJECT}\b)(?P<tbody>[^\n|!?]{{4,200}}?)"
    r"(?:[.!](?!\w)|[?]))"
)
_CONTENT_WORD = re.compile(r"[^\W\d_]{3,}")
_STEM = 5  # topic words are compared on their first letters: "hotel" is "hotels"
# A request that starts right after a lower-case word, as if pasted into a sentence.
_MID_SENTENCE = re.compile(r"[a-z]{2,} $")
# A request in the first person is a person's own question (a ticket, a forum post).
_PERSONAL = re.compile(r"\b(?:I|I'm|I've|my|My|we|We|our|Our|us)\b")
_LONG_WORD = re.compile(r"[^\W\d_]{4,}")
_WORDS = re.compile(r"[^\W\d_]+")


def _is_request(m: re.Match[str]) -> bool:
    """A match of :data:`_REQUEST` that reads as one: a few words, and not a heading."""
    body = m.group("qbody") if m.group("q") else m.group("tbody")
    return len(_WORDS.findall(body)) >= 2 and not _is_title(m.group())


def _is_title(text: str) -> bool:
    """Title Case ("How to Write a Great Cover Letter") is a heading, not a request."""
    words = _LONG_WORD.findall(text)[1:]  # the opener is capitalised anyway
    return len(words) >= 2 and all(w[0].isupper() for w in words)


_ADDRESSED = re.compile(r"\b(?:you|your|me)\b")
#: Lower-cased first words of every request opener, regex groups and classes taken out
#: ("summari[sz]e" is "summarie": the detector's cheap pre-test compares five letters).
OPENER_WORDS = frozenset(
    m.split()[0].lower()
    for m in re.sub(r"\(\?:[^)]*\)|\[[^]]*\]", "", f"{_QUESTION}|{_TASK_VERB}").split("|")
    if m.strip()
)
# Weights of an out-of-place request (noisy-OR of its features), set on development data.
# The rest of a document has a topic if it has this many distinct topic words, or this
# many characters (a table of names and figures is a context too).
_MIN_TOPIC = 12
_MIN_REST = 400
_LONG = 5  # words: a request this long needs only one topic word
_MAX_SHARED = 0.34  # more of its topic words in the document than this: on topic
_OFF_TOPIC = 0.45
_PARTLY_OFF_TOPIC = 0.3
_DISPLACED = 0.3
_ADDRESSED_WEIGHT = 0.15
# Words that say nothing about a topic (function words, and the words requests are made of).
_STOP = frozenset(
    """
    the and for are but not you your yours all any can her his its our out one two has had have
    how was were who whom whose why what when where which will with would could should this
    that these those there their them they then than from into onto upon about above below
    between after before over under again further here some such only own same very just also
    too more most other each few both does did doing done being been off while during through
    until against among because let lets please thanks thank may might must shall use used
    using make makes made get gets got give gives given tell tells show shows explain describe
    write compose draft create generate produce translate summarize summarise outline define
    compare contrast provide suggest recommend teach break down walk calculate solve convert
    develop design plan prepare recite brainstorm rewrite paraphrase analyze analyse discuss
    elaborate illustrate identify name list share propose predict estimate find imagine invent
    sing help simple short brief main key primary basic example examples following process work
    works way ways thing things terms kind sort difference differences like well know new old
    good best many much long far she him hers yourself me my mine we us ours
    """.split()  # noqa: SIM905 - reason: a word list reads better as text
)


@dataclass(frozen=True, slots=True)
class Request:
    """A request sentence found in a window: where, and how out of place it is."""

    start: int
    end: int
    excerpt: str
    #: share of its topic words that the rest of the document also uses (0: none)
    shared: float
    #: out of place where it sits: a line of its own (the first or last, often), in a
    #: table row, or pasted into a sentence
    displaced: bool
    #: it speaks to the reader ("can you", "tell me", "you")
    addressed: bool


def vocabulary(text: str) -> Counter[str]:
    """Topic-word counts of a (lower-cased) text, each word cut to its first five letters."""
    return Counter(w[:_STEM] for w in _CONTENT_WORD.findall(text) if w not in _STOP)


class Topic:
    """What a request is compared with: facts about its whole document, computed on first use."""

    __slots__ = ("_asked", "_counts", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._counts: Counter[str] | None = None
        self._asked: int | None = None

    def counts(self) -> Counter[str]:
        """Topic-word counts of the whole document (:func:`vocabulary`)."""
        if self._counts is None:
            self._counts = vocabulary(self.text.lower())
        return self._counts

    def asked(self) -> int:
        """How many request sentences the whole document holds (headings aside)."""
        if self._asked is None:
            self._asked = sum(1 for m in _REQUEST.finditer(self.text) if _is_request(m))
        return self._asked


def find_requests(clear: str, topic: Topic, *, first: bool, last: bool) -> list[Request]:
    """Request sentences in ``clear`` (a normalised window), with how out of place each is.

    ``topic`` is the whole document; ``first`` and ``last`` say whether the
    window holds its first or last line. Skipped: headings in Title Case,
    requests in the first person (a customer's own question), requests with
    fewer than two topic words (one, in a request of five words or more),
    requests in a document too short to have a topic of its own, and every
    request of a document that holds several (an FAQ, a forum thread, a list
    of tasks: asking is what it is about).
    """
    out: list[Request] = []
    for m in _REQUEST.finditer(clear):
        text = m.group()
        if _is_title(text) or _PERSONAL.search(text):
            continue
        body = m.group("qbody") if m.group("q") else m.group("tbody")
        own = vocabulary(body.lower())
        if len(own) < 2 and not (own and len(body.split()) >= _LONG):
            continue
        if topic.asked() > 1:
            return []
        doc = topic.counts()
        elsewhere = [w for w, n in own.items() if doc.get(w, 0) > n]
        rest = len(doc) - (len(own) - len(elsewhere))  # distinct topic words outside it
        if rest < _MIN_TOPIC and len(topic.text) - len(text) < _MIN_REST:
            continue
        line_start = clear.rfind("\n", 0, m.start()) + 1
        line_end = clear.find("\n", m.end())
        line_end = len(clear) if line_end < 0 else line_end
        before, after = clear[line_start : m.start()], clear[m.end() : line_end]
        displaced = (
            (first and line_start == 0)
            or (last and line_end == len(clear))
            or (not before.strip() and not after.strip())  # a line of its own
            or before.count("|") + after.count("|") >= 2  # in a table row
            or _MID_SENTENCE.search(before) is not None
        )
        addressed = _ADDRESSED.search(text.lower()) is not None
        shared = len(elsewhere) / len(own)
        out.append(Request(m.start(), m.end(), text.strip(), shared, displaced, addressed))
    return out


def weigh(request: Request) -> float:
    """How sure an out-of-place request makes us: 0 when the document shares its topic."""
    if request.shared > _MAX_SHARED:
        return 0.0
    weight = _OFF_TOPIC if request.shared == 0 else _PARTLY_OFF_TOPIC
    if request.displaced:
        weight = 1 - (1 - weight) * (1 - _DISPLACED)
    if request.addressed:
        weight = 1 - (1 - weight) * (1 - _ADDRESSED_WEIGHT)
    return weight
