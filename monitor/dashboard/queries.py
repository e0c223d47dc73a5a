"""Read-only queries the dashboard runs on the store.

Each page's data comes from one short read-only connection (``reading``), so the
scheduler, which writes in short transactions, is never blocked for long; the
Streamlit app caches what these functions return. Nothing here writes: the
on-call actions are in :mod:`monitor.dashboard.actions`.
"""
from __future__ import annotations

import datetime as dt
import json
import threading
from contextlib import contextmanager
from typing import Iterator

import duckdb
import numpy as np
import pandas as pd

from monitor.catalog.kinds import RATIO_LIKE, parts_sql, value_sql
from monitor.catalog.metric import DEFAULT_BUCKET, DEFAULT_UNITS
from monitor.dashboard.formatting import SEVERITY_RANK, relative_change
from monitor.engine.windows import GRAIN_STEP
from monitor.incident import COLUMNS, Incident, read_incidents
from monitor.store import Store, leaves_table

# DuckDB refuses a read-only and a read-write connection to one file in the same process at
# once; the Streamlit server runs sessions in threads, so the dashboard's own reads and its
# action writes take turns through this lock (they are short).
STORE_LOCK = threading.RLock()
WEEK = dt.timedelta(days=7)
STATUS_RANK = {"alerting": 0, "failing": 1, "acknowledged": 2, "ok": 3, "no data": 4}
# The incidents tables show every column but the explanation (read per incident, typed: ``incident``).
FRAME_COLUMNS = ", ".join(c for c in COLUMNS if c != "explanation_json")


_TABLES: dict[int, set[str]] = {}  # id(connection) -> its tables, while `reading` holds it


@contextmanager
def reading(store: Store) -> Iterator[duckdb.DuckDBPyConnection]:
    """One short read-only connection (waits for a writer's lock, see Store.connect)."""
    with STORE_LOCK, store.connect(read_only=True) as con:
        _TABLES[id(con)] = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        try:
            yield con
        finally:
            _TABLES.pop(id(con), None)


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    known = _TABLES.get(id(con))
    if known is not None:
        return name in known
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
                            [name]).fetchone()[0])


def step_of(header: dict) -> dt.timedelta:
    return GRAIN_STEP.get(header.get("grain", "day"), GRAIN_STEP["day"])


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# -- metric headers -----------------------------------------------------------------------------
def metric_headers(con: duckdb.DuckDBPyConnection, catalog_headers: dict[str, dict] | None = None) -> dict[str, dict]:
    """Every metric's header: the stored definition, updated by the catalog's current text.

    The stored header is what the history was computed with; the catalog (when it
    loads) adds metrics not computed yet and fresher titles, owners and runbooks.
    """
    headers: dict[str, dict] = {}
    for name, header_json in con.execute("SELECT metric, header_json FROM metric_definitions").fetchall():
        try:
            headers[name] = json.loads(header_json)
        except ValueError:
            headers[name] = {"name": name}
    for name, header in (catalog_headers or {}).items():
        headers[name] = {**headers.get(name, {}), **header}
    for name, header in headers.items():
        header.setdefault("name", name)
        header.setdefault("title", name.replace("_", " ").capitalize())
        header.setdefault("kind", "sum")
        header.setdefault("grain", "day")
        header.setdefault("dimensions", [])
        header.setdefault("unit", DEFAULT_UNITS.get(header["kind"], "count"))
        header.setdefault("owner", "")
        header.setdefault("team", "")
    return dict(sorted(headers.items()))


