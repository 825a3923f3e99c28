"""Did the final answer claim an action that nothing did? A cheap check before it is shown.

A model that only looked an order up may still write "Order cancelled." or
"Your refund was issued". :func:`unsupported_claims` finds, in a final
answer, the phrases that state an action was *done* (cancelled, refunded,
sent, changed, updated, deleted, transferred, paid, booked, returned,
exchanged, reset, ordered, submitted, processed... in English, German,
French and Spanish, in the past, perfect, passive and first-person forms:
"I've cancelled", "has been cancelled", "your refund was issued", "wurde
storniert", "a été annulée", "ha sido cancelado") and keeps those that no
successful tool call supports. The runtime withholds such an answer
(``answer.unsupported_claim``) and shows :func:`honest_reply` instead.

What supports a claim, given ``done``: the ``(tool, result text)`` pairs of
the calls that succeeded (this turn's; see below for earlier turns):

- a tool that can act: anything not declared read-only (``reads`` without
  ``writes``, ``irreversible``, ``high_stakes``, ``external_comms`` or
  ``critical``; ``egress`` alone is not an effect; a tool with no flag at
  all gets the benefit of the doubt), and whose name, summary, description
  or argument names relate to the verb (``cancel_order`` for "cancelled",
  a tool mentioning refunds for "refunded", ``external_comms`` or a
  ``send_*`` tool for "sent"). "changed", "updated", "created" and the
  generic verbs ("processed", "submitted", "completed") accept any tool that
  can act, unless the clause names what was done ("your *refund* was
  issued" needs a refund tool);
- for a statement about the state of things, not an agent's act ("the order
  is cancelled", "your order was cancelled"): a result of this turn that
  says so (a look-up that returned ``"status": "cancelled"``). A
  first-person claim ("I cancelled your order") always needs a tool that
  acts.

It reads sentence by sentence and clause by clause (a clause ends at ";",
":", a dash, "but", "that", "because" or a new subject after a comma or
"and"). Not claims, by design (false alarms withhold good answers): negated
("I have not cancelled", "nothing was changed"), future, modal or
conditional ("I can cancel it if you confirm", "Once cancelled, ...", "it
will be refunded", "storniert werden kann"), rules and habits ("Refunds are
processed within 5 days", "Gift cards are usually refunded at once"),
questions ("Shall I cancel it?", any sentence ending in "?"), the user's
reported words ("you said it was cancelled"), what the user did ("the items
you returned", "Sie haben bestellt"), anything in double quotes,
adjectives ("the updated address", "Cancelled orders cannot be
reinstated", "the refund for cancelled orders"), and dated history ("the
order was cancelled last week", "on May 3", "hace dos días").

Before matching, the text is folded: Unicode compatibility forms (NFKC/NFKD:
full-width letters, ligatures), format characters (zero-width spaces and
joiners, soft hyphens, bidi controls), combining marks and filler
characters are removed, so "can\\u200bcelled" is still "cancelled".

What it cannot do: it is a heuristic over words, not a judge. It misses
paraphrases ("all set, it's gone", "you'll see the money back"), other
languages, inflected adjectives ("die stornierte Bestellung ist..."),
Spanish first-person past tenses other than "cancelé, anulé, reembolsé,
cambié, actualicé, modifiqué, borré, pagué, transferí, devolví" (and those right
after "que", taken for a subjunctive), look-alike letters from other scripts
(a Cyrillic "c"), claims split across sentences, and some word orders it
does not parse (a negation or "if" earlier in a long clause hides a claim
after it). It cannot tell which
earlier turn a claim refers to: pass the successful calls of earlier turns
too if restating them ("Yes, your order has been cancelled") must not be
withheld; then a claim about an earlier turn's action is never caught. It
checks that *some* successful tool could have done the action, not that it
did it to the right object, nor that details (a refund method, an amount)
are true.

Pure and fast: precompiled patterns, no state. An answer with no done-verb
costs one normalisation and one split into words; in one that has some,
only the verbs no successful tool backs are parsed (``bench/claims.py``
prints the figures).

The words it reads (the done-verbs by concept and language, the words tools
and results are matched on, the grammar's word lists) are data in
:mod:`tether.runtime._claims_words`; the patterns built from them and the
parsing are here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from tether.runtime._claims_words import (
    ADVERBS,
    ATTRIBUTIVE,
    BROAD,
    CLAUSE_WORDS,
    CONTRAST,
    DATED,
    EVIDENCE_WORDS,
    FORMS,
    INTERJECTIONS,
    IRREALIS,
    NEGATION,
    NOUNS,
    REPORTED,
    STOCK,
    SUBJECTS,
    TOOL_WORDS,
    Form,
    lexicon,
    words,
)
from tether.runtime.approvals import NOT_DONE
from tether.spec.text import INVISIBLE_CLASS
from tether.spec.tools import Tool

__all__ = ["Done", "honest_reply", "unsupported_claims"]

#: one successful tool call: the tool and the text of its result
Done = tuple[Tool, str]


# --- the lexicon, compiled (its words: tether.runtime._claims_words) -----------------

_LEX = lexicon()
_VERB = re.compile(r"(?<![\w-])(?:" + words("|".join(_LEX)) + r")(?![\w-])")
#: the first word of every form, as bytes: the fast path looks for them among the words
_HEADS = frozenset(f.split()[0].split("-")[-1].encode() for f in _LEX)
#: every byte but a-z becomes a space, so that ``split()`` yields the words
_LETTERS_ONLY = bytes.maketrans(
    bytes(range(256)), bytes(b if 0x61 <= b <= 0x7A else 0x20 for b in range(256))
)
_TOOL_RE = {k: re.compile(words(v)) for k, v in TOOL_WORDS.items()}
_NOUN_RE = re.compile(
    r"\b(?:" + "|".join(f"(?P<{k}>{words(v)})" for k, v in NOUNS.items()) + r")\b"
)
_EVIDENCE_RE = {
    concept: re.compile(
        r"\b(?:"
        + words("|".join([f for f, x in _LEX.items() if x.concept == concept] + extra))
        + r")\b"
    )
    for concept in FORMS
    for extra in [EVIDENCE_WORDS[concept].split("|") if concept in EVIDENCE_WORDS else []]
}


# --- folding -----------------------------------------------------------------------

# What renders as nothing: the project's one list (format characters, fillers), and
# the Mongolian free variation selectors and the braille blank.
_INVISIBLE = INVISIBLE_CLASS + "\u180b-\u180d\u2800"
# combining marks of Latin, Greek and Cyrillic text (what NFKD splits accents into)
_MARKS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u00b4": "'"})


def _table(ranges: str) -> dict[int, int | None]:
    """A ``str.translate`` table that drops the characters of ``ranges`` (``a-b`` spans)."""
    table: dict[int, int | None] = {}
    for first, last in re.findall(r"(.)(?:-(.))?", ranges, re.DOTALL):
        table.update(dict.fromkeys(range(ord(first), ord(last or first) + 1)))
    return table


_INVISIBLE_TABLE = _table(_INVISIBLE)
#: drops invisible characters and combining marks; one apostrophe for all
_FOLD_TABLE = _table(_INVISIBLE + _MARKS) | _APOSTROPHES


def _display(text: str) -> str:
    """``text`` as the claims are quoted from: NFKC, without invisible characters."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFKC", text).translate(_INVISIBLE_TABLE)


