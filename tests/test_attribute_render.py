"""`monitor explain`'s text: an Explanation, as stored (to_dict), rendered line by line."""
from __future__ import annotations

import json

import pandas as pd

from monitor.attribute.explain import Explanation, explain
from monitor.attribute.render import TOP_VALUES, render_text
from monitor.format import format_number, format_rate, format_share
from tests.test_explain import DIMS, _card_attack, _mix_shift


def rendered(leaves: pd.DataFrame, dims, kind: str) -> tuple[dict, list[str]]:
    data = json.loads(json.dumps(explain(leaves, dims, kind, baseline_label="same weekday last week").to_dict()))
    return data, render_text(Explanation.from_dict(data)).splitlines()  # from the stored JSON, as the CLI reads it


def test_an_attack_names_its_segment_first_with_rates_as_percentages():
    data, lines = rendered(_card_attack(), DIMS, "ratio")
    assert lines[1].startswith("  baseline: same weekday last week; before ")
    before, after = data["before"], data["after"]
    assert f"before {format_rate(before)} -> after {format_rate(after)}" in lines[1]
    assert format_rate(before).endswith("%") and " %" not in lines[1]
    causes = lines.index("  root-cause segments:")
    first = lines[causes + 1]
    assert "country=BR" in first and "payment_method=card" in first
    assert f"explains {format_share(data['causes'][0]['explained_share']):>7}" in first
    assert "country=BR · payment_method=card" in first  # a segment reads as everywhere for people
    for dim in DIMS:  # one block per dimension, each value with its share of the change
        assert f"  by {dim}:" in lines


def test_a_mix_shift_gets_its_mix_vs_rate_line():
    data, lines = rendered(_mix_shift(), ["country", "channel"], "ratio")
    split = [line for line in lines if line.startswith("  mix vs rate")]
    assert len(split) == 1 and split[0].endswith(f"verdict: {data['verdict']}") and data["verdict"] == "mix"
    assert "rate 0%" in split[0]  # no segment changed its rate


def test_sums_print_values_and_long_dimensions_are_cut():
    rows = [{"merchant": f"m{i}", "expected": 100.0, "actual": 100.0 + 10 * i} for i in range(TOP_VALUES + 3)]
    data, lines = rendered(pd.DataFrame(rows), ["merchant"], "sum")
    assert f"before {format_number(data['before'])} -> after {format_number(data['after'])}" in lines[1]
    block = lines[lines.index("  by merchant:") + 1:]
    values = [line for line in block if line.startswith("    m")]
    assert len(values) == TOP_VALUES and values[0].split()[0] == f"m{TOP_VALUES + 2}"  # largest change first
    assert "    ... 3 more" in block
    assert not any(line.startswith("  mix vs rate") for line in lines)