# -- overview -----------------------------------------------------------------------------------
def overview_frame(con: duckdb.DuckDBPyConnection, headers: dict[str, dict]) -> pd.DataFrame:
    """One row per metric: latest value, change vs a week earlier, open incidents, a sparkline.

    Sorted by what needs attention: unacknowledged open incidents first (by
    severity, then score), then failing computations, acknowledged incidents, the
    biggest weekly moves, and metrics without data last.
    """
    totals = _latest_totals(con, headers)
    open_incidents = _open_incident_summary(con)
    runs = _last_runs(con)
    rows = []
    for name, header in headers.items():
        row = {"metric": name, "title": header["title"], "owner": header.get("owner") or "",
               "team": header.get("team") or "", "unit": header["unit"], "kind": header["kind"],
               "grain": header["grain"], "latest_ts": pd.NaT, "latest": np.nan, "week_ago": np.nan,
               "change_vs_last_week": np.nan, "sparkline": [], "open_incidents": 0, "unacked": 0,
               "max_severity": "", "max_score": 0.0, "worst_incident": None, "last_run_status": None,
               "last_run_error": None}
        total = totals.get(name)
        if total:
            row.update(total)
            row["change_vs_last_week"] = relative_change(row["week_ago"], row["latest"])
        row.update(open_incidents.get(name, {}))
        row["last_run_status"], row["last_run_error"] = runs.get(name, (None, None))
        row["status"] = _status(row)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    for col in ("latest", "week_ago", "change_vs_last_week", "max_score"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    frame["latest_ts"] = pd.to_datetime(frame["latest_ts"])
    frame["_status_rank"] = frame["status"].map(STATUS_RANK)
    frame["_severity_rank"] = frame["max_severity"].map(SEVERITY_RANK).fillna(0)
    frame["_move"] = frame["change_vs_last_week"].abs().fillna(0.0)
    frame = frame.sort_values(["_status_rank", "_severity_rank", "max_score", "_move", "metric"],
                              ascending=[True, False, False, False, True], kind="stable")
    return frame.drop(columns=["_status_rank", "_severity_rank", "_move"]).reset_index(drop=True)


def _status(row: dict) -> str:
    if row["unacked"]:
        return "alerting"
    if row["last_run_status"] == "failed":
        return "failing"
    if row["open_incidents"]:
        return "acknowledged"
    if row["latest_ts"] is None or pd.isna(row["latest_ts"]):
        return "no data"
    return "ok"


_SPARK_DAYS = {"day": 28, "hour": 7}


def _latest_totals(con: duckdb.DuckDBPyConnection, headers: dict[str, dict]) -> dict[str, dict]:
    """Per metric: latest bucket and value, the value a week before, the recent series (sparkline).

    From the stored expectations of the total; metrics without them are summed from their leaves.
    """
    out: dict[str, dict] = {}
    grains = [(name, h.get("grain", "day")) for name, h in headers.items()]
    if grains:
        con.register("dashboard_grains", pd.DataFrame(grains, columns=["metric", "grain"]))
        try:
            out.update(_summarise(con, "SELECT metric, ts, observed FROM expectations WHERE slice = ''"))
        finally:
            con.unregister("dashboard_grains")
    for name in headers:
        if name in out or not has_table(con, leaves_table(name)):
            continue
        header, table = headers[name], _quote(leaves_table(name))
        value = value_sql(header["kind"], header.get("bucket") or DEFAULT_BUCKET)[0]
        con.register("dashboard_grains", pd.DataFrame([(name, header.get("grain", "day"))],
                                                      columns=["metric", "grain"]))
        try:
            out.update(_summarise(con, f"SELECT '{name}' AS metric, ts, {value} AS observed FROM {table}"
                                       f" WHERE ts > (SELECT max(ts) FROM {table}) - INTERVAL 35 DAY GROUP BY ts"))
        finally:
            con.unregister("dashboard_grains")
    return out


def _summarise(con: duckdb.DuckDBPyConnection, series_sql: str) -> dict[str, dict]:
    """Latest value, value a week earlier and sparkline of each metric in `series_sql`
    (metric, ts, observed), for the metrics in the registered `dashboard_grains`."""
    rows = con.execute(f"""
        WITH s AS ({series_sql}),
        last AS (SELECT metric, max(ts) AS last_ts FROM s WHERE observed IS NOT NULL GROUP BY metric),
        w AS (SELECT s.metric, s.ts, s.observed, last.last_ts,
                     CASE g.grain WHEN 'hour' THEN {_SPARK_DAYS['hour']} ELSE {_SPARK_DAYS['day']} END AS spark_days
              FROM s JOIN last USING (metric) JOIN dashboard_grains g USING (metric)
              WHERE s.ts > last.last_ts - INTERVAL 35 DAY)
        SELECT metric, any_value(last_ts),
               arg_max(observed, ts) FILTER (WHERE observed IS NOT NULL),
               arg_max(observed, ts) FILTER (WHERE observed IS NOT NULL AND ts <= last_ts - INTERVAL 7 DAY),
               list(observed ORDER BY ts) FILTER (WHERE ts > last_ts - to_days(spark_days))
        FROM w GROUP BY metric""").fetchall()
    out = {}
    for name, last_ts, latest, week_ago, spark in rows:
        values = pd.Series(spark or [], dtype=float).ffill().bfill().fillna(0.0)
        out[name] = {"latest_ts": pd.Timestamp(last_ts), "latest": _float(latest), "week_ago": _float(week_ago),
                     "sparkline": [float(v) for v in values]}
    return out


def _float(value) -> float:
    return float(value) if value is not None else np.nan


def _open_incident_summary(con: duckdb.DuckDBPyConnection) -> dict[str, dict]:
    rank = "CASE severity " + " ".join(f"WHEN '{k}' THEN {v}" for k, v in SEVERITY_RANK.items()) + " ELSE 0 END"
    rows = con.execute(f"""
        SELECT metric, count(*), count(*) FILTER (WHERE acked_by IS NULL),
               arg_max(severity, {rank} * 1e6 + abs(score)), max(abs(score)),
               arg_max(incident_id, {rank} * 1e6 + abs(score))
        FROM incidents WHERE status = 'open' GROUP BY metric""").fetchall()
    return {m: {"open_incidents": int(n), "unacked": int(u), "max_severity": str(sev), "max_score": float(score),
                "worst_incident": str(worst)} for m, n, u, sev, score, worst in rows}


def _last_runs(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, str | None]]:
    rows = con.execute(
        "SELECT metric, arg_max(status, run_id), arg_max(error, run_id) FROM runs GROUP BY metric").fetchall()
    return {m: (s, e) for m, s, e in rows}


