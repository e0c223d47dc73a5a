"""Headers and queries of the mean and distribution kinds: `monitor check` names file:line
for missing parts, negative counts and a bucket column on a mean metric."""
from __future__ import annotations

import datetime as dt
import os
import textwrap
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from monitor.catalog import parse_metric
from monitor.cli import cli

HEAD = """\
/* ---
name: {name}
kind: {kind}
grain: day
dimensions: [country]
schedule: "0 6 * * *"
{extra}--- */
"""
MEAN_SQL = """SELECT date_trunc('day', created_at) AS ts, country, sum(amount) AS value_sum,
       {count} AS value_count, sum(amount * amount) AS value_sq_sum
FROM orders WHERE created_at >= $start AND created_at < $end GROUP BY ALL
"""
DIST_SQL = """SELECT date_trunc('day', created_at) AS ts, country, floor(score * 10) / 10 AS bucket, {count} AS count
FROM orders WHERE created_at >= $start AND created_at < $end GROUP BY ALL
"""


def write(folder: Path, name: str, kind: str, sql: str, extra: str = "") -> Path:
    path = folder / f"{name}.sql"
    path.write_text(HEAD.format(name=name, kind=kind, extra=extra) + sql)
    return path


@pytest.fixture
def kinds_project(tmp_path: Path) -> Path:
    """Orders of the last days (check probes recent rows), with an amount and a score."""
    (tmp_path / "metrics").mkdir()
    con = duckdb.connect(str(tmp_path / "source.duckdb"))
    start = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(days=3)
    con.execute("""CREATE TABLE orders AS SELECT ?::TIMESTAMP + to_minutes(i * 7) AS created_at,
                   ['US', 'BR'][1 + i % 2] AS country, 10.0 + i % 50 AS amount, (i % 100) / 100.0 AS score
                   FROM range(400) t(i)""", [start])
    con.close()
    (tmp_path / "monitor.toml").write_text(textwrap.dedent("""\
        [project]
        name = "k"
        [source]
        database = "source.duckdb"
    """))
    return tmp_path


def check(root: Path):
    old = os.getcwd()
    try:
        os.chdir(root)
        return CliRunner().invoke(cli, ["check"], catch_exceptions=False)
    finally:
        os.chdir(old)


def test_good_mean_and_distribution_pass_check(kinds_project: Path) -> None:
    write(kinds_project / "metrics", "order_value", "mean", MEAN_SQL.format(count="count(*)"), "unit: currency\n")
    write(kinds_project / "metrics", "score", "distribution", DIST_SQL.format(count="count(*)"))
    result = check(kinds_project)
    assert result.exit_code == 0, result.output
    metric, _ = parse_metric((kinds_project / "metrics" / "score.sql").read_text(), Path("score.sql"))
    assert metric.keys == ("country", "bucket") and metric.measures == ("count",) and metric.unit == "count"


def test_bad_kinds_queries_get_file_line_errors(kinds_project: Path) -> None:
    metrics = kinds_project / "metrics"
    missing = write(metrics, "no_squares", "mean", MEAN_SQL.format(count="count(*)").replace(
        ",\n       count(*) AS value_count, sum(amount * amount) AS value_sq_sum", ", count(*) AS value_count"))
    negative = write(metrics, "negative", "mean", MEAN_SQL.format(count="-count(*)"))
    negative_dist = write(metrics, "negative_dist", "distribution", DIST_SQL.format(count="-count(*)"))
    bucket_header = write(metrics, "bucket_mean", "mean", MEAN_SQL.format(count="count(*)"), "bucket: score_bin\n")
    bucket_column = write(metrics, "bucket_column", "mean", MEAN_SQL.format(count="count(*)").replace(
        "country, sum(amount)", "country, floor(score * 10) AS bucket, sum(amount)"))
    dist_no_bucket = write(metrics, "dist_no_bucket", "distribution", DIST_SQL.format(count="count(*)").replace(
        "floor(score * 10) / 10 AS bucket, ", ""))
    result = check(kinds_project)
    out = result.output
    assert result.exit_code == 1
    sql_line = HEAD.count("\n") + 1  # extra is empty: the query starts right after the header
    assert f"{missing}:{sql_line}" in out and "missing column(s) value_sq_sum" in out
    assert f"{negative}:{sql_line}" in out and "negative value_count" in out
    assert f"{negative_dist}:{sql_line}" in out and "negative count" in out
    assert f"{bucket_header}:7: bucket: only a distribution metric has a bucket column" in out
    assert f"{bucket_column}:{sql_line}" in out and "unexpected column(s) bucket" in out
    assert f"{dist_no_bucket}:{sql_line}" in out and "missing column(s) bucket" in out
    assert "Traceback" not in out


def test_inconsistent_mean_parts_are_refused(kinds_project: Path) -> None:
    """value_sq_sum below value_sum^2/value_count would make a negative variance."""
    write(kinds_project / "metrics", "bad_squares", "mean",
          MEAN_SQL.format(count="count(*)").replace("sum(amount * amount)", "sum(amount)"))
    result = check(kinds_project)
    assert result.exit_code == 1 and "value_sq_sum < value_sum^2 / value_count" in result.output


def test_kind_header_rules(tmp_path: Path) -> None:
    """A distribution's bucket is not a dimension; kinds that cannot follow say so at file:line."""
    text = HEAD.format(name="score", kind="distribution", extra="bucket: country\n") + DIST_SQL.format(count="count(*)")
    _, problems = parse_metric(text, tmp_path / "score.sql")
    assert any(p.line == 5 and "is the bucket column" in p.message for p in problems), problems
    from monitor.catalog import load_catalog

    (tmp_path / "m").mkdir()
    write(tmp_path / "m", "fraud", "ratio", "SELECT ts, country, numerator, denominator FROM t WHERE ts >= $start AND ts < $end")
    write(tmp_path / "m", "aov", "mean", MEAN_SQL.format(count="count(*)"), "detect: {follows: [fraud]}\n")
    catalog = load_catalog(tmp_path / "m")
    assert [(p.line, "cannot follow" in p.message) for p in catalog.problems] == [(7, True)]
    assert catalog.metrics["aov"].detect.follows == ()