_ASCII_RUNS = re.compile(r"[\x00-\x7f]+|[^\x00-\x7f]")


def _fold(display: str) -> tuple[str, list[int]]:
    """``display`` folded (lower case, no accents, one apostrophe), and where each
    folded character came from in it."""
    if display.isascii():
        return display.lower(), list(range(len(display)))
    chars: list[str] = []
    where: list[int] = []
    for m in _ASCII_RUNS.finditer(display):
        run, i = m.group(), m.start()
        if run.isascii():
            chars.append(run.lower())
            where.extend(range(i, i + len(run)))
            continue
        folded = unicodedata.normalize("NFKD", run).lower().translate(_FOLD_TABLE)
        chars.append(folded)
        where.extend([i] * len(folded))
    return "".join(chars), where


def _fast_fold(text: str) -> str:
    """``text`` folded as :func:`_fold` does, without the map back (for search only)."""
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFKD", text).lower().translate(_FOLD_TABLE)


# --- the grammar around a verb -------------------------------------------------------


_QUOTED = re.compile(r'"[^"\n]{0,400}"|“[^”\n]{0,400}”|„[^“”\n]{0,400}[“”]|«[^»\n]{0,400}»')
# Verbs of the lexicon in idioms that report no action: "changed my mind",
# "changed their minds", "sent my regards". Blanked like quoted text.
_IDIOMS = re.compile(
    r"\b(?:chang(?:ed|e)|chang(?:ing))\s+(?:my|your|his|her|their|our|one's)\s+minds?\b"
    r"|\bsent\s+(?:my|our|his|her|their)\s+(?:regards|love|best|thanks|condolences)\b"
)
# a full stop ends a sentence unless it ends an abbreviation ("order no. 12")
_SENTENCE_END = re.compile(
    r"(?:[!?…]|\.(?<!\bno\.)(?<!\bnr\.)(?<!\bvs\.)(?<!\bca\.)(?<!\bref\.)(?<!\bapprox\.)"
    r"(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\bz\.b\.))[.!?…]*(?=[\s\"')\]]|$)|\n"
)
_SUBJECT = words(SUBJECTS)
_CLAUSE_BREAK = re.compile(
    r"[;:()\[\]\u2014\u2013]|\s-\s|\b(?:"
    + words(f"{CONTRAST}|{CLAUSE_WORDS}")
    + r")\b"
    + rf"|,(?=\s*(?:(?:and|then|und|dann|et|puis|y|luego)\s+)?{_SUBJECT}(?![.\w]))"
    + rf"|\b(?:and|und|et|y)\s+(?={_SUBJECT}(?![.\w]))"
)
# where reported speech stops reaching ("you said X, but I cancelled it")
_STRONG_BREAK = re.compile(
    rf"[;:()\[\]\u2014\u2013]|\b(?:{words(CONTRAST)})\b"
    r"|,(?=\s*(?:and\s+|und\s+|et\s+|y\s+)?(?:i|we|ich|wir|je|j'|nous|yo)(?![.\w]))"
)
_INTERJECTION = re.compile(r"^[\s\W]*(?:\b(?:" + words(INTERJECTIONS) + r")\b\s*[,!.\-]+\s*)+")
# What makes a verb not a claim when it comes before it in its clause: a negation, or
# a mood that is not a report of a fact; stock phrases whose "no" negates nothing are
# matched first and skipped.
_BLOCKERS = re.compile(
    rf"\b(?:(?P<stock>{words(STOCK)}|no\.?\s*(?=#?\d))"
    rf"|(?P<block>{words(NEGATION + '|' + IRREALIS)}))\b"
    r"|(?P<elided>n't\b|\bn'|'ll\b)"
)
_NEGATION_AFTER = re.compile(r"^\s*(?:nothing|none|no\b|nichts|rien|nada|ningun)")
# a German infinitive passive after the participle: "storniert werden (kann)"
_IRREALIS_AFTER = re.compile(r"^\s*(?:werden|zu\b|sein\b)")
_SUBJUNCTIVE = re.compile(r"\bque\s+(?:(?:se\s+)?(?:lo|la|le|los|las|les)\s+)?$")
_REPORTED = re.compile(r"\b(?:" + words(REPORTED) + r")\b")
_ADVERBS = r"(?:\b(?:" + words(ADVERBS) + r")\s+)"
_SECOND_PERSON = re.compile(
    rf"\byou(?:'ve|'d|\s+have|\s+had)?\s+{_ADVERBS}{{0,2}}$"
    r"|\b(?:vous avez|tu as|vous aviez)\s+(?:(?:bien|deja)\s+)?$"
    r"|\b(?:usted ha|ustedes han|tu has)\s+(?:ya\s+)?$"
    r"|\b(?:sie|du|ihr)\s+(?:haben|hast|habt|hatten)\b(?!.*\b(?:wurde|worden)\b)"
    r"|\b(?:haben|hast|habt|hatten)\s+(?:sie|du|ihr)\b(?!.*\b(?:wurde|worden)\b)"
)
_ATTRIBUTIVE = re.compile(r"\b(?:" + words(ATTRIBUTIVE) + r")\s+$|\bl'$")
_FR_AUX = re.compile(
    r"\b(?:ai|a|as|avons|avez|ont|avait|avions|aviez|avaient|ete|est|sont|suis|etes|sommes|"
    r"etait|etaient|fut|furent)\s+(?:(?:bien|deja|correctement|egalement|aussi|toutes?|tous|"
    r"ete)\s+){0,2}$"
)
_PASSIVE = re.compile(
    rf"\b(?:is|are|was|were|be|been|being|got|gets|get|'s|'re)\s+{_ADVERBS}{{0,2}}$"
    r"|\b(?:wurde|wurden|worden|ist|sind|wird|war|waren)\b"
    r"|\b(?:ete|est|sont|fut|furent|etait|etaient)\s+(?:\w+\s+){0,2}$"
    r"|\b(?:sido|fue|fueron|esta|estan|quedo|quedaron|ha|han|se)\s+(?:\w+\s+)?$"
)
_AGENT = re.compile(
    rf"\b(?:i|we)(?![.\w])(?:'ve|'d)?\s+(?:(?:have|had|went ahead and|gone ahead and|"
    rf"have gone ahead and)\s+)?{_ADVERBS}{{0,3}}$"
    r"|\b(?:ich|wir)\s+(?:habe|haben|hab)\b|\b(?:habe|haben)\s+(?:ich|wir)\b"
    r"|(?:\bj'|\bje\s+|\bnous\s+)(?:(?:l'|les\s+|la\s+|le\s+|vous\s+|lui\s+|leur\s+|m'|t')*)"
    r"(?:ai|avons)\s+(?:(?:bien|deja|aussi|egalement|correctement)\s+){0,2}$"
    r"|\b(?:he|hemos)\s+(?:(?:ya|tambien)\s+)?$"
)
# after a preposition a participle is an adjective: "the refund for cancelled orders"
_PREPOSITION = re.compile(
    r"\b(?:for|of|with|to|on|in|about|from|at|into|per|fur|von|mit|zu|bei|uber|ueber|pour|de|"
    r"des|du|avec|sur|par|para|con|sobre|por)\s+$"
)
# a bare plural subject and a present passive is a rule, not an event: "Gift cards are
# refunded immediately", "Refunds are processed within 5 days"
_GENERIC_SUBJECT = re.compile(
    r"^\s*(?!(?:the|your|my|our|these|those|this|that|all|both|its|their|his|her|it|we|i|you|"
    r"ihre|ihr|die|der|das|unsere|vos|votre|les|la|le|nos|su|sus|los|las|el|mis|tus)\b)"
    r"(?:[a-z-]+\s+){1,3}(?:are|get|werden|sont|son)\s+$"
)
_HABITUAL_AFTER = re.compile(
    r"^\s*(?:within|usually|typically|normally|generally|always|automatically|only|once|"
    r"whenever|if|innerhalb|normalerweise|automatisch|dans un delai|sous|generalement|"
    r"normalement|automatiquement|en un plazo|normalmente|automaticamente)\b"
)
# a participle opening the clause as an adjective: "Cancelled orders cannot be reinstated"
_ADJECTIVE = re.compile(
    r"^\s+[a-z]+\s+(?:cannot|can|must|may|might|will|would|should|are|is|were|was|have|has|"
    r"do|does|stay|remain|get|werden|wurden|sind|konnen|koennen|mussen|muessen|bleiben|"
    r"peuvent|doivent|sont|restent|pueden|deben|son|se)\b"
)
_ELLIPTICAL_AGENT = re.compile(r"^\s+(?:your|the|it|them|you|this|that|ihre|ihren|votre|su)\b")
# "and refunded it" right after a first-person claim in the same clause
_COORDINATED = re.compile(r"^[^.]{0,60}?(?:,|\band\b|\bund\b|\bet\b|\by\b)\s+$")
_PERFECT = re.compile(rf"\b(?:i|we)(?:'ve|\s+have)\s+{_ADVERBS}{{0,3}}$")
_DATED = re.compile(
    r"\b(?:"
    + words(DATED)
    + r")\b|\b(?:on|am|le|el|in|vor|hace)\s+\d|\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}\b"
)


