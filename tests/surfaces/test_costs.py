"""The cost report: every figure against arithmetic done by hand, in memory and via ``tether cost``.

Five sessions over two UTC days, three users (one anonymous) and two agent
versions, with calls on Sonnet 4.5 ($3 / $15 / $0.30 / $3.75 per million
input / output / cache-read / cache-write tokens), Haiku 4.5 ($1 / $5 /
$0.10 / $1.25), GPT-4.1 ($2 / $8 / $0.50 / $2) and a model no table prices:

=====  =======  ====  ======  =========  =================================================
id     version  user  day     status     calls (input, output, cache read, cache write)
=====  =======  ====  ======  =========  =================================================
s1     1        ava   day 0   idle       sonnet (1000, 200) recorded $0.006;
                                         sonnet (2000, 100, 1000) no recorded cost
s2     1        ava   day 0   completed  compression on haiku (4000, 500) recorded $0.0065;
                                         sonnet (1000, 200) recorded $0.006
s3     2        ben   day 1   failed     gpt-4.1 (1000, 500, 0, 500) no recorded cost;
                                         acme:big-1 (300, 100) recorded $0, priced: false
s4     2        -     day 1   idle       none
s5     2        ben   day 1   idle       haiku (1000, 200) recorded $0.01 (an older price)
=====  =======  ====  ======  =========  =================================================
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tether.exceptions import ConfigError
from tether.runtime.ports import SessionRecord
from tether.spec.events import Event, EventType
from tether.spec.messages import Usage
from tether.spec.pricing import DEFAULT_PRICES, Price
from tether.store import open_store
from tether.surfaces.cli import app
from tether.surfaces.cost_html import render_html, write_html
from tether.surfaces.costs import CostReport, build_report, money, percentile

DAY0 = 1_700_006_400.0  # 2023-11-15 00:00:00 UTC
DAY1 = DAY0 + 86_400.0
SONNET = "anthropic:claude-sonnet-4-5"
HAIKU = "anthropic:claude-haiku-4-5"
GPT = "openai:gpt-4.1"
UNKNOWN = "acme:big-1"

# --- the figures, by hand -------------------------------------------------------
# s1 = 0.006 + (2000*3 + 100*15 + 1000*0.30) / 1e6 = 0.006 + 0.0078 = 0.0138
# s2 = 0.0065 + 0.006 = 0.0125
# s3 = (1000*2 + 500*8 + 500*2) / 1e6 + 0 = 0.007
# s4 = 0
# s5 = 0.01
TOTAL = 0.0433  # 0.0138 + 0.0125 + 0.007 + 0 + 0.01
MEAN = 0.00866  # 0.0433 / 5
P50 = 0.01  # sorted [0, 0.007, 0.01, 0.0125, 0.0138]; rank 4 * 0.5 = 2 -> 0.01
P95 = 0.01354  # rank 4 * 0.95 = 3.8 -> 0.0125 + 0.8 * (0.0138 - 0.0125)
SUCCESSFUL = 4  # s1, s2, s4, s5 (s3 failed)
PER_SUCCESS = 0.010825  # 0.0433 / 4
USER_DAYS = 3  # (ava, day 0), (ben, day 1), s4 anonymous
PER_USER_DAY = 0.0433 / 3
SPUD = 5 / 3  # sessions per user-day
# monthly = users * 5/3 * 30 * 0.00866 = users * 0.433
PROJECTIONS = [(100, 43.3), (1_000, 433.0), (10_000, 4_330.0), (100_000, 43_300.0)]
TOKENS = {
    "input_tokens": 10_300,  # 1000 + 2000 + 4000 + 1000 + 1000 + 300 + 1000
    "output_tokens": 1_800,  # 200 + 100 + 500 + 200 + 500 + 100 + 200
    "cache_read_tokens": 1_000,
    "cache_write_tokens": 500,
    "total_tokens": 13_600,
}
# the same calls all at Haiku's price:
# s1 = (1000 + 200*5 + 2000 + 100*5 + 1000*0.1) / 1e6 = 0.0046
# s2 = (4000 + 500*5 + 1000 + 200*5) / 1e6 = 0.0085
# s3 = (1000 + 500*5 + 500*1.25 + 300 + 100*5) / 1e6 = 0.004925
# s4 = 0; s5 = (1000 + 200*5) / 1e6 = 0.002
HAIKU_TOTAL = 0.020025
HAIKU_MEAN = 0.004005
HAIKU_P50 = 0.0046  # sorted [0, 0.002, 0.0046, 0.004925, 0.0085]
HAIKU_P95 = 0.007785  # 0.004925 + 0.8 * (0.0085 - 0.004925)
HAIKU_PROJECTIONS = [(100, 20.025), (1_000, 200.25), (10_000, 2_002.5), (100_000, 20_025.0)]


def approx(x: Any) -> Any:
    return pytest.approx(x, rel=1e-9, abs=1e-12)


def _call(
    sid: str,
    seq: int,
    model: str,
    usage: Usage,
    cost: float | None = None,
    *,
    type_: str = EventType.MODEL_RESPONSE,
    priced: bool = True,
) -> Event:
    data: dict[str, Any] = {"model": model}
    if cost is not None:
        data["cost"] = cost
    if not priced:
        data["priced"] = False
    return Event(type_, sid, step=seq, time=DAY0 + seq, data=data, usage=usage, seq=seq)


def fixture() -> tuple[list[SessionRecord], list[Event]]:
    def rec(sid: str, version: str, user: str | None, at: float, status: str, **kw: Any) -> Any:
        return SessionRecord(sid, "retail", version, user, status, at, at, **kw)

    sessions = [
        rec("s1", "1", "ava", DAY0 + 3_600, "idle"),
        rec("s2", "1", "ava", DAY0 + 7_200, "completed"),
        rec("s3", "2", "ben", DAY1 + 100, "failed", last_error="503 from upstream"),
        rec("s4", "2", None, DAY1 + 200, "idle"),
        rec("s5", "2", "ben", DAY1 + 300, "idle"),
    ]
    events = [
        _call("s1", 2, SONNET, Usage(1_000, 200), 0.006),
        _call("s1", 3, SONNET, Usage(2_000, 100, cache_read_tokens=1_000)),
        _call("s2", 2, HAIKU, Usage(4_000, 500), 0.0065, type_=EventType.CONTEXT_COMPRESSED),
        _call("s2", 3, SONNET, Usage(1_000, 200), 0.006),
        _call("s3", 2, GPT, Usage(1_000, 500, cache_write_tokens=500)),
        _call("s3", 3, UNKNOWN, Usage(300, 100), 0.0, priced=False),
        _call("s5", 2, HAIKU, Usage(1_000, 200), 0.01),
    ]
    return sessions, events


def check_actual(d: dict[str, Any]) -> None:
    """The observed figures, as ``CostReport.to_dict()`` (and ``--json``) gives them."""
    assert d["sessions"] == 5
    assert d["calls"] == 7
    assert d["total_cost"] == approx(TOTAL)
    assert d["per_session"] == {"mean": approx(MEAN), "p50": approx(P50), "p95": approx(P95)}
    assert d["successful_sessions"] == SUCCESSFUL
    assert d["per_successful_session"] == approx(PER_SUCCESS)
    assert d["user_days"] == USER_DAYS
    assert d["per_user_day"] == approx(PER_USER_DAY)
    assert d["sessions_per_user_day"] == approx(SPUD)
    assert d["tokens"] == TOKENS
    assert [(p["daily_users"], p["monthly_cost"]) for p in d["projections"]] == [
        (n, approx(m)) for n, m in PROJECTIONS
    ]
    assert [(r["model"], r["calls"], r["cost"], r["priced"]) for r in d["by_model"]] == [
        (SONNET, 3, approx(0.0198), True),  # 0.006 + 0.0078 + 0.006
        (HAIKU, 2, approx(0.0165), True),  # 0.0065 + 0.01
        (GPT, 1, approx(0.007), True),
        (UNKNOWN, 1, 0.0, False),
    ]
    assert d["by_model"][0]["tokens"]["input_tokens"] == 4_000  # 1000 + 2000 + 1000
    assert d["by_model"][2]["tokens"]["cache_write_tokens"] == 500
    assert [
        (v["agent"], v["version"], v["sessions"], v["successful_sessions"], v["calls"])
        for v in d["by_version"]
    ] == [("retail", "1", 2, 2, 4), ("retail", "2", 3, 2, 3)]  # calls: 2 + 2, 2 + 0 + 1
    v1, v2 = d["by_version"]
    assert (v1["cost"], v1["per_session"]) == (approx(0.0263), approx(0.01315))  # 0.0138 + 0.0125
    assert (v2["cost"], v2["per_session"]) == (approx(0.017), approx(0.017 / 3))  # 0.007 + 0.01
    assert v1["tokens"]["total_tokens"] == 10_000  # 4300 (s1) + 5700 (s2)
    assert v2["tokens"]["total_tokens"] == 3_600
    assert d["unpriced_models"] == [
        {
            "model": UNKNOWN,
            "calls": 1,
            "tokens": {
                "input_tokens": 300,
                "output_tokens": 100,
                "cache_read_tokens": 0,
                "cache_write_tokens": 0,
                "total_tokens": 400,
            },
        }
    ]
    assert d["prices_as_of"] == DEFAULT_PRICES.as_of


def check_haiku(d: dict[str, Any]) -> None:
    rp = d["reprice"]
    assert rp["model"] == HAIKU
    assert rp["total_cost"] == approx(HAIKU_TOTAL)
    assert rp["per_session"] == {
        "mean": approx(HAIKU_MEAN),
        "p50": approx(HAIKU_P50),
        "p95": approx(HAIKU_P95),
    }
    assert rp["per_successful_session"] == approx(0.00500625)  # 0.020025 / 4
    assert rp["per_user_day"] == approx(0.006675)  # 0.020025 / 3
    assert [(p["daily_users"], p["monthly_cost"]) for p in rp["projections"]] == [
        (n, approx(m)) for n, m in HAIKU_PROJECTIONS
    ]


# --- the computation ---------------------------------------------------------------


def test_percentile_interpolates_between_closest_ranks() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.95) == approx(3.85)  # rank 2.85
    assert percentile([1.0, 2.0, 3.0, 4.0], 1.0) == 4.0
    assert percentile([7.0], 0.95) == 7.0
    assert percentile([], 0.5) == 0.0
    with pytest.raises(ValueError, match="between 0 and 1"):
        percentile([1.0], 95)


def test_report_figures_match_the_hand_arithmetic() -> None:
    sessions, events = fixture()
    orphan = _call("not-selected", 2, SONNET, Usage(1_000_000, 0), 3.0)
    report = build_report(sessions, [*events, orphan], prices=DEFAULT_PRICES)
    check_actual(report.to_dict())
    assert report.reprice is None
    assert report.to_dict()["reprice"] is None
    json.dumps(report.to_dict())  # serialisable as it is


def test_reprice_on_another_model_side_by_side() -> None:
    sessions, events = fixture()
    report = build_report(sessions, events, prices=DEFAULT_PRICES, reprice_model=HAIKU)
    d = report.to_dict()
    check_actual(d)  # the observed figures do not change
    check_haiku(d)
    assert d["reprice"]["price"] == {
        "input": 1.0,
        "output": 5.0,
        "cache_read": 0.1,
        "cache_write": 1.25,
    }


def test_reprice_on_a_model_without_a_price_is_a_clear_error() -> None:
    sessions, events = fixture()
    with pytest.raises(ConfigError, match=r"no price for 'acme:big-1'.*--prices FILE"):
        build_report(sessions, events, prices=DEFAULT_PRICES, reprice_model=UNKNOWN)


def test_sessions_per_user_overrides_the_observed_ratio() -> None:
    sessions, events = fixture()
    d = build_report(sessions, events, prices=DEFAULT_PRICES, sessions_per_user_day=2).to_dict()
    assert d["sessions_per_user_day"] == 2
    assert d["observed_sessions_per_user_day"] == approx(SPUD)
    # users * 2 * 30 * 0.00866 = users * 0.5196
    assert [p["monthly_cost"] for p in d["projections"]] == [
        approx(51.96),
        approx(519.6),
        approx(5_196.0),
        approx(51_960.0),
    ]
    with pytest.raises(ConfigError, match="> 0"):
        build_report(sessions, events, prices=DEFAULT_PRICES, sessions_per_user_day=0)


def test_a_price_for_an_unpriced_model_fills_the_gap_and_recorded_costs_are_kept() -> None:
    sessions, events = fixture()
    # acme gets a price; Haiku gets a new one, which must not change s5's recorded $0.01
    prices = DEFAULT_PRICES.merged({UNKNOWN: Price(10.0, 10.0), HAIKU: Price(100.0, 100.0)})
    d = build_report(sessions, events, prices=prices).to_dict()
    assert d["unpriced_models"] == []
    # acme: (300 + 100) * 10 / 1e6 = 0.004 -> s3 = 0.011, total 0.0473
    assert d["total_cost"] == approx(0.0473)
    # sorted [0, 0.01, 0.011, 0.0125, 0.0138]
    assert d["per_session"]["p50"] == approx(0.011)


def test_a_session_with_an_error_is_not_a_success() -> None:
    sessions, events = fixture()
    sessions[3] = replace(sessions[3], last_error="tool crashed")  # s4: idle, but with an error
    report = build_report(sessions, events, prices=DEFAULT_PRICES)
    assert report.successful_sessions == 3
    assert report.per_successful_session == approx(0.0433 / 3)


def test_no_success_but_money_spent_has_no_cost_per_success() -> None:
    sessions, events = fixture()
    only_s3 = [s for s in sessions if s.id == "s3"]
    report = build_report(only_s3, events, prices=DEFAULT_PRICES)
    assert report.successful_sessions == 0
    assert report.per_successful_session is None
    assert report.per_user_day == approx(0.007)


def test_an_empty_report_is_all_zeros() -> None:
    d = build_report([], [], prices=DEFAULT_PRICES, reprice_model=HAIKU).to_dict()
    assert d["sessions"] == 0
    assert d["total_cost"] == 0
    assert d["per_session"] == {"mean": 0.0, "p50": 0.0, "p95": 0.0}
    assert d["per_successful_session"] == 0.0
    assert d["per_user_day"] == 0.0
    assert [p["monthly_cost"] for p in d["projections"]] == [0.0] * 4
    assert [p["monthly_cost"] for p in d["reprice"]["projections"]] == [0.0] * 4
    assert d["by_model"] == d["by_version"] == d["unpriced_models"] == []


def test_money_is_readable() -> None:
    assert money(0) == "$0.00"
    assert money(0.00866) == "$0.008660"
    assert money(0.0433) == "$0.0433"
    assert money(43.3) == "$43.30"
    assert money(43_300) == "$43,300"
    assert money(None) == "n/a"


# --- the HTML file -------------------------------------------------------------


def _report(**kw: Any) -> CostReport:
    sessions, events = fixture()
    return build_report(sessions, events, prices=DEFAULT_PRICES, **kw)


def _polylines(html: str) -> list[list[tuple[float, float]]]:
    out = []
    for points in re.findall(r'<polyline points="([^"]+)"', html):
        out.append([(float(x), float(y)) for x, y in (p.split(",") for p in points.split())])
    return out


def test_html_is_self_contained_with_a_log_log_chart(tmp_path: Path) -> None:
    path = write_html(_report(reprice_model=HAIKU), tmp_path / "cost.html")
    html = path.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert "<svg" in html
    assert "http" not in html  # nothing fetched: no URL at all
    for tag in ("<script", "<link", "<img", "@import", "src=", "href="):
        assert tag not in html, tag
    assert "$43.30" in html  # the 100-users projection
    assert "$20.03" in html  # ... and on Haiku (20.025)
    assert "acme:big-1" in html  # the unpriced model is named
    lines = _polylines(html)
    assert len(lines) == 2  # observed and repriced
    for line in lines:
        # the daily users are decades apart: evenly spaced on a log axis
        xs = [x for x, _ in line]
        steps = [b - a for a, b in itertools.pairwise(xs)]
        assert max(steps) - min(steps) < 0.2
        # cost grows with users: y (pixels down) falls, by equal steps on a log axis
        ys = [y for _, y in line]
        drops = [a - b for a, b in itertools.pairwise(ys)]
        assert min(drops) > 0
        assert max(drops) - min(drops) < 0.2


def test_html_escapes_what_it_shows() -> None:
    sessions, events = fixture()
    sessions[0] = replace(sessions[0], agent="<script>alert(1)</script>")
    html = render_html(build_report(sessions, events, prices=DEFAULT_PRICES))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_html_of_an_all_free_report_says_there_is_nothing_to_chart() -> None:
    html = render_html(build_report([], [], prices=DEFAULT_PRICES))
    assert "<svg" in html
    assert "nothing to draw on a log scale" in html
    assert "<polyline" not in html


# --- tether cost -------------------------------------------------------------


async def fill(url: str, sessions: list[SessionRecord], events: list[Event]) -> None:
    store = await open_store(url)
    try:
        for s in sessions:
            own = [e for e in events if e.session_id == s.id]
            created = Event(EventType.SESSION_CREATED, s.id, 0, s.created_at, {}, seq=1)
            stored = [created, *own]
            s.event_count = len(stored)
            await store.create(s, stored, owner="test", lease_ttl=30.0)
    finally:
        await store.aclose()


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cost.sqlite'}"
    asyncio.run(fill(url, *fixture()))
    return url


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def last_json(stdout: str) -> dict[str, Any]:
    payload = json.loads(stdout.strip().splitlines()[-1])
    assert isinstance(payload, dict)
    return payload


def cost_json(*args: str) -> dict[str, Any]:
    """``tether cost ARGS --json``: it succeeds, and its last line is the report."""
    code, out, err = invoke("cost", *args, "--json")
    assert code == 0, err
    return last_json(out)


def test_cli_json_has_the_hand_computed_figures(db: str, tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    code, out, err = invoke("cost", "--db", db, "--json", "--model", HAIKU, "--html", str(html))
    assert code == 0, err
    d = last_json(out)
    check_actual(d)
    check_haiku(d)
    assert "<svg" in html.read_text(encoding="utf-8")
    assert str(html) in " ".join(err.split())


def test_cli_tables(db: str) -> None:
    code, out, _ = invoke("cost", "--db", db, "--model", HAIKU)
    assert code == 0
    text = " ".join(out.split())
    for expected in (
        "$0.0433",  # total
        "$0.008660",  # mean
        "$0.0135",  # p95 0.01354
        "$43.30",  # 100 daily users a month
        "$43,300",  # 100,000
        "$20.03",  # 100 daily users on Haiku
        "By agent version",
        "By model",
        f"prices as of {DEFAULT_PRICES.as_of}",
        "unpriced: acme:big-1: 1 calls, 400 tokens",
    ):
        assert expected in text, expected


def test_cli_options_filter_and_override(db: str, tmp_path: Path) -> None:
    assert cost_json("--db", db, "--agent", "retail")["sessions"] == 5
    assert cost_json("--db", db, "--agent", "other")["sessions"] == 0
    d = cost_json("--db", db, "--sessions-per-user", "2")
    assert d["projections"][0]["monthly_cost"] == approx(51.96)
    prices = tmp_path / "prices.toml"
    prices.write_text(
        'as_of = "2030-01-01"\n[prices."acme:big-1"]\ninput = 10.0\noutput = 10.0\n',
        encoding="utf-8",
    )
    d = cost_json("--db", db, "--prices", str(prices))
    assert (d["prices_as_of"], d["unpriced_models"]) == ("2030-01-01", [])
    assert d["total_cost"] == approx(0.0473)


def test_cli_since_keeps_recent_sessions(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'since.sqlite'}"
    now = time.time()
    sessions, events = fixture()
    recent = replace(sessions[0], created_at=now - 2 * 86_400, updated_at=now)
    old = replace(sessions[4], created_at=now - 10 * 86_400, updated_at=now)
    calls = [replace(e, time=now - 86_400) for e in events if e.session_id in {"s1", "s5"}]
    asyncio.run(fill(url, [recent, old], calls))
    d = cost_json("--db", url, "--since", "5")
    assert (d["sessions"], d["total_cost"]) == (1, approx(0.0138))  # s1 only
    assert cost_json("--db", url, "--since", "30")["total_cost"] == approx(0.0238)  # + s5's 0.01


def test_cli_on_an_empty_store(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.sqlite'}"
    code, out, _ = invoke("cost", "--db", url)
    assert code == 0
    assert "no sessions stored" in out
    code, out, _ = invoke("cost", "--db", url, "--json")
    assert code == 0
    d = last_json(out)
    assert (d["sessions"], d["total_cost"], d["per_user_day"]) == (0, 0.0, 0.0)
    assert d["per_session"] == {"mean": 0.0, "p50": 0.0, "p95": 0.0}
    assert [p["monthly_cost"] for p in d["projections"]] == [0.0] * 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--model", UNKNOWN), "no price for 'acme:big-1'"),
        (("--since", "0"), "--since takes a number of days > 0"),
        (("--sessions-per-user", "-1"), "--sessions-per-user takes a number > 0"),
        (("--prices", "/nonexistent/prices.toml"), "cannot read the price file"),
    ],
)
def test_cli_errors_are_one_actionable_line(db: str, args: tuple[str, ...], message: str) -> None:
    code, _, err = invoke("cost", "--db", db, *args)
    assert code == 2
    assert message in " ".join(err.split())
    assert "Traceback" not in err
