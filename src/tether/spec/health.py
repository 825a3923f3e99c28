"""What a readiness probe asks an agent: :class:`HealthCheck`.

``GET /readyz`` and ``tether health AGENT`` send ``message`` through the
agent's model chain (no tools, no session, nothing stored) and check the
answer: ready only when the *primary* model answered, within ``timeout``,
and the answer matches ``expect`` (a regular expression searched in the
answer, case-insensitively). A fallback answering means the primary is
down: not ready, so a load balancer sends traffic to a replica whose chain
works. The result is cached for ``interval`` seconds so that frequent probes
cost one model call per interval, not one per probe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tether.exceptions import ConfigError

__all__ = ["HealthCheck"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthCheck:
    """A cheap test query and the answer it must get.

    - ``message``: what the model is asked (keep it one short line).
    - ``expect``: a regular expression the answer must contain
      (case-insensitive).
    - ``timeout``: seconds the whole probe may take.
    - ``interval``: seconds a result is reused before asking again.
    - ``max_tokens``: the longest answer asked for.
    """

    message: str = "Reply with the single word OK."
    expect: str = r"\bok\b"
    timeout: float = 20.0
    interval: float = 30.0
    max_tokens: int = 8

    def __post_init__(self) -> None:
        if not self.message.strip():
            raise ConfigError("HealthCheck.message must not be blank")
        try:
            re.compile(self.expect)
        except re.error as exc:
            raise ConfigError(f"HealthCheck.expect is not a regular expression: {exc}") from None
        if self.timeout <= 0 or self.interval < 0 or self.max_tokens < 1:
            raise ConfigError(
                "HealthCheck: timeout must be positive, interval 0 or more, max_tokens 1 or more"
            )

    def accepts(self, answer: str) -> bool:
        """Whether ``answer`` is what a working model says."""
        return re.search(self.expect, answer, re.IGNORECASE) is not None
