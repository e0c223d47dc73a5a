"""Gather one day's report from the store: values, incidents, movers, data health, alert quality.

One short read-only connection; every query has an ORDER BY and every float is
rounded to 12 significant digits, so the same store and date always give the
same :class:`ReportData` (DuckDB may add doubles in a different order from one
run to the next; the rounding hides that last-bit noise).

Days are calendar days of the metric's own buckets (``ts`` is stored in the
metric's timezone), so day ``D`` is ``D 00:00 <= ts < D+1 00:00``. For hourly
metrics the day's value is the sum over its buckets (ratio = sum num / sum den).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

from monitor.catalog import Catalog, load_catalog
from monitor.config import ProjectConfig
from monitor.errors import first_line
from monitor.events.report import with_events
from monitor.incident import read_incidents
from monitor.report.explanations import read_explanation
from monitor.report.model import (
    CATEGORIES, AlertQuality, Change, DataHealth, FailedRuns, Freshness, IncidentView, MetricDay, MetricInfo,
    MetricQuality, Mover, NoisyAlert, ReportData, StaleDefinition,
)
from monitor.report.settings import ReportSettings, report_settings
from monitor.slices import parse_slice
from monitor.catalog.kinds import RATIO_LIKE, parts_sql
from monitor.catalog.metric import DEFAULT_BUCKET
from monitor.store import Store, leaves_table
from monitor.warehouse import open_store

DAY = dt.timedelta(days=1)
MOVERS_PER_METRIC = 3
NOISIEST = 5
FAILED_RUNS_DAYS = 7  # failed runs for windows touching the report day or the 6 days before


def gather_report(config: ProjectConfig, *, date: dt.date, settings: ReportSettings | None = None,
                  store: Store | None = None, catalog: Catalog | None = None) -> ReportData:
    settings = settings or report_settings(config)
    store = store or open_store(config)  # warehouse mode: the leaves as DuckDB views
    catalog = catalog if catalog is not None else load_catalog(config.metrics_dir)
    day_start = dt.datetime.combine(date, dt.time())
    with store.connect(read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        stored = _stored_definitions(con)
        infos = _metric_infos(catalog, stored)
        incidents = with_events(con, _day_incidents(con, day_start))
        by_metric: dict[str, list[IncidentView]] = {}
        for incident in incidents:
            by_metric.setdefault(incident.metric, []).append(incident)
        days, all_movers = [], []
        for info in infos:
            has_leaves = leaves_table(info.name) in tables
            metric_day, movers = _metric_day(con, info, date, settings, has_leaves, by_metric.get(info.name, []))
            days.append(metric_day)
            all_movers.extend(movers)
        grouped = _group_incidents(incidents)
        grouped = _with_series(con, tables, grouped, {i.name: i for i in infos}, day_start, settings)
        health = _health(con, tables, config, catalog, infos, stored, day_start)
        quality = _quality(con, date, settings.quality_days)
    all_movers.sort(key=lambda m: (-abs(m.impact), m.metric, m.dimension, m.value))
    movers = tuple(m for m in all_movers if m.contribution)[:settings.top_movers]
    return ReportData(
        title=settings.title, project=config.name, date=date, baseline_days=settings.baseline_days,
        metrics=tuple(days), incidents=grouped, movers=movers, health=health,
        quality=quality, dashboard_url=settings.dashboard_url,
    )


# -- metrics --------------------------------------------------------------------------------------
def _stored_definitions(con) -> dict[str, dict[str, Any]]:
    rows = con.execute("SELECT metric, definition_hash, updated_at, header_json FROM metric_definitions "
                       "ORDER BY metric").fetchall()
    out = {}
    for metric, digest, updated, header in rows:
        try:
            parsed = json.loads(header)
        except ValueError:
            parsed = {}
        out[metric] = {"hash": digest, "updated_at": updated, "header": parsed if isinstance(parsed, dict) else {}}
    return out


def _metric_infos(catalog: Catalog, stored: dict[str, dict]) -> list[MetricInfo]:
    """Catalog metrics, plus metrics with stored history whose file is missing or broken."""
    infos = {}
    for name, m in catalog.metrics.items():
        infos[name] = MetricInfo(name=name, title=m.display_title, kind=m.kind, grain=m.grain, unit=m.unit,
                                 dimensions=tuple(m.dimensions), team=m.team, owner=m.owner,
                                 direction=m.detect.direction, bucket=m.bucket or DEFAULT_BUCKET)
    for name, definition in stored.items():
        if name in infos:
            continue
        h = definition["header"]
        kind = h.get("kind", "sum")
        infos[name] = MetricInfo(
            name=name, title=h.get("title") or name.replace("_", " ").capitalize(), kind=kind,
            grain=h.get("grain", "day"), unit=h.get("unit") or ("percent" if kind == "ratio" else "count"),
            dimensions=tuple(h.get("dimensions") or ()), team=h.get("team") or "", owner=h.get("owner") or "",
            direction=(h.get("detect") or {}).get("direction", "both"), in_catalog=False,
            bucket=h.get("bucket") or DEFAULT_BUCKET)
    return [infos[n] for n in sorted(infos)]


def _metric_day(con, info: MetricInfo, date: dt.date, settings: ReportSettings, has_leaves: bool,
                incidents: list[IncidentView]) -> tuple[MetricDay, list[Mover]]:
    """The metric's day against its references, and every one-dimension mover (for the page-wide ranking)."""
    history_start = date - dt.timedelta(days=max(settings.sparkline_days - 1, settings.baseline_days))
    rows = []
    if has_leaves:
        sums = ", ".join(parts_sql(info.kind, info.bucket))
        rows = con.execute(
            f'SELECT CAST(ts AS DATE) AS day, {sums}, count(DISTINCT ts) FROM "{leaves_table(info.name)}" '
            "WHERE ts >= ? AND ts < ? GROUP BY 1 ORDER BY 1",
            [dt.datetime.combine(history_start, dt.time()), dt.datetime.combine(date + DAY, dt.time())],
        ).fetchall()
    daily = {day: (_r(a), _r(b), int(n)) for day, a, b, n in rows}

    def value(day: dt.date) -> float | None:
        if day not in daily:
            return None
        a, b, _ = daily[day]
        return _ratio(a, b) if info.kind in RATIO_LIKE else a

    base_days = [d for d in daily if date - dt.timedelta(days=settings.baseline_days) <= d < date]
    if not base_days:
        baseline = None
    elif info.kind in RATIO_LIKE:
        baseline = _ratio(sum(daily[d][0] for d in base_days), sum(daily[d][1] for d in base_days))
    else:
        baseline = sum(daily[d][0] for d in base_days) / len(base_days)
    baseline = _r(baseline)
    today = value(date)
    num, den, buckets = daily.get(date, (None, None, 0))
    history = tuple((d, value(d)) for d in (date - dt.timedelta(days=k) for k in range(settings.sparkline_days - 1, -1, -1)))
    movers: list[Mover] = []
    if has_leaves and info.dimensions and date in daily and base_days:
        movers = _movers(con, info, date, settings.baseline_days, daily, base_days, incidents)
    metric_day = MetricDay(
        metric=info, date=date, value=today, numerator=num if info.kind in RATIO_LIKE else None,
        denominator=den if info.kind in RATIO_LIKE else None, buckets=buckets,
        day_before=Change.between(today, value(date - DAY)),
        week_before=Change.between(today, value(date - 7 * DAY)),
        baseline=Change.between(today, baseline), baseline_days=len(base_days), history=history,
        movers=tuple(m for m in movers if m.contribution)[:MOVERS_PER_METRIC],
        incidents=len(incidents),
    )
    return metric_day, movers


