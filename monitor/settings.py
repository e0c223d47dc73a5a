"""One type for a key of a ``monitor.toml`` section: ``Setting``.

Each section ([alerts] and its receivers and routes, notifier options, [scheduler],
[report], [dashboard]) declares its keys as a tuple or dict of ``Setting``; its reader
validates and fills defaults from them and the docs are written from their ``help``
(tests/test_settings_documented.py checks every one is in the section's docs).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Setting:
    """One config key: its name, default, what kind of value it takes, and its help text."""

    name: str
    default: Any
    kind: str  # bool | int | number | str | duration | choice | labels | env | path | table | list | ...
    help: str
    required: bool = False
    choices: tuple[str, ...] = ()
    # A reader of its own, for sections that parse each key with a function (``[report]``);
    # it returns the value or raises ValueError saying what was expected.
    parse: Callable[[Any], Any] | None = None
