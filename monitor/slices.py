"""Slice labels: the one encoding of a segment (dimension -> value) as text, and back.

A label is ``name=value`` pairs sorted by name and joined with ``&``; the total is
``""``. It keys stored series, incident ids, alert matchers and dashboard links, so
it must be unambiguous whatever a dimension value holds: ``%``, ``&`` and ``=`` in
names and values are percent-encoded (``%25``, ``%26``, ``%3D``) and nothing else
is, so labels written before this encoding (plain values) read the same::

    >>> slice_label({"device_os": "android", "country": "BR"})
    'country=BR&device_os=android'
    >>> slice_label({"merchant": "a&b=c", "promo": "50%"})
    'merchant=a%26b%3Dc&promo=50%25'
    >>> parse_slice('merchant=a%26b%3Dc&promo=50%25')
    {'merchant': 'a&b=c', 'promo': '50%'}
    >>> parse_slice("")
    {}
"""
from __future__ import annotations

import re

_ENCODE = {"%": "%25", "&": "%26", "=": "%3D"}
_DECODE = {v: k for k, v in _ENCODE.items()}
_ENCODE_RE = re.compile("[%&=]")
# Only our three escapes are decoded; any other '%' is literal, so a label stored before the
# encoding with a value like '50%off' still reads back as it was written.
_DECODE_RE = re.compile("%(?:25|26|3[dD])")


def _encode(text: str) -> str:
    return _ENCODE_RE.sub(lambda m: _ENCODE[m.group()], text)


def _decode(text: str) -> str:
    return _DECODE_RE.sub(lambda m: _DECODE[m.group().upper()], text)


def slice_label(segment: dict[str, str] | None) -> str:
    """{'country': 'BR', 'device_os': 'android'} -> 'country=BR&device_os=android' (sorted); '' for the total."""
    if not segment:
        return ""
    return "&".join(f"{_encode(str(k))}={_encode(str(segment[k]))}" for k in sorted(segment))


def parse_slice(label: str | None) -> dict[str, str]:
    """The segment a label names; '' -> {}. Raises ValueError when a part is not ``name=value``."""
    out: dict[str, str] = {}
    if not label:
        return out
    for part in label.split("&"):
        name, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"slice part {part!r} is not dimension=value")
        name = _decode(name)
        if name in out:
            raise ValueError(f"slice names dimension {name!r} twice")
        out[name] = _decode(value)
    return out


def slice_text(segment: dict[str, str] | str | None) -> str:
    """For people, not for keys: 'country=BR · device_os=android'; 'total' for the total."""
    if isinstance(segment, str):
        segment = parse_slice(segment)
    if not segment:
        return "total"
    return " · ".join(f"{k}={v}" for k, v in segment.items())
