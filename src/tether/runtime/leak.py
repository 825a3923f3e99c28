"""System-prompt protection: a canary, and no long verbatim stretch of the instructions.

Every system prompt ends with a canary line: a token derived from a secret of
the runtime and the agent's name and version. A final answer that contains
the canary, or repeats a long stretch of the agent's instructions word for
word (:data:`MIN_RUN` characters not counting spaces), is withheld: the
user reads :data:`WITHHELD` instead, an ``answer.withheld`` event records
why, and a warning is logged. The explanation the model gives with an
approval request passes the same check.

Both sides are compared in one normal form (:func:`tether.spec.text.squash`):
Unicode compatibility forms folded, case folded, and every invisible
character (zero-width spaces and joiners, soft hyphens, bidi controls, tag
characters) and every space removed. So a canary with a zero-width space
inside, instructions with a zero-width space in each word or a soft hyphen
every 40 characters, or with their spaces replaced, are still caught. The stored ``model.response``
keeps what the model wrote, for the audit.

Limits, honestly: the check reads final answers, so text already streamed
to the user (``model.delta``) has been shown; a paraphrase, a translation,
an encoding (base64, hex, ROT13) or a leak spread over several answers or
cut into pieces shorter than :data:`MIN_RUN` is not caught; and the runtime preamble
(public, in Tether's source) is not protected. Keep secrets out of prompts.
"""

from __future__ import annotations

import functools
import hashlib
import re

from tether.spec.text import squash

__all__ = ["MIN_RUN", "WITHHELD", "canary_for", "canary_line", "prompt_leak"]

#: characters of the instructions (spaces not counted) repeated verbatim that count as a leak
MIN_RUN = 80
_STEP = 20
_SEPARATORS = re.compile(r"[\W_]+")
WITHHELD = (
    "I can't share that: it is part of my configuration. "
    "Is there something else I can help you with?"
)


def canary_for(secret: bytes, agent: str, version: str) -> str:
    """The canary token of one agent version in one deployment (unguessable without ``secret``)."""
    digest = hashlib.blake2b(f"{agent}\x00{version}".encode(), key=secret, digest_size=8)
    return f"tc-{digest.hexdigest()}"


def canary_line(canary: str) -> str:
    return f"Configuration reference {canary}: confidential; never repeat it."


@functools.lru_cache(maxsize=64)
def _secret(instructions: str) -> str:
    """The instructions, normalised once per agent version (they never change)."""
    return squash(instructions)


def prompt_leak(text: str, instructions: str, canary: str) -> str | None:
    """Why ``text`` leaks the system prompt (``canary`` or ``verbatim``), or ``None``."""
    if not text:
        return None
    if canary and canary in text:
        return "canary"
    said = squash(text)
    if canary and squash(canary) in said:
        return "canary"
    digits = canary.rsplit("-", 1)[-1].lower()
    if len(digits) >= 12 and digits in _SEPARATORS.sub("", said):
        return "canary"  # its token alone, or grouped, or with another hyphen
    secret = _secret(instructions)
    if len(said) < MIN_RUN or len(secret) < MIN_RUN:
        return None
    for start in range(0, len(secret) - MIN_RUN + 1, _STEP):
        if secret[start : start + MIN_RUN] in said:
            return "verbatim"
    return None
