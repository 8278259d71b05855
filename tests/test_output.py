"""Writers: JSON lines (round trip, whole lines under concurrency), table, quiet, JUnit."""

from __future__ import annotations

import io
import json
import math
import multiprocessing
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from synthprobe.models import Failure, Reason, State, Vantage
from synthprobe.output.files import write_atomic
from synthprobe.output.jsonl import JsonlWriter
from synthprobe.output.junit import junit_xml
from synthprobe.output.quiet import quiet_lines
from synthprobe.output.summary import summary_json
from synthprobe.output.table import render_table
from synthprobe.record import encode, to_record

from .results import PHASES
from .results import make_result as result

SPEC_FIELDS = [
    "schema",
    "run_id",
    "ts",
    "location",
    "probe",
    "kind",
    "method",
    "url",
    "ok",
    "failure",
    "reason",
    "error",
    "status",
    "attempts",
    "timings_ms",
    "bytes_in",
    "bytes_out",
    "tags",
    "details",
]


def test_record_has_spec_fields_in_spec_order() -> None:
    assert list(to_record(result())) == SPEC_FIELDS
    assert list(to_record(result())["timings_ms"]) == PHASES


def test_failed_record_matches_spec_example_shape() -> None:
    line = json.loads(
        encode(result(ok=False, timings_ms={**dict.fromkeys(PHASES), "total": 5000.2}))
    )
    assert line["failure"] == "timeout" and line["reason"] == "timeout.read"
    assert line["status"] is None and line["timings_ms"]["ttfb"] is None


text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)


@pytest.mark.slow
@settings(max_examples=200)
@given(
    name=text,
    location=text,
    error=st.none() | text,
    status=st.none() | st.integers(100, 599),
    reason=st.none() | st.sampled_from(list(Reason)),
    total=st.none() | st.floats(0, 1e6, allow_nan=False),
    millis=st.integers(0, 4_102_444_799_999),
    details=st.dictionaries(text, st.integers() | text | st.booleans(), max_size=4),
    state=st.none() | st.sampled_from(list(State)),
    vantage=st.none() | st.sampled_from(list(Vantage)),
)
def test_jsonl_round_trip(
    name: str,
    location: str,
    error: str | None,
    status: int | None,
    reason: Reason | None,
    total: float | None,
    millis: int,
    details: dict[str, object],
    state: State | None,
    vantage: Vantage | None,
) -> None:
    """What the writer encodes, the report's reader (record.decode) reads back the same:
    the two halves of schema 1 cannot drift apart."""
    from synthprobe.record import decode
    from synthprobe.units import format_utc

    r = result(
        name=name,
        location=location,
        ok=reason is None,
        failure=reason.failure if reason else None,
        reason=reason,
        error=error,
        status=status,
        ts=format_utc(millis / 1000),
        timings_ms={**dict.fromkeys(PHASES), "total": total},
        details=details,
        state=state,
        since=None if state is None else format_utc(millis / 1000),
        vantage=vantage,
    )
    data = encode(r)
    assert data.endswith(b"\n") and data.count(b"\n") == 1  # one line whatever the text
    line = decode(data)
    assert (line.probe, line.kind, line.location) == (r.probe, r.kind, r.location)
    assert line.failure == r.failure and line.reason == (r.reason.value if r.reason else None)
    assert round(line.ts * 1000) == millis
    assert line.latency_ms == total if total is not None else math.isnan(line.latency_ms)
    assert line.no_data == r.no_data  # the reader decides as the run did (models.no_data)
    assert line.maintenance == (state is State.MAINTENANCE)
    raw = json.loads(data)
    assert (raw.get("state"), raw.get("vantage")) == (state, vantage)  # enums as their words


def test_writer_appends_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"earlier": true}\n')
    writer = JsonlWriter(str(path))
    for i in range(5):
        writer.write(result(name=f"p{i}"))
    writer.close()
    lines = path.read_bytes().splitlines()
    assert len(lines) == 6 and json.loads(lines[0]) == {"earlier": True}
    assert [json.loads(x)["probe"] for x in lines[1:]] == [f"p{i}" for i in range(5)]


OURS = encode(result(name="earlier"))
TAILS = [
    pytest.param(b"", b"", id="empty-file"),
    pytest.param(OURS, OURS, id="whole-lines"),
    pytest.param(OURS + OURS[:300], OURS, id="ours-torn-mid-line-is-cut"),
    pytest.param(OURS + OURS[:3], OURS, id="ours-torn-after-3-bytes-is-cut"),
    pytest.param(OURS[:200], b"", id="only-a-torn-line-is-cut"),
    pytest.param(OURS + OURS[:-1], OURS + OURS, id="ours-whole-but-the-newline-is-ended"),
    pytest.param(b"notes\nno newline", b"notes\nno newline\n", id="other-text-is-kept"),
    pytest.param(b'{"a": 1}', b'{"a": 1}\n', id="other-json-is-kept"),
    pytest.param(OURS + b'{"schema": ' + b"[" * 200_000, OURS, id="deeply-nested-tail-is-cut"),
]


