"""The demo world's metric files (``monitor demo``); shipped in the wheel as package data ``monitor.demo.metrics``.

This file only makes the folder a package, so the installed wheel carries the ``.sql`` files."""
