"""Did the final answer own up to a failed tool? A cheap after-the-fact check.

The runtime preamble tells the model to say so when a tool failed; this
checks that it did. A final answer given in a turn where some tool call
ended in an error must carry some acknowledgement: an apology, a "could not",
"unavailable", "failed", "try again", "not found", "check the spelling" and
the like (in English). An answer
that has none (for example "Your order has been cancelled." after
``cancel_order`` timed out) is recorded as an
``answer.unacknowledged_failure`` event, which ``tether sessions show``
lists and the eval runner counts.

It is a heuristic over words, not a judge: it cannot tell that an answer
which says "sorry" also invents a result, and it does not read languages
other than English. It errs towards flagging: a false alarm costs a look at
a session, a missed fabrication costs a customer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["acknowledges_failure", "unacknowledged"]

_ACK = re.compile(
    r"\b(?:"
    r"could\s*n[o']t|couldn't|can\s*not|can't|cannot|unable|not\s+able|wasn't\s+able|"
    r"fail(?:ed|s|ure|ing)?|error|unavailable|not\s+available|down\s+right\s+now|"
    r"did\s*n[o']t\s+(?:work|go\s+through|succeed|complete)|didn't|"
    r"(?:a|an|some)\s+(?:problem|issue)|sorry|apolog\w*|unfortunately|"
    r"try\s+again|not\s+possible|outcome\s+(?:is\s+)?unknown|may\s+or\s+may\s+not|"
    r"timed?\s*out|no\s+response|not\s+(?:be\s+)?(?:completed|confirmed|done)|"
    # a lookup that found nothing, said as such or as what to check
    r"not\s+found|no\s+(?:\w+\s+){0,2}(?:was|were)\s+found|(?:does|do)\s*n[o']t\s+match|"
    r"check\s+the\s+spelling"
    r")\b",
    re.IGNORECASE,
)


def acknowledges_failure(text: str) -> bool:
    """Whether ``text`` says, in some words, that something could not be done."""
    return bool(_ACK.search(text))


def unacknowledged(text: str | None, failed_tools: Iterable[str]) -> list[str]:
    """The failed tools a final answer ``text`` leaves unacknowledged (all or none)."""
    failed = sorted(set(failed_tools))
    if not failed or (text and acknowledges_failure(text)):
        return []
    return failed
