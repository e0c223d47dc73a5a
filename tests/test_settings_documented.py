"""Every ``Setting`` of every monitor.toml section is documented: found by walking monitor's
modules (so a new section or notifier cannot be forgotten), each checked in its section's docs."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import monitor
from monitor.registry import NOTIFIERS
from monitor.settings import Setting

ROOT = Path(monitor.__file__).parent
DOCS = ROOT.parent / "docs"
# package -> (docs file, the "## " heading of its section there, or None for a whole-file page)
WHERE = {
    "monitor.alert": ("alerts.md", None),
    "monitor.scheduler": ("scheduler.md", None),
    "monitor.report": ("settings.md", "[report]"),
    "monitor.dashboard": ("settings.md", "[dashboard]"),
    "monitor.warehouse": ("settings.md", "[store]"),
    "monitor.pipeline": ("settings.md", "[backfill]"),
    "monitor.events": ("events.md", None),
}


def declared() -> dict[str, list[Setting]]:
    """Settings by package: module-level tuples/dicts of Setting, and notifiers' OPTIONS."""
    found: dict[str, list[Setting]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        if path.name == "__main__.py":
            continue
        name = ".".join(["monitor", *path.relative_to(ROOT).with_suffix("").parts]).removesuffix(".__init__")
        module = importlib.import_module(name)
        for value in vars(module).values():
            items = value.values() if isinstance(value, dict) else value if isinstance(value, (tuple, list)) else ()
            settings = [s for s in items if isinstance(s, Setting)]
            if settings and getattr(module, "__name__", "") == name:
                found.setdefault(".".join(name.split(".")[:2]), []).extend(settings)
    for kind in NOTIFIERS:
        cls = NOTIFIERS[kind]
        found.setdefault(".".join(cls.__module__.split(".")[:2]), []).extend(cls.OPTIONS)
    return found


def section(text: str, heading: str | None) -> str:
    if heading is None:
        return text
    parts = re.split(r"^## ", text, flags=re.MULTILINE)
    matching = [p for p in parts if p.startswith(heading)]
    assert matching, f"no '## {heading}' section"
    return matching[0]


def test_every_section_has_a_docs_page():
    packages = set(declared())
    assert {"monitor.alert", "monitor.scheduler", "monitor.report", "monitor.dashboard"} <= packages
    assert packages <= set(WHERE), f"settings without a docs page: {sorted(packages - set(WHERE))}"


@pytest.mark.parametrize("package", sorted(WHERE))
def test_every_setting_is_documented(package):
    file, heading = WHERE[package]
    text = section((DOCS / file).read_text(encoding="utf-8"), heading)
    settings = declared()[package]
    missing = [s.name for s in settings if f"`{s.name}`" not in text]
    assert missing == [], f"not in docs/{file} {heading or ''}: {missing}"
    assert all(s.help.strip() for s in settings)


def test_the_check_notices_an_undocumented_setting():
    text = section((DOCS / "settings.md").read_text(encoding="utf-8"), "[dashboard]")
    assert "`title`" not in text  # a [report] key is not a [dashboard] key: the sections are checked apart
