"""Schema 1, both ways: a ``ProbeResult`` as one JSON line (``output/jsonl.py`` appends
them) and a JSON line read back (``report.py`` reads history with it). One module, so
the writer and the reader cannot drift apart; docs/reference.md lists the fields."""

from __future__ import annotations

import json
import math
import re
from typing import Any, NamedTuple

from synthprobe.models import Failure, ProbeResult, State, Vantage, no_data
from synthprobe.units import parse_utc

SCHEMA = 1


def to_record(result: ProbeResult) -> dict[str, Any]:
    """The JSON object, fields in the documented order; ``trace_id`` unless the probe's
    ``trace_context`` is false; ``state`` and ``since`` when the run keeps state,
    ``event`` only when this result caused one."""
    record = {
        "schema": SCHEMA,
        "run_id": result.run_id,
        "ts": result.ts,
        "location": result.location,
        "probe": result.probe,
        "kind": result.kind,
        "method": result.method,
        "url": result.url,
        "ok": result.ok,
        "failure": result.failure.value if result.failure else None,
        "reason": result.reason.value if result.reason else None,
        "error": result.error,
        "status": result.status,
        "attempts": result.attempts,
        "timings_ms": result.timings_ms,
        "bytes_in": result.bytes_in,
        "bytes_out": result.bytes_out,
        "tags": list(result.tags),
        "details": result.details,
    }
    if result.trace_id is not None:
        record["trace_id"] = result.trace_id
    if result.state is not None:
        record["state"] = result.state
        record["since"] = result.since
    if result.event is not None:
        record["event"] = result.event
    if result.vantage is not None:
        record["vantage"] = result.vantage
    return record


def encode(result: ProbeResult) -> bytes:
    """One line, newline included. ``ensure_ascii`` keeps it one line whatever the text."""
    return (json.dumps(to_record(result), separators=(", ", ": ")) + "\n").encode("ascii")


class BadLine(ValueError):
    """A line that is not a schema-1 result."""


class Line(NamedTuple):
    """What the report needs of one result line."""

    probe: str
    kind: str
    location: str
    ts: float
    """Epoch seconds."""
    failure: Failure | None
    """None when ok."""
    latency_ms: float
    """``timings_ms.total``; NaN when absent."""
    reason: str | None
    """As written: a reader must accept reasons newer than itself."""
    maintenance: bool = False
    """``"state": "maintenance"``: inside a window, counted neither up nor down."""
    no_data: bool = False
    """``models.no_data`` of the line (``"vantage": "down"``, or class ``internal``):
    nothing about the target, counted neither up nor down."""
    trace_id: str | None = None
    """The probe's W3C trace id, when the line has one (32 lowercase hex digits)."""


_FAILURES = {f.value: f for f in Failure}
_TRACE_ID = re.compile(r"[0-9a-f]{32}")
"""A file's trace id is shown on the status page: nothing else passes."""


def parse_ts(text: object) -> float:
    if not isinstance(text, str):
        raise BadLine("ts is not a string")
    try:
        return parse_utc(text)
    except ValueError:
        raise BadLine(f"bad ts {text[:40]!r}") from None


def _milliseconds(value: object) -> float:
    """A line's ``timings_ms.total`` as a float; NaN (unknown) for what no timing can be:
    a bool, text, an integer past any float, infinity, a negative time."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    try:
        ms = float(value)
    except OverflowError:  # 10**400 in a hand-edited or concatenated file
        return math.nan
    return ms if math.isfinite(ms) and ms >= 0 else math.nan


def decode(line: bytes) -> Line:
    """One JSON line -> ``Line``; BadLine says what is wrong with it."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadLine(f"not JSON: {exc.msg}") from None
    except ValueError:
        raise BadLine("not UTF-8 JSON") from None
    if not isinstance(rec, dict):
        raise BadLine("not a JSON object")
    if rec.get("schema") != SCHEMA:
        raise BadLine(f"unknown schema {rec.get('schema')!r}")
    probe, kind, location = rec.get("probe"), rec.get("kind"), rec.get("location")
    if not (isinstance(probe, str) and isinstance(kind, str) and isinstance(location, str)):
        raise BadLine("probe, kind and location must be strings")
    ok = rec.get("ok")
    if not isinstance(ok, bool):
        raise BadLine("ok is not a boolean")
    failure = None
    if not ok:
        failure = _FAILURES.get(rec.get("failure"))  # type: ignore[arg-type]
        if failure is None:
            raise BadLine(f"unknown failure {rec.get('failure')!r}")
    timings = rec.get("timings_ms")
    total = timings.get("total") if isinstance(timings, dict) else None
    latency = _milliseconds(total)
    reason = rec.get("reason")
    vantage = Vantage.DOWN if rec.get("vantage") == Vantage.DOWN else None  # schema 1's only one
    trace_id = rec.get("trace_id")
    return Line(
        probe,
        kind,
        location,
        parse_ts(rec.get("ts")),
        failure,
        latency,
        reason if isinstance(reason, str) else None,
        rec.get("state") == State.MAINTENANCE,
        no_data(failure, vantage),
        trace_id if isinstance(trace_id, str) and _TRACE_ID.fullmatch(trace_id) else None,
    )
