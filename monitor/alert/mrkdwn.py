"""Putting untrusted text (dimension values, titles, errors) into Slack text safely.

Slack reads ``<...>`` as a mention or link (``<!channel>`` pings everyone, also from
a notification preview) and ``&`` starts an entity, so every text we send has
those three characters escaped. Inside mrkdwn, ``*bold*``, ``_italic_``,
``~strike~`` and backticks would let a value restyle the message or break out
of its code span; mrkdwn has no backslash escape, so a marker that could open
or close formatting is swapped for a look-alike. Markers inside a word
(``apple_pay``) cannot format and are left as they are, so labels stay
copyable::

    >>> esc("R&D <!channel>")
    'R&amp;D &lt;!channel&gt;'
    >>> literal("<!channel> *bold* apple_pay")
    '&lt;!channel&gt; ∗bold∗ apple_pay'
    >>> code("country=a`b *x*")
    '`country=aˋb *x*`'

``neutral`` and ``span`` do the same without the entities, for text (the report
digest) whose lines the Slack renderer escapes later.
"""
from __future__ import annotations

import re
from typing import Any

# Look-alikes for the mrkdwn markers: same reading, no formatting.
_LOOKALIKE = {"*": "\u2217", "_": "\u02cd", "~": "\u223c", "`": "\u02cb"}
# A marker can open or close formatting only next to a non-alphanumeric character (or an end).
_MARKER = re.compile(r"`|(?<![^\W_])[*_~]|[*_~](?![^\W_])")


def esc(text: Any) -> str:
    """``&``, ``<`` and ``>`` as entities: the escaping every Slack text needs."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def neutral(text: Any) -> str:
    """No marker in the text can format (entities left to the caller)."""
    return _MARKER.sub(lambda m: _LOOKALIKE[m.group()], str(text))


def span(text: Any) -> str:
    """An inline code span (no formatting applies there) that a backtick in the text cannot end."""
    return "`" + str(text).replace("`", _LOOKALIKE["`"]) + "`"


def literal(text: Any) -> str:
    """Text shown as written inside mrkdwn: escaped, and no marker in it can format."""
    return esc(neutral(text))


def code(text: Any) -> str:
    """``span`` escaped: a value from the data, shown verbatim in mrkdwn."""
    return esc(span(text))
