"""How Tether writes HTML: Jinja2 templates with autoescape on, every text made visible first.

The cost page (:mod:`tether.surfaces.cost_html`), the eval report
(:mod:`tether.surfaces.evals.report`) and the red-team report
(``tether redteam --report PATH.html``) are self-contained pages that show
text a model, a tool, a user or a case file wrote. Each keeps its
templates as module strings and renders them through :func:`environment`,
which sets the three rules in one place:

- autoescape is on, so ``<script>`` or ``"onmouseover=`` in a text is
  written as text (``&lt;script&gt;``, ``&#34;onmouseover=``);
- every value a template writes goes through :func:`shown` first, so a
  bidi override, a zero-width space or an escape sequence is written as
  ``\\u202e``, ``\\u200b``, ``\\x1b`` (see :func:`~tether.runtime.approvals.reveal`)
  instead of reordering or hiding what is around it; markup a template
  made itself (a macro's output) is left alone;
- a name the template uses but was not given is an error, not an empty
  string.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import DictLoader, Environment, StrictUndefined
from markupsafe import Markup

from tether.runtime.approvals import reveal

__all__ = ["environment", "shown"]


def shown(value: Any, *, keep: str = "") -> Any:
    """``value`` as a template writes it: a string with its hidden characters but those
    in ``keep`` made visible (autoescape then escapes it); anything else unchanged."""
    if isinstance(value, str) and not isinstance(value, Markup):  # a macro's output is markup
        return reveal(value, keep=keep)
    return value


def environment(templates: Mapping[str, str], *, keep: str = "") -> Environment:
    """A Jinja2 environment for ``templates`` (name to source) that writes HTML safely.

    ``keep``: the hidden characters written as they are. ``""`` (the
    default) shows even a newline as ``\\n``, for pages whose texts sit in
    table cells; ``"\\t\\n"`` keeps tabs and newlines, for a page that shows
    multi-line text in ``<pre>`` blocks.
    """

    def finalize(value: Any) -> Any:
        return shown(value, keep=keep)

    return Environment(
        loader=DictLoader(dict(templates)),
        autoescape=True,
        finalize=finalize,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