def _movers(con, info: MetricInfo, date: dt.date, baseline_days: int, daily: dict, base_days: list,
            incidents: list[IncidentView]) -> list[Mover]:
    """Every one-dimension segment's contribution to the change of the total, day vs baseline."""
    day_start = dt.datetime.combine(date, dt.time())
    dims = info.dimensions
    cols = ", ".join(f'"{d}"' for d in dims)
    sets = ", ".join(f'(is_day, "{d}")' for d in dims)
    sums = ", ".join(parts_sql(info.kind, info.bucket))
    rows = con.execute(
        f'SELECT {cols}, ts >= ? AS is_day, {sums} FROM "{leaves_table(info.name)}" '
        f"WHERE ts >= ? AND ts < ? GROUP BY GROUPING SETS ({sets}) ORDER BY ALL",
        [day_start, day_start - baseline_days * DAY, day_start + DAY],
    ).fetchall()
    segments: dict[tuple[str, str], dict[bool, tuple[float, float | None]]] = {}
    for row in rows:
        keys, is_day, a, b = row[:len(dims)], row[len(dims)], row[len(dims) + 1], row[len(dims) + 2]
        k = next(i for i, v in enumerate(keys) if v is not None)
        segments.setdefault((dims[k], str(keys[k])), {})[bool(is_day)] = (_r(a) or 0.0, _r(b))
    covered = {pair for incident in incidents for pair in (_segment(incident.slice) or {}).items()}
    day_a, day_b, _ = daily[date]
    base_a = sum(daily[d][0] for d in base_days)
    base_b = sum(daily[d][1] for d in base_days) if info.kind in RATIO_LIKE else None
    out = []
    for (dim, val), periods in segments.items():
        a_d, b_d = periods.get(True, (0.0, 0.0))
        a_b, b_b = periods.get(False, (0.0, 0.0))
        if info.kind in RATIO_LIKE:
            total_d, total_b = _ratio(day_a, day_b), _ratio(base_a, base_b)
            if total_d is None or total_b is None:
                continue
            w_d, w_b = (b_d or 0.0) / day_b, (b_b or 0.0) / base_b
            r_d, r_b = _ratio(a_d, b_d), _ratio(a_b, b_b)
            r_b_used = total_b if r_b is None else r_b
            rate = w_d * ((r_d if r_d is not None else r_b_used) - r_b_used)
            mix = (w_d - w_b) * (r_b_used - total_b)
            contribution = rate + mix
            scale = abs(total_b) or abs(total_d) or 1.0
            out.append(Mover(info.name, dim, val, r_b, r_d, _r(w_b), _r(w_d), _r(contribution),
                             _r(contribution / scale), _r(rate), _r(mix), in_incident=(dim, val) in covered))
        else:
            n = len(base_days)
            before, after = a_b / n, a_d
            total_b, total_d = base_a / n, day_a
            contribution = after - before
            scale = abs(total_b) or abs(total_d) or 1.0
            out.append(Mover(info.name, dim, val, _r(before), _r(after), _r(before / total_b) if total_b else None,
                             _r(after / total_d) if total_d else None, _r(contribution), _r(contribution / scale),
                             in_incident=(dim, val) in covered))
    out.sort(key=lambda m: (-abs(m.impact), m.dimension, m.value))
    return out


