"""The dashboard's importable parts: links, settings, privacy folding, store queries, actions, CLI."""
from __future__ import annotations

import datetime as dt
import doctest
import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from click.testing import CliRunner

from dashboard_fixtures import copy_project, incident_ids, shared_project
import monitor.links
from monitor.config import load_config
from monitor.dashboard import actions, attribution, links, queries, why
from monitor.dashboard.cli import dashboard, streamlit_command
from monitor.dashboard.formatting import SMALL_SEGMENTS, format_difference, format_value
from monitor.dashboard.settings import SETTINGS, dashboard_settings
from monitor.attribute.explain import Explanation
from monitor.errors import ConfigError, MonitorError
from monitor.incident import Incident
from monitor.store import Store

IDS = incident_ids()


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return shared_project(tmp_path_factory.mktemp("units"))


@pytest.mark.parametrize("module", [monitor.links, why], ids=lambda m: m.__name__)
def test_doctests(module):  # the dashboard's links are monitor.links, where their examples live
    result = doctest.testmod(module)
    assert result.attempted > 0, f"{module.__name__} has no examples left to run"
    assert result.failed == 0


@pytest.mark.parametrize("segment", [{}, {"country": "BR"}, {"device_os": "android", "city": "São Paulo/SP"}])
def test_metric_links_round_trip(segment):
    url = links.metric_url("https://risk.example/dash/", "fraud_rate", segment)
    parts = urlsplit(url)
    assert parts.path == "/dash/"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["page"] == "metric" and query["metric"] == "fraud_rate"
    assert links.parse_slice(query.get("slice", "")) == {k: segment[k] for k in sorted(segment)}


def test_incident_link_and_bad_slice():
    assert links.incident_url("http://h:8501", "a/b") == "http://h:8501/?page=incident&id=a%2Fb"
    with pytest.raises(ValueError):
        links.parse_slice("country")


def test_settings_defaults_and_validation(tmp_path):
    (tmp_path / "monitor.toml").write_text("[project]\nname='x'\n")
    settings = dashboard_settings(load_config(tmp_path / "monitor.toml"))
    assert settings.min_segment_size == SETTINGS["min_segment_size"].default == 30
    assert settings.url == "http://localhost:8501"
    (tmp_path / "monitor.toml").write_text("[dashboard]\nmin_segment_size = 'many'\n")
    with pytest.raises(ConfigError, match="min_segment_size"):
        dashboard_settings(load_config(tmp_path / "monitor.toml"))
    (tmp_path / "monitor.toml").write_text("[dashboard]\nport_number = 1\n")
    with pytest.raises(ConfigError, match="valid keys are"):
        dashboard_settings(load_config(tmp_path / "monitor.toml"))


def test_formatting_units():  # the dashboard reads values as every surface does (monitor.format)
    assert format_value(0.01234, unit="percent") == "1.23%"
    assert format_value(12345.0, unit="count") == "12,345"
    assert format_value(1_250_000, unit="currency") == "1,250,000.00"
    assert format_difference(0.010, 0.0142, unit="percent") == "+0.42 pp"
    assert format_value(None, unit="percent") == "n/a" == format_difference(None, 1.0, unit="count")


def _explanation(kind="ratio"):
    values = [
        {"value": "BR", "before": 0.01, "after": 0.03, "contribution": 0.004, "share_of_change": 0.8,
         "share_before": 0.2, "share_after": 0.2, "mix": 0.0, "rate": 0.004, "interaction": 0.0},
        {"value": "US", "before": 0.01, "after": 0.011, "contribution": 0.0009, "share_of_change": 0.18,
         "share_before": 0.7998, "share_after": 0.7997, "mix": 0.0, "rate": 0.0009, "interaction": 0.0},
        {"value": "IS", "before": 0.0, "after": 0.5, "contribution": 0.0001, "share_of_change": 0.02,
         "share_before": 0.0002, "share_after": 0.0003, "mix": 0.0001, "rate": 0.0, "interaction": 0.0},
    ]
    return Explanation.from_dict({
            "kind": kind, "baseline_label": "last 4 weeks", "metric_label": "fraud rate", "before": 0.01,
            "after": 0.015, "change": 0.005, "relative_change": 0.5,
            "dimensions": [{"dimension": "country", "values": values}], "verdict": "rate",
            "split": {"dimension": "country", "mix": 0.0001, "rate": 0.0049, "interaction": 0.0},
            "causes": [{"segment": {"country": "BR"}, "explained_share": 0.8, "size": 0.2, "before": 0.01,
                        "after": 0.03, "change_type": "rate"},
                       {"segment": {"country": "IS"}, "explained_share": 0.02, "size": 0.0003, "before": 0.0,
                        "after": 0.5, "change_type": "mix"}]})


def test_small_segments_fold_and_the_waterfall_closes():
    view = attribution.attribution_view(_explanation(), min_size=30, volume_before=10_000, volume_after=10_000,
                                        within={"channel": "app"})
    frame = view.dimensions["country"]
    assert list(frame["value"]) == ["BR", "US", SMALL_SEGMENTS]  # IS: 3 events, never on its own
    assert view.hidden_segments == 2  # once in the breakdown, once among the root causes
    assert list(view.root_causes["label"]) == ["channel=app&country=BR", SMALL_SEGMENTS]
    assert view.root_causes["size"].iloc[0] == pytest.approx(2000)
    steps = attribution.waterfall_steps(frame, change=view.change)
    assert list(steps["label"]) == ["BR", "US", SMALL_SEGMENTS]
    assert steps["contribution"].sum() == pytest.approx(view.change)
    steps = attribution.waterfall_steps(frame.iloc[:1], change=view.change, top=1)
    assert list(steps["label"]) == ["BR", "not attributed"]  # the bars always add up to the change
    assert steps["contribution"].sum() == pytest.approx(view.change)