@dataclass(frozen=True, slots=True)
class _Claim:
    phrase: str
    concepts: frozenset[str]
    agentive: bool


#: how much of a clause before the verb the patterns anchored at the verb read
_TAIL = 100


def _is_claim(form: Form, pre: str, post: str, head: str) -> bool | None:
    """Whether a verb in this context states an act: ``None`` if it does not, else
    whether the claim is first-person (agentive).

    ``pre`` and ``post``: the verb's clause before and after it; ``head``: its
    sentence up to it.
    """
    cuts = _spans(_STRONG_BREAK, head)
    if _REPORTED.search(head, cuts[-1] if cuts else 0):
        return None
    # the patterns that read what comes right before the verb look at the end only
    tail = pre[-_TAIL:]
    if _SECOND_PERSON.search(tail) or _ATTRIBUTIVE.search(tail):
        return None
    if any(m.lastgroup != "stock" for m in _BLOCKERS.finditer(pre)):
        return None
    if _NEGATION_AFTER.match(post) or _IRREALIS_AFTER.match(post):
        return None
    if not pre.strip() and _ADJECTIVE.match(post):
        return None
    if _PREPOSITION.search(tail) or _GENERIC_SUBJECT.match(tail) or _HABITUAL_AFTER.match(post):
        return None
    if _SUBJUNCTIVE.search(head[-_TAIL:]) or (form.needs_aux and not _FR_AUX.search(tail)):
        return None
    agentive = form.first_person or bool(_AGENT.search(tail))
    if form.strict and not (agentive or _PASSIVE.search(tail)):
        return None
    if (_DATED.search(pre) or _DATED.search(post)) and not _PERFECT.search(tail):
        return None
    # a participle opening the clause, then its object: "Cancelled your order."
    return agentive or (not pre.strip() and bool(_ELLIPTICAL_AGENT.match(post)))


