"""One ``utc_naive``: its examples hold, and no module writes its own copy."""
from __future__ import annotations

import ast
import datetime as dt
import doctest
from pathlib import Path

import monitor
import monitor.clock
from monitor.clock import utc_naive


def test_examples():
    result = doctest.testmod(monitor.clock)
    assert result.attempted >= 2 and result.failed == 0


def test_now_is_naive_utc():
    before = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    now = utc_naive()
    assert now.tzinfo is None and before <= now <= before + dt.timedelta(seconds=5)


def test_no_module_defines_its_own_naive_utc_helper():
    copies = []
    for path in Path(monitor.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and node.name in {"_naive", "utcnow", "_utcnow", "naive_utc"}:
                copies.append(f"{path.name}:{node.lineno} {node.name}")
    assert copies == []