# -- incidents ------------------------------------------------------------------------------------
def _day_incidents(con, day_start: dt.datetime) -> list[IncidentView]:
    """Incidents that touch the day: started before its end and not ended before its start.

    new: started on the day; resolved: started before and ended on the day
    (end_ts is exclusive, so end_ts = day start means the day itself was normal
    again); ongoing: started before and still open or ended after the day.
    """
    out = []
    for i in read_incidents(con, "start_ts < ? AND (end_ts IS NULL OR end_ts >= ?)", [day_start + DAY, day_start],
                            order="incident_id"):
        if i.start_ts >= day_start:
            category = "new"
        elif i.end_ts is not None and i.end_ts < day_start + DAY:
            category = "resolved"
        else:
            category = "ongoing"
        out.append(IncidentView(
            incident_id=i.incident_id, metric=i.metric, slice=i.slice, parent_id=i.parent_id,
            category=category, start_ts=i.start_ts, end_ts=i.end_ts, last_ts=i.last_ts,
            direction=i.direction, kind=i.kind, baseline=_r(i.baseline), observed=_r(i.observed),
            relative_change=_r(i.relative_change), score=_r(i.score) or 0.0, severity=i.severity,
            status=i.status, resolution=i.resolution, label=i.label, acked_by=i.acked_by,
            explanation=read_explanation(i.explanation)))
    return out