_LEADING_AND = re.compile(r"[\s,;:-]*(?:(?:and|und|et|y|or|oder|ou|o)\s+)?")


def _spans(pattern: re.Pattern[str], text: str) -> list[int]:
    return [m.end() for m in pattern.finditer(text)]


def _find(text: str, support: _Support) -> list[_Claim]:
    """The claims of ``text`` whose verb alone no tool in ``support`` backs."""
    display = _display(text)
    folded, where = _fold(display)
    folded = folded.replace("_", " ")  # markdown emphasis (_cancelled_) is not a word character
    folded = _QUOTED.sub(lambda m: " " * len(m.group()), folded)
    folded = _IDIOMS.sub(lambda m: " " * len(m.group()), folded)
    ends = _SENTENCE_END.finditer(folded)
    claims: list[_Claim] = []
    sentence_start, last_agentive = 0, -1
    for end in [*ends, None]:
        stop = end.end() if end is not None else len(folded)
        sentence = folded[sentence_start:stop]
        if "?" not in sentence and "\u00bf" not in sentence:
            last_agentive = previous = -1
            for m in _VERB.finditer(sentence):
                form = _LEX[" ".join(m.group().split())]
                if form.concept != "generic" and support.acts_for(form.concept):
                    continue  # true or not as a claim, a tool that does it ran
                head = sentence[: m.start()]
                cut = _spans(_CLAUSE_BREAK, head)
                start = cut[-1] if cut else 0
                after = sentence[m.end() :]
                nxt = _CLAUSE_BREAK.search(after)
                post = after[: nxt.start()] if nxt else after
                pre = _INTERJECTION.sub("", head[start:])
                agentive = _is_claim(form, pre, post, head)
                if agentive is None:
                    continue
                if last_agentive >= start and _COORDINATED.match(head[last_agentive:]):
                    agentive = True
                if agentive:
                    last_agentive = m.end()
                # an action noun says what was done: "your refund was sent" (a refund
                # tool will do), "your refund was issued" (a refund tool, not any)
                nouns = {str(n.lastgroup) for n in _NOUN_RE.finditer(pre)}
                generic = form.concept == "generic" and nouns
                concepts = nouns if generic else {form.concept, *nouns}
                # the phrase: the clause up to the verb, from after an earlier claim in it
                first = sentence_start + start + len(head[start:]) - len(pre)
                first = max(
                    first, sentence_start + max(previous, start), sentence_start + m.start() - 80
                )
                previous = m.end()
                lead = _LEADING_AND.match(folded, first)
                first = lead.end() if lead else first
                last = sentence_start + m.end() - 1
                phrase = display[where[first] : where[last] + 1].strip(" \t\n,;:-")
                claims.append(_Claim(phrase, frozenset(concepts), agentive))
        sentence_start = stop
    return claims


