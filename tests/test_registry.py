"""One registry shape for engines, detectors and notifiers; an unknown key lists the valid ones."""
from __future__ import annotations

import inspect

import pytest

from monitor.config import SourceConfig
from monitor.detect.registry import Detector
from monitor.engine import make_engine
from monitor.engine.protocol import Engine
from monitor.errors import ConfigError
from monitor.alert.notifiers import NotifierProtocol
from monitor.registry import DETECTORS, ENGINES, NOTIFIERS, Registry, UnknownKeyError


def test_register_get_and_the_unknown_key_error():
    plugins: Registry = Registry("widget")

    @plugins.register("b")
    def b():
        return "b"

    plugins.register("a")(len)
    assert plugins.get("b") is b and list(plugins) == ["b", "a"] and "a" in plugins and len(plugins) == 2
    plugins.register("b")(b)  # the same entry again (a module imported twice) is fine
    with pytest.raises(ValueError, match="widget 'b' is already registered"):
        plugins.register("b")(len)
    with pytest.raises(UnknownKeyError) as err:
        plugins.get("c", where=" in [widgets]")
    assert str(err.value) == "Unknown widget 'c' in [widgets]; valid widgets are: a, b."
    assert isinstance(err.value, ConfigError) and isinstance(err.value, ValueError)
    assert err.value.valid == ["a", "b"]
    assert plugins.get("c", None) is None


def test_builtins_load_on_first_lookup_only():
    plugins: Registry = Registry("thing", builtins=("monitor.no_such_module_for_this_test",))
    plugins.register("x")(len)  # registering does not load the built-ins
    with pytest.raises(ModuleNotFoundError):
        plugins.get("x")


@pytest.mark.parametrize("registry, builtins", [
    (ENGINES, {"duckdb", "spark"}),
    (DETECTORS, {"default", "zscore", "level_shift"}),
    (NOTIFIERS, {"slack", "webhook", "console", "file"}),
])
def test_the_three_plugin_points_are_one_shape(registry, builtins):
    assert isinstance(registry, Registry) and builtins <= set(registry)
    with pytest.raises(UnknownKeyError, match=f"valid {registry.kind}s are: " + ", ".join(sorted(registry))):
        registry.get("nope")


def _public_methods(protocol) -> set[str]:
    return {n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")}


def test_entries_meet_their_protocol():
    for cls in ENGINES.values():
        assert _public_methods(Engine) <= set(dir(cls)) and isinstance(cls.name, str)
    for cls in NOTIFIERS.values():
        assert _public_methods(NotifierProtocol) <= set(dir(cls)) and cls.type_name in NOTIFIERS
    wanted = inspect.signature(Detector.__call__).parameters
    for fn in DETECTORS.values():
        params = inspect.signature(fn).parameters
        assert {"denominators", "options"} <= set(params) and list(params)[0] != "self"
        assert all(params[p].kind is inspect.Parameter.KEYWORD_ONLY for p in ("denominators", "options"))
    assert {"denominators", "options"} <= set(wanted)


def test_an_unknown_engine_in_the_config_lists_the_engines():
    with pytest.raises(ConfigError, match=r"Unknown engine 'oracle' in \[source\]; valid engines are: duckdb, spark\."):
        make_engine(SourceConfig(database=None, views={}, engine="oracle", options={}))
