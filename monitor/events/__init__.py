"""Change events: our own rule, model and promotion changes, linked to the incidents they explain.

The first question on call is "did we do this?". Events come from SQL files under ``events/``
(same header style as metrics, ``monitor.events.files``) and from ``monitor event add``
(``monitor.events.store``); each cycle links every incident to the events shortly before it
whose scope overlaps its slice or top causes (``monitor.events.linking``), and an expected
event (a planned promotion) keeps the metrics it names from paging inside its window
(``monitor.events.expected``). ``monitor.events.describe`` words a link once for every surface.
"""
from monitor.events.describe import describe_link
from monitor.events.model import Event, Link
from monitor.events.settings import EventSettings, load_event_settings

__all__ = ["Event", "EventSettings", "Link", "describe_link", "load_event_settings"]