def _group_incidents(incidents: list[IncidentView]) -> dict[str, tuple[IncidentView, ...]]:
    """Top-level incidents per category; slice incidents nest under their total when it is listed too."""
    ids = {i.incident_id for i in incidents}
    children: dict[str, list[IncidentView]] = {}
    for i in incidents:
        if i.parent_id and i.parent_id in ids:
            children.setdefault(i.parent_id, []).append(i)
    grouped: dict[str, list[IncidentView]] = {c: [] for c in CATEGORIES}
    for i in incidents:
        if i.parent_id and i.parent_id in ids:
            continue
        kids = tuple(sorted(children.get(i.incident_id, []), key=lambda c: c.sort_key))
        grouped[i.category].append(_replace(i, children=kids))
    return {c: tuple(sorted(v, key=lambda i: i.sort_key)) for c, v in grouped.items()}


def _with_series(con, tables: set[str], grouped: dict[str, tuple[IncidentView, ...]],
                 infos: dict[str, MetricInfo], day_start: dt.datetime,
                 settings: ReportSettings) -> dict[str, tuple[IncidentView, ...]]:
    """Attach the values around each charted incident (the first max_incident_charts, in page order)."""
    budget = settings.max_incident_charts
    out = {}
    for category in CATEGORIES:
        listed = []
        for incident in grouped[category]:
            info = infos.get(incident.metric)
            if budget > 0 and info is not None and leaves_table(info.name) in tables:
                series, band = _incident_series(con, tables, info, incident, day_start)
                if series:
                    incident = _replace(incident, series=series, band=band)
                    budget -= 1
            listed.append(incident)
        out[category] = tuple(listed)
    return out


def _incident_series(con, tables: set[str], info: MetricInfo, incident: IncidentView, day_start: dt.datetime):
    segment = _segment(incident.slice)
    if segment is None or any(d not in info.dimensions for d in segment):
        return (), ()
    end = day_start + DAY
    if info.grain == "day":
        start = max(min(incident.start_ts, day_start - 13 * DAY) - 7 * DAY, day_start - 89 * DAY)
    else:
        start = max(min(incident.start_ts, day_start) - 2 * DAY, day_start - 13 * DAY)
    where = "".join(f' AND "{d}" = ?' for d in segment)
    sums = ", ".join(parts_sql(info.kind, info.bucket))
    rows = con.execute(
        f'SELECT ts, {sums} FROM "{leaves_table(info.name)}" WHERE ts >= ? AND ts < ?{where} GROUP BY ts ORDER BY ts',
        [start, end, *segment.values()]).fetchall()
    series = tuple((ts, _r(_ratio(a, b)) if info.kind in RATIO_LIKE else _r(a)) for ts, a, b in rows)
    band = tuple((ts, _r(e), _r(lo), _r(hi)) for ts, e, lo, hi in con.execute(
        "SELECT ts, expected, lower, upper FROM expectations WHERE metric = ? AND slice = ? AND ts >= ? AND ts < ? "
        "ORDER BY ts", [info.name, incident.slice, start, end]).fetchall())
    return series, band


def _segment(label: str) -> dict[str, str] | None:
    """The incident's segment; None for a label stored unescaped by an older version ('a=x&y')."""
    try:
        return parse_slice(label)
    except ValueError:
        return None