def test_without_volumes_every_rate_segment_counts_as_small():
    view = attribution.attribution_view(_explanation(), min_size=30)
    assert list(view.dimensions["country"]["value"]) == [SMALL_SEGMENTS]
    assert list(view.root_causes["label"]) == [SMALL_SEGMENTS]


def test_overview_frame_sorts_by_attention(project):
    with queries.reading(Store(project.store_path)) as con:
        frame = queries.overview_frame(con, queries.metric_headers(con))
    assert list(frame["metric"]) == ["fraud_rate", "chargeback_rate", "order_count"]
    assert list(frame["status"]) == ["alerting", "alerting", "ok"]
    row = frame.iloc[0]
    assert row["latest_ts"] == pd.Timestamp("2026-04-26") and 0.005 < row["latest"] < 0.03
    assert len(row["sparkline"]) == 28 and row["change_vs_last_week"] > 0.2


def test_hourly_metric_without_expectations(tmp_path):
    """Leaves only (detection has not run yet): the overview sums the total from the leaf rows."""
    store = Store(tmp_path / "store.duckdb")
    hours = pd.date_range("2026-05-01", periods=24 * 20, freq="h")
    leaves = pd.DataFrame({"ts": hours.repeat(2), "country": ["BR", "US"] * len(hours), "value": 5.0})
    with store.connect() as con:
        con.register("leaves", pa.Table.from_pandas(leaves))
        con.execute('CREATE TABLE "leaves__signups" AS SELECT * FROM leaves')
        con.execute("INSERT INTO metric_definitions VALUES ('signups', 'h', 'sum', 'hour', ['country'], ?, NULL,"
                    " now())", [json.dumps({"name": "signups", "kind": "sum", "grain": "hour",
                                            "dimensions": ["country"], "unit": "count"})])
    with queries.reading(store) as con:
        frame = queries.overview_frame(con, queries.metric_headers(con))
        header = queries.metric_headers(con)["signups"]
        series = queries.metric_series(con, header, {"country": "BR"}, start=dt.datetime(2026, 5, 19),
                                       end=dt.datetime(2026, 5, 21), min_size=30)
    row = frame.iloc[0]
    assert row["status"] == "ok" and row["latest"] == 10.0 and row["change_vs_last_week"] == 0.0
    assert len(row["sparkline"]) == 24 * 7
    assert series["hidden"].all() and series["observed"].isna().all()  # 5 events an hour: under the floor


def test_related_incidents_overlap_in_time(project):
    with queries.reading(Store(project.store_path)) as con:
        incident = queries.incident(con, IDS["fraud_total"])
        header = queries.metric_headers(con)["fraud_rate"]
        others, same = queries.related_incidents(con, incident, header)
        volumes = queries.attribution_volumes(con, incident, header)
    assert list(others["incident_id"]) == [IDS["chargeback_br"], IDS["orders_mx"]]  # not the promo of March
    assert set(same["incident_id"]) == {IDS["fraud_br"], IDS["fraud_br_android"]}
    assert 60_000 < volumes[0] < 90_000 and 60_000 < volumes[1] < 90_000  # a week of orders


def test_actions_write_and_refuse(project, tmp_path):
    config = copy_project(project, tmp_path / "p")
    store, now = Store(config.store_path), dt.datetime(2026, 4, 27, 6, 12)
    actions.acknowledge(store, IDS["fraud_br"], by="alice", now=now)
    actions.set_label(store, IDS["fraud_br"], "true_positive", by="alice", now=now)
    with pytest.raises(MonitorError, match="Unknown label"):
        actions.set_label(store, IDS["fraud_br"], "maybe", by="alice", now=now)
    with pytest.raises(MonitorError, match="No incident"):
        actions.acknowledge(store, "nope", by="alice", now=now)
    with pytest.raises(MonitorError, match="Say who you are"):
        actions.acknowledge(store, IDS["fraud_br"], by="  ", now=now)
    silence = actions.silence_incident(store, Incident.from_row({"metric": "order_count", "slice": ""}), scope="metric",
                                       author="alice", comment="promo week", duration=dt.timedelta(hours=4), now=now)
    assert [str(m) for m in silence.matchers] == ["metric=order_count"]
    con = duckdb.connect(str(config.store_path), read_only=True)
    assert con.execute("SELECT acked_by, acked_at, label FROM incidents WHERE incident_id = ?",
                       [IDS["fraud_br"]]).fetchone() == ("alice", now, "true_positive")
    con.close()


def test_streamlit_command_and_cli_errors(project, tmp_path):
    command = streamlit_command(Path("/p/monitor.toml"), host="127.0.0.1", port=8600)
    assert command[1:4] == ["-m", "streamlit", "run"] and command[4].endswith("dashboards/app.py")
    assert command[-2:] == ["--config", "/p/monitor.toml"] and "--server.headless" in command
    result = CliRunner().invoke(dashboard, ["--config", str(tmp_path / "missing.toml")])
    assert result.exit_code == 1 and "does not exist" in result.output
    assert "Serve the on-call dashboard" in CliRunner().invoke(dashboard, ["--help"]).output


def test_dashboard_command_takes_the_main_config_option(tmp_path):
    """Attached to `monitor`, the command uses `monitor --config X dashboard`."""
    import click

    @click.group()
    @click.option("--config", "config_path")
    @click.pass_context
    def main(ctx, config_path):
        ctx.obj = type("Obj", (), {"config_path": config_path})()

    main.add_command(dashboard)
    missing = tmp_path / "elsewhere" / "monitor.toml"
    result = CliRunner().invoke(main, ["--config", str(missing), "dashboard"])
    assert result.exit_code == 1 and str(missing) in result.output
