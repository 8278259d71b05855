"""The trace id where a person looks: each event line (notifications and ``--format
changes``), JUnit, ``probe watch``'s screen and the status page's outages; and the
report's outage list takes the trace of the outage's first failed result."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from synthprobe.alerts import Event, event_for
from synthprobe.cli import app
from synthprobe.demo import DemoPlatform
from synthprobe.models import EventKind, ProbeResult
from synthprobe.output.junit import junit_xml
from synthprobe.output.watch import Row, render
from synthprobe.record import to_record

from .commands import run_probe
from .conftest import probe_once

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture(scope="module")
def failed(platform: DemoPlatform) -> ProbeResult:
    return probe_once(f"{platform.base_url}/fault/status/503")


@pytest.mark.parametrize(
    "kind", [EventKind.DOWN, EventKind.REMINDER, EventKind.UP], ids=["down", "still-down", "up"]
)
def test_each_event_line_ends_with_the_trace(failed: ProbeResult, kind: EventKind) -> None:
    event = event_for(kind, failed, failed.ts, 3)
    assert failed.trace_id is not None
    assert event.line().endswith(f" trace {failed.trace_id}")
    assert event.line(late=True).endswith(f"(late) trace {failed.trace_id}")


def test_an_event_without_a_trace_says_none(failed: ProbeResult) -> None:
    """``trace_context: false``, or an event queued by an older version (its row in the
    state file has no trace_id): the line as before."""
    event = event_for(EventKind.DOWN, replace(failed, trace_id=None), failed.ts, 1)
    assert "trace" not in event.line()
    old_row = {f: getattr(event, f) for f in Event.__dataclass_fields__ if f != "trace_id"}
    assert Event(**old_row) == event


@pytest.mark.slow
def test_format_changes_prints_the_trace_of_the_down(
    platform: DemoPlatform, tmp_path: Path
) -> None:
    config = tmp_path / "probes.yaml"
    config.write_text(
        f"probes:\n  - name: api\n    url: {platform.base_url}/fault/status/503\n"
        "    alert: {failure_threshold: 1}\n"
    )
    out = tmp_path / "out.jsonl"
    done = run_probe("run", str(config), "-o", str(out), "--format", "changes")
    assert done.returncode == 1, done.stderr
    [line] = [json.loads(text) for text in out.read_text().splitlines()]
    [printed] = done.stdout.splitlines()
    assert printed.startswith("DOWN api (http)")
    assert printed.endswith(f" trace {line['trace_id']}")


def test_junit_has_a_trace_id_property_per_testcase(failed: ProbeResult) -> None:
    passed = replace(failed, ok=True, failure=None, reason=None, error=None, trace_id=TRACE)
    untraced = replace(failed, probe="dark", trace_id=None)
    root = ET.fromstring(junit_xml([failed, passed, untraced], "RUN", "here"))
    cases = {c.get("name"): c for c in root.iter("testcase")}
    props = {
        name: {p.get("name"): p.get("value") for p in case.iter("property")}
        for name, case in cases.items()
    }
    assert props["p"] == {"trace_id": TRACE}  # the passing one, last of the name
    assert props["dark"] == {}
    failure = root.find(".//testcase[@name='dark']/failure")
    assert failure is not None and "trace_id" not in (failure.text or "")


def test_junit_trace_of_a_failure(failed: ProbeResult) -> None:
    root = ET.fromstring(junit_xml([failed], "RUN", "here"))
    case = root.find(".//testcase")
    assert case is not None
    assert [c.tag for c in case] == ["properties", "failure"]  # the schemas' order
    [prop] = case.iter("property")
    assert (prop.get("name"), prop.get("value")) == ("trace_id", failed.trace_id)
    failure = case.find("failure")
    assert failure is not None and f"trace_id: {failed.trace_id}" in (failure.text or "")


@pytest.mark.parametrize("width", [80, 160], ids=str)
def test_watch_shows_the_trace_of_a_failing_probe(width: int) -> None:
    rows = [
        Row("feed-home", "http", "down", 0.0, "server.status", "status 503", 3.0, 1, TRACE),
        Row("api", "http", "up", 0.0, None, None, 12.0, 0, "0" * 31 + "1"),
    ]
    console = Console(width=width, height=24, record=True, file=io.StringIO())
    console.print(render(rows, now=5.0, last_round=None, next_round=None, height=24))
    screen = console.export_text()
    lines = screen.splitlines()
    assert {len(line) for line in lines[1:]} == {width}  # the table still fits
    if width >= 160:
        assert "trace" in lines[2]
        assert TRACE in screen  # whole, to be copied
    else:
        assert "tr…" in lines[2] and "4b" in screen  # squeezed like the error column
    assert "0" * 31 + "1" not in screen  # an up probe's trace is nobody's business


def test_watch_has_no_trace_column_while_all_is_up() -> None:
    rows = [Row("api", "http", "up", 0.0, None, None, 12.0, 0, TRACE)]
    console = Console(width=120, height=24, record=True, file=io.StringIO())
    console.print(render(rows, now=5.0, last_round=None, next_round=None, height=24))
    assert "trace" not in console.export_text()


def _history(failed: ProbeResult) -> list[dict[str, object]]:
    """Three failures (each its own trace) then a pass: one outage."""
    lines = []
    for i, trace in enumerate(["a" * 32, "b" * 32, "c" * 32, "d" * 32]):
        ts = f"2026-12-01T00:0{i}:00.000Z"
        result = replace(failed, ts=ts, trace_id=trace)
        if i == 3:
            result = replace(result, ok=True, failure=None, reason=None, error=None)
        lines.append(to_record(result))
    return lines


def test_an_outage_names_the_trace_of_its_first_failure(
    failed: ProbeResult, tmp_path: Path
) -> None:
    history = tmp_path / "h.jsonl"
    history.write_text("".join(json.dumps(r, default=str) + "\n" for r in _history(failed)))
    done = CliRunner().invoke(app, ["report", str(history), "--format", "json"])
    assert done.exit_code == 0, done.output
    [outage] = json.loads(done.stdout)["outages"]
    assert outage["trace_id"] == "a" * 32
    page = tmp_path / "status.html"
    done = CliRunner().invoke(app, ["report", str(history), "--html", str(page)])
    assert done.exit_code == 0, done.output
    text = page.read_text()
    assert f"<code>{'a' * 32}</code>" in text
    assert "b" * 32 not in text and "d" * 32 not in text


def test_a_line_with_a_bad_trace_id_shows_none(failed: ProbeResult, tmp_path: Path) -> None:
    """A hand-edited file's "trace_id" is never written into the page as it stands."""
    lines = _history(failed)
    lines[0]["trace_id"] = "<script>alert(1)</script>"
    history = tmp_path / "h.jsonl"
    history.write_text("".join(json.dumps(r, default=str) + "\n" for r in lines))
    done = CliRunner().invoke(app, ["report", str(history), "--format", "json"])
    [outage] = json.loads(done.stdout)["outages"]
    assert "trace_id" not in outage
