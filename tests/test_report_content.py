"""The daily report says what the store says: every incident of its day, the right numbers, health, quality."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from html import escape
from html.parser import HTMLParser

import duckdb
import pytest

from monitor.format import format_share, format_value
from monitor.report import gather_report, generate_report, report_settings
from monitor.incident import decode_explanation
from monitor.report.explanations import read_explanation
from tests.report_fixtures import D, INCIDENTS, build_project

DAY = dt.timedelta(days=1)
D0 = dt.datetime.combine(D, dt.time())


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    config = build_project(root)
    report = generate_report(config, date=D, out_dir=root / "out")
    return config, report, report.html_path.read_text(), report.md_path.read_text()


def query(config, sql: str, params=()):
    with duckdb.connect(str(config.store_path), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


class Rows(HTMLParser):
    """Collects, per <tr data-metric> inside one <section>, the data-* attributes of its cells by class."""

    def __init__(self, section: str):
        super().__init__()
        self.section, self.inside, self.depth = section, False, 0
        self.rows: dict[str, dict[str, dict[str, str]]] = {}
        self.row: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.inside = a.get("id") == self.section
        if not self.inside:
            return
        if tag == "tr" and "data-metric" in a:
            self.row = self.rows.setdefault(a["data-metric"], {})
        elif tag == "td" and self.row is not None:
            for cls in (a.get("class") or "").split():
                self.row[cls] = a

    def handle_endtag(self, tag):
        if tag == "tr":
            self.row = None
        if tag == "section":
            self.inside = False


def cells(html: str, section: str) -> dict[str, dict[str, dict[str, str]]]:
    parser = Rows(section)
    parser.feed(html)
    return parser.rows


# -- incidents ------------------------------------------------------------------------------------
def test_report_names_every_incident_of_its_day(built):
    config, report, html, md = built
    # Independently: incidents that started before the day's end and had not ended before its start.
    expected = {r[0]: r[1] for r in query(config, """
        SELECT incident_id,
               CASE WHEN start_ts >= ? THEN 'new'
                    WHEN end_ts IS NOT NULL AND end_ts < ? THEN 'resolved' ELSE 'ongoing' END
        FROM incidents WHERE start_ts < ? AND (end_ts IS NULL OR end_ts >= ?)""", [D0, D0 + DAY, D0 + DAY, D0])}
    assert expected == {k: v[-1] for k, v in INCIDENTS.items() if v[-1]}  # the fixture covers every case
    listed = dict(re.findall(r'data-incident="([^"]+)" data-category="([^"]+)"', html))
    assert listed == expected
    for incident_id in INCIDENTS:
        in_md = f"`{incident_id}`" in md
        assert in_md == (incident_id in expected), incident_id
    # Children are nested under their total, and counted in the headline as slices.
    total = html[html.index('data-incident="inc-new-total"'):]
    total = total[:total.index("</article>")]
    assert 'data-incident="inc-new-br"' in total and 'data-incident="inc-new-brweb"' in total
    assert report.data.counts() == {"new": 1, "ongoing": 2, "resolved": 2}
    assert "1 new, 2 ongoing, 2 resolved" in report.digest


def test_incident_shows_attribution_and_mix_vs_rate(built):
    config, _, html, md = built
    from monitor.attribute.explain import Explanation

    stored = Explanation.from_dict(json.loads(query(
        config, "SELECT explanation_json FROM incidents WHERE incident_id = 'inc-new-total'")[0][0]))
    assert stored.verdict == "rate" and stored.causes  # the fixture's BR/web jump is a rate change
    card = html[html.index('id="incident-inc-new-total"'):]
    card = card[:card.index("</article>")]
    top = stored.causes[0]
    label = "&".join(f"{k}={top.segment[k]}" for k in sorted(top.segment))
    assert escape(stored.summary()) in card
    row = re.search(r"<tr><td>" + re.escape(escape(label)) + r"</td>(.*?)</tr>", card).group(1)
    assert [format_share(top.explained_share), format_value(top.before, unit="percent"), format_value(top.after, unit="percent"),
            "rate"] == re.findall(r">([^<>]+)</td>", row)
    assert (f"rate change: mix {format_share(stored.split.mix / stored.change)} / rate "
            f"{format_share((stored.split.rate + stored.split.interaction) / stored.change)} of the change, "
            f"cut by {stored.split.dimension}") in card
    assert "<svg" in card  # its chart
    assert "No attribution stored" in html  # incidents without an explanation are still listed
    assert f"top segments: {label} ({format_share(top.explained_share)}" in md


@pytest.mark.parametrize("raw", [None, "", "not json", "{}", '{"unrelated": 1}', "[1, 2]",
                                 # a shape Explanation.to_dict never writes: no longer guessed at
                                 json.dumps({"root_causes": [{"segment": {"country": "BR"}, "share": 0.8}],
                                             "mix_vs_rate": {"verdict": "mix", "mix_share": 0.9}})])
def test_explanations_not_written_by_to_dict_are_skipped(raw):
    assert read_explanation(decode_explanation(raw)) is None


def test_a_stored_explanation_is_read_through_explanation_from_dict():
    from alert_fixtures import EXPLANATION

    view = read_explanation(decode_explanation(json.dumps(EXPLANATION)))
    assert (view.segments[0].label, view.segments[0].share, view.verdict) == ("country=BR", 0.62, "rate")
    assert view.mix_share == pytest.approx(0.1)


# -- numbers --------------------------------------------------------------------------------------
RATIO_DAY = "SELECT sum(numerator) / sum(denominator) FROM {t} WHERE ts >= ? AND ts < ?"
SUM_DAY = "SELECT sum(value) FROM {t} WHERE ts >= ? AND ts < ?"
SUM_BASELINE = "SELECT sum(value) / count(DISTINCT CAST(ts AS DATE)) FROM {t} WHERE ts >= ? AND ts < ?"


@pytest.mark.parametrize("metric, kind", [("fraud_rate", "ratio"), ("decline_rate", "ratio"),
                                          ("signup_count", "sum"), ("old_metric", "sum")])
def test_metric_numbers_match_the_store(built, metric, kind):
    config, _, html, md = built
    t = f"leaves__{metric}"
    day_sql = (RATIO_DAY if kind == "ratio" else SUM_DAY).format(t=t)
    base_sql = (RATIO_DAY if kind == "ratio" else SUM_BASELINE).format(t=t)
    value = query(config, day_sql, [D0, D0 + DAY])[0][0]
    previous = query(config, day_sql, [D0 - DAY, D0])[0][0]
    week = query(config, day_sql, [D0 - 7 * DAY, D0 - 6 * DAY])[0][0]
    baseline = query(config, base_sql, [D0 - 28 * DAY, D0])[0][0]
    row = cells(html, "metrics")[metric]
    assert float(row["value"]["data-value"]) == pytest.approx(value, rel=1e-9)
    assert float(row["dod"]["data-reference"]) == pytest.approx(previous, rel=1e-9)
    assert float(row["wow"]["data-reference"]) == pytest.approx(week, rel=1e-9)
    assert float(row["baseline"]["data-reference"]) == pytest.approx(baseline, rel=1e-9)
    assert float(row["baseline"]["data-relative"]) == pytest.approx((value - baseline) / baseline, rel=1e-9)
    shown = f"{value * 100:.1f}%" if kind == "ratio" and value >= 0.1 else (
        f"{value * 100:.2f}%" if kind == "ratio" else f"{value:,.0f}")
    md_row = next(line for line in md.splitlines() if f"(`{metric}`)" in line)
    assert md_row.split(" | ")[1] == shown


def test_hourly_metric_day_is_the_sum_of_its_buckets(built):
    config, report, html, _ = built
    num, den, buckets = query(config, "SELECT sum(numerator), sum(denominator), count(DISTINCT ts) "
                                      "FROM leaves__decline_rate WHERE ts >= ? AND ts < ?", [D0, D0 + DAY])[0]
    day = next(m for m in report.data.metrics if m.metric.name == "decline_rate")
    assert (day.numerator, day.denominator, day.buckets) == (num, den, buckets) == (num, den, 18)
    assert "18/24 buckets" in html  # the partial day is visible next to the value


def test_movers_add_up_and_include_moves_below_the_alert_threshold(built):
    config, _, _, _ = built
    settings = dataclasses.replace(report_settings(config), top_movers=100)
    data = gather_report(config, date=D, settings=settings)
    fraud = next(m for m in data.metrics if m.metric.name == "fraud_rate")
    for dimension in ("country", "channel"):
        parts = [m.contribution for m in data.movers if m.metric == "fraud_rate" and m.dimension == dimension]
        assert sum(parts) == pytest.approx(fraud.baseline.absolute, abs=1e-9)
    # A sum metric's mover is the segment's day value minus its mean daily baseline value, from SQL.
    (day_us,), (base_us,) = (query(config, "SELECT sum(value) FROM leaves__signup_count WHERE country = 'US' "
                                           "AND ts >= ? AND ts < ?", [D0, D0 + DAY])[0],
                             query(config, "SELECT sum(value) / 28 FROM leaves__signup_count WHERE country = 'US' "
                                           "AND ts >= ? AND ts < ?", [D0 - 28 * DAY, D0])[0])
    us = next(m for m in data.movers if m.metric == "signup_count" and m.segment == "country=US")
    assert us.contribution == pytest.approx(day_us - base_us)
    assert not us.in_incident  # no alert on signup_count country=US: a move below the threshold
    br = next(m for m in data.movers if m.metric == "fraud_rate" and m.segment == "country=BR")
    assert br.in_incident and br.driver == "rate"


# -- data health and alert quality ----------------------------------------------------------------
def test_data_health_lists_freshness_failed_runs_and_stale_definitions(built):
    _, report, html, md = built
    h = report.data.health
    assert [f.metric for f in h.incomplete] == ["decline_rate"]
    failed = {f.metric: (f.failures, f.unfixed) for f in h.failed_runs}
    assert failed == {"decline_rate": (1, 1), "fraud_rate": (1, 0)}
    assert [s.metric for s in h.stale] == ["signup_count"]
    assert h.not_in_catalog == ("old_metric",)
    assert any("broken_metric.sql" in p and "grain" in p for p in h.catalog_problems)
    health = html[html.index('<section id="health">'):]
    for text in ("decline_rate", "Binder Error: column declined not found", "monitor backfill --metric signup_count",
                 "old_metric", "broken_metric.sql"):
        assert text in health
    assert "LINE 1" not in health  # one line per error
    assert "decline_rate: not computed through the day" in md


def test_alert_quality_matches_the_labels(built):
    config, report, html, _ = built
    start = D0 - 27 * DAY
    expected = {m: (n, tp / (tp + fa) if tp + fa else None) for m, n, tp, fa in query(config, """
        SELECT metric, count(*), count(*) FILTER (WHERE label = 'true_positive'),
               count(*) FILTER (WHERE label = 'false_alarm')
        FROM incidents WHERE start_ts >= ? AND start_ts < ? GROUP BY metric""", [start, D0 + DAY])}
    got = {m.metric: (m.incidents, m.precision) for m in report.data.quality.metrics}
    assert got == expected
    rows = cells(html, "quality")
    for metric, (_, precision) in expected.items():
        shown = rows[metric]["precision"]["data-value"]
        assert (float(shown) if shown else None) == (pytest.approx(precision) if precision is not None else None)
    noisiest = report.data.quality.noisiest[0]
    assert (noisiest.metric, noisiest.slice, noisiest.false_alarm) == ("fraud_rate", "country=US", 1)


def test_deep_links_use_the_dashboard_url(built):
    _, report, html, md = built
    assert 'href="https://dash.example.com/?page=incident&amp;id=inc-new-total"' in html
    assert 'href="https://dash.example.com/?page=metric&amp;metric=fraud_rate"' in html
    assert 'href="https://dash.example.com/?page=metric&amp;metric=fraud_rate&amp;slice=country%3DBR"' in html
    assert report.url == "https://reports.example.com/risk/report-2026-03-20.html"
    assert report.digest.rstrip().endswith(report.url) and report.url in md