def incidents_frame(con: duckdb.DuckDBPyConnection, *, status: str | None = None, metric: str | None = None,
                    ended_since: dt.datetime | None = None, limit: int = 500) -> pd.DataFrame:
    """Incidents (without their explanations), newest first."""
    clauses, params = [], []
    if status:
        clauses.append("status = ?")
        params.append(status)
    if metric:
        clauses.append("metric = ?")
        params.append(metric)
    if ended_since is not None:
        clauses.append("end_ts >= ?")
        params.append(ended_since)
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    return con.execute(f"SELECT {FRAME_COLUMNS} FROM incidents{where} ORDER BY start_ts DESC, score DESC LIMIT ?",
                       [*params, limit]).df()


# -- one metric ---------------------------------------------------------------------------------
def data_range(con: duckdb.DuckDBPyConnection, metric: str) -> tuple[dt.datetime, dt.datetime] | None:
    """First and last bucket stored for the metric (None without data)."""
    if not has_table(con, leaves_table(metric)):
        return None
    first, last = con.execute(f"SELECT min(ts), max(ts) FROM {_quote(leaves_table(metric))}").fetchone()
    return None if last is None else (pd.Timestamp(first).to_pydatetime(), pd.Timestamp(last).to_pydatetime())


def metric_series(con: duckdb.DuckDBPyConnection, header: dict, segment: dict[str, str], *,
                  start: dt.datetime, end: dt.datetime, min_size: float) -> pd.DataFrame:
    """The series of the metric (or one slice) on [start, end).

    Columns: ts, observed, volume, expected, lower, upper, anomalous, score,
    previous_week (the value 7 days earlier, for the week-over-week comparison)
    and hidden (True where the bucket has fewer than `min_size` events and its
    value is withheld). The band comes from the stored expectations; slices
    without them (e.g. two dimensions) are summed from the leaf rows, without a band.
    """
    from monitor.slices import slice_label

    name = header["name"]
    label = slice_label(segment)
    frame = pd.DataFrame()
    if len(segment) <= 1:
        frame = con.execute(
            "SELECT ts, observed, volume, expected, lower, upper, anomalous, score FROM expectations"
            " WHERE metric = ? AND slice = ? AND ts >= ? AND ts < ? ORDER BY ts",
            [name, label, start - WEEK, end]).df()
    if frame.empty and has_table(con, leaves_table(name)):
        dims = set(header.get("dimensions") or [])
        unknown = [d for d in segment if d not in dims]
        if unknown:
            raise KeyError(f"{name} has no dimension {unknown[0]!r}; its dimensions are {sorted(dims)}")
        where = "".join(f" AND {_quote(d)} = ?" for d in segment)
        observed, volume = value_sql(header["kind"], header.get("bucket") or DEFAULT_BUCKET)
        measures = f"{observed} AS observed, {volume} AS volume"
        frame = con.execute(
            f"SELECT ts, {measures} FROM {_quote(leaves_table(name))} WHERE ts >= ? AND ts < ?{where}"
            " GROUP BY ts ORDER BY ts", [start - WEEK, end, *segment.values()]).df()
        for col in ("expected", "lower", "upper", "score"):
            frame[col] = np.nan
        frame["anomalous"] = False
    if frame.empty:
        return pd.DataFrame(columns=["ts", "observed", "volume", "expected", "lower", "upper", "anomalous",
                                     "score", "previous_week", "hidden"])
    frame["ts"] = pd.to_datetime(frame["ts"])
    frame["anomalous"] = frame["anomalous"].fillna(False).astype(bool)
    frame["hidden"] = frame["volume"].fillna(0.0) < min_size if segment else False
    frame.loc[frame["hidden"], ["observed", "expected", "lower", "upper", "score"]] = np.nan
    frame.loc[frame["hidden"], "anomalous"] = False
    shifted = frame[["ts", "observed"]].assign(ts=frame["ts"] + WEEK).rename(columns={"observed": "previous_week"})
    frame = frame.merge(shifted, on="ts", how="left")
    frame = frame[frame["ts"] >= pd.Timestamp(start)].reset_index(drop=True)
    return frame


