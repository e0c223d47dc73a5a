"""Silences: mute alerts whose labels match, for a while, with an author and a reason.

Stored in the store (``alert_silences``) so the scheduler, ``monitor run`` and
the dashboard all see the same ones. A silenced incident is left out of every
message (firing, repeat and resolved) while the silence is active; when the
silence ends, an incident still open alerts as new.
"""
from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass

from monitor.alert.matchers import Matcher, matches_all, parse_matcher
from monitor.clock import utc_naive
from monitor.errors import ConfigError, MonitorError
from monitor.store import Store


@dataclass(frozen=True)
class Silence:
    silence_id: str
    matchers: tuple[Matcher, ...]
    author: str
    comment: str
    created_at: dt.datetime
    starts_at: dt.datetime
    ends_at: dt.datetime
    expired_at: dt.datetime | None = None

    def is_active(self, now: dt.datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def state(self, now: dt.datetime) -> str:
        if now < self.starts_at:
            return "pending"
        return "active" if now < self.ends_at else "expired"

    def matches(self, labels: dict[str, str]) -> bool:
        return matches_all(self.matchers, labels)

    def to_dict(self, now: dt.datetime | None = None) -> dict:
        out = {
            "silence_id": self.silence_id, "matchers": [str(m) for m in self.matchers],
            "author": self.author, "comment": self.comment, "created_at": self.created_at.isoformat(),
            "starts_at": self.starts_at.isoformat(), "ends_at": self.ends_at.isoformat(),
            "expired_at": self.expired_at.isoformat() if self.expired_at else None,
        }
        if now is not None:
            out["state"] = self.state(now)
        return out


def add_silence(store: Store, *, matchers: list[str] | list[Matcher], author: str, comment: str,
                now: dt.datetime, duration: dt.timedelta | None = None, ends_at: dt.datetime | None = None,
                starts_at: dt.datetime | None = None) -> Silence:
    """Create a silence; exactly one of ``duration`` or ``ends_at`` says when it ends."""
    parsed = tuple(m if isinstance(m, Matcher) else parse_matcher(m) for m in matchers)
    if not parsed:
        raise ConfigError("A silence needs at least one matcher, like --matcher metric=fraud_rate.")
    if all(m.matches({}) for m in parsed):
        # Alertmanager's rule too: a silence whose every matcher accepts an empty label would mute everything.
        raise ConfigError(f"Matchers {[str(m) for m in parsed]} would silence every alert; "
                          "add one that needs a value, like metric=fraud_rate.")
    if not author.strip():
        raise ConfigError("A silence needs an author (--author).")
    if not comment.strip():
        raise ConfigError("A silence needs a comment saying why (--comment).")
    if (duration is None) == (ends_at is None):
        raise ConfigError("Give exactly one of a duration (--duration 2h) or an end time (--until).")
    now = utc_naive(now)
    start = utc_naive(starts_at) if starts_at else now
    end = utc_naive(ends_at) if ends_at else start + duration
    if end <= start:
        raise ConfigError(f"The silence would end ({end:%Y-%m-%d %H:%M}) before it starts ({start:%Y-%m-%d %H:%M}).")
    silence = Silence(silence_id="s-" + uuid.uuid4().hex[:10], matchers=parsed, author=author.strip(),
                      comment=comment.strip(), created_at=now, starts_at=start, ends_at=end)
    with store.connect() as con:
        con.execute("INSERT INTO alert_silences (silence_id, matchers_json, author, comment, created_at, starts_at,"
                    " ends_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [silence.silence_id, json.dumps([m.to_dict() for m in parsed]), silence.author,
                     silence.comment, now, start, end])
    return silence


def list_silences(store: Store, *, now: dt.datetime, include_expired: bool = False) -> list[Silence]:
    """Active and pending silences (and expired ones with include_expired), newest first."""
    if not store.path.exists():
        return []
    with store.connect() as con:
        rows = con.execute("SELECT silence_id, matchers_json, author, comment, created_at, starts_at, ends_at,"
                           " expired_at FROM alert_silences"
                           + ("" if include_expired else " WHERE ends_at > ?") + " ORDER BY created_at DESC",
                           [] if include_expired else [utc_naive(now)]).fetchall()
    return [_from_row(r) for r in rows]


def active_silences(con, now: dt.datetime) -> list[Silence]:
    rows = con.execute("SELECT silence_id, matchers_json, author, comment, created_at, starts_at, ends_at, expired_at"
                       " FROM alert_silences WHERE starts_at <= ? AND ends_at > ?", [now, now]).fetchall()
    return [_from_row(r) for r in rows]


def expire_silence(store: Store, silence_id: str, *, now: dt.datetime) -> Silence:
    """End a silence now; alerts it muted come back on the next cycle."""
    now = utc_naive(now)
    with store.connect() as con:
        row = con.execute("SELECT silence_id, matchers_json, author, comment, created_at, starts_at, ends_at,"
                          " expired_at FROM alert_silences WHERE silence_id = ?", [silence_id]).fetchone()
        if row is None:
            raise MonitorError(f"No silence with id {silence_id!r}; `monitor silence list --all` shows the ids.")
        silence = _from_row(row)
        if silence.ends_at <= now:
            raise MonitorError(f"Silence {silence_id} already ended at {silence.ends_at:%Y-%m-%d %H:%M} UTC.")
        con.execute("UPDATE alert_silences SET ends_at = ?, expired_at = ? WHERE silence_id = ?",
                    [max(now, silence.starts_at), now, silence_id])
    return Silence(**{**silence.__dict__, "ends_at": max(now, silence.starts_at), "expired_at": now})


def _from_row(row) -> Silence:
    sid, matchers_json, author, comment, created, start, end, expired = row
    return Silence(silence_id=sid, matchers=tuple(Matcher.from_dict(m) for m in json.loads(matchers_json)),
                   author=author, comment=comment, created_at=created, starts_at=start, ends_at=end,
                   expired_at=expired)
