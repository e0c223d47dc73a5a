"""The on-call dashboard: ``monitor dashboard`` (or ``streamlit run dashboards/app.py -- --config monitor.toml``).

Pages are chosen by query parameters, so every view is a link:
``?page=overview``, ``?page=metric&metric=fraud_rate&slice=country%3DBR``,
``?page=incident&id=3f2a9c01b7de``. The config comes from ``--config`` after ``--``,
else ``$MONITOR_CONFIG``, else ``monitor.toml`` in the current folder or a parent.
"""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # the page modules beside this file
    sys.path.insert(0, str(HERE))

import streamlit as st  # noqa: E402

from monitor.errors import MonitorError  # noqa: E402

st.set_page_config(page_title="monitor · risk metrics", page_icon=":material/monitoring:", layout="wide")
st.markdown("""<style>
  .block-container {padding-top: 2.2rem; padding-bottom: 2rem; max-width: 1500px;}
  h1 {font-size: 1.9rem !important; padding-bottom: .2rem !important;}
  [data-testid="stMetricValue"] {font-size: 1.6rem;}
</style>""", unsafe_allow_html=True)


def main() -> None:
    import pages_common as common
    import pages_incident
    import pages_metric
    import pages_overview

    try:
        ctx = common.load_context()
    except MonitorError as exc:
        st.error(f"Cannot start the dashboard: {exc}")
        return
    pages = {"overview": pages_overview, "metric": pages_metric, "incident": pages_incident}
    page = common.param("page", "overview")
    if page not in pages:
        st.warning(f"Unknown page {page!r}; showing the overview.")
        page = "overview"
    with st.sidebar:
        st.markdown(f"### :material/monitoring: {ctx.config.name}")
        st.caption("Risk metric monitoring")
        for name, label in (("overview", "Overview"), ("metric", "Metrics"), ("incident", "Incidents")):
            st.button(label, key=f"side_{name}", on_click=common.go, args=(name,), width="stretch",
                      type="primary" if name == page else "secondary")
        st.divider()
        st.caption(f"Store: `{ctx.store.path}`")
        st.caption(f"Privacy floor: segments under {ctx.settings.min_segment_size:g} events are grouped.")
    try:
        pages[page].render(ctx)
    except MonitorError as exc:
        st.error(str(exc))


main()