def change_points(con: duckdb.DuckDBPyConnection, metric: str, segment: dict[str, str], *,
                  start: dt.datetime, end: dt.datetime) -> list[pd.Timestamp]:
    from monitor.slices import slice_label

    rows = con.execute("SELECT DISTINCT ts FROM change_points WHERE metric = ? AND slice = ? AND ts >= ? AND ts < ?"
                       " ORDER BY ts", [metric, slice_label(segment), start, end]).fetchall()
    return [pd.Timestamp(r[0]) for r in rows]


def metric_incidents(con: duckdb.DuckDBPyConnection, header: dict, *, start: dt.datetime,
                     end: dt.datetime) -> pd.DataFrame:
    """The metric's incidents (every slice) that overlap [start, end)."""
    step = step_of(header)
    return con.execute(
        f"SELECT {FRAME_COLUMNS} FROM incidents WHERE metric = ? AND start_ts < ?"
        " AND coalesce(end_ts, last_ts + ?::INTERVAL) > ? ORDER BY start_ts DESC, score DESC",
        [header["name"], end, step, start]).df()


def slice_values(con: duckdb.DuckDBPyConnection, header: dict, dimension: str, *, within: dict[str, str],
                 since: dt.datetime, min_size: float) -> tuple[list[str], int]:
    """Values of `dimension` (inside the `within` slice) by volume since `since`, biggest first.

    A value is listed when its average bucket has at least `min_size` events (the
    privacy floor: its buckets would be withheld anyway). Returns (values listed,
    number of small values withheld).
    """
    name = header["name"]
    if dimension not in (header.get("dimensions") or []) or not has_table(con, leaves_table(name)):
        return [], 0
    volume = value_sql(header["kind"], header.get("bucket") or DEFAULT_BUCKET)[1]
    where = "".join(f" AND {_quote(d)} = ?" for d in within)
    table = _quote(leaves_table(name))
    rows = con.execute(
        f"SELECT {_quote(dimension)} AS v, {volume} / (SELECT greatest(count(DISTINCT ts), 1) FROM {table}"
        f" WHERE ts >= ?) AS per_bucket FROM {table} WHERE ts >= ?{where} GROUP BY 1 ORDER BY 2 DESC, 1",
        [since, since, *within.values()]).fetchall()
    shown = [str(v) for v, vol in rows if (vol or 0) >= min_size]
    return shown, len(rows) - len(shown)


