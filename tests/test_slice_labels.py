"""Slice labels: one escaping for every surface, a lossless round trip, old labels unchanged."""
from __future__ import annotations

import datetime as dt
import doctest
import hashlib
import json
from urllib.parse import parse_qs, urlsplit

import click
import duckdb
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard_fixtures import copy_project, run_app, shared_project, texts  # noqa: F401
import monitor.links
import monitor.slices
from monitor.catalog import load_catalog
from monitor.cli import Context
from monitor.dashboard.formatting import slice_text
from monitor.detect.incident_rows import detected_row as incident_row
from monitor.links import metric_url
from monitor.report import gather_report
from monitor.report.cli import report as report_command
from monitor.slices import parse_slice, slice_label
from monitor.store import slice_label as store_slice_label
from tests.report_fixtures import D, build_project

# Any text a store can hold (valid UTF-8), with the separators and the escape character over-represented.
TEXT = st.text(alphabet=st.one_of(st.sampled_from("&=%2536Dd· "), st.characters(codec="utf-8")), max_size=12)
SEGMENTS = st.dictionaries(TEXT, TEXT, max_size=4)
PLAIN = st.text(alphabet=st.characters(codec="utf-8", blacklist_characters="&=%"), max_size=12)
AWKWARD = ["a&b=c", "R&D", "50%", "%26", "=", "&", "", "São Paulo · ü", "a%2", "%3d%3D"]


@settings(max_examples=400, deadline=None)
@given(SEGMENTS)
def test_label_round_trips_any_segment(segment):
    label = slice_label(segment)
    assert parse_slice(label) == segment
    assert list(parse_slice(label)) == sorted(segment)  # the label's order is the sorted one
    assert (label == "") == (segment == {})


@settings(max_examples=300, deadline=None)
@given(SEGMENTS, SEGMENTS)
def test_different_segments_get_different_labels(a, b):
    assert (slice_label(a) == slice_label(b)) == (a == b)
    # The collisions of the unescaped format, whatever hypothesis draws.
    assert slice_label({"a": "1&b=2"}) != slice_label({"a": "1", "b": "2"})
    assert slice_label({"a=b": "c"}) != slice_label({"a": "b=c"})


@settings(max_examples=300, deadline=None)
@given(SEGMENTS)
def test_dashboard_link_carries_the_segment(segment):
    query = parse_qs(urlsplit(metric_url("https://dash.example", "m", segment)).query, keep_blank_values=True)
    assert parse_slice(query.get("slice", [""])[0]) == segment


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(PLAIN, PLAIN, min_size=1, max_size=4))
def test_labels_without_separators_read_as_before(segment):
    # The format stores have always held; existing rows must keep their keys and incident ids.
    old = "&".join(f"{k}={segment[k]}" for k in sorted(segment))
    assert slice_label(segment) == old and parse_slice(old) == segment


def test_doctests():
    for module in (monitor.slices, monitor.links):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0


def test_stored_labels_with_a_literal_percent_still_read():
    assert parse_slice("promo=50%off&rate=7%") == {"promo": "50%off", "rate": "7%"}


def test_malformed_labels_are_refused():
    for bad in ("country", "country=BR&", "a=1&a=2"):
        with pytest.raises(ValueError):
            parse_slice(bad)


def test_every_surface_uses_the_one_encoding():
    segment = {"merchant": "a&b=c", "country": "BR"}
    assert store_slice_label(segment) == slice_label(segment) == "country=BR&merchant=a%26b%3Dc"
    assert slice_text(slice_label(segment)) == "country=BR · merchant=a&b=c"


def test_incident_rows_label_round_trips_and_keeps_old_ids(report_project):
    metric = load_catalog(report_project.metrics_dir).metrics["fraud_rate"]
    start = dt.datetime(2026, 3, 20)
    kw = dict(start=start, end=None, last_ts=start, direction="up", kind="level_shift", baseline=1.0, observed=2.0,
              relative_change=1.0, score=5.0, resolution=None, why={})
    for value in AWKWARD:
        row = incident_row(metric, {"country": value}, **kw)
        assert parse_slice(row["slice"]) == json.loads(row["slice_json"]) == {"country": value}
    plain = incident_row(metric, {"country": "BR", "channel": "web"}, **kw)
    old_id = hashlib.sha256(f"fraud_rate|channel=web&country=BR|{start.isoformat()}".encode()).hexdigest()[:12]
    assert plain["slice"] == "channel=web&country=BR" and plain["incident_id"] == old_id


