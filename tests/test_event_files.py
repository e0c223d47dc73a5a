"""Event files: validated like metric files (every problem, with file:line), run on the source,
stored and linked; `monitor event add/list` for one-off events."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from monitor.config import load_config
from monitor.events.cycle import link_project_events
from monitor.events.files import parse_event_file
from monitor.events.store import links_for, list_events
from monitor.store import Store
from tests.test_cli import invoke

GOOD = """\
/* ---
name: risk_rules
title: Rule changes
kind: rule
scope: [country, channel]
metrics: [fraud_rate]
--- */
SELECT * FROM (VALUES
    (TIMESTAMP '2026-01-09 21:00', 'R-142 tighten BIN velocity', 'https://rules.example.com/R-142', 'BR', NULL),
    (TIMESTAMP '2026-01-02 08:00', 'R-100 unrelated', NULL, 'US', 'web')
) AS t(ts, title, url, country, channel)
"""


def problems_of(text: str) -> list[str]:
    source, problems = parse_event_file(text, Path("e.sql"))
    assert source is None
    return [str(p) for p in problems]


def test_a_valid_event_file_parses():
    source, problems = parse_event_file(GOOD, Path("risk_rules.sql"))
    assert problems == []
    assert (source.name, source.kind, source.scope, source.metrics, source.sql_line) == (
        "risk_rules", "rule", ("country", "channel"), ("fraud_rate",), 8)


@pytest.mark.parametrize("edit, expected", [
    (("kind: rule", "kind: rule\n  bad: [x"), "e.sql:5: invalid YAML"),
    (("title: Rule changes", "titel: Rule changes"), "e.sql:3: unknown key 'titel' (did you mean 'title'?)"),
    (("name: risk_rules\n", ""), "e.sql:2: missing required key 'name'"),
    (("scope: [country, channel]", "scope: [ts, channel]"), "e.sql:5: scope: must be a list of distinct column names"),
    (("metrics: [fraud_rate]", "metrics: fraud_rate"), "e.sql:6: metrics: must be a list of metric names"),
    (("kind: rule", "kind: Rule Change"), "e.sql:4: kind: must be a lowercase word"),
    (("AS t(ts", "WHERE $when AS t(ts"), "e.sql:8: unknown parameter(s) $when"),
    (("--- */", "--- *"), "header is never closed"),
])
def test_every_header_problem_names_file_and_line(edit, expected):
    text = GOOD.replace(*edit)
    assert text != GOOD
    found = problems_of(text)
    assert any(p.startswith(expected) or expected in p for p in found), found


@pytest.fixture
def project(tmp_path):
    result = invoke("init", str(tmp_path / "p"))
    assert result.exit_code == 0, result.output
    root = tmp_path / "p"
    (root / "events").mkdir()
    return root


def test_check_reports_every_event_file_problem_with_file_and_line(project):
    events = project / "events"
    (events / "risk_rules.sql").write_text(GOOD)
    (events / "typo.sql").write_text(GOOD.replace("name: risk_rules", "name: typo").replace("metrics: [fraud_rate]",
                                                                                           "metrics: [fraud_rat]"))
    (events / "columns.sql").write_text(GOOD.replace("name: risk_rules", "name: columns").replace(
        "AS t(ts, title, url, country, channel)", "AS t(ts, name, url, country, channel)"))
    (events / "broken.sql").write_text("/* ---\nname: broken\nscope: nope\n--- */\nSELECT 1")
    result = invoke("check", cwd=project)
    assert result.exit_code == 1
    out = result.output
    assert "4 event file(s)" in out
    assert f"{events / 'typo.sql'}:6: metrics: unknown metric 'fraud_rat' (did you mean 'fraud_rate'?)" in out
    assert f"{events / 'columns.sql'}:8: missing column(s) title" in out
    assert f"{events / 'broken.sql'}:3: scope: must be a list" in out
    assert "risk_rules.sql" not in out  # the good file has no problem


def test_check_passes_with_a_good_event_file(project):
    (project / "events" / "risk_rules.sql").write_text(GOOD)
    result = invoke("check", cwd=project)
    assert result.exit_code == 0, result.output
    assert "All event files OK" in result.output


def add_incident(store: Store, metric: str, segment: dict, start: dt.datetime, explained: bool = False) -> str:
    from tests.alert_fixtures import EXPLANATION, incident_row  # its top cause is country=BR

    row = incident_row(metric, segment, start=start, explanation=EXPLANATION if explained else None)
    with store.connect() as con:
        con.execute("INSERT INTO metric_definitions VALUES (?, 'h', 'ratio', 'day', ['country','channel'], '{}', NULL, ?)"
                    " ON CONFLICT DO NOTHING", [metric, start])
        cols = ", ".join(row)
        con.execute(f"INSERT INTO incidents ({cols}) VALUES ({', '.join('?' for _ in row)})", list(row.values()))
    return row["incident_id"]


def test_file_events_are_stored_linked_by_scope_and_shown_by_explain(project):
    (project / "events" / "risk_rules.sql").write_text(GOOD)
    config = load_config(project / "monitor.toml")
    store = Store(config.store_path)
    linked = add_incident(store, "fraud_rate", {}, dt.datetime(2026, 1, 10), explained=True)
    other = add_incident(store, "fraud_rate", {"country": "DE"}, dt.datetime(2026, 1, 10))
    result = link_project_events(config, store, now=dt.datetime(2026, 1, 12))
    assert (result.events, result.links, result.problems) == (2, 1, [])
    links = links_for(store, [linked, other])
    assert list(links) == [linked]
    [link] = links[linked]
    assert (link["title"], link["scope"], link["scope_match"], link["lag_seconds"]) == (
        "R-142 tighten BIN velocity", {"country": "BR"}, "cause", 3 * 3600)
    out = invoke("--now", "2026-01-12", "explain", linked, cwd=project).output
    assert "3 h after rule 'R-142 tighten BIN velocity' on country=BR" in out
    assert "https://rules.example.com/R-142" in out
    # A row removed from the source disappears from the store on the next cycle.
    (project / "events" / "risk_rules.sql").write_text(GOOD.replace("'BR', NULL),", "'BR', NULL)").split(
        "(TIMESTAMP '2026-01-02")[0] + ") AS t(ts, title, url, country, channel)\n")
    link_project_events(config, store, now=dt.datetime(2026, 1, 12))
    assert [e.title for e in list_events(store)] == ["R-142 tighten BIN velocity"]


def test_event_add_and_list(project):
    ok = invoke("--now", "2026-01-05 10:00", "event", "add", "--kind", "model", "--title", "fraud model v13",
                "--scope", "country=BR", "--scope", "channel=app", "--author", "ana", cwd=project)
    assert ok.exit_code == 0, ok.output
    assert "model 'fraud model v13' on channel=app&country=BR" in ok.output
    listed = invoke("event", "list", "--format", "json", cwd=project)
    [event] = json.loads(listed.output)
    assert (event["kind"], event["scope"], event["ts"], event["source"], event["expected"]) == (
        "model", {"country": "BR", "channel": "app"}, "2026-01-05 10:00:00", "cli", False)
    promo = invoke("event", "add", "--kind", "promotion", "--title", "Sale", "--at", "2026-01-06",
                   "--until", "2026-01-08", "--metric", "fraud_rate", cwd=project)
    assert "(expected: the named metrics do not page inside its window)" in promo.output
    table = invoke("event", "list", cwd=project).output
    assert "promotion (expected)" in table and "channel=app&country=BR" in table


@pytest.mark.parametrize("args, message", [
    (["--scope", "country"], "must look like dimension=value"),
    (["--at", "2026-01-06", "--until", "2026-01-05"], "must be after --at"),
    (["--expected", "--until", "2026-02-01"], "needs a window (--until) and the metrics"),
])
def test_event_add_errors_are_one_sentence(project, args, message):
    result = invoke("--now", "2026-01-05", "event", "add", "--kind", "rule", "--title", "x", *args, cwd=project)
    assert result.exit_code == 1 and message in result.output
