"""The signals: named patterns, by category, each with a weight.

A :class:`Rule` is a regular expression over normalised, lower-cased text,
a category, a weight in (0, 1) and what it *needs*: groups of anchor words
(or literals), one of each group present in every text the pattern can
match. They are a cheap prefilter (a set intersection is far cheaper than a
regex search), so a window of benign text runs only a handful of patterns.

A weight reads as "how sure this signal alone makes us". Weights were set
by hand and checked against development data only:
``bench/injection/calibrate.py`` counts the development texts each rule
matches, attacks and benign apart. That corpus is rich in attacks, so its
counts were used to lower weights that match benign text, not to raise the
rest. Signals combine as a noisy-OR, ``1 - prod(1 - w)`` (:func:`combine`);
the detector counts overlapping rules of one category once and combines only
signals near each other.

Categories (:data:`CATEGORIES`): ``instruction-override`` (ignore, forget or
replace the instructions; text that addresses the model), ``role-hijack``
(you are now, act as, DAN, developer mode), ``prompt-extraction`` (reveal
or repeat the system prompt), ``tool-coercion`` (call a tool, run a command,
move money, skip confirmation), ``fake-delimiters`` (fake system turns,
chat-template tokens, "END OF DOCUMENT"), ``exfiltration`` (send the
conversation or customer data to an address or URL, image URLs that carry
data), ``obfuscation`` (invisible text), and, on tool output only,
``task-hijack`` (a task or answer instruction out of place in a document)
and ``code-payload`` (a snippet to adopt into "your code", code that fetches
and runs, destroys, or collects and ships data): see :mod:`._tasks`.
Instruction overrides are covered in English, German, French and Spanish,
and in Italian, Portuguese, Dutch, Polish, Russian, Turkish and Croatian by
one generic rule; the tool-only categories in English; the others in
English, German, French and Spanish.
"""

from __future__ import annotations

from tether.controls.guards._build import CATEGORIES, Rule, combine
from tether.controls.guards._override import OVERRIDE_RULES
from tether.controls.guards._signals import SIGNAL_RULES
from tether.controls.guards._tasks import TASK_RULES

__all__ = ["CATEGORIES", "RULES", "Rule", "combine"]

#: Every rule, overrides first. Names are unique; order does not change scores.
RULES: tuple[Rule, ...] = (*OVERRIDE_RULES, *SIGNAL_RULES, *TASK_RULES)