# --- support -----------------------------------------------------------------------


def _acts(tool: Tool) -> bool:
    """Whether ``tool`` can change something (not declared read-only)."""
    r = tool.risk
    effect = r.writes or r.irreversible or r.high_stakes or r.external_comms or r.critical
    return effect or not r.reads


def _tool_text(tool: Tool) -> str:
    props = tool.parameters.get("properties") if isinstance(tool.parameters, dict) else None
    parts = [tool.name, tool.summary or "", tool.description, " ".join(props or ())]
    return _fast_fold(" ".join(parts).replace("_", " ").replace("-", " "))


def _ran(done: Sequence[Done]) -> list[Done]:
    """The calls in ``done`` that ran (not a declined or expired approval)."""
    return [(t, r) for t, r in done if not r.lstrip().lower().startswith(NOT_DONE)]


#: how much of each result is read for evidence (a look-up's status is near its start)
_EVIDENCE_CHARS = 100_000


class _Support:
    """What the successful calls back, each answer computed once and only when asked."""

    __slots__ = ("_acting", "_calls", "_evidence", "_known")

    def __init__(self, done: Sequence[Done]) -> None:
        self._calls = _ran(done)
        self._acting: list[tuple[Tool, str]] | None = None
        self._known: dict[str, bool] = {}
        self._evidence: str | None = None

    def acts_for(self, concept: str) -> bool:
        """Whether a call that ran could have done what ``concept`` says."""
        known = self._known.get(concept)
        if known is None:
            if self._acting is None:
                self._acting = [(t, _tool_text(t)) for t, _ in self._calls if _acts(t)]
            rx = _TOOL_RE.get(concept)
            known = any(
                concept in BROAD
                or (concept == "send" and tool.risk.external_comms)
                or (rx is not None and rx.search(words) is not None)
                for tool, words in self._acting
            )
            self._known[concept] = known
        return known

    def shows(self, concept: str) -> bool:
        """Whether a result says that what ``concept`` says is the case."""
        if not self._calls:
            return False
        if self._evidence is None:
            joined = "\n".join(r[:_EVIDENCE_CHARS] for _, r in self._calls)
            self._evidence = _fast_fold(joined.replace("_", " "))
        return _EVIDENCE_RE[concept].search(self._evidence) is not None


