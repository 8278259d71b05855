"""Durations, sizes and JSON paths: tables for the rules, hypothesis for round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synthprobe.jsonpath import parse_json_path
from synthprobe.units import (
    format_duration,
    format_size,
    parse_duration,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("5s", 5.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        (3, 3.0),
        (0.5, 0.5),
        ("1.5s", 1.5),
        (" 10s ", 10.0),
        ("7", 7.0),
    ],
    ids=["ms", "s", "m", "h", "int", "float", "fraction", "spaces", "bare-string"],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "bad",
    ["5 sec", "fast", "-1s", "", True, None, [], "1e400", 1e400, -3],
    ids=[
        "word-unit",
        "word",
        "negative-str",
        "empty",
        "bool",
        "none",
        "list",
        "huge-str",
        "inf",
        "negative",
    ],
)
def test_bad_duration(bad: object) -> None:
    with pytest.raises(ValueError, match="bad duration"):
        parse_duration(bad)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (512, 512),
        ("512", 512),
        ("64KiB", 65536),
        ("1MiB", 1048576),
        ("2MB", 2_000_000),
        ("1GiB", 1024**3),
        ("10k", 10240),
        (1024.0, 1024),
    ],
    ids=["int", "str", "kib", "mib", "mb", "gib", "k", "float-int"],
)
def test_parse_size(text: object, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "bad",
    ["10 megs", "-5", "1.5.5KiB", True, 1.5, "KiB"],
    ids=["word", "negative", "dots", "bool", "fraction", "unit-only"],
)
def test_bad_size(bad: object) -> None:
    with pytest.raises(ValueError, match="bad size"):
        parse_size(bad)


@given(st.integers(min_value=0, max_value=86_400_000))
def test_duration_round_trips_through_display(ms: int) -> None:
    seconds = ms / 1000
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, abs=1e-9)


@given(st.integers(min_value=0, max_value=1023), st.sampled_from(["", "KiB", "MiB", "GiB"]))
def test_size_round_trips_through_display(n: int, unit: str) -> None:
    size = n * {"": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}[unit]
    assert parse_size(format_size(size)) == size


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        ("items", ("items",)),
        ("items[0].id", ("items", 0, "id")),
        ("[2]", (2,)),
        ("a.b.c", ("a", "b", "c")),
        ("items[-1]", ("items", -1)),
        ("a[0][1]", ("a", 0, 1)),
    ],
)
def test_json_path(path: str, steps: tuple[object, ...]) -> None:
    assert parse_json_path(path) == steps


@pytest.mark.parametrize("bad", ["", "a..b", ".a", "a.", "a[x]", "a[0"])
def test_bad_json_path(bad: str) -> None:
    with pytest.raises(ValueError, match="bad JSON path"):
        parse_json_path(bad)
