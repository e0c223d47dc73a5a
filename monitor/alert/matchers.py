"""Label matchers shared by routes and silences (Alertmanager syntax).

``name=value``, ``name!=value``, ``name=~regex``, ``name!~regex``. Regexes are
anchored (``fullmatch``) like Alertmanager's, so ``severity=~high`` does not
match ``very-high``; a label that is absent counts as the empty string, so
``country!=BR`` matches the metric total.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from monitor.errors import ConfigError

OPERATORS = ("=~", "!~", "!=", "=")  # longest first, so "=~" is not read as "="
LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str  # one of OPERATORS
    value: str

    def matches(self, labels: dict[str, str]) -> bool:
        have = labels.get(self.name, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        hit = re.fullmatch(self.value, have) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "op": self.op, "value": self.value}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> "Matcher":
        return cls(name=data["name"], op=data["op"], value=data["value"])


def parse_matcher(text: str) -> Matcher:
    """'country=~BR|MX' -> Matcher; a ConfigError says what is wrong with it."""
    text = text.strip()
    for op in OPERATORS:
        name, sep, value = text.partition(op)
        if sep and "=" not in name and "!" not in name:
            name = name.strip()
            value = value.strip().strip('"')
            return make_matcher(name, op, value, where=repr(text))
    raise ConfigError(
        f"Matcher {text!r} has no operator; write name=value, name!=value, name=~regex or name!~regex."
    )


def make_matcher(name: str, op: str, value: str, *, where: str) -> Matcher:
    if not LABEL_NAME.match(name):
        raise ConfigError(f"{where}: label name {name!r} must be letters, digits and underscores.")
    if op in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as exc:
            raise ConfigError(f"{where}: invalid regular expression {value!r} ({exc}).") from exc
    return Matcher(name=name, op=op, value=str(value))


def matches_all(matchers: tuple[Matcher, ...] | list[Matcher], labels: dict[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)