# -- data health ----------------------------------------------------------------------------------
def _health(con, tables: set[str], config: ProjectConfig, catalog: Catalog, infos: list[MetricInfo],
            stored: dict[str, dict], day_start: dt.datetime) -> DataHealth:
    runs: dict[str, tuple] = {}
    failed: list[FailedRuns] = []
    for metric, until, finished in con.execute(
            "SELECT metric, max(window_end), max(finished_at) FROM runs WHERE status = 'ok' "
            "GROUP BY metric ORDER BY metric").fetchall():
        runs[metric] = (until, finished)
    for metric, n, unfixed, first, last, error in con.execute(
            """SELECT metric, count(*), count(*) FILTER (WHERE NOT fixed), min(window_start), max(window_end),
                      arg_max(coalesce(error, ''), run_id)
               FROM (SELECT f.*, EXISTS (SELECT 1 FROM runs o WHERE o.metric = f.metric AND o.status = 'ok'
                                         AND o.run_id > f.run_id AND o.window_start <= f.window_start
                                         AND o.window_end >= f.window_end) AS fixed
                     FROM runs f WHERE f.status = 'failed' AND f.window_start < ? AND f.window_end > ?)
               GROUP BY metric ORDER BY metric""",
            [day_start + DAY, day_start - (FAILED_RUNS_DAYS - 1) * DAY]).fetchall():
        failed.append(FailedRuns(metric, int(n), int(unfixed), first, last, first_line(error)))
    freshness = tuple(
        Freshness(i.name, runs.get(i.name, (None, None))[0], runs.get(i.name, (None, None))[1],
                  complete=(runs.get(i.name, (None,))[0] or dt.datetime.min) >= day_start + DAY)
        for i in infos)
    stale = tuple(
        StaleDefinition(name, stored[name]["hash"], m.definition_hash, stored[name]["updated_at"])
        for name, m in sorted(catalog.metrics.items())
        if name in stored and stored[name]["hash"] != m.definition_hash)
    never = tuple(n for n in sorted(catalog.metrics) if leaves_table(n) not in tables and n not in runs)
    orphans = tuple(i.name for i in infos if not i.in_catalog)
    problems = tuple(_relative_problem(config.root, p) for p in catalog.problems)
    return DataHealth(freshness, tuple(failed), stale, never, orphans, problems)


def _relative_problem(root: Path, problem) -> str:
    try:
        path = Path(problem.path).resolve().relative_to(root)
    except ValueError:
        path = problem.path
    return f"{path}:{problem.line}: {problem.message}"


# -- alert quality --------------------------------------------------------------------------------
def _quality(con, date: dt.date, days: int) -> AlertQuality:
    start = date - dt.timedelta(days=days - 1)
    bounds = [dt.datetime.combine(start, dt.time()), dt.datetime.combine(date + DAY, dt.time())]
    counts = ("count(*), count(*) FILTER (WHERE label = 'true_positive'), "
              "count(*) FILTER (WHERE label = 'false_alarm'), count(*) FILTER (WHERE label = 'expected')")
    metrics = tuple(MetricQuality(m, int(n), int(tp), int(fa), int(ex)) for m, n, tp, fa, ex in con.execute(
        f"SELECT metric, {counts} FROM incidents WHERE start_ts >= ? AND start_ts < ? GROUP BY metric ORDER BY metric",
        bounds).fetchall())
    noisy = tuple(NoisyAlert(m, s, int(n), int(fa), int(tp), int(ex)) for m, s, n, tp, fa, ex in con.execute(
        f"SELECT metric, slice, {counts} FROM incidents WHERE start_ts >= ? AND start_ts < ? GROUP BY metric, slice "
        "HAVING count(*) >= 2 OR count(*) FILTER (WHERE label = 'false_alarm') >= 1 "
        "ORDER BY 5 DESC, 3 DESC, metric, slice LIMIT ?", [*bounds, NOISIEST]).fetchall())
    return AlertQuality(start, date, metrics, noisy)


# -- helpers --------------------------------------------------------------------------------------
def _r(x: float | None) -> float | None:
    """Round to 12 significant digits: hides summation-order noise, keeps every digit a reader sees."""
    if x is None:
        return None
    x = float(x)
    if x != x:  # NaN
        return None
    return float(f"{x:.12g}")


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or not b:
        return None
    return _r(a / b)



def _replace(obj, **changes):
    return dataclasses.replace(obj, **changes)
