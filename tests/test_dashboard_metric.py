"""Metric page (AppTest): series with band, change points and incidents; slices; week over week."""
from __future__ import annotations

import json

import pytest

from dashboard_fixtures import chart_data, chart_spec, run_app, shared_project, texts


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return shared_project(tmp_path_factory.mktemp("metric"))


def _charts(at):
    return at.get("vega_lite_chart")


def test_total_with_band_incidents_and_why(project):
    at = run_app(project, page="metric", metric="fraud_rate")
    assert not at.exception
    assert at.title[0].value == "Confirmed fraud rate"
    assert len(_charts(at)) == 2  # the series (band, change points, incidents) and its volume
    spec, data = chart_spec(_charts(at)[0]), chart_data(_charts(at)[0])
    axis = spec["layer"][-3]["encoding"]["y"]["axis"]  # the lines' axis: a rate, in percent
    assert axis["title"] == "rate (%)" and axis["format"] == ".2%"
    assert spec["title"]["text"] == "Confirmed fraud rate — total"
    assert len(data["incident"]) == 1 and len(data["change_points"]) == 1  # shaded and marked
    assert data["series"]["lower"].notna().sum() > 30  # the expected band
    labels = {m.label.split(" (")[0]: m.value for m in at.metric}
    assert labels["Latest"].endswith("%") and labels["Normal band"].count("%") == 2
    incidents = at.dataframe[0].value
    assert sorted(incidents["Slice"]) == ["country=BR", "country=BR · device_os=android", "total"]
    page = texts(at)
    assert "level shift" in page and "Share this view: http://127.0.0.1:8501/?page=metric&metric=fraud_rate" in page


def test_slice_from_the_link_and_privacy_floor_in_the_selector(project):
    at = run_app(project, page="metric", metric="fraud_rate", slice="country=BR")
    assert not at.exception
    assert at.selectbox(key="dim1:country=BR").value == "country"
    values = at.selectbox(key="val1:country=BR")
    assert values.value == "BR"
    assert "IS" not in values.options  # three orders a day: under the privacy floor
    assert {"US", "BR", "GB", "DE", "MX"} <= set(values.options)
    assert "bands are kept" not in texts(at)  # one-dimension slices have a stored band


def test_two_dimension_slice_is_summed_from_leaves(project):
    at = run_app(project, page="metric", metric="fraud_rate", slice="country=BR&device_os=android")
    assert not at.exception
    assert at.selectbox(key="dim2:country=BR&device_os=android").value == "device_os"
    assert "summed from the leaf rows" in texts(at)
    assert len(_charts(at)) == 2


def test_small_slice_is_withheld(project):
    at = run_app(project, page="metric", metric="fraud_rate", slice="country=IS")
    assert not at.exception
    assert "fewer than 30 events" in texts(at)
    assert not [m for m in at.metric if m.label.startswith("Latest")]
    series, volume = (chart_data(c) for c in _charts(at))
    assert series["series"]["observed"].isna().all() and volume["volume"]["volume"].isna().all()


def test_selectors_rewrite_the_link(project):
    at = run_app(project, page="metric", metric="fraud_rate")
    at.selectbox(key="dim1:total").set_value("country").run()
    assert at.query_params["slice"] == "country=US"  # the biggest value first
    at.selectbox(key="val1:country=US").set_value("BR").run()
    assert at.query_params["slice"] == "country=BR"
    at.selectbox(key="dim2:country=BR").set_value("channel").run()
    assert at.query_params["slice"] in ("channel=web&country=BR", "channel=app&country=BR")
    at.toggle(key=f"compare:{at.query_params['slice']}").set_value(False).run()
    assert at.query_params["compare"] == "0"
    assert not at.exception
    folds = [t["fold"] for layer in chart_spec(_charts(at)[0])["layer"] for t in layer.get("transform", [])
             if "fold" in t]
    assert len(folds) == 1 and "previous_week" not in folds[0]


def test_week_over_week_overlay_is_on_by_default(project):
    at = run_app(project, page="metric", metric="order_count", days="28")
    assert not at.exception
    assert "previous_week" in json.dumps(chart_spec(_charts(at)[0])["layer"])
    assert at.selectbox(key="range:total").value == 28


def test_unknown_metric_and_bad_slice_are_explained(project):
    at = run_app(project, page="metric", metric="nope")
    assert not at.exception
    assert "no metric named 'nope'" in texts(at)
    at = run_app(project, page="metric", metric="order_count", slice="device_os=ios")
    assert not at.exception
    assert "has no dimension 'device_os'" in texts(at)
    at = run_app(project, page="metric", metric="order_count", slice="garbage")
    assert not at.exception
    assert "is not valid" in texts(at)
