"""The cost report as one self-contained HTML file (``tether cost --html PATH``).

Everything is inline: the style sheet, and a chart of monthly cost against
daily users drawn as SVG by :func:`chart_svg` on log-scaled axes (one line
for the observed cost, one for the ``--model`` reprice when there is one).
No script, no font, no stylesheet or image is fetched, so the file opens
offline and can be attached to a ticket or an email. The SVG is written by
hand: a charting library would be a heavy dependency for one line chart.
Both are Jinja2 templates rendered through
:func:`~tether.surfaces.html_pages.environment`: autoescape is on, so every
piece of text taken from the report (agent names, versions, models) is
escaped; and each is passed through :func:`~tether.runtime.approvals.reveal`
first, so a bidi override or a zero-width character in a name shows as
``\\u202e`` instead of reordering or hiding what is around it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tether.spec.messages import Usage
from tether.surfaces.costs import CostReport, ModelRow, Projection, ToolRow, cost_label, money
from tether.surfaces.html_pages import environment

__all__ = [
    "TOOL_HEAD",
    "VERSION_HEAD",
    "Series",
    "chart_svg",
    "cost_errors",
    "model_rows",
    "projection_rows",
    "render_html",
    "reprice_rows",
    "tool_rows",
    "version_rows",
    "write_html",
]

_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2937;
       max-width: 980px; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; }
h2 { font-size: 1.1rem; margin-top: 2rem; border-bottom: 1px solid #e5e7eb; }
.meta { color: #6b7280; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { padding: .25rem .75rem; border-bottom: 1px solid #f3f4f6; text-align: left; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.warn { background: #fef3c7; border: 1px solid #f59e0b; padding: .5rem .75rem; }
svg text { font: 12px system-ui, sans-serif; fill: #374151; }
"""


@dataclass(frozen=True, slots=True)
class Series:
    """One line of the chart: ``points`` are (daily users, monthly dollars)."""

    label: str
    color: str
    points: tuple[tuple[float, float], ...]
    dashed: bool = False


def _decades(values: Sequence[float]) -> tuple[int, int]:
    lo = math.floor(math.log10(min(values)))
    hi = math.ceil(math.log10(max(values)))
    return (lo, hi if hi > lo else lo + 1)


def _dollars_tick(exp: int) -> str:
    v = 10.0**exp
    if v >= 1_000_000:
        return f"${v / 1_000_000:g}M"
    if v >= 1_000:
        return f"${v / 1_000:g}k"
    return f"${v:g}"


_CHART = """\
<svg width="{{ c.width }}" height="{{ c.height }}" viewBox="0 0 {{ c.width }} {{ c.height }}" \
role="img" aria-label="monthly cost versus daily users, log scales">
{%- if c.empty -%}
<text x="{{ c.mid_x }}" y="{{ c.mid_y }}" text-anchor="middle">every projection is $0: \
nothing to draw on a log scale</text>
{%- else -%}
{%- for g in c.xgrid -%}
<line x1="{{ g.x }}" y1="{{ c.top }}" x2="{{ g.x }}" y2="{{ c.plot_bottom }}" stroke="#e5e7eb"/>\
<text x="{{ g.x }}" y="{{ c.xtick_y }}" text-anchor="middle">{{ g.label }}</text>
{%- endfor -%}
{%- for g in c.ygrid -%}
<line x1="{{ c.left }}" y1="{{ g.y }}" x2="{{ c.plot_right }}" y2="{{ g.y }}" stroke="#e5e7eb"/>\
<text x="{{ c.ytick_x }}" y="{{ g.label_y }}" text-anchor="end">{{ g.label }}</text>
{%- endfor -%}
<rect x="{{ c.left }}" y="{{ c.top }}" width="{{ c.pw }}" height="{{ c.ph }}" fill="none" \
stroke="#9ca3af"/><text x="{{ c.xaxis_x }}" y="{{ c.xaxis_y }}" text-anchor="middle">\
daily users (log scale)</text><text transform="translate(14 {{ c.yaxis_y }}) rotate(-90)" \
text-anchor="middle">monthly cost, USD (log scale)</text>
{%- for s in c.series -%}
{%- if s.points -%}
<polyline points="{{ s.path }}" fill="none" stroke="{{ s.color }}" stroke-width="2"\
{% if s.dashed %} stroke-dasharray="6 4"{% endif %}/>
{%- for pt in s.points -%}
<circle cx="{{ pt.x }}" cy="{{ pt.y }}" r="3.5" fill="{{ s.color }}"><title>{{ pt.tip }}</title>\
</circle>
{%- endfor -%}
{%- endif -%}
<line x1="{{ s.lx }}" y1="{{ c.legend_y - 4 }}" x2="{{ s.lx + 24 }}" y2="{{ c.legend_y - 4 }}" \
stroke="{{ s.color }}" stroke-width="2"{% if s.dashed %} stroke-dasharray="6 4"{% endif %}/>\
<text x="{{ s.lx + 30 }}" y="{{ c.legend_y }}">{{ s.label }}</text>
{%- endfor -%}
{%- endif -%}
</svg>"""

