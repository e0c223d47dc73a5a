"""Every module imports on its own, and monitor's modules import each other without cycles.

The graph is read from the source with ``ast`` and counts every import, also those inside
functions (a lazy import hides a cycle from Python, not from a reader). Two levels are
checked: modules, and the packages of the flow (``monitor.store``, ``monitor.alert``,
``monitor.pipeline`` ...), where a lower step must never import a higher one.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import monitor

ROOT = Path(monitor.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        if path.name == "__main__.py":  # an entry script: running it is its only effect
            continue
        parts = ["monitor", *path.relative_to(ROOT).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _owner(name: str) -> str | None:
    """The module of ours that an imported dotted name lives in (a module, or its package)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps.update(_owner(a.name) for a in node.names if a.name.split(".")[0] == "monitor")
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                if base.split(".")[0] != "monitor":
                    continue
                for alias in node.names:  # `from monitor.x import y` imports module y if there is one
                    full = f"{base}.{alias.name}"
                    deps.add(full if full in MODULES else _owner(base))
        graph[name] = {d for d in deps if d and d != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Modules folded into their step of the flow: monitor.alert.* -> monitor.alert."""
    def step(name: str) -> str:
        return ".".join(name.split(".")[:2])

    out: dict[str, set[str]] = {}
    for name, deps in graph.items():
        out.setdefault(step(name), set()).update(step(d) for d in deps if step(d) != step(name))
    return out


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    assert package_graph({"monitor.x.a": {"monitor.y.b"}, "monitor.y.b": {"monitor.x.c"}}) == {
        "monitor.x": {"monitor.y"}, "monitor.y": {"monitor.x"}}


def test_the_graph_sees_lazy_and_relative_imports():
    graph = import_graph()
    assert "monitor.store.stale" in graph["monitor.pipeline"]  # imported inside a function
    assert "monitor.detect.registry" in graph["monitor.detect.detectors"]
    assert len(graph) == len(MODULES) > 100


def test_no_import_cycle_between_modules():
    assert cycles(import_graph()) == []


def test_no_import_cycle_between_the_steps_of_the_flow():
    graph = package_graph(import_graph())
    assert cycles(graph) == []
    # The named layering: the store is below everything that reads it, the CLI above all.
    assert "monitor.scheduler" not in graph["monitor.store"] | graph["monitor.pipeline"] | graph["monitor.alert"]
    assert not any("monitor.cli" in deps for name, deps in graph.items() if name != "monitor.cli")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_imports(name):
    importlib.import_module(name)
