"""The report of an eval run: figures, the four questions, and its files.

:class:`EvalReport` is built from the :class:`~tether.surfaces.evals.runner.CaseResult`
of every case that ran. Its summary answers the four questions every
deployment must answer (see :mod:`~tether.surfaces.evals.expect`):

- ``right-tools``, ``right-format``, ``no-prohibited-action``: the share of
  checks speaking to that question that passed, over every run of every case;
- ``edge-cases``: the share of cases tagged as edge cases (:data:`EDGE_TAGS`)
  that passed.

A question no check (or no case) speaks to has rate ``None`` ("n/a"), never
a flattering 100%.

Answers the runtime withheld because they claimed an action no tool did
(``answer.unsupported_claim``) are counted: in total (``claims_withheld``
in the summary, a row of the figures), per case (a column of the HTML
page, a line of the JUnit output), and such a case fails unless it expects
them (see :mod:`~tether.surfaces.evals.expect`).

The report is written as JSON (:meth:`EvalReport.write_json`: what
``--baseline`` reads back), JUnit XML for CI test tabs
(:meth:`EvalReport.write_junit`) and one self-contained HTML page
(:meth:`EvalReport.write_html`: inline style, no script, nothing fetched,
every piece of text escaped and its hidden characters shown, see
:mod:`tether.surfaces.html_pages`). :meth:`EvalReport.compare` lists the
regressions against an earlier JSON report.
"""

from __future__ import annotations

import json
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tether.exceptions import ConfigError
from tether.surfaces.costs import money, percentile
from tether.surfaces.evals.expect import QUESTIONS, Check
from tether.surfaces.evals.runner import CaseResult
from tether.surfaces.html_pages import environment

__all__ = [
    "EDGE_TAGS",
    "QUESTION_TEXT",
    "EvalReport",
    "Regression",
    "failed_checks",
    "is_edge",
    "pct",
]

#: tags that make a case count towards the ``edge-cases`` question
EDGE_TAGS = frozenset(
    {"edge", "mutation", "failing-tool", "out-of-scope", "malformed", "adversarial"}
)

#: each question as a person asks it
QUESTION_TEXT = {
    "right-tools": "Does it call the right tools, with the right arguments?",
    "right-format": "Does its answer have the right form?",
    "no-prohibited-action": "Does it never do what it must not?",
    "edge-cases": "Does it hold up on edge cases?",
}

#: a rate that drops by less than this is the same rate (float noise)
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class Regression:
    """Something that got worse than in the baseline."""

    #: ``newly-failing``, ``missing`` or ``question-drop``
    kind: str
    #: the case id, or the question
    subject: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "subject": self.subject, "message": self.message}


def _rate(passed: int, total: int) -> float | None:
    return passed / total if total else None


def pct(rate: float | None) -> str:
    """A rate as a whole percentage, ``n/a`` when there was nothing to rate."""
    return "n/a" if rate is None else f"{rate:.0%}"


def is_edge(tags: Sequence[str]) -> bool:
    """Whether a case with these tags counts as an edge case."""
    return not EDGE_TAGS.isdisjoint(tags)


def failed_checks(result: CaseResult) -> list[Check]:
    """A case's failed checks over all its attempts, each distinct failure once."""
    seen: dict[tuple[str, str], Check] = {}
    for c in result.failures:
        seen.setdefault((c.name, c.message), c)
    return list(seen.values())


