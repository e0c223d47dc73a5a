"""One exception root for the toolkit; the CLI turns it into one sentence."""
from __future__ import annotations


class MonitorError(Exception):
    """Base class of every error the toolkit raises on purpose.

    The message is one sentence a user can act on; ``evidence`` keeps what is
    needed to debug it (the SQL, the file, the window) for ``--debug``.
    """

    def __init__(self, message: str, *, evidence: str | None = None):
        super().__init__(message)
        self.evidence = evidence


class CatalogError(MonitorError):
    """One or more metric files are invalid; ``problems`` lists every one."""

    def __init__(self, problems):
        self.problems = list(problems)
        n = len(self.problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{n} problem{'s' if n != 1 else ''} in the metric catalog:\n{lines}")


class ConfigError(MonitorError):
    """The project config (monitor.toml) is missing or invalid."""


class MetricRunError(MonitorError):
    """A metric's query failed or returned rows that break the contract."""


class StoreError(MonitorError):
    """The store could not be read or written."""


class EmptyResultError(MonitorError):
    """A query returned nothing for a window that holds stored rows (refused unless allowed)."""


def first_line(error: BaseException | str | None) -> str:
    """The first line of an error (or of an error text), for one-sentence messages: an
    exception without text gives its type's name, a missing text ''."""
    text = (error if isinstance(error, str) or error is None else str(error)) or ""
    lines = text.strip().splitlines()
    if lines:
        return lines[0]
    return type(error).__name__ if isinstance(error, BaseException) else ""