def unsupported_claims(text: str | None, done: Sequence[Done] = ()) -> list[str]:
    """The phrases of ``text`` that state an action was done which no call in ``done`` supports.

    ``done``: the ``(tool, result text)`` of each call that succeeded (in this
    turn, and earlier ones if restating them is fine; see the module
    docstring). A result that starts with ``not done:`` (the runtime's note
    for a declined or expired approval) counts as no call. Returns the
    claims in order, each once; ``[]`` when every claim is supported.
    """
    if not text:
        return []
    words = _fast_fold(text).encode("ascii", "replace").translate(_LETTERS_ONLY).split()
    if _HEADS.isdisjoint(words):
        return []
    support = _Support(done)
    out: list[str] = []
    for claim in _find(text, support):
        concepts = claim.concepts
        if any(support.acts_for(c) for c in concepts):
            continue
        if not claim.agentive and any(support.shows(c) for c in concepts):
            continue
        if claim.phrase not in out:
            out.append(claim.phrase)
    return out


# --- the honest reply ----------------------------------------------------------------

_REPLIES = {
    "en": (
        "I have not done that: no action was carried out in this conversation turn, so "
        "nothing was changed. Please tell me if you want me to try.",
        "I cannot confirm all of that: not every action I described was carried out in this "
        "conversation turn. Please check with me before relying on it, and tell me if you "
        "want me to try the rest.",
    ),
    "de": (
        "Das habe ich nicht getan: In diesem Gesprächsschritt wurde keine Aktion ausgeführt, "
        "es wurde also nichts geändert. Sagen Sie mir bitte, ob ich es versuchen soll.",
        "Das kann ich nicht vollständig bestätigen: Nicht jede beschriebene Aktion wurde in "
        "diesem Gesprächsschritt ausgeführt. Bitte prüfen Sie es mit mir, bevor Sie sich "
        "darauf verlassen, und sagen Sie mir, ob ich den Rest versuchen soll.",
    ),
    "fr": (
        "Je ne l'ai pas fait : aucune action n'a été effectuée lors de cet échange, donc rien "
        "n'a été modifié. Dites-moi si vous voulez que j'essaie.",
        "Je ne peux pas tout confirmer : toutes les actions décrites n'ont pas été effectuées "
        "lors de cet échange. Vérifiez avec moi avant de vous y fier, et dites-moi si vous "
        "voulez que j'essaie le reste.",
    ),
    "es": (
        "No lo he hecho: no se realizó ninguna acción en este turno de la conversación, así "
        "que no se cambió nada. Dígame si quiere que lo intente.",
        "No puedo confirmarlo todo: no todas las acciones descritas se realizaron en este "
        "turno de la conversación. Compruébelo conmigo antes de confiar en ello y dígame si "
        "quiere que intente el resto.",
    ),
}


def _language(claims: Sequence[str]) -> str:
    for phrase in claims:
        m = _VERB.search(_fold(_display(phrase))[0])
        if m is not None:
            return _LEX[" ".join(m.group().split())].lang
    return "en"


def honest_reply(claims: Sequence[str], done: Sequence[Done] = ()) -> str:
    """What the user reads instead of an answer with unsupported ``claims``.

    In the claims' language (English, German, French or Spanish; English
    otherwise). It claims nothing itself: when some tool in ``done`` could
    act, it does not say that nothing was changed.
    """
    acted = any(_acts(t) for t, _ in _ran(done))
    return _REPLIES[_language(claims)][1 if acted else 0]
