"""``first_line``: the one-sentence form of an error, shared by the engines and the report."""
from __future__ import annotations

from monitor.errors import first_line


def test_first_line_of_errors_and_texts():
    assert first_line(ValueError("Catalog Error: no table\nLINE 1: SELECT")) == "Catalog Error: no table"
    assert first_line(RuntimeError()) == "RuntimeError"  # an error without text still says what it is
    assert first_line("  \n  second\nthird") == "second"
    assert first_line(None) == "" and first_line("") == ""
