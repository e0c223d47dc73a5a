"""The plugin points: engines, detectors and notifiers, each looked up by a string key.

All three are one shape, a :class:`Registry`: ``@REGISTRY.register("key")`` adds an entry,
``REGISTRY.get(key)`` finds it, and an unknown key raises :class:`UnknownKeyError`, which
lists the valid keys. The built-in entries are named here by module and imported on the
first lookup (not at import time), so this module imports nothing of monitor's and the
catalog can validate a header's ``detect.detector`` without loading detection.
The contracts the entries meet are ``Protocol`` classes next to their users:
``monitor.engine.protocol.Engine``, ``monitor.detect.registry.Detector`` and
``monitor.alert.notifiers.NotifierProtocol``.
"""
from __future__ import annotations

import importlib
from collections.abc import MutableMapping
from typing import Callable, Generic, Iterator, TypeVar

from monitor.errors import ConfigError

T = TypeVar("T")
_MISSING = object()


class UnknownKeyError(ConfigError, ValueError):
    """A key no registry entry has; the message lists the valid ones.

    A ConfigError (it comes from a config file or a header) and a ValueError (it is
    a bad argument when a caller names a detector in code)."""

    def __init__(self, kind: str, key: object, valid: list[str], *, where: str = ""):
        self.kind, self.key, self.valid = kind, key, list(valid)
        super().__init__(f"Unknown {kind} {key!r}{where}; valid {kind}s are: {', '.join(self.valid)}.")


class Registry(MutableMapping, Generic[T]):
    """Entries by key, with the built-in ones loaded on first use."""

    def __init__(self, kind: str, *, builtins: tuple[str, ...] = ()):
        self.kind = kind
        self._builtins = builtins
        self._loaded = not builtins
        self._entries: dict[str, T] = {}

    def register(self, key: str) -> Callable[[T], T]:
        """Decorator: make the function or class available as ``key``."""

        def add(entry: T) -> T:
            if key in self._entries and self._entries[key] is not entry:
                raise ValueError(f"{self.kind} {key!r} is already registered")
            self._entries[key] = entry
            return entry

        return add

    def get(self, key: str, default=_MISSING, *, where: str = "") -> T:  # type: ignore[override]
        """The entry for ``key``; UnknownKeyError listing the valid keys when there is none
        (and no ``default`` is given). ``where`` is added to the message (" in [source]")."""
        self._load()
        if key in self._entries:
            return self._entries[key]
        if default is not _MISSING:
            return default
        raise UnknownKeyError(self.kind, key, sorted(self._entries), where=where)

    def keys_sorted(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True  # before importing: the modules register into this registry
            for module in self._builtins:
                importlib.import_module(module)

    # -- Mapping protocol (tests swap entries with monkeypatch.setitem) -----------------------
    def __getitem__(self, key: str) -> T:
        self._load()
        return self._entries[key]

    def __setitem__(self, key: str, entry: T) -> None:
        self._load()
        self._entries[key] = entry

    def __delitem__(self, key: str) -> None:
        self._load()
        del self._entries[key]

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(list(self._entries))

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._entries)})"


ENGINES: Registry = Registry("engine", builtins=("monitor.engine.duckdb_engine", "monitor.engine.spark_engine"))
DETECTORS: Registry = Registry("detector", builtins=("monitor.detect.detectors",))
NOTIFIERS: Registry = Registry("notifier type", builtins=(
    "monitor.alert.slack", "monitor.alert.webhook", "monitor.alert.console"))