_PAGE = (
    """\
{%- macro table(head, rows, numeric) -%}
<table><thead><tr>
{%- for h in head %}<th{% if loop.index0 in numeric %} class="n"{% endif %}>{{ h }}</th>
{%- endfor %}</tr></thead><tbody>
{%- for row in rows %}<tr>
{%- for v in row %}<td{% if loop.index0 in numeric %} class="n"{% endif %}>{{ v }}</td>
{%- endfor %}</tr>
{%- endfor %}</tbody></table>
{%- endmacro -%}
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title><style>"""
    + _STYLE
    + """</style></head><body>
<h1>{{ title }}</h1>
<p class="meta">{{ meta }}</p>
{% if unpriced %}<p class="warn">Unpriced models, counted at $0: {{ unpriced }}. \
Give them a price with --prices FILE.</p>
{% endif -%}
<h2>Summary</h2>
{{ table(["", "value"], summary_rows, [1]) }}
{% if reprice_model is not none -%}
<h2>Repriced on {{ reprice_model }}</h2>
{{ table(["", "observed", reprice_model], reprice_rows, [1, 2]) }}
<p class="meta">The same tokens at the other model's price: a first estimate \
(another model would not use exactly the same tokens).</p>
{% endif -%}
<h2>Monthly cost by daily users</h2>
<p class="meta">{{ projection_note }}</p>
{% include "chart.svg" %}
{{ table(projection_head, projection_rows, range(projection_head | length) | list) }}
<h2>By agent version</h2>
{{ table(version_head, version_rows, [2, 3, 4, 5, 6, 7, 8]) }}
<h2>By model</h2>
{{ table(["model", "calls", "input", "output", "cache read", "cache write", "cost"], \
model_rows, [1, 2, 3, 4, 5, 6]) }}
{% if tool_rows -%}
<h2>By tool</h2>
{{ table(tool_head, tool_rows, [1, 2, 3, 4]) }}
<p class="meta">Tools that declare a cost (dollars per call, or from their result). A \
charged call cost more than $0; a call refused, denied or not run costs nothing; cost \
per call is over every call.</p>
{% endif -%}
{% if cost_errors %}<p class="warn">Cost functions that failed, calls counted at $0: \
{{ cost_errors }}. See the cost_error of their tool.finished events.</p>
{% endif -%}
</body></html>
"""
)


_ENV = environment({"chart.svg": _CHART, "page.html": _PAGE})


