"""An SLO's objective (``99.9%``) and window (``28d``), read and written. Light on
purpose: the config reads every probe's ``slo`` with it, and ``probe run`` must not pay
for the report's arithmetic (slo.py) to load a config."""

from __future__ import annotations

import re

from synthprobe.units import parse_duration

MAX_WINDOW = 400 * 86400.0
"""The longest SLO window: a year and then some, never an unbounded read."""
_WINDOW_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(d|h|m|s)\s*$")
_WINDOW_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_PERCENT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_NUMBER_RE = re.compile(r"^\s*\d+(?:\.\d+)?\s*$")


def parse_window(value: object) -> float:
    """``28d``, ``36h``, ``90m`` -> seconds, more than 0 and at most 400 days. Raises
    ValueError with a message meant for the user."""
    if isinstance(value, str) and (m := _WINDOW_RE.match(value)):
        seconds = float(m.group(1)) * _WINDOW_UNITS[m.group(2)]
    else:
        try:
            seconds = parse_duration(value)
        except ValueError:
            raise ValueError(f"bad window {value!r}: use 28d, 7d, 36h or 90m") from None
    if seconds <= 0:
        raise ValueError(f"must be more than 0, got {value!r}")
    if seconds > MAX_WINDOW:
        raise ValueError(f"must be at most 400d, got {value!r}")
    return seconds


def format_window(seconds: float) -> str:
    """The inverse of ``parse_window`` for display: ``28d``, ``36h``, ``90m``, ``45s``."""
    for unit, size in _WINDOW_UNITS.items():
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def parse_objective(value: object) -> float:
    """``99.9%`` -> 0.999: strictly between 0% and 100%. A bare number is refused, as it
    could mean a fraction (0.999) or a percentage (99.9). Raises ValueError for the user."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("expected a percentage such as 99.9%")
    if isinstance(value, str) and _NUMBER_RE.match(value):  # --slo 99.9: the same question
        value = float(value)
    if not isinstance(value, str):
        if 0 < value < 1:
            raise ValueError(
                f"{value} without %: write {value * 100:g}% for the fraction {value}, "
                f"or {value}% if you mean {value} percent"
            )
        if 1 <= value < 100:
            raise ValueError(f"{value} without %: write {value}% if you mean {value} percent")
        raise ValueError(
            f"{value} without %: expected a percentage above 0% and below 100%, such as 99.9%"
        )
    m = _PERCENT_RE.match(value)
    if m is None:
        raise ValueError(f"bad objective {value!r}: expected a percentage such as 99.9%")
    from decimal import Decimal  # exact: 99.9% is 0.999, not 0.9990000000000001

    percent = Decimal(m.group(1))  # the pattern admits only decimals
    if percent <= 0:
        raise ValueError(f"must be more than 0%, got {value.strip()}")
    if percent >= 100:
        raise ValueError(
            f"must be below 100%, got {value.strip()} (an objective of 100% or more leaves "
            "no error budget: every failure would exhaust it)"
        )
    return float(percent / 100)


def format_objective(objective: float) -> str:
    """0.999 -> ``99.9%``."""
    return f"{objective * 100:.6g}%"
