"""The Streamlit on-call dashboard (``monitor dashboard`` runs ``app.py``); shipped in the wheel as ``monitor.dashboard.app``."""
