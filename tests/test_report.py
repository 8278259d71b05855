"""probe report: a planted six-hour history must come back exactly."""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

from synthprobe.cli import app
from synthprobe.report import Filters, analyse, nearest_rank, read_history, to_json

from .probing import write_config

T0 = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)
runner = CliRunner()


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def record(
    probe: str,
    kind: str,
    location: str,
    t: datetime,
    failure: str | None,
    latency: float,
    reason: str | None = None,
) -> dict[str, Any]:
    ok = failure is None
    return {
        "schema": 1,
        "run_id": "01JPLANTED0000000000000000",
        "ts": iso(t),
        "location": location,
        "probe": probe,
        "kind": kind,
        "method": "GET",
        "url": "http://127.0.0.1/",
        "ok": ok,
        "failure": failure,
        "reason": reason or (None if ok else f"{failure}.planted"),
        "error": None if ok else "planted",
        "status": 200 if ok else None,
        "attempts": 1,
        "timings_ms": {
            "dns": None,
            "connect": 1.0,
            "tls": None,
            "ttfb": 2.0,
            "transfer": 1.0,
            "total": latency,
        },
        "bytes_in": 10,
        "bytes_out": 0,
        "tags": [],
        "details": {},
    }


def planted() -> list[dict[str, Any]]:
    """Six hours, one result a minute per (probe, location):
    - feed-home@eu-1: a 15-minute server outage, 02:10 to 02:25;
    - upload-avatar@eu-1: a 5-minute DNS outage 01:00-01:05 and a one-run network blip at 04:00;
    - feed-home@us-1: a network outage from 05:30, still ongoing at 05:59.
    Latency of a success: 100 + minute % 10 ms.
    """
    out = []
    for minute in range(360):
        t = T0 + timedelta(minutes=minute)
        latency = 100.0 + minute % 10
        a = "server" if 130 <= minute < 145 else None
        b = "dns" if 60 <= minute < 65 else "network" if minute == 240 else None
        c = "network" if minute >= 330 else None
        out.append(record("feed-home", "feed", "eu-1", t, a, latency))
        out.append(record("upload-avatar", "upload", "eu-1", t, b, latency))
        out.append(record("feed-home", "feed", "us-1", t, c, latency))
    return out


@pytest.fixture
def history_files(tmp_path: Path) -> list[str]:
    records = planted()
    random.Random(7).shuffle(records)
    half = len(records) // 2
    a, b = tmp_path / "host-a.jsonl", tmp_path / "host-b.jsonl"
    a.write_text("".join(json.dumps(r) + "\n" for r in records[:half]))
    # the last line of a file still being written: torn
    b.write_text("".join(json.dumps(r) + "\n" for r in records[half:]) + '{"schema": 1, "ts": "20')
    return [str(a), str(b)]


