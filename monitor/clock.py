"""Time as the store keeps it: naive datetimes in UTC."""
from __future__ import annotations

import datetime as dt


def utc_naive(ts: dt.datetime | None = None) -> dt.datetime:
    """``ts`` as a naive UTC datetime (an aware one is converted, a naive one is taken as UTC);
    without ``ts``, now.

    >>> utc_naive(dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))))
    datetime.datetime(2026, 3, 1, 7, 30)
    >>> utc_naive(dt.datetime(2026, 3, 1, 9, 30))
    datetime.datetime(2026, 3, 1, 9, 30)
    """
    if ts is None:
        return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    if ts.tzinfo is not None:
        ts = ts.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return ts