def _chart(series: Sequence[Series], width: int, height: int) -> dict[str, Any]:
    """The chart's geometry and labels: what ``chart.svg`` draws."""
    left, right, top, bottom = 72, 40, 20, 64
    pw, ph = width - left - right, height - top - bottom
    drawn = [(s, tuple((x, y) for x, y in s.points if x > 0 and y > 0)) for s in series]
    xs = [x for _, pts in drawn for x, _ in pts]
    ys = [y for _, pts in drawn for _, y in pts]
    c: dict[str, Any] = {
        "width": width,
        "height": height,
        "empty": not xs,
        "mid_x": f"{width / 2:.0f}",
        "mid_y": f"{height / 2:.0f}",
    }
    if not xs:
        return c
    x0, x1 = _decades(xs)
    y0, y1 = _decades(ys)

    def px(x: float) -> float:
        return left + (math.log10(x) - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return top + ph - (math.log10(y) - y0) / (y1 - y0) * ph

    c.update(
        left=left,
        top=top,
        pw=pw,
        ph=ph,
        plot_bottom=top + ph,
        plot_right=left + pw,
        xtick_y=top + ph + 16,
        ytick_x=left - 6,
        xaxis_x=f"{left + pw / 2:.0f}",
        xaxis_y=height - 28,
        yaxis_y=f"{top + ph / 2:.0f}",
        legend_y=height - 8,
        xgrid=[{"x": f"{px(10.0**e):.1f}", "label": f"{10**e:,}"} for e in range(x0, x1 + 1)],
        ygrid=[
            {
                "y": f"{py(10.0**e):.1f}",
                "label_y": f"{py(10.0**e) + 4:.1f}",
                "label": _dollars_tick(e),
            }
            for e in range(y0, y1 + 1)
        ],
    )
    lines = []
    lx = left
    for s, pts in drawn:
        label = s.label if pts else f"{s.label} (all $0, not drawn)"
        lines.append(
            {
                "color": s.color,
                "dashed": s.dashed,
                "label": label,
                "lx": lx,
                "path": " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts),
                "points": [
                    {
                        "x": f"{px(x):.1f}",
                        "y": f"{py(y):.1f}",
                        "tip": f"{s.label}: {x:,.0f} daily users, {money(y)} a month",
                    }
                    for x, y in pts
                ],
            }
        )
        lx += 30 + 8 * len(label) + 24
    c["series"] = lines
    return c


def chart_svg(series: Sequence[Series], *, width: int = 640, height: int = 360) -> str:
    """An inline SVG line chart with log-scaled axes, one decade per grid line.

    Points with a cost of $0 cannot sit on a log scale: they are left out,
    and a series with none left says so in the legend.
    """
    return _ENV.get_template("chart.svg").render(c=_chart(series, width, height))


def _tok(u: Usage) -> list[str]:
    return [
        f"{u.input_tokens:,}",
        f"{u.output_tokens:,}",
        f"{u.cache_read_tokens:,}",
        f"{u.cache_write_tokens:,}",
    ]


def _summary_rows(report: CostReport) -> list[list[str]]:
    r = report
    rows = [
        ["sessions", f"{r.sessions:,}"],
        ["model calls", f"{r.calls:,}"],
        ["total cost", money(r.total_cost)],
        ["model cost (tokens)", money(r.model_cost)],
        ["tool cost", money(r.tool_cost)],
        ["priced tool calls (charged)", f"{r.tool_calls:,} ({r.charged_tool_calls:,})"],
        ["cost per session: mean", money(r.per_session.mean)],
        ["cost per session: p50", money(r.per_session.p50)],
        ["cost per session: p95", money(r.per_session.p95)],
        ["successful sessions", f"{r.successful_sessions:,}"],
        ["cost per successful session", money(r.per_successful_session)],
        ["user-days", f"{r.user_days:,}"],
        ["cost per user per day", money(r.per_user_day)],
        ["sessions per user per day (observed)", f"{r.observed_sessions_per_user_day:.3g}"],
    ]
    if r.sessions_per_user_day != r.observed_sessions_per_user_day:
        rows.append(["sessions per user per day (projections)", f"{r.sessions_per_user_day:.3g}"])
    u = r.usage
    rows.append(["tokens in / out", f"{u.input_tokens:,} / {u.output_tokens:,}"])
    rows.append(
        ["tokens cache read / write", f"{u.cache_read_tokens:,} / {u.cache_write_tokens:,}"]
    )
    return rows


# The tables' rows, shared with the terminal (``tether cost``): one wording for both.


def model_rows(rows: Sequence[ModelRow]) -> list[list[str]]:
    """By model: model, calls, input, output, cache read, cache write, cost."""
    return [[m.model, f"{m.calls:,}", *_tok(m.usage), cost_label(m)] for m in rows]


#: the columns of :func:`version_rows`
VERSION_HEAD = (
    "agent",
    "version",
    "sessions",
    "successful",
    "model calls",
    "tokens",
    "tool cost",
    "cost",
    "per session",
)
#: the columns of :func:`tool_rows`
TOOL_HEAD = ("tool", "calls", "charged", "cost", "per call")


def version_rows(report: CostReport) -> list[list[str]]:
    """By agent version: agent, version, sessions, successful, model calls, tokens,
    tool cost, cost (model and tools), per session (:data:`VERSION_HEAD`)."""
    return [
        [
            v.agent,
            v.version,
            f"{v.sessions:,}",
            f"{v.successful_sessions:,}",
            f"{v.calls:,}",
            f"{v.usage.total_tokens:,}",
            money(v.tool_cost),
            money(v.cost),
            money(v.per_session),
        ]
        for v in report.by_version
    ]


def tool_rows(rows: Sequence[ToolRow]) -> list[list[str]]:
    """By tool: tool, calls, charged calls, cost, cost per call (:data:`TOOL_HEAD`)."""
    return [
        [t.tool, f"{t.calls:,}", f"{t.charged_calls:,}", money(t.cost), money(t.per_call)]
        for t in rows
    ]


def cost_errors(rows: Sequence[ToolRow]) -> str:
    """The tools whose cost function failed, and how often (empty when none did)."""
    return ", ".join(f"{t.tool} ({t.cost_errors:,} calls)" for t in rows if t.cost_errors)


def reprice_rows(report: CostReport) -> list[list[str]]:
    """Observed against repriced (empty without ``--model``): what, observed, repriced."""
    r, rp = report, report.reprice
    if rp is None:
        return []
    return [
        ["total cost", money(r.total_cost), money(rp.total_cost)],
        ["per session: mean", money(r.per_session.mean), money(rp.per_session.mean)],
        ["per session: p50", money(r.per_session.p50), money(rp.per_session.p50)],
        ["per session: p95", money(r.per_session.p95), money(rp.per_session.p95)],
        [
            "per successful session",
            money(r.per_successful_session),
            money(rp.per_successful_session),
        ],
        ["per user per day", money(r.per_user_day), money(rp.per_user_day)],
    ]


def projection_rows(report: CostReport) -> list[list[str]]:
    """Daily users, monthly cost observed (and repriced, with ``--model``)."""
    alt: Sequence[Projection] = report.reprice.projections if report.reprice else ()
    out = []
    for i, p in enumerate(report.projections):
        row = [f"{p.daily_users:,}", money(p.monthly_cost)]
        if alt:
            row.append(money(alt[i].monthly_cost))
        out.append(row)
    return out


def render_html(report: CostReport, *, title: str = "Tether cost report") -> str:
    """The whole report as one HTML document (a string)."""
    r = report
    series = [
        Series(
            "observed",
            "#2563eb",
            tuple((float(p.daily_users), p.monthly_cost) for p in r.projections),
        )
    ]
    if r.reprice is not None:
        series.append(
            Series(
                f"on {r.reprice.model}",
                "#dc2626",
                tuple((float(p.daily_users), p.monthly_cost) for p in r.reprice.projections),
                dashed=True,
            )
        )
    filters = ", ".join(f"{k}={v}" for k, v in r.filters.items() if v is not None)
    meta = (
        f"{r.sessions:,} sessions{f' ({filters})' if filters else ''} · prices as of "
        f"{r.prices_as_of or 'undated'} ({r.prices_source})"
    )
    head = ["daily users", "monthly cost (observed)"]
    if r.reprice is not None:
        head.append(f"monthly cost on {r.reprice.model}")
    return _ENV.get_template("page.html").render(
        title=title,
        meta=meta,
        unpriced=", ".join(f"{m.model} ({m.calls:,} calls)" for m in r.unpriced),
        summary_rows=_summary_rows(r),
        reprice_model=r.reprice.model if r.reprice is not None else None,
        reprice_rows=reprice_rows(r),
        projection_note=_projection_note(r),
        c=_chart(series, 640, 360),
        projection_head=head,
        projection_rows=projection_rows(r),
        version_head=list(VERSION_HEAD),
        version_rows=version_rows(r),
        model_rows=model_rows(r.by_model),
        tool_head=list(TOOL_HEAD),
        tool_rows=tool_rows(r.by_tool),
        cost_errors=cost_errors(r.by_tool),
    )


def _projection_note(r: CostReport) -> str:
    return (
        f"monthly cost = daily users x {r.sessions_per_user_day:.3g} sessions per user per day "
        f"x 30 days x {money(r.per_session.mean)} mean cost per session (model and tools)"
    )


def write_html(report: CostReport, path: str | Path) -> Path:
    """Write :func:`render_html` to ``path`` (UTF-8); returns the path."""
    p = Path(path)
    p.write_text(render_html(report), encoding="utf-8")
    return p
