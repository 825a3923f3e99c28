"""The cost report as one self-contained HTML file (``tether cost --html PATH``).

Everything is inline: the style sheet, and a chart of monthly cost against
daily users drawn as SVG by :func:`chart_svg` on log-scaled axes (one line
for the observed cost, one for the ``--model`` reprice when there is one).
No script, no font, no stylesheet or image is fetched, so the file opens
offline and can be attached to a ticket or an email. The SVG is written by
hand: a charting library would be a heavy dependency for one line chart.
Every piece of text taken from the report goes through :func:`html.escape`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path

from tether.spec.messages import Usage
from tether.surfaces.costs import CostReport, ModelRow, Projection, cost_label, money

__all__ = [
    "Series",
    "chart_svg",
    "model_rows",
    "projection_rows",
    "render_html",
    "reprice_rows",
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


def chart_svg(series: Sequence[Series], *, width: int = 640, height: int = 360) -> str:
    """An inline SVG line chart with log-scaled axes, one decade per grid line.

    Points with a cost of $0 cannot sit on a log scale: they are left out,
    and a series with none left says so in the legend.
    """
    left, right, top, bottom = 72, 40, 20, 64
    pw, ph = width - left - right, height - top - bottom
    drawn = [(s, tuple((x, y) for x, y in s.points if x > 0 and y > 0)) for s in series]
    xs = [x for _, pts in drawn for x, _ in pts]
    ys = [y for _, pts in drawn for _, y in pts]
    parts = [
        f'<svg width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" '
        'aria-label="monthly cost versus daily users, log scales">'
    ]
    if not xs:
        parts.append(
            f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle">'
            "every projection is $0: nothing to draw on a log scale</text></svg>"
        )
        return "".join(parts)
    x0, x1 = _decades(xs)
    y0, y1 = _decades(ys)

    def px(x: float) -> float:
        return left + (math.log10(x) - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return top + ph - (math.log10(y) - y0) / (y1 - y0) * ph

    for e in range(x0, x1 + 1):
        x = px(10.0**e)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + ph}" stroke="#e5e7eb"/>'
            f'<text x="{x:.1f}" y="{top + ph + 16}" text-anchor="middle">{10**e:,}</text>'
        )
    for e in range(y0, y1 + 1):
        y = py(10.0**e)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#e5e7eb"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(_dollars_tick(e))}</text>"
        )
    parts.append(
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#9ca3af"/>'
        f'<text x="{left + pw / 2:.0f}" y="{height - 28}" text-anchor="middle">'
        "daily users (log scale)</text>"
        f'<text transform="translate(14 {top + ph / 2:.0f}) rotate(-90)" '
        'text-anchor="middle">monthly cost, USD (log scale)</text>'
    )
    lx = left
    for s, pts in drawn:
        color = escape(s.color, quote=True)
        dash = ' stroke-dasharray="6 4"' if s.dashed else ""
        if pts:
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
            parts.append(
                f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"{dash}/>'
            )
            for x, y in pts:
                tip = escape(f"{s.label}: {x:,.0f} daily users, {money(y)} a month")
                parts.append(
                    f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{color}">'
                    f"<title>{tip}</title></circle>"
                )
        label = s.label if pts else f"{s.label} (all $0, not drawn)"
        ly = height - 8
        parts.append(
            f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 24}" y2="{ly - 4}" stroke="{color}" '
            f'stroke-width="2"{dash}/><text x="{lx + 30}" y="{ly}">{escape(label)}</text>'
        )
        lx += 30 + 8 * len(label) + 24
    parts.append("</svg>")
    return "".join(parts)


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int]) -> str:
    def cell(tag: str, i: int, text: str) -> str:
        cls = ' class="n"' if i in numeric else ""
        return f"<{tag}{cls}>{escape(text)}</{tag}>"

    out = ["<table><thead><tr>"]
    out += [cell("th", i, h) for i, h in enumerate(head)]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


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


def version_rows(report: CostReport) -> list[list[str]]:
    """By agent version: agent, version, sessions, successful, calls, tokens, cost, per session."""
    return [
        [
            v.agent,
            v.version,
            f"{v.sessions:,}",
            f"{v.successful_sessions:,}",
            f"{v.calls:,}",
            f"{v.usage.total_tokens:,}",
            money(v.cost),
            money(v.per_session),
        ]
        for v in report.by_version
    ]


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
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">{escape(meta)}</p>',
    ]
    if r.unpriced:
        names = ", ".join(f"{m.model} ({m.calls:,} calls)" for m in r.unpriced)
        body.append(
            '<p class="warn">'
            + escape(
                f"Unpriced models, counted at $0: {names}. Give them a price with --prices FILE."
            )
            + "</p>"
        )
    body += ["<h2>Summary</h2>", _table(["", "value"], _summary_rows(r), {1})]
    head = ["daily users", "monthly cost (observed)"]
    if r.reprice is not None:
        rp = r.reprice
        head.append(f"monthly cost on {rp.model}")
        body += [
            f"<h2>{escape(f'Repriced on {rp.model}')}</h2>",
            _table(["", "observed", rp.model], reprice_rows(r), {1, 2}),
            '<p class="meta">The same tokens at the other model\'s price: a first estimate '
            "(another model would not use exactly the same tokens).</p>",
        ]
    body += [
        "<h2>Monthly cost by daily users</h2>",
        f'<p class="meta">{escape(_projection_note(r))}</p>',
        chart_svg(series),
        _table(head, projection_rows(r), set(range(len(head)))),
        "<h2>By agent version</h2>",
        _table(
            [
                "agent",
                "version",
                "sessions",
                "successful",
                "calls",
                "tokens",
                "cost",
                "per session",
            ],
            version_rows(r),
            {2, 3, 4, 5, 6, 7},
        ),
        "<h2>By model</h2>",
        _table(
            ["model", "calls", "input", "output", "cache read", "cache write", "cost"],
            model_rows(r.by_model),
            {1, 2, 3, 4, 5, 6},
        ),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _projection_note(r: CostReport) -> str:
    return (
        f"monthly cost = daily users x {r.sessions_per_user_day:.3g} sessions per user per day "
        f"x 30 days x {money(r.per_session.mean)} mean cost per session"
    )


def write_html(report: CostReport, path: str | Path) -> Path:
    """Write :func:`render_html` to ``path`` (UTF-8); returns the path."""
    p = Path(path)
    p.write_text(render_html(report), encoding="utf-8")
    return p