@pytest.mark.parametrize(("before", "kept"), TAILS)
def test_a_torn_tail_never_swallows_the_next_line(
    tmp_path: Path, before: bytes, kept: bytes
) -> None:
    """A writer killed mid-line (the kernel stops a write between pages on SIGKILL)
    leaves a fragment; the next line must not run into it, and nothing but a fragment
    of our own may be cut."""
    path = tmp_path / "r.jsonl"
    path.write_bytes(before)
    writer = JsonlWriter(str(path))
    writer.write(result(name="next"))
    writer.write(result(name="after"))
    writer.close()
    assert path.read_bytes() == kept + encode(result(name="next")) + encode(result(name="after"))


def test_a_long_foreign_tail_is_ended_not_read_to_the_start(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    text = b"x" * (5 * 1024 * 1024)  # no newline within the 4 MiB looked at
    path.write_bytes(text)
    JsonlWriter(str(path)).write(result())
    assert path.read_bytes() == text + b"\n" + encode(result())


def test_writer_to_stream() -> None:
    stream = io.BytesIO()
    JsonlWriter(stream=stream).write(result())
    assert json.loads(stream.getvalue())["probe"] == "feed-home"


def _append_many(path: str, tag: str, count: int) -> None:
    writer = JsonlWriter(path)
    big = "x" * 20_000  # lines far larger than PIPE_BUF: only the lock keeps them whole
    for i in range(count):
        writer.write(result(name=f"{tag}-{i}", details={"pad": big}))
    writer.close()


@pytest.mark.slow
def test_concurrent_processes_never_interleave(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.jsonl")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(path, f"w{w}", 200)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    lines = Path(path).read_bytes().splitlines()
    assert len(lines) == 800
    names = {json.loads(line)["probe"] for line in lines}  # every line parses
    assert len(names) == 800


def test_unwritable_output_is_an_output_error(tmp_path: Path) -> None:
    from synthprobe.errors import OutputError

    with pytest.raises(OutputError, match="cannot write results to"):
        JsonlWriter(str(tmp_path / "missing-dir" / "r.jsonl"))


def recorded(width: int = 140) -> Console:
    return Console(record=True, width=width, force_terminal=False, color_system=None)


def test_table_shows_rows_kinds_and_classes() -> None:
    results = [
        result("feed-home"),
        result(
            "feed-search",
            ok=False,
            failure=Failure.DNS,
            reason=Reason.DNS_NXDOMAIN,
            error="search.invalid: name does not exist",
        ),
        result(
            "upload-avatar",
            ok=False,
            kind="upload",
            failure=Failure.SERVER,
            reason=Reason.SERVER_STATUS,
            status=503,
            error="status 503, expected 2xx",
            attempts=3,
        ),
    ]
    console = recorded()
    render_table(results, console)
    out = console.export_text()
    for needle in [
        "feed-home",
        "✓ up",
        "✗ down",
        "dns.nxdomain",
        "server.status",
        "503",
        "1 ms",
        "(3 attempts)",
        "feed degraded 1/2",
        "upload down 0/1",
        "1/3 passed",
        "dns 1, network 0, server 1, timeout 0",
    ]:
        assert needle in out, needle


def test_all_up_table_says_so() -> None:
    console = recorded()
    render_table([result("a"), result("b")], console)
    out = console.export_text()
    assert "feed up 2/2" in out and "2/2 passed" in out and "failures" not in out


def test_quiet_is_silent_when_all_pass_and_one_line_per_failure() -> None:
    assert quiet_lines([result("a"), result("b")]) == []
    lines = quiet_lines([result("a"), result("b", ok=False)])
    assert lines == [
        "FAIL b feed timeout.read http://127.0.0.1/v1/feed: no response headers within 5s"
    ]


def test_summary_json() -> None:
    s = summary_json([result("a"), result("b", ok=False)], "RUN", "eu-1")
    assert s["ok"] is False and s["passed"] == 1 and s["failed"] == 1
    assert s["failures"] == {"dns": 0, "network": 0, "server": 0, "timeout": 1}
    assert s["kinds"] == {"feed": {"state": "degraded", "ok": 1, "total": 2}}


def test_junit_parses_with_failures_carrying_class_and_reason() -> None:
    data = junit_xml([result("a"), result("b", ok=False)], "RUN", "eu-1")
    root = ET.fromstring(data)
    assert root.tag == "testsuites" and root.get("tests") == "2" and root.get("failures") == "1"
    cases = root.findall("./testsuite/testcase")
    assert [c.get("name") for c in cases] == ["a", "b"]
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.get("type") == "timeout"
    assert failure.get("message") == "timeout.read: no response headers within 5s"


def test_write_atomic_replaces_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "report.xml"
    target.write_text("old")
    write_atomic(str(target), b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["report.xml"]
    assert oct(os.stat(target).st_mode & 0o777) == "0o644"


def test_prom_text_parses_with_prometheus_parsers() -> None:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as om
    from prometheus_client.parser import text_string_to_metric_families as classic

    from synthprobe.output.prom import prom_text

    results = [
        result("feed-home"),
        result(
            'we"ird\\name',
            ok=False,
            failure=Failure.DNS,
            reason=Reason.DNS_NXDOMAIN,
            timings_ms={**dict.fromkeys(PHASES), "total": 8.5},
        ),
    ]
    text = prom_text(results, 1_790_000_000.0, "eu-1")
    for parse in (om, classic):
        families = {f.name: f for f in parse(text)}
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for f in families.values()
            for s in f.samples
        }
        up = {s.labels["probe"]: s.value for s in families["synthprobe_up"].samples}
        assert up == {"feed-home": 1.0, 'we"ird\\name': 0.0}
        failure = [s for s in families["synthprobe_failure"].samples]
        assert [(s.labels["class"], s.labels["reason"]) for s in failure] == [
            ("dns", "dns.nxdomain")
        ]
        durations = [
            s
            for s in families["synthprobe_duration_seconds"].samples
            if s.labels["probe"] == "feed-home"
        ]
        assert {s.labels["phase"] for s in durations} == set(PHASES)
        assert all(s.value == 0.001 for s in durations)
        assert [s.value for s in families["synthprobe_http_status"].samples] == [200.0]
        location = (("location", "eu-1"),)
        assert samples[("synthprobe_last_run_timestamp_seconds", location)] == 1_790_000_000.0
        # every series says where it was measured: locations share a textfile directory
        assert all(s.labels.get("location") == "eu-1" for f in families.values() for s in f.samples)


def test_junit_is_read_by_a_real_consumer(tmp_path: Path) -> None:
    from junitparser import Failure as JFailure
    from junitparser import JUnitXml

    path = tmp_path / "junit.xml"
    write_atomic(str(path), junit_xml([result("a"), result("b", ok=False)], "RUN", "eu-1"))
    xml = JUnitXml.fromfile(str(path))
    cases = [case for suite in xml for case in suite]
    assert [c.name for c in cases] == ["a", "b"]
    assert cases[0].is_passed
    [failure] = [r for r in cases[1].result if isinstance(r, JFailure)]
    assert failure.type == "timeout" and failure.message.startswith("timeout.read")


def test_table_warns_when_timings_were_taken_under_loop_lag() -> None:
    console = recorded()
    render_table(
        [
            result("calm", details={"loop_lag_ms": 1.0}),
            result("busy", details={"loop_lag_ms": 85.0}),
        ],
        console,
    )
    out = console.export_text()
    assert "1 probe(s) ran while synthprobe itself was busy" in out
    assert "85 ms late" in out
    quiet = recorded()
    render_table([result("calm", details={"loop_lag_ms": 1.0})], quiet)
    assert "busy" not in quiet.export_text()


def test_our_consoles_print_a_reply_as_it_came() -> None:
    """rich would turn `:thumbs_up:` into an emoji in a message such as the vantage
    verdict, which quotes the controls' errors: a server's words are evidence."""
    from rich.markup import escape

    from synthprobe.app import Streams

    streams = Streams(io.StringIO(), io.StringIO(), io.BytesIO())
    error = "reply ':thumbs_up: :x:' does not contain '+OK'"
    streams.err.print(f"[bold red]every control failed[/] ({escape(error)})")
    render_table([result("cache", ok=False, error=error)], streams.out)
    assert error in streams.stderr.getvalue()  # type: ignore[attr-defined]
    assert ":thumbs_up: :x:" in " ".join(streams.stdout.getvalue().split())  # type: ignore[attr-defined]


@pytest.mark.parametrize("width", [80, 100, 120], ids=lambda w: f"{w}-columns")
def test_table_never_breaks_a_probe_name_or_reason(width: int) -> None:
    from rich.console import Console

    from synthprobe.output.table import render_table

    names = ["chat-roundtrip", "upload-avatar-with-verification", "feed-home"]
    results = [
        result(
            name,
            ok=False,
            failure=Failure.NETWORK,
            reason=Reason.NETWORK_PROTOCOL,
            error="the server sent something long " * 8,
        )
        for name in names
    ]
    console = Console(width=width, record=True, file=io.StringIO())
    render_table(results, console)
    text = console.export_text()
    for name in names:
        assert name in text, (name, text)
    assert text.count("network.protocol") == len(names)
