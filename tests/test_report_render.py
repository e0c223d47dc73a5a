"""The HTML is well-formed, self-contained, carries its charts, and is byte-identical on every render."""
from __future__ import annotations

import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from monitor.report import generate_report
from monitor.report.charts import scope_ids
from tests.report_fixtures import D, build_project

ROOT = Path(__file__).resolve().parents[1]
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("render")
    return build_project(root), root


class StrictParser(HTMLParser):
    """Fails on what browsers silently repair: unclosed or misnested tags, duplicate ids, external resources."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: set[str] = set()
        self.svgs = 0
        self.tags: dict[str, int] = {}
        self.doctype = False

    def handle_decl(self, decl):
        self.doctype = decl.lower() == "doctype html"

    def _attrs(self, tag, attrs):
        a = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if "id" in a:
            if a["id"] in self.ids:
                self.errors.append(f"duplicate id {a['id']}")
            self.ids.add(a["id"])
        for key in ("src", "srcset"):
            if key in a:
                self.errors.append(f"<{tag} {key}=...> loads a resource")
        if tag == "link" or tag == "script":
            self.errors.append(f"<{tag}> element")
        if tag == "svg":
            self.svgs += 1
        for key, value in a.items():
            if value and "url(http" in value.replace(" ", ""):
                self.errors.append(f"external url in {tag}.{key}")

    def handle_starttag(self, tag, attrs):
        self._attrs(tag, attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self._attrs(tag, attrs)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else 'nothing'}>")
            return
        self.stack.pop()


def parse(html: str) -> StrictParser:
    parser = StrictParser()
    parser.feed(html)
    parser.close()
    return parser


def test_html_is_well_formed_self_contained_and_has_its_charts(project):
    config, root = project
    report = generate_report(config, date=D, out_dir=root / "a")
    html = report.html_path.read_text()
    parser = parse(html)
    assert parser.doctype and not parser.errors and not parser.stack, (parser.errors, parser.stack)
    assert parser.tags.get("html") == parser.tags.get("head") == parser.tags.get("body") == 1
    assert "http://" not in html.split("<body>")[0] and "@import" not in html  # no remote CSS or fonts
    # One sparkline per metric with data, one chart per incident that has values.
    sparklines = sum(1 for m in report.data.metrics if any(v is not None for _, v in m.history))
    charted = sum(1 for i in report.data.all_incidents() if i.series)
    assert sparklines == 4 and charted == 5
    assert parser.svgs == sparklines + charted
    assert html.count('<td class="spark"><svg') == sparklines
    assert html.count('<div class="chart"><svg') == charted
    # Charts carry real marks (a drawn line), and the expected band where detection stored one.
    assert html.count('class="mark-line') >= sparklines + charted
    assert 'class="mark-area' in html


def test_render_is_byte_identical(project, tmp_path):
    config, root = project
    first = generate_report(config, date=D, out_dir=tmp_path / "one")
    generate_report(config, date=D.replace(day=19), out_dir=tmp_path / "other")  # moves vl-convert's id counters
    second = generate_report(config, date=D, out_dir=tmp_path / "two")
    assert first.html_path.read_bytes() == second.html_path.read_bytes()
    assert first.md_path.read_bytes() == second.md_path.read_bytes()
    assert first.digest == second.digest
    # Another process, another local timezone, a different `now`: still the same bytes.
    script = ("import sys, datetime as dt; from monitor.config import load_config; "
              "from monitor.report import generate_report; "
              "r = generate_report(load_config(sys.argv[1]), date=sys.argv[2], out_dir=sys.argv[3], "
              "now=dt.datetime(2030, 1, 1)); print(r.html_path)")
    env = dict(os.environ, TZ="Asia/Tokyo", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", script, str(config.root / "monitor.toml"), D.isoformat(),
                          str(tmp_path / "three")], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).read_bytes() == first.html_path.read_bytes()


def test_svg_ids_are_scoped_per_chart():
    svg = ('<svg><defs><clipPath id="clip7"><rect/></clipPath><clipPath id="clip17"><rect/></clipPath></defs>'
           '<g clip-path="url(#clip7)"/><g clip-path="url(#clip17)"/><use href="#clip7"/></svg>')
    scoped = scope_ids(svg, "s-fraud_rate")
    assert 'id="s-fraud_rate-1"' in scoped and 'id="s-fraud_rate-2"' in scoped
    assert 'url(#s-fraud_rate-1)' in scoped and 'url(#s-fraud_rate-2)' in scoped and 'href="#s-fraud_rate-1"' in scoped
    assert "clip" not in scoped.replace("clipPath", "").replace("clip-path", "")
    # The same chart rendered later in the process (higher counters) gives the same text.
    assert scope_ids(svg.replace("clip7", "clip99").replace("clip17", "clip100"), "s-fraud_rate") == scoped