@dataclass(slots=True)
class EvalReport:
    """The outcome of one eval run (see the module docstring)."""

    suite: str
    results: list[CaseResult]
    #: attempts per live case (scripted cases always run once)
    k: int = 1
    #: the ``--model`` chain live cases ran on, if one was given
    model: str | None = None
    #: what was tested (an agent reference)
    agent: str | None = None
    #: when the run started (seconds since the epoch)
    started_at: float = field(default_factory=time.time)

    # -- figures -------------------------------------------------------------

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed

    @property
    def pass_rate(self) -> float | None:
        """Cases that passed (every attempt: pass^k) over cases."""
        return _rate(self.passed, len(self.results))

    @property
    def pass_at_1(self) -> float | None:
        """The mean, over cases, of the share of a case's attempts that passed."""
        shares = [
            sum(a.passed for a in r.attempts) / len(r.attempts) for r in self.results if r.attempts
        ]
        return sum(shares) / len(shares) if shares else None

    @property
    def claims_withheld(self) -> int:
        """Answers withheld for an unsupported claim, over every attempt of every case."""
        return sum(r.claims_withheld for r in self.results)

    def questions(self) -> dict[str, dict[str, Any]]:
        """The four questions: ``passed``, ``total``, ``rate`` (``None``: nothing speaks to it)."""
        counts = {q: [0, 0] for q in QUESTIONS}
        for r in self.results:
            for a in r.attempts:
                for c in a.checks:
                    if c.question in counts and c.question != "edge-cases":
                        counts[c.question][0] += c.passed
                        counts[c.question][1] += 1
        edge = [r for r in self.results if is_edge(r.case.tags)]
        counts["edge-cases"] = [sum(r.passed for r in edge), len(edge)]
        return {
            q: {
                "question": QUESTION_TEXT[q],
                "passed": p,
                "total": n,
                "rate": _rate(p, n),
                "counts": "cases" if q == "edge-cases" else "checks",
            }
            for q, (p, n) in counts.items()
        }

    def _spread(self, key: str) -> dict[str, float]:
        values = [float(r.to_dict()[key]) for r in self.results]
        return {
            "total": round(sum(values), 6),
            "p50": round(percentile(values, 0.5), 6),
            "p95": round(percentile(values, 0.95), 6),
        }

    def summary(self) -> dict[str, Any]:
        """The run in figures: what ``tether eval --json`` prints (one JSON object)."""
        out: dict[str, Any] = {
            "suite": self.suite,
            "agent": self.agent,
            "model": self.model,
            "k": self.k,
            "started_at": round(self.started_at, 3),
            "cases": len(self.results),
            "passed": self.passed,
            "failed": self.failed,
            "pass_rate": self.pass_rate,
            "questions": self.questions(),
            # per case: the sum over its attempts
            "cost": self._spread("cost"),
            "latency_s": self._spread("latency_s"),
            "failed_cases": [r.case.id for r in self.results if not r.passed],
            # answers withheld for claiming an action no tool did, over every attempt
            "claims_withheld": self.claims_withheld,
            "claims_withheld_cases": [r.case.id for r in self.results if r.claims_withheld],
        }
        if self.k > 1:
            out["pass_k"] = self.pass_rate
            out["pass_at_1"] = self.pass_at_1
        return out

    def to_dict(self) -> dict[str, Any]:
        """The whole report: the summary and every case (what ``--baseline`` reads)."""
        return {
            "format": "tether-eval-report/1",
            "summary": self.summary(),
            "cases": [r.to_dict() for r in self.results],
        }

    # -- files ---------------------------------------------------------------

    def write_json(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n", "utf-8")
        return p

    def write_junit(self, path: str | Path) -> Path:
        """JUnit XML: one ``<testsuite>``, one ``<testcase>`` per case, the failed checks."""
        p = Path(path)
        tree = ET.ElementTree(self.junit())
        ET.indent(tree)
        tree.write(p, encoding="utf-8", xml_declaration=True)
        return p

    def junit(self) -> ET.Element:
        """The JUnit XML tree: ``<testsuites>`` holding one ``<testsuite>``."""
        root = ET.Element("testsuites")
        suite = ET.SubElement(
            root,
            "testsuite",
            {
                "name": _xml(self.suite),
                "tests": str(len(self.results)),
                "failures": str(self.failed),
                "errors": "0",
                "skipped": "0",
                "time": f"{sum(r.to_dict()['latency_s'] for r in self.results):.3f}",
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.started_at)),
            },
        )
        for r in self.results:
            d = r.to_dict()
            case = ET.SubElement(
                suite,
                "testcase",
                {
                    "classname": _xml(self.suite),
                    "name": _xml(r.case.id),
                    "time": f"{d['latency_s']:.3f}",
                },
            )
            if not r.passed:
                fails = failed_checks(r)
                failure = ET.SubElement(
                    case,
                    "failure",
                    {
                        "message": _xml(
                            "; ".join(f"{c.name}: {_first_line(c.message)}" for c in fails)
                        ),
                        "type": "EvalFailure",
                    },
                )
                failure.text = _xml("\n\n".join(f"{c.name}: {c.message}" for c in fails))
            calls = ", ".join(c["name"] for c in d["tool_calls"]) or "none"
            out = ET.SubElement(case, "system-out")
            text = f"tool calls: {calls}\nfinal answer: {d['final_output'] or ''}"
            if r.claims_withheld:
                text += f"\n{_withheld_line(r)}"
            out.text = _xml(text)
        return root

    def write_html(self, path: str | Path) -> Path:
        p = Path(path)
        p.write_text(self.html(), encoding="utf-8")
        return p

    def figures(self, summary: dict[str, Any] | None = None) -> list[tuple[str, str]]:
        """The summary as (label, value) rows: the terminal and the HTML page show these."""
        s = self.summary() if summary is None else summary
        rows = [
            ("cases", f"{s['cases']:,}"),
            ("passed", f"{s['passed']:,}"),
            ("failed", f"{s['failed']:,}"),
            ("pass rate" + (f" (pass^{self.k})" if self.k > 1 else ""), pct(s["pass_rate"])),
        ]
        if self.k > 1:
            rows.append(("pass@1 (mean)", pct(s["pass_at_1"])))
        cost, latency = s["cost"], s["latency_s"]
        return [
            *rows,
            ("cost: total", money(cost["total"])),
            ("cost per case: p50 / p95", f"{money(cost['p50'])} / {money(cost['p95'])}"),
            ("latency: total", f"{latency['total']:.2f} s"),
            ("latency per case: p50 / p95", f"{latency['p50']:.2f} s / {latency['p95']:.2f} s"),
            (
                "answers withheld: unsupported claim",
                f"{s.get('claims_withheld', 0):,} in {len(s.get('claims_withheld_cases', [])):,} "
                "case(s)",
            ),
        ]

    def html(self) -> str:
        """One self-contained page: no script, nothing fetched, every text escaped.

        Rendered from :data:`_PAGE` with autoescape on; every text (case ids,
        tags, check messages, answers, the agent and model) has its hidden
        characters made visible first (see :mod:`tether.surfaces.html_pages`).
        """
        s = self.summary()
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self.started_at))
        meta = [f"{when}", f"k={self.k}"]
        if self.agent:
            meta.append(f"agent {self.agent}")
        if self.model:
            meta.append(f"model {self.model}")
        questions = [
            {
                "name": name,
                "question": q["question"],
                "rate": pct(q["rate"]),
                "passed": f"{q['passed']} / {q['total']} {q['counts']}",
            }
            for name, q in s["questions"].items()
        ]
        return _ENV.get_template("page.html").render(
            suite=self.suite,
            meta=" · ".join(meta),
            failed=self.failed,
            total=len(self.results),
            figures=self.figures(s),
            questions=questions,
            cases=[_html_case(r) for r in self.results],
        )

    # -- regressions ---------------------------------------------------------

    def compare(
        self,
        baseline: Mapping[str, Any],
        *,
        selected: Callable[[str, Sequence[str]], bool] | None = None,
    ) -> list[Regression]:
        """What got worse than in ``baseline`` (a report's :meth:`to_dict`, read back).

        A regression is a case that passed there and fails now, a case there
        that did not run now, or a lower rate on one of the four questions.
        ``selected(id, tags)`` says which baseline cases this run was meant
        to cover (``--case``/``--tag``); when it is given, only cases are
        compared, since rates over part of a suite do not compare with rates
        over all of it. Raises :class:`~tether.exceptions.ConfigError` when
        ``baseline`` is not a report.
        """
        cases = baseline.get("cases") if isinstance(baseline, Mapping) else None
        summary = baseline.get("summary") if isinstance(baseline, Mapping) else None
        if not isinstance(cases, list) or not isinstance(summary, Mapping):
            raise ConfigError(
                "the baseline is not an eval report: write one with "
                "`tether eval SUITE --report baseline.json`"
            )
        now = {r.case.id: r for r in self.results}
        out: list[Regression] = []
        for c in cases:
            if not isinstance(c, Mapping) or "id" not in c:
                raise ConfigError("the baseline's cases need an 'id' each: is it an eval report?")
            cid = str(c["id"])
            if selected is not None and not selected(cid, list(c.get("tags") or [])):
                continue
            r = now.get(cid)
            if r is None:
                out.append(
                    Regression("missing", cid, f"{cid}: in the baseline, but it did not run now")
                )
            elif c.get("passed") and not r.passed:
                why = "; ".join(f"{f.name}: {_first_line(f.message)}" for f in failed_checks(r))
                out.append(
                    Regression(
                        "newly-failing", cid, f"{cid}: passed in the baseline, fails now: {why}"
                    )
                )
        if selected is None:
            out += _question_drops(summary.get("questions") or {}, self.questions())
        return out


