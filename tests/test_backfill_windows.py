"""Backfill windows sized by leaf rows: a small [backfill] memory_limit cuts the range into
windows that fit it, and the stored leaves are the same as with one window."""
from __future__ import annotations

import datetime as dt

import pytest

from monitor.catalog import load_catalog
from monitor.config import ConfigError, load_config
from monitor.engine import Window, make_engine
from monitor.pipeline import BACKFILL_ROW_BYTES, WINDOWS_IN_FLIGHT, backfill_plan, compute
from monitor.store import Store

D = dt.datetime
START, END = D(2026, 3, 1), D(2026, 3, 15)


def with_budget(project, value: str):
    path = project.root / "monitor.toml"
    text = path.read_text().split("\n[backfill]")[0]
    path.write_text(text + f'\n[backfill]\nmemory_limit = "{value}"\n')
    return load_config(path)


def leaves(store: Store, table: str) -> list[tuple]:
    with store.connect(read_only=True) as con:
        return con.execute(f'SELECT * FROM "{table}" ORDER BY ALL').fetchall()


def test_a_small_budget_gives_smaller_windows_and_the_same_leaves(project, tmp_path):
    metric = load_catalog(project.metrics_dir).metrics["fraud_rate"]
    with make_engine(project.source) as engine:
        per_day = max(engine.run(metric, Window(d, d + dt.timedelta(days=1))).num_rows for d in (START, END - dt.timedelta(days=1)))
    assert per_day > 1

    whole = backfill_plan([metric], START, END, config=project)  # the default 1GB: one window
    assert [(w.start, w.end) for _, w in whole] == [(START, END)]
    small = with_budget(project, str(BACKFILL_ROW_BYTES * WINDOWS_IN_FLIGHT * 3 * per_day))  # 3 days' rows
    plan = backfill_plan([metric], START, END, config=small)
    assert [w.end - w.start for _, w in plan][:-1] == [dt.timedelta(days=3)] * (len(plan) - 1)
    assert plan[0][1].start == START and plan[-1][1].end == END

    one, many = Store(tmp_path / "one.duckdb"), Store(tmp_path / "many.duckdb")
    assert not compute(project, whole, trigger="backfill", store=one).failures
    assert not compute(small, plan, trigger="backfill", store=many).failures
    assert leaves(many, "leaves__fraud_rate") == leaves(one, "leaves__fraud_rate")
    assert leaves(one, "leaves__fraud_rate")

    # a tiny budget still makes progress: one bucket a window
    tiny = backfill_plan([metric], START, END, config=with_budget(project, "1KB"))
    assert len(tiny) == (END - START).days
    assert len(backfill_plan([metric], START, END, chunk=7, config=small)) == 2  # --chunk wins


def test_a_bad_budget_is_a_config_error(project):
    metric = load_catalog(project.metrics_dir).metrics["fraud_rate"]
    with pytest.raises(ConfigError, match=r"\[backfill\] memory_limit"):
        backfill_plan([metric], START, END, config=with_budget(project, "lots"))