# -- one incident -------------------------------------------------------------------------------
def incident(con: duckdb.DuckDBPyConnection, incident_id: str) -> Incident | None:
    """The incident, typed (segment, why and explanation decoded), or None."""
    found = read_incidents(con, "incident_id = ?", [incident_id])
    return found[0] if found else None


def related_incidents(con: duckdb.DuckDBPyConnection, incident: Incident,
                      header: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(incidents of other metrics that overlap this one in time, other slices of this metric that do).

    An open incident is taken to last until one bucket after it was last seen.
    """
    step = step_of(header)
    start = incident.start_ts
    end = incident.end_ts or (incident.last_ts + step)
    grain_step = "CASE d.grain WHEN 'hour' THEN INTERVAL 1 HOUR ELSE INTERVAL 1 DAY END"
    join = "LEFT JOIN metric_definitions d ON d.metric = i.metric"
    cols = ", ".join(f"i.{c.strip()}" for c in FRAME_COLUMNS.split(","))
    frame = con.execute(
        f"SELECT {cols} FROM incidents i {join} WHERE i.incident_id <> ? AND i.start_ts < ?"
        f" AND coalesce(i.end_ts, i.last_ts + {grain_step}) > ? ORDER BY i.score DESC LIMIT 200",
        [incident.incident_id, end, start]).df()
    frame["_rank"] = frame["severity"].map(SEVERITY_RANK).fillna(0)
    frame = frame.sort_values(["_rank", "score"], ascending=False).drop(columns="_rank")
    others = frame[frame["metric"] != incident.metric].reset_index(drop=True)
    same = frame[frame["metric"] == incident.metric].reset_index(drop=True)
    return others, same


def attribution_volumes(con: duckdb.DuckDBPyConnection, incident: Incident,
                        header: dict) -> tuple[float | None, float | None]:
    """Total events (denominator) behind the incident's attribution: (baseline per window, incident window).

    The windows are those of :mod:`monitor.attribute.incident_attribution`: the
    incident's first buckets, against the same buckets in the weeks before. The
    privacy floor needs them to turn the explanation's traffic shares into counts.
    """
    from monitor.attribute.incident_attribution import BASELINE_WEEKS, MAX_WINDOW_BUCKETS

    name = header["name"]
    if header["kind"] not in RATIO_LIKE or not has_table(con, leaves_table(name)):
        return None, None
    den = parts_sql(header["kind"], header.get("bucket") or DEFAULT_BUCKET)[1][len("sum("):-1]
    step = step_of(header)
    start = incident.start_ts
    end = incident.end_ts or (incident.last_ts + step)
    end = min(end, start + step * MAX_WINDOW_BUCKETS.get(header["grain"], 7))
    weeks = [(start - k * WEEK, end - k * WEEK) for k in range(1, BASELINE_WEEKS + 1)]
    segment = incident.segment
    seg = "".join(f" AND {_quote(d)} = ?" for d in segment)
    week_of = " ".join(f"WHEN ts >= ? AND ts < ? THEN {k}" for k in range(len(weeks)))
    row = con.execute(
        f"SELECT sum({den}) FILTER (WHERE ts >= ?), sum({den}) FILTER (WHERE ts < ?),"
        f" count(DISTINCT CASE {week_of} END) FROM {_quote(leaves_table(name))}"
        f" WHERE ts >= ? AND ts < ?{seg} AND (ts >= ? OR {' OR '.join('(ts >= ? AND ts < ?)' for _ in weeks)})",
        [start, start, *[t for w in weeks for t in w], weeks[-1][0], end, *segment.values(), start,
         *[t for w in weeks for t in w]]).fetchone()
    after, before_total, n_weeks = row
    before = before_total / n_weeks if before_total is not None and n_weeks else None
    return (float(before) if before is not None else None), (float(after) if after is not None else None)