def _question_drops(
    before: Mapping[str, Any], after: Mapping[str, Mapping[str, Any]]
) -> list[Regression]:
    out: list[Regression] = []
    for q in QUESTIONS:
        was = before.get(q) if isinstance(before.get(q), Mapping) else None
        if was is None or was.get("rate") is None or after[q]["rate"] is None:
            continue
        old, new = float(was["rate"]), float(after[q]["rate"])
        if new < old - _EPSILON:
            out.append(
                Regression(
                    "question-drop",
                    q,
                    f"{q}: {old:.1%} in the baseline ({was.get('passed')}/{was.get('total')}), "
                    f"{new:.1%} now ({after[q]['passed']}/{after[q]['total']})",
                )
            )
    return out


def _withheld_line(r: CaseResult) -> str:
    """One line naming the claims a case's answers were withheld for."""
    claims = [c for a in r.attempts for u in a.trajectory.unsupported_claims for c in u.claims]
    listed = ", ".join(repr(c) for c in dict.fromkeys(claims)) or "(none named)"
    return f"withheld {r.claims_withheld} answer(s) for unsupported claims: {listed}"


def _html_case(r: CaseResult) -> dict[str, Any]:
    """What the page shows of one case: its row, and the detail of a failed or withheld one."""
    d = r.to_dict()
    failed = not r.passed
    return {
        "id": r.case.id,
        "tags": ", ".join(r.case.tags),
        "passed": r.passed,
        "attempts": f"{d['attempts_passed']} / {d['attempts']}",
        "cost": money(d["cost"]),
        "latency": f"{d['latency_s']:.2f} s",
        "withheld": r.claims_withheld,
        "withheld_line": _withheld_line(r) if r.claims_withheld else "",
        "failed_checks": failed_checks(r) if failed else [],
        "calls": ", ".join(c["name"] for c in d["tool_calls"]) or "none",
        "final_output": (d["final_output"] or "") if failed else "",
    }


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


