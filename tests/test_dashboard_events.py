"""Dashboard (AppTest): our own changes as chart annotations on every series chart, and the linked
events listed on the incident page, with expected incidents marked."""
from __future__ import annotations

import datetime as dt

import pytest

from dashboard_fixtures import (
    FRAUD_START, NOW, PROMO, chart_data, copy_project, incident_ids, run_app, shared_project,
    texts)
from monitor.events.cycle import link_project_events
from monitor.events.store import add_event
from monitor.store import Store

IDS = incident_ids()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    base = tmp_path_factory.mktemp("events")
    config = copy_project(shared_project(base), base / "with-events")
    store = Store(config.store_path)
    add_event(store, kind="rule", title="R-142 relax velocity rule", at=FRAUD_START - dt.timedelta(hours=5),
              scope={"country": "BR"}, url="https://rules.example/R-142", now=NOW)
    add_event(store, kind="promotion", title="Spring sale", at=PROMO[0], until=PROMO[1], metrics=["order_count"],
              expected=True, now=NOW)
    result = link_project_events(config, store, now=NOW)
    assert result.links and result.expected
    return config


def _events_drawn(chart) -> list[str]:
    data = chart_data(chart)
    return sorted(data["events"]["text"]) if "events" in data else []


def test_incident_page_lists_the_linked_change_and_draws_it(project):
    at = run_app(project, page="incident", id=IDS["fraud_br"])
    assert not at.exception
    assert "Our changes before it" in texts(at)
    table = next(df.value for df in at.dataframe if "Change" in df.value.columns)
    assert list(table["Change"]) == ["5 h after rule 'R-142 relax velocity rule' on country=BR"]
    assert list(table["Link"]) == ["https://rules.example/R-142"]
    [series] = [c for c in at.get("vega_lite_chart") if "events" in chart_data(c)]
    assert _events_drawn(series) == ["rule 'R-142 relax velocity rule' on country=BR"]


def test_an_expected_incident_is_marked_and_its_window_is_drawn(project):
    at = run_app(project, page="incident", id=IDS["orders_promo"])
    assert not at.exception
    assert "**expected** (promotion 'Spring sale'): does not page" in texts(at)
    series = next(c for c in at.get("vega_lite_chart") if "events" in chart_data(c))
    assert "event_windows" in chart_data(series)


def test_metric_charts_annotate_events_that_apply_to_the_slice_only(project):
    total = run_app(project, page="metric", metric="fraud_rate")
    assert not total.exception
    assert any(_events_drawn(c) for c in total.get("vega_lite_chart"))
    elsewhere = run_app(project, page="metric", metric="fraud_rate", slice="country=US")
    assert not elsewhere.exception
    assert not any(_events_drawn(c) for c in elsewhere.get("vega_lite_chart"))  # a BR rule is not drawn on US
    orders = run_app(project, page="metric", metric="order_count")
    assert any("Spring sale" in " ".join(_events_drawn(c)) for c in orders.get("vega_lite_chart"))


def test_an_incident_without_events_says_so(project):
    at = run_app(project, page="incident", id=IDS["chargeback_br"])
    assert not at.exception
    assert "No rule, model, promotion or deploy event of ours is linked" in texts(at)


def test_daily_report_shows_links_and_lists_expected_incidents(project):
    from monitor.report.digest import render_digest, render_markdown
    from monitor.report.gather import gather_report
    from monitor.report.page import render_html

    promo_day = gather_report(project, date=PROMO[0].date())
    markdown = render_markdown(promo_day)
    assert ("### Expected changes (1)\n\nStarted inside a planned event's window: recorded, not paged.\n\n"
            "- Orders (total): expected: promotion 'Spring sale' (everywhere), 2026-03-31 to 2026-04-03") in markdown
    html = render_html(promo_day)
    assert "Expected changes (1)" in html and "(did not page)" in html
    attack_day = gather_report(project, date=FRAUD_START.date())
    assert ('<div class="meta events">Our changes before it: 5 h after rule &#x27;R-142 relax velocity rule&#x27; '
            "on country=BR</div>") in render_html(attack_day)
    assert "  - our change: 5 h after rule 'R-142 relax velocity rule' on country=BR" in render_markdown(attack_day)
    assert "Expected changes" not in render_markdown(attack_day)
    assert "- 5 h after rule 'R-142 relax velocity rule' on country=BR" in render_digest(attack_day)