def report_json(*args: str) -> tuple[dict[str, Any], str]:
    result = runner.invoke(app, ["report", "--format", "json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr


def test_planted_history_comes_back_exactly(history_files: list[str]) -> None:
    data, stderr = report_json(*history_files)
    assert stderr.count("skipped malformed line") == 1
    assert f"{history_files[1]}:" in stderr  # names the file and its line
    assert data["from"] == "2026-11-22T00:00:00Z" and data["to"] == "2026-11-22T05:59:00Z"
    probes = {(p["probe"], p["location"]): p for p in data["probes"]}
    a, b, c = (
        probes["feed-home", "eu-1"],
        probes["upload-avatar", "eu-1"],
        probes["feed-home", "us-1"],
    )
    assert (a["runs"], a["ok"], a["availability"]) == (360, 345, round(345 / 360, 6))
    assert (b["runs"], b["ok"], b["availability"]) == (360, 354, round(354 / 360, 6))
    assert (c["runs"], c["ok"], c["availability"]) == (360, 330, round(330 / 360, 6))
    assert a["failures"] == {"dns": 0, "network": 0, "server": 15, "timeout": 0}
    assert b["failures"] == {"dns": 5, "network": 1, "server": 0, "timeout": 0}
    assert c["failures"] == {"dns": 0, "network": 30, "server": 0, "timeout": 0}
    assert b["top_reasons"] == [
        {"reason": "dns.planted", "count": 5},
        {"reason": "network.planted", "count": 1},
    ]
    # residues 0-4 appear 34 times, 5-9 35 times: rank 173 of 345 is the first 105
    assert a["latency_ms"] == {"p50": 105.0, "p95": 109.0, "p99": 109.0}
    assert data["outages"] == [
        {
            "probe": "upload-avatar",
            "location": "eu-1",
            "start": "2026-11-22T01:00:00Z",
            "end": "2026-11-22T01:05:00Z",
            "duration_s": 300.0,
            "failure": "dns",
            "runs": 5,
            "ongoing": False,
        },
        {
            "probe": "feed-home",
            "location": "eu-1",
            "start": "2026-11-22T02:10:00Z",
            "end": "2026-11-22T02:25:00Z",
            "duration_s": 900.0,
            "failure": "server",
            "runs": 15,
            "ongoing": False,
        },
        {
            "probe": "upload-avatar",
            "location": "eu-1",
            "start": "2026-11-22T04:00:00Z",
            "end": "2026-11-22T04:01:00Z",
            "duration_s": 60.0,
            "failure": "network",
            "runs": 1,
            "ongoing": False,
        },
        {
            "probe": "feed-home",
            "location": "us-1",
            "start": "2026-11-22T05:30:00Z",
            "end": None,
            "duration_s": 1740.0,
            "failure": "network",
            "runs": 30,
            "ongoing": True,
        },
    ]
    assert (b["mttr_s"], b["longest_outage_s"]) == (180.0, 300.0)
    assert c["mttr_s"] is None and c["longest_outage_s"] == 1740.0
    kinds = {k["kind"]: k for k in data["kinds"]}
    assert (kinds["feed"]["runs"], kinds["feed"]["ok"]) == (720, 675)
    assert kinds["upload"]["failures"]["dns"] == 5
    assert data["gaps"] == []


def test_since_until_window(history_files: list[str]) -> None:
    data, _ = report_json(*history_files, "--since", "90m", "--until", "2026-11-22T03:00:00Z")
    assert data["from"] == "2026-11-22T01:30:00Z" and data["to"] == "2026-11-22T03:00:00Z"
    probes = {(p["probe"], p["location"]): p for p in data["probes"]}
    assert probes["feed-home", "eu-1"]["runs"] == 90
    assert probes["feed-home", "eu-1"]["failures"]["server"] == 15
    assert probes["upload-avatar", "eu-1"]["failures"]["dns"] == 0
    assert [o["probe"] for o in data["outages"]] == ["feed-home"]


def test_filters(history_files: list[str]) -> None:
    data, _ = report_json(*history_files, "--kind", "upload")
    assert {p["probe"] for p in data["probes"]} == {"upload-avatar"}
    data, _ = report_json(*history_files, "--location", "us-1")
    assert [(p["probe"], p["location"]) for p in data["probes"]] == [("feed-home", "us-1")]
    data, _ = report_json(*history_files, "--probe", "feed-home", "--location", "eu-1")
    assert len(data["outages"]) == 1


def test_gap_is_no_data_not_down(tmp_path: Path) -> None:
    lines = []
    for minute in list(range(0, 30)) + list(range(90, 120)):  # an hour with no results
        lines.append(record("feed", "feed", "eu-1", T0 + timedelta(minutes=minute), None, 5.0))
    path = tmp_path / "gap.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    data, _ = report_json(str(path))
    assert data["probes"][0]["availability"] == 1.0
    assert data["gaps"] == [
        {
            "probe": "feed",
            "location": "eu-1",
            "start": "2026-11-22T00:29:00Z",
            "end": "2026-11-22T01:30:00Z",
            "duration_s": 3660.0,
        }
    ]


def test_table_format_and_html(history_files: list[str], tmp_path: Path) -> None:
    html = tmp_path / "status.html"
    result = runner.invoke(
        app, ["report", *history_files, "--html", str(html)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    for needle in ("by kind", "by probe", "outages", "ongoing", "15m00s", "95.83%"):
        assert needle in result.stdout, needle
    page = html.read_text()
    assert page.startswith("<!doctype html>")
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "1 of 3 probes down now" in page
    assert page.count('class="probe"') == 3


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"schema": 2}', "unknown schema"),
        (b'{"schema": 1, "probe": 1}', "must be strings"),
        (b"\xff\xfe", "not UTF-8"),
    ],
    ids=["text", "array", "schema", "types", "binary"],
)
def test_malformed_lines_are_skipped_with_file_and_line(line: bytes, why: str) -> None:
    good = json.dumps(record("p", "feed", "l", T0, None, 1.0)).encode()
    warnings: list[str] = []
    history = read_history(
        [("f.jsonl", io.BytesIO(good + b"\n" + line + b"\n"))], Filters(), warnings.append
    )
    assert len(history.series[("p", "l")].ts) == 1
    assert len(warnings) == 1 and warnings[0].startswith("f.jsonl:2: ") and why in warnings[0]


def test_missing_results_file_is_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2
    assert "cannot read" in result.output


def test_bad_since_is_exit_2(history_files: list[str]) -> None:
    result = runner.invoke(app, ["report", *history_files, "--since", "yesterday"])
    assert result.exit_code == 2


@given(
    st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=200),
    st.sampled_from([50, 95, 99]),
)
@settings(max_examples=100)
def test_nearest_rank_is_a_member_with_enough_below(values: list[float], p: int) -> None:
    ordered = sorted(values)
    got = nearest_rank(ordered, p)
    assert got is not None
    at_or_below = sum(v <= got + 1e-3 for v in ordered)
    assert at_or_below / len(ordered) >= p / 100
    assert any(abs(v - got) <= 1e-3 for v in ordered)