# Characters XML 1.0 cannot hold at all, even escaped (a model's output may have them).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _xml(text: str) -> str:
    """``text`` made safe for XML: ElementTree escapes ``<&>"``; this drops what it cannot."""
    return _NOT_XML.sub("\ufffd", text)


_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2937;
       max-width: 1100px; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; }
h2 { font-size: 1.1rem; margin-top: 2rem; border-bottom: 1px solid #e5e7eb; }
.meta { color: #6b7280; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { padding: .25rem .75rem; border-bottom: 1px solid #f3f4f6; text-align: left;
         vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #047857; font-weight: 600; }
.bad { color: #b91c1c; font-weight: 600; }
tr.detail td { background: #fef2f2; }
pre { white-space: pre-wrap; margin: .2rem 0 .6rem; font-size: 13px; }
"""

# The page's template (Jinja2, autoescaped). The markup after <style> is one line:
# a backslash at the end of a line here joins it to the next.
_PAGE = (
    """\
<!DOCTYPE html>
<html lang=en><head><meta charset=utf-8><title>{{ suite }}: eval report</title><style>"""
    + _STYLE
    + """</style></head><body><h1>Eval report: {{ suite }}</h1><p class=meta>{{ meta }}</p>\
<p class=verdict>{% if failed %}<span class=bad>{{ failed }} of {{ total }} cases failed</span>\
{% else %}<span class=ok>all {{ total }} cases passed</span>{% endif %}</p>\
<h2>Summary</h2><table>{% for label, value in figures %}<tr><th>{{ label }}</th>\
<td class=n>{{ value }}</td></tr>{% endfor %}</table>\
<h2>The four questions</h2><table><tr><th></th><th>question</th>\
<th class=n>rate</th><th class=n>passed</th></tr>{% for q in questions %}\
<tr><td>{{ q.name }}</td><td>{{ q.question }}</td><td class=n>{{ q.rate }}</td>\
<td class=n>{{ q.passed }}</td></tr>{% endfor %}</table>\
<h2>Cases</h2><table class=cases><tr><th>case</th><th>tags</th><th>result</th>\
<th class=n>attempts</th><th class=n>cost</th><th class=n>latency</th>\
<th class=n>withheld</th></tr>{% for c in cases %}\
<tr><td>{{ c.id }}</td><td>{{ c.tags }}</td><td>{% if c.passed %}<span class=ok>passed</span>\
{% else %}<span class=bad>failed</span>{% endif %}</td><td class=n>{{ c.attempts }}</td>\
<td class=n>{{ c.cost }}</td><td class=n>{{ c.latency }}</td><td class=n>{{ c.withheld }}</td>\
</tr>{% if not c.passed or c.withheld_line %}<tr class=detail><td colspan=7>\
{% for f in c.failed_checks %}<p><b>{{ f.name }}</b> ({{ f.question }})</p>\
<pre>{{ f.message }}</pre>{% endfor %}{% if not c.passed %}\
<p class=meta>tool calls: {{ c.calls }}</p>{% endif %}{% if c.withheld_line %}\
<p class=meta>{{ c.withheld_line }}</p>{% endif %}{% if c.final_output %}\
<p class=meta>final answer:</p><pre>{{ c.final_output }}</pre>{% endif %}</td></tr>\
{% endif %}{% endfor %}</table></body></html>
"""
)

# tabs and newlines are kept: check messages and answers are shown in <pre> blocks
_ENV = environment({"page.html": _PAGE}, keep="\t\n")
