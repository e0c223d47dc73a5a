"""Overview page (AppTest): every metric, sorted by what needs attention, filters in the URL."""
from __future__ import annotations

import textwrap

import pytest

from dashboard_fixtures import run_app, shared_project, texts


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return shared_project(tmp_path_factory.mktemp("overview"))


def test_every_metric_sorted_by_attention(project):
    at = run_app(project)
    assert not at.exception
    assert at.title[0].value == "Risk metrics"
    metrics = at.dataframe[0].value
    # Open high-severity incidents first, then the medium one, then the quiet metric.
    assert list(metrics["Metric"]) == ["Confirmed fraud rate", "Chargeback rate", "Orders"]
    assert [list(s) for s in metrics["Status"]] == [["alerting"], ["alerting"], ["ok"]]
    assert list(metrics["Open"]) == [3, 1, 0]
    assert metrics["Latest"].iloc[0].endswith("%") and metrics["Latest"].iloc[2].replace(",", "").isdigit()
    assert all(len(trend) >= 20 for trend in metrics["Trend"])  # a sparkline of the last four weeks
    assert metrics["Link"].iloc[0] == "http://127.0.0.1:8501/?page=metric&metric=fraud_rate"
    incidents = at.dataframe[1].value
    assert len(incidents) == 4
    assert [list(s) for s in incidents["Severity"]] == [["high"]] * 3 + [["medium"]]
    assert {m.label: m.value for m in at.metric}["Open incidents"] == "4"
    resolved = at.dataframe[2].value  # the MX dip of two days ago, called a false alarm
    assert list(resolved["Slice"]) == ["country=MX"] and list(resolved["Label"]) == ["false alarm"]


def test_team_filter_from_the_link(project):
    at = run_app(project, page="overview", team="growth")
    assert not at.exception
    assert list(at.dataframe[0].value["Metric"]) == ["Orders"]
    assert "No open incident" in texts(at)


def test_filter_widget_writes_the_url(project):
    at = run_app(project)
    at.multiselect(key="filter_status").set_value(["ok"]).run()
    assert not at.exception
    assert at.query_params["status"] == "ok"
    assert list(at.dataframe[0].value["Metric"]) == ["Orders"]


def test_sidebar_navigates_to_the_metric_list(project):
    at = run_app(project)
    at.button(key="side_metric").click().run()
    assert not at.exception
    assert at.query_params["page"] == "metric"
    assert at.title[0].value == "Metrics"


def test_missing_store_is_one_sentence_not_a_trace(tmp_path):
    (tmp_path / "monitor.toml").write_text(textwrap.dedent("""\
        [project]
        name = "empty"
    """))
    from monitor.config import load_config

    at = run_app(load_config(tmp_path / "monitor.toml"))
    assert not at.exception
    assert "does not exist yet" in at.error[0].value


def test_bad_dashboard_section_is_reported(tmp_path):
    (tmp_path / "monitor.toml").write_text("[dashboard]\nmin_segment = 5\n")
    from monitor.config import load_config

    at = run_app(load_config(tmp_path / "monitor.toml"))
    assert not at.exception
    assert "unknown key(s) ['min_segment'] in [dashboard]" in at.error[0].value