def test_report_renders_from_analyse_directly() -> None:
    records = planted()
    stream = io.BytesIO("".join(json.dumps(r) + "\n" for r in records).encode())
    history = read_history([("mem", stream)], Filters(), lambda _m: None)
    data = to_json(analyse(history, Filters()))
    console = Console(record=True, width=200)
    from synthprobe.output.report_table import render_report

    render_report(data, console)
    assert "feed-home" in console.export_text()


def test_a_file_with_no_results_is_a_usage_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, "probes:\n  - {name: a, url: 'http://127.0.0.1/'}\n")
    result = runner.invoke(app, ["report", str(config)])
    assert result.exit_code == 2
    assert f"{config}: not a synthprobe results file" in result.stderr
    assert "line 1: not JSON" in result.stderr
    assert "warning" not in result.stderr  # one clear error, not a warning per line


def test_a_fresh_file_with_only_a_torn_line_is_a_warning(tmp_path: Path) -> None:
    torn = tmp_path / "new.jsonl"
    torn.write_text('{"schema": 1, "ts": "2026-11-22T0')
    result = runner.invoke(app, ["report", str(torn), "--format", "json"])
    assert result.exit_code == 0
    assert "skipped malformed line" in result.stderr
    assert json.loads(result.stdout)["probes"] == []


def test_maintenance_results_count_neither_up_nor_down() -> None:
    minute = timedelta(minutes=1)
    rows = []
    for i, failure in enumerate(["ok", "server", "maint", "maint", "server", "ok", "maint"]):
        row = record(
            "feed",
            "feed",
            "eu-1",
            T0 + i * minute,
            None if failure in ("ok", "maint") else failure,
            5.0,
        )
        if failure == "maint":
            row["ok"], row["failure"], row["reason"] = False, "server", "server.status"
            row["state"] = "maintenance"
        rows.append(json.dumps(row).encode() + b"\n")
    history = read_history([("h", io.BytesIO(b"".join(rows)))], Filters(), lambda m: None)
    data = to_json(analyse(history, Filters()))
    [probe] = data["probes"]
    assert (probe["runs"], probe["ok"]) == (4, 2)  # the three maintenance results left out
    assert probe["failures"]["server"] == 2
    windows = data["maintenance"]

    def at(n: int) -> str:
        return (T0 + n * minute).strftime("%Y-%m-%dT%H:%M:%SZ")

    assert [(w["start"], w["end"], w["runs"]) for w in windows] == [
        (at(2), at(4), 2),  # ended by the next counted result
        (at(6), at(6), 1),
    ]
    [outage] = data["outages"]
    assert outage["start"] == at(1) and outage["runs"] == 2


def test_status_page_shows_maintenance_in_its_own_colour() -> None:
    from synthprobe.output.html import COLOURS, status_page

    minute = timedelta(minutes=1)
    rows = []
    for i in range(120):
        row = record("feed", "feed", "eu-1", T0 + i * minute, None, 5.0)
        if 60 <= i < 90:
            row["state"] = "maintenance"
        rows.append(json.dumps(row).encode() + b"\n")
    history = read_history([("h", io.BytesIO(b"".join(rows)))], Filters(), lambda m: None)
    report = analyse(history, Filters(), keep_timelines=True)
    page = status_page(report, to_json(report))
    assert page.count(f'fill="{COLOURS["maintenance"]}"') == 15  # a quarter of 60 buckets
    assert "in maintenance" in page
