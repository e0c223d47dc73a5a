"""The ``[alerts]`` section of monitor.toml, validated into frozen objects.

Every setting is declared once, as data (``SETTINGS``, ``RECEIVER_SETTINGS``
and each notifier's ``OPTIONS``); validation, defaults and the docs test all
read these tuples. Validation collects every problem before raising, and each
problem names its key (``alerts.receivers[1].type``) like the metric catalog.

Secrets are never in this file: receivers name *environment variables*
(``webhook_url_env = "SLACK_WEBHOOK_RISK"``) and error messages never echo a
value that could be one.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.alert.matchers import LABEL_NAME, Matcher, make_matcher, parse_matcher
from monitor.config import parse_duration  # noqa: F401 - re-exported for alert config users
from monitor.errors import ConfigError
from monitor.registry import NOTIFIERS
from monitor.settings import Setting

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Keys people write when they mean the *_env form; caught with a hint instead of "unknown key".
SECRET_KEYS = {"url", "webhook_url", "secret", "token", "api_key"}


class AlertConfigError(ConfigError):
    """The [alerts] section is invalid; ``problems`` lists every one."""

    def __init__(self, problems: list[str], *, source: str = "monitor.toml"):
        self.problems = list(problems)
        n = len(self.problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{n} problem{'s' if n != 1 else ''} in the [alerts] section of {source}:\n{lines}")


# -- settings as data -------------------------------------------------------------------------
def _parse_value(setting: Setting, value: Any) -> Any:
    """The parsed value, or ValueError whose text says what was expected (never echoes secrets)."""
    kind = setting.kind
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError("must be a whole number >= 1")
        return value
    if kind == "duration":
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ValueError(f"must be {exc}") from None
    if kind == "labels":
        if isinstance(value, str) and value == "...":
            return None  # Alertmanager's "group by every label": one message per incident
        if not isinstance(value, list) or not all(isinstance(v, str) and LABEL_NAME.match(v) for v in value):
            raise ValueError("must be a list of label names, like [\"metric\"], or \"...\" for every label")
        return tuple(value)
    if kind == "env":
        if not isinstance(value, str) or not ENV_NAME.match(value):
            # Do not echo the value: a common mistake is to paste the URL or secret itself here.
            raise ValueError("must be the *name* of an environment variable (like SLACK_WEBHOOK_RISK), "
                             "not the URL or secret itself")
        return value
    if kind == "choice":
        if value not in setting.choices:
            raise ValueError(f"must be one of {list(setting.choices)}, not {value!r}")
        return value
    if kind in ("str", "path"):
        if not isinstance(value, str) or not value.strip():
            raise ValueError("must be a non-empty string")
        return value
    raise AssertionError(f"unknown setting kind {kind}")  # a bug in a declaration, not user input


SETTINGS: tuple[Setting, ...] = (
    Setting("enabled", True, "bool", "Turn alerting off without deleting the section."),
    Setting("group_by", ("metric",), "labels",
            "Labels whose values form one group (one message). Default: one message per metric, so a burst "
            "of slice incidents is one message. \"...\" = one message per incident."),
    Setting("group_wait", "0s", "duration",
            "How long a new group waits for more incidents before its first message. 0s suits cycle-based "
            "detection: a whole detection run lands in the store before the alert cycle reads it."),
    Setting("group_interval", "5m", "duration",
            "Minimum time between two messages for one group when its incidents change (new or resolved)."),
    Setting("repeat_interval", "24h", "duration",
            "Re-send an unchanged, still-open group after this long (not every cycle)."),
    Setting("send_resolved", True, "bool", "Send a notice when a notified incident resolves (default for receivers)."),
    Setting("inhibit_slices", True, "bool",
            "A slice incident whose total incident (parent_id) is open is carried inside the total's message "
            "instead of alerting on its own."),
    Setting("timeout", "10s", "duration", "HTTP timeout of one delivery attempt."),
    Setting("retry_initial", "30s", "duration", "First retry delay after a transient failure; doubles each attempt."),
    Setting("retry_max", "1h", "duration", "Longest retry delay (Retry-After from a 429 is honoured as given)."),
    Setting("sending_timeout", "5m", "duration",
            "A message left in 'sending' longer than this belongs to a crashed process and is sent again."),
    Setting("give_up_after", "24h", "duration",
            "A message still not delivered this long after it was queued (every attempt failed) is given up: "
            "marked failed, `monitor run` exits non-zero and the alert_lost meta-alert is raised."),
    Setting("max_alerts_per_message", 10, "int", "Incidents rendered in full in one message; the rest are counted."),
    Setting("top_segments", 3, "int", "Attributed segments shown per incident."),
)
# Keys of the [alerts] table that are structure rather than scalar settings.
STRUCTURE_KEYS = {"receivers": "list of receiver tables", "route": "the routing tree"}

RECEIVER_SETTINGS: tuple[Setting, ...] = (
    Setting("name", None, "str", "Unique receiver name, used by routes and in the outbox.", required=True),
    Setting("type", None, "str", "Notifier type (slack, webhook, console, file).", required=True),
    Setting("send_resolved", None, "bool", "Override [alerts].send_resolved for this receiver."),
)

ROUTE_SETTINGS: tuple[Setting, ...] = (
    Setting("receiver", None, "str", "Receiver of alerts this route handles (inherited from the parent route)."),
    Setting("group_by", None, "labels", "Override group_by below this route."),
    Setting("group_wait", None, "duration", "Override group_wait below this route."),
    Setting("group_interval", None, "duration", "Override group_interval below this route."),
    Setting("repeat_interval", None, "duration", "Override repeat_interval below this route."),
    Setting("continue", False, "bool", "Keep trying the next sibling routes after this one matched. On the root "
            "route: its receiver gets every alert, in addition to the child routes that match."),
    Setting("match", None, "table", "Labels that must equal these values, e.g. {team = \"payments\"}."),
    Setting("match_re", None, "table", "Labels that must fully match these regexes, e.g. {severity = \"high|critical\"}."),
    Setting("matchers", None, "list", "Alertmanager-style matchers, e.g. [\"country=~BR|MX\", \"owner!=growth\"]."),
    Setting("routes", None, "list", "Child routes, tried in order."),
)


# -- the parsed objects -----------------------------------------------------------------------
@dataclass(frozen=True)
class ReceiverConfig:
    name: str
    type: str
    send_resolved: bool
    options: dict[str, Any] = field(default_factory=dict)  # the notifier's own OPTIONS, parsed
    root: Path = Path(".")  # the project folder, for relative paths (file notifier)
    timeout: dt.timedelta = dt.timedelta(seconds=10)
    max_alerts: int = 10  # incidents rendered in full per message


@dataclass(frozen=True)
class Route:
    path: str  # "route" or "route.routes[0]...": names the route in errors and group keys
    receiver: str
    group_by: tuple[str, ...] | None  # None = every label (one group per incident)
    group_wait: dt.timedelta
    group_interval: dt.timedelta
    repeat_interval: dt.timedelta
    matchers: tuple[Matcher, ...] = ()
    continue_: bool = False
    routes: tuple["Route", ...] = ()


@dataclass(frozen=True)
class AlertConfig:
    enabled: bool
    receivers: dict[str, ReceiverConfig]
    route: Route | None
    inhibit_slices: bool = True
    timeout: dt.timedelta = dt.timedelta(seconds=10)
    retry_initial: dt.timedelta = dt.timedelta(seconds=30)
    retry_max: dt.timedelta = dt.timedelta(hours=1)
    sending_timeout: dt.timedelta = dt.timedelta(minutes=5)
    give_up_after: dt.timedelta = dt.timedelta(hours=24)
    max_alerts_per_message: int = 10
    top_segments: int = 3
    dashboard_url: str | None = None
    root: Path = Path(".")

    @property
    def active(self) -> bool:
        return self.enabled and bool(self.receivers) and self.route is not None


# -- parsing ----------------------------------------------------------------------------------
def load_alert_config(config) -> AlertConfig:
    """AlertConfig from a ProjectConfig (``[alerts]`` plus ``[dashboard].url`` for links)."""
    if isinstance(config, AlertConfig):
        return config
    dashboard = config.section("dashboard") or {}
    url = dashboard.get("url") if isinstance(dashboard, dict) else None
    return parse_alert_config(config.section("alerts") or {}, root=config.root,
                              dashboard_url=str(url).rstrip("/") if url else None,
                              source=str(config.root / "monitor.toml"))


def parse_alert_config(section: dict[str, Any], *, root: Path = Path("."), dashboard_url: str | None = None,
                       source: str = "monitor.toml") -> AlertConfig:
    """Validate the [alerts] table; raise AlertConfigError listing every problem."""

    problems: list[str] = []
    if not isinstance(section, dict):
        raise AlertConfigError(["alerts must be a table ([alerts])"], source=source)
    known = {s.name for s in SETTINGS} | set(STRUCTURE_KEYS)
    _unknown_keys(section, known, "alerts", problems)
    values = _read_settings(section, SETTINGS, "alerts", problems)

    receivers: dict[str, ReceiverConfig] = {}
    seen: set[str] = set()
    raw_receivers = section.get("receivers", [])
    if not isinstance(raw_receivers, list):
        problems.append("alerts.receivers must be a list of tables ([[alerts.receivers]])")
        raw_receivers = []
    for i, raw in enumerate(raw_receivers):
        where = f"alerts.receivers[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{where} must be a table")
            continue
        common = _read_settings(raw, RECEIVER_SETTINGS, where, problems)
        name, kind = common.get("name"), common.get("type")
        if name is not None:
            where = f"alerts.receivers[{i}] ({name})"
        options_decl: tuple[Setting, ...] = ()
        if kind is not None:
            try:
                options_decl = NOTIFIERS.get(kind).OPTIONS
            except ConfigError:
                problems.append(f"{where}.type: unknown notifier type {kind!r}; valid types are {NOTIFIERS.keys_sorted()}")
                kind = None
        allowed = {s.name for s in RECEIVER_SETTINGS} | {o.name for o in options_decl}
        env_keys = [o.name for o in options_decl if o.kind == "env"]
        for key in sorted(set(raw) - allowed):
            if key in SECRET_KEYS:
                hint = f" ({', '.join(env_keys)})" if env_keys else ""
                problems.append(f"{where}.{key}: secrets never go in monitor.toml; put the value in an environment "
                                f"variable and name that variable in the receiver's *_env key{hint}")
            elif kind is not None:  # with an unknown type the valid keys are unknown too
                problems.append(f"{where}: unknown key {key!r} for type {kind!r}; valid keys are {sorted(allowed)}")
        options = _read_settings(raw, options_decl, where, problems) if kind else {}
        if name is None:
            continue
        if name in seen:
            problems.append(f"{where}.name: duplicate receiver name {name!r}")
            continue
        seen.add(name)
        if kind is None:
            continue
        receivers[name] = ReceiverConfig(
            name=name, type=kind,
            send_resolved=values.get("send_resolved", True) if common.get("send_resolved") is None
            else common["send_resolved"],
            options=options, root=root, timeout=values.get("timeout", dt.timedelta(seconds=10)),
            max_alerts=values.get("max_alerts_per_message", 10),
        )

    route = None
    if "route" in section:
        route = _parse_route(section["route"], "alerts.route", parent=None, defaults=values,
                             receivers=seen, problems=problems)
    elif len(seen) == 1 and receivers:  # a single receiver is the default route
        route = Route(path="route", receiver=next(iter(receivers)), group_by=values.get("group_by"),
                      group_wait=values.get("group_wait"), group_interval=values.get("group_interval"),
                      repeat_interval=values.get("repeat_interval"))
    elif len(seen) > 1:
        problems.append("alerts.route: required when there is more than one receiver "
                        "(set alerts.route.receiver to the default receiver)")
    if section.get("enabled", True) is True and not raw_receivers and section:
        problems.append("alerts.receivers: at least one receiver is needed (or set alerts.enabled = false)")
    if problems:
        raise AlertConfigError(problems, source=source)
    return AlertConfig(
        enabled=values["enabled"] and bool(section), receivers=receivers, route=route,
        inhibit_slices=values["inhibit_slices"], timeout=values["timeout"],
        retry_initial=values["retry_initial"], retry_max=values["retry_max"],
        sending_timeout=values["sending_timeout"], give_up_after=values["give_up_after"],
        max_alerts_per_message=values["max_alerts_per_message"],
        top_segments=values["top_segments"], dashboard_url=dashboard_url, root=root,
    )


def _parse_route(raw: Any, where: str, *, parent: Route | None, defaults: dict, receivers: set[str],
                 problems: list[str]) -> Route | None:
    if not isinstance(raw, dict):
        problems.append(f"{where} must be a table")
        return None
    _unknown_keys(raw, {s.name for s in ROUTE_SETTINGS}, where, problems)
    scalar = tuple(s for s in ROUTE_SETTINGS if s.kind not in ("table", "list"))
    values = _read_settings(raw, scalar, where, problems)

    def inherit(key: str):
        if key in raw and key in values:
            return values[key]
        return getattr(parent, key) if parent is not None else defaults.get(key)

    receiver = values.get("receiver") if "receiver" in raw else (parent.receiver if parent else None)
    if receiver is None and "receiver" not in raw:
        problems.append(f"{where}.receiver: the root route needs a default receiver")
    elif "receiver" in raw and receiver is not None and receiver not in receivers:
        # `receivers` holds every declared name (valid or not): one mistake, one message.
        problems.append(f"{where}.receiver: unknown receiver {receiver!r}; configured receivers are {sorted(receivers)}")
    if parent is None and any(raw.get(k) for k in ("match", "match_re", "matchers")):
        problems.append(f"{where}: the root route matches every alert; put match/match_re/matchers "
                        "on a child route ([[alerts.route.routes]])")

    matchers: list[Matcher] = []
    for key, op in (("match", "="), ("match_re", "=~")):
        table = raw.get(key, {})
        if not isinstance(table, dict):
            problems.append(f"{where}.{key} must be a table of label = value")
            continue
        for label, value in table.items():
            if not isinstance(value, str):
                problems.append(f"{where}.{key}.{label} must be a string")
                continue
            try:
                matchers.append(make_matcher(label, op, value, where=f"{where}.{key}.{label}"))
            except ConfigError as exc:
                problems.append(str(exc))
    raw_matchers = raw.get("matchers", [])
    if not isinstance(raw_matchers, list):
        problems.append(f"{where}.matchers must be a list of strings like \"country=~BR|MX\"")
        raw_matchers = []
    for j, text in enumerate(raw_matchers):
        try:
            matchers.append(parse_matcher(str(text)))
        except ConfigError as exc:
            problems.append(f"{where}.matchers[{j}]: {exc}")

    node = Route(
        path=where.removeprefix("alerts."), receiver=receiver or "",
        group_by=inherit("group_by"), group_wait=inherit("group_wait"), group_interval=inherit("group_interval"),
        repeat_interval=inherit("repeat_interval"), matchers=tuple(matchers),
        continue_=bool(values.get("continue", False)),
    )
    children_raw = raw.get("routes", [])
    if not isinstance(children_raw, list):
        problems.append(f"{where}.routes must be a list of tables ([[{where}.routes]])")
        children_raw = []
    children = []
    for j, child in enumerate(children_raw):
        parsed = _parse_route(child, f"{where}.routes[{j}]", parent=node, defaults=defaults,
                              receivers=receivers, problems=problems)
        if parsed is not None:
            children.append(parsed)
    return Route(**{**node.__dict__, "routes": tuple(children)})


def _read_settings(raw: dict, settings: tuple[Setting, ...], where: str, problems: list[str]) -> dict[str, Any]:
    """Parsed values (defaults filled in) for the declared settings; problems appended, not raised."""
    out: dict[str, Any] = {}
    for s in settings:
        if s.name not in raw:
            if s.required:
                problems.append(f"{where}.{s.name}: required ({s.help})")
            elif s.default is not None:
                out[s.name] = _parse_value(s, list(s.default) if isinstance(s.default, tuple) else s.default)
            continue
        try:
            out[s.name] = _parse_value(s, raw[s.name])
        except ValueError as exc:
            problems.append(f"{where}.{s.name} {exc}")
    return out


def _unknown_keys(raw: dict, known: set[str], where: str, problems: list[str]) -> None:
    for key in sorted(set(raw) - known):
        problems.append(f"{where}: unknown key {key!r}; valid keys are {sorted(known)}")

