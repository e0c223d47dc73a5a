"""Incident page (AppTest): attribution, drill-down, related incidents, and the actions that write."""
from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from dashboard_fixtures import (
    chart_data, copy_project, incident_ids, run_app, shared_project, texts)
from monitor.dashboard.formatting import SMALL_SEGMENTS

IDS = incident_ids()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return shared_project(tmp_path_factory.mktemp("incident"))


@pytest.fixture
def writable(project, tmp_path):
    return copy_project(project, tmp_path / "copy")


def _table(at, column: str):
    """The first table that has `column`."""
    return next(df.value for df in at.dataframe if column in df.value.columns)


def _row(config, incident_id):
    con = duckdb.connect(str(config.store_path), read_only=True)
    try:
        return con.execute("SELECT acked_by, label, labelled_by FROM incidents WHERE incident_id = ?",
                           [incident_id]).fetchone()
    finally:
        con.close()


def test_attribution_is_shown(project):
    at = run_app(project, page="incident", id=IDS["fraud_br"])
    assert not at.exception
    assert at.title[0].value.startswith("Confirmed fraud rate up")
    page = texts(at)
    assert "Which segments explain it" in page and "Root-cause segments" in page
    assert "device_os=android" in page and "Rate change" in page  # the verdict for a ratio
    specs = [c.proto.spec for c in at.get("vega_lite_chart")]
    assert any("Change of the total, by" in s for s in specs)  # waterfall
    assert any("Rate vs mix" in s for s in specs)  # mix vs rate split
    roots = _table(at, "Explains")
    assert "country=BR · device_os=android" in list(roots["Segment"])
    assert {"Before", "After", "Explains", "Events"} <= set(roots.columns)
    others = _table(at, "Metric")
    assert list(others["Metric"]) == ["Chargeback rate", "Orders"]  # overlap in time, on other metrics


def test_small_segments_are_grouped(project):
    at = run_app(project, page="incident", id=IDS["fraud_total"])
    assert not at.exception
    at.segmented_control(key=f"attr_dim:{IDS['fraud_total']}").set_value("country").run()
    table = _table(at, "country")
    assert SMALL_SEGMENTS in list(table["country"]) and "IS" not in list(table["country"])
    waterfall = next(c for c in at.get("vega_lite_chart") if "Change of the total, by country" in c.proto.spec)
    bars = list(chart_data(waterfall)["waterfall"]["label"])
    assert bars[0] == "before" and bars[1] == "BR" and bars[-1] == "after"  # BR moved the total
    assert SMALL_SEGMENTS in bars and "IS" not in bars


def test_everything_small_under_a_high_floor(project, tmp_path):
    config = copy_project(project, tmp_path / "strict")
    toml = config.root / "monitor.toml"
    toml.write_text(toml.read_text().replace("min_segment_size = 30", "min_segment_size = 1000000"))
    at = run_app(config, page="incident", id=IDS["fraud_br"])
    assert not at.exception
    assert list(_table(at, "Explains")["Segment"]) == [SMALL_SEGMENTS]
    assert "android" not in texts(at).split("Which segments explain it")[1]


def test_acknowledge_writes_the_store(writable):
    at = run_app(writable, page="incident", id=IDS["fraud_br"])
    at.button(key="incident_ack").click().run()
    assert "Say who you are" in texts(at)  # no name, no write
    assert _row(writable, IDS["fraud_br"])[0] is None
    at.text_input(key="who").input("alice").run()
    at.button(key="incident_ack").click().run()
    assert not at.exception
    assert _row(writable, IDS["fraud_br"])[0] == "alice"
    assert "Acknowledged by alice" in texts(at)
    assert not [b for b in at.button if b.key == "incident_ack"]  # done: the button is gone


def test_label_writes_the_store(writable):
    at = run_app(writable, page="incident", id=IDS["chargeback_br"])
    at.text_input(key="who").input("bob")
    at.radio(key="incident_label_choice").set_value("false_alarm")
    at.button(key="incident_label_save").click().run()
    assert not at.exception
    assert _row(writable, IDS["chargeback_br"])[1:] == ("false_alarm", "bob")
    assert "labelled **false alarm** by bob" in texts(at)


def test_silence_goes_through_the_alert_api(writable):
    from monitor.alert.silences import list_silences
    from monitor.store import Store

    at = run_app(writable, page="incident", id=IDS["fraud_br"])
    at.text_input(key="who").input("carol")
    at.text_input(key="silence_comment").input("known BR android attack, rule shipped")
    at.selectbox(key="silence_duration").set_value("1 day")
    at.button(key="incident_silence").click().run()
    assert not at.exception
    assert "silenced for 1 day" in texts(at)
    silences = list_silences(Store(writable.store_path), now=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))
    assert len(silences) == 1
    assert [str(m) for m in silences[0].matchers] == ["metric=fraud_rate", "slice=country=BR"]
    assert silences[0].author == "carol" and silences[0].ends_at - silences[0].starts_at == dt.timedelta(days=1)


def test_drill_down_filters_the_metric_page(project):
    at = run_app(project, page="incident", id=IDS["fraud_total"])
    drill = at.selectbox(key="drill_segment")
    assert "country=BR · device_os=android" in drill.options
    drill.set_value("country=BR&device_os=android")
    at.button(key="drill_go").click().run()
    assert not at.exception
    assert at.query_params["page"] == "metric" and at.query_params["slice"] == "country=BR&device_os=android"
    assert at.title[0].value == "Confirmed fraud rate"
    assert at.selectbox(key="val2:country=BR&device_os=android").value == "android"


def test_resolved_incident_with_label(project):
    at = run_app(project, page="incident", id=IDS["orders_promo"])
    assert not at.exception
    page = texts(at)
    assert "resolved (recovered)" in page and "acknowledged by bob" in page and "labelled **expected**" in page
    assert "channel=web · country=US" in page  # the promotion explains it


def test_incident_on_a_small_slice_withholds_its_values(writable):
    con = duckdb.connect(str(writable.store_path))
    con.execute("CREATE TEMP TABLE one AS SELECT * FROM incidents WHERE incident_id = ?", [IDS["fraud_br"]])
    con.execute("""UPDATE one SET incident_id = 'tiny', slice = 'country=IS', slice_json = '{"country": "IS"}',
                   baseline = 0.01, observed = 0.25, explanation_json = NULL""")
    con.execute("INSERT INTO incidents SELECT * FROM one")
    con.close()
    at = run_app(writable, page="incident", id="tiny")
    assert not at.exception
    page = texts(at)
    assert "values are withheld" in page and "25.00%" not in page and "+2400" not in at.title[0].value
    assert {m.label: m.value for m in at.metric}["Observed"] == "withheld"


def test_unknown_incident_and_missing_explanation(writable):
    at = run_app(writable, page="incident", id="nope")
    assert not at.exception
    assert "No incident with id 'nope'" in texts(at)
    assert at.selectbox(key="incident_choose").options  # open incidents to choose from
    con = duckdb.connect(str(writable.store_path))
    con.execute("UPDATE incidents SET explanation_json = NULL WHERE incident_id = ?", [IDS["chargeback_br"]])
    con.close()
    at = run_app(writable, page="incident", id=IDS["chargeback_br"])
    assert not at.exception
    assert "no attribution yet" in texts(at)
