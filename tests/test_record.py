"""Schema 1 both ways: what ``record.encode`` writes, ``record.decode`` (the report's
reader) reads back, for any result the runner can build."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synthprobe.models import ProbeResult, Reason
from synthprobe.probers import KINDS
from synthprobe.record import BadLine, decode, encode
from synthprobe.units import format_utc

texts = st.text(max_size=40)
stamps = st.integers(min_value=0, max_value=4_102_444_799_999)
"""Milliseconds since the epoch: a line's ``ts`` is written to the millisecond."""


@st.composite
def results(draw: st.DrawFn) -> ProbeResult:
    reason = draw(st.one_of(st.none(), st.sampled_from(list(Reason))))
    total = draw(st.one_of(st.none(), st.floats(0, 1e7, allow_nan=False)))
    return ProbeResult(
        run_id=draw(texts),
        ts=format_utc(draw(stamps) / 1000),
        location=draw(texts),
        probe=draw(texts),
        kind=draw(st.sampled_from(sorted(KINDS))),
        method=draw(st.sampled_from(["GET", "POST", "WS"])),
        url=draw(texts),
        ok=reason is None,
        failure=reason.failure if reason else None,
        reason=reason,
        error=draw(texts) if reason else None,
        status=draw(st.one_of(st.none(), st.integers(100, 599))),
        attempts=draw(st.integers(1, 101)),
        timings_ms={"dns": None, "total": total},
        bytes_in=draw(st.integers(0, 2**40)),
        bytes_out=draw(st.integers(0, 2**40)),
        tags=tuple(draw(st.lists(texts, max_size=3))),
        details=draw(st.dictionaries(texts, st.one_of(st.integers(), texts), max_size=3)),
    )


@given(results())
def test_what_the_writer_writes_the_report_reads(r: ProbeResult) -> None:
    line = decode(encode(r))
    assert (line.probe, line.kind, line.location) == (r.probe, r.kind, r.location)
    # the instant written, read back: epoch seconds counted from the text, not by the
    # function the reader itself uses
    when = datetime.strptime(r.ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert line.ts == pytest.approx(when.timestamp(), abs=5e-4)
    assert format_utc(line.ts) == r.ts
    assert (line.failure, line.reason) == (r.failure, r.reason)
    total = r.timings_ms["total"]
    assert math.isnan(line.latency_ms) if total is None else line.latency_ms == total


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"{", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"schema": 2}', "unknown schema 2"),
        (b'{"schema": 1, "probe": 1, "kind": "x", "location": "y"}', "must be strings"),
        (b'{"schema": 1, "probe": "p", "kind": "x", "location": "y", "ok": 1}', "ok is not"),
        (
            b'{"schema": 1, "probe": "p", "kind": "x", "location": "y", "ok": false, '
            b'"failure": "weather"}',
            "unknown failure 'weather'",
        ),
        (
            b'{"schema": 1, "probe": "p", "kind": "x", "location": "y", "ok": true, "ts": 5}',
            "ts is not a string",
        ),
    ],
    ids=["torn", "array", "schema-2", "probe-type", "ok-type", "failure", "ts-type"],
)
def test_lines_that_are_not_results_say_why(line: bytes, problem: str) -> None:
    with pytest.raises(BadLine, match=problem):
        decode(line)


@pytest.mark.parametrize(
    ("total", "latency"),
    [
        ("12.5", 12.5),
        ("0", 0.0),
        ('"fast"', math.nan),
        ("true", math.nan),
        ("null", math.nan),
        ("1e400", math.nan),  # json reads it as infinity
        ("1" + "0" * 400, math.nan),  # an integer past any float: once a traceback
        ("-3", math.nan),
        ("[1]", math.nan),
    ],
    ids=["float", "zero", "text", "bool", "null", "infinity", "huge-int", "negative", "list"],
)
def test_a_total_no_timing_can_be_is_unknown_never_a_crash(total: str, latency: float) -> None:
    line = (
        '{"schema": 1, "probe": "p", "kind": "http", "location": "a", "ok": true, '
        f'"ts": "2026-12-05T10:00:00Z", "timings_ms": {{"total": {total}}}}}'
    ).encode()
    got = decode(line).latency_ms
    assert got == latency or (math.isnan(got) and math.isnan(latency))