@pytest.fixture(scope="module")
def report_project(tmp_path_factory):
    """The report fixture project plus slices whose values hold '&' and '=', each with an incident."""
    config = build_project(tmp_path_factory.mktemp("slices"))
    catalog = load_catalog(config.metrics_dir)
    start = dt.datetime.combine(D, dt.time())
    with duckdb.connect(str(config.store_path)) as con:
        for value in ("R&D", "a&b=c"):
            con.execute("INSERT INTO leaves__fraud_rate SELECT * REPLACE (? AS country) FROM leaves__fraud_rate "
                        "WHERE country = 'BR'", [value])
            row = incident_row(catalog.metrics["fraud_rate"], {"country": value}, start=start, end=None,
                               last_ts=start, direction="up", kind="level_shift", baseline=0.04, observed=0.06,
                               relative_change=0.5, score=9.0, resolution=None, why={})
            row.update(created_at=start, updated_at=start)
            names = ", ".join(row)
            con.execute(f"INSERT INTO incidents ({names}) VALUES ({', '.join('?' * len(row))})", list(row.values()))
    return config


def test_report_reads_slices_with_separators_in_their_values(report_project):
    data = gather_report(report_project, date=D)
    shown = {i.slice: i for c in data.incidents.values() for i in c}
    for value in ("R&D", "a&b=c"):
        incident = shown[slice_label({"country": value})]
        # Read as the one dimension it is: its own series, not an unknown dimension 'b' or a crash.
        assert len(incident.series) >= 14 and all(v is not None for _, v in incident.series)
    group = click.Group("monitor", commands={"report": report_command})
    result = CliRunner().invoke(group, ["report", "--date", D.isoformat(), "--out", str(report_project.root / "o")],
                                obj=Context(str(report_project.root / "monitor.toml"), False, "2026-03-21T06:10"))
    assert result.exit_code == 0, result.output


def test_report_survives_a_label_stored_unescaped_by_an_older_version(report_project, tmp_path):
    with duckdb.connect(str(report_project.store_path)) as con:
        con.execute("UPDATE incidents SET slice = 'country=R&D' WHERE slice = ?", [slice_label({"country": "R&D"})])
    try:
        data = gather_report(report_project, date=D)
        old = [i for c in data.incidents.values() for i in c if i.slice == "country=R&D"]
        assert len(old) == 1 and old[0].series == ()  # listed, without a chart it cannot place
    finally:
        with duckdb.connect(str(report_project.store_path)) as con:
            con.execute("UPDATE incidents SET slice = ? WHERE slice = 'country=R&D'", [slice_label({"country": "R&D"})])


@pytest.fixture(scope="module")
def dashboard_project(tmp_path_factory):
    config = copy_project(shared_project(tmp_path_factory.mktemp("shared")), tmp_path_factory.mktemp("dash") / "p")
    with duckdb.connect(str(config.store_path)) as con:
        con.execute("INSERT INTO leaves__fraud_rate SELECT * REPLACE ('a&b=c' AS country) FROM leaves__fraud_rate "
                    "WHERE country = 'BR'")
    return config


def test_dashboard_opens_a_slice_whose_value_holds_separators(dashboard_project):
    label = slice_label({"country": "a&b=c"})
    at = run_app(dashboard_project, page="metric", metric="fraud_rate", slice=label)
    assert not at.exception
    page = texts(at)
    assert "is not valid" not in page and "has no dimension" not in page
    assert at.selectbox(key=f"dim1:{label}").value == "country"
    assert at.selectbox(key=f"val1:{label}").value == "a&b=c"
    assert "slice=country%3Da%2526b%253Dc" in page  # the share link carries the escaped label
