"""W3C trace context: every request of every kind carries ``traceparent``; one trace per
probe per run; the trace id in the JSON line, the messages and JUnit.

The target is the demo platform, recording the ``traceparent`` of every request it
gets (``_route`` sees each request's parsed headers), and websocketd for a WebSocket
server that is not ours.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthprobe.demo import PlatformThread
from synthprobe.models import ProbeResult
from synthprobe.record import decode, encode
from synthprobe.redact import Redactor
from synthprobe.runner import Runner
from synthprobe.tracing import ProbeTrace, endpoint_problem, has_traceparent, traceparent

from .conftest import run_specs, specs_from_yaml
from .realprograms import websocketd
from .recording import Recording

TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01")


@pytest.fixture(scope="module")
def target() -> Iterator[Recording]:
    with PlatformThread(Recording()) as running:
        yield running


def probes_text(*probes: dict[str, Any]) -> str:
    return "probes:\n" + "".join(f"  - {json.dumps(p)}\n" for p in probes)


def run(target: Recording, *probes: dict[str, Any]) -> tuple[list[ProbeResult], list[str]]:
    """Run the probes; the paths and traceparents the target got meanwhile."""
    target.seen.clear()
    results = run_specs(specs_from_yaml(probes_text(*probes)))
    return results, [f"{path} {tp}" for path, tp in target.seen]


def parsed(seen: list[str]) -> list[tuple[str, str, str]]:
    """(path, trace id, span id) of each request; fails on a request without one."""
    out = []
    for line in seen:
        path, _, value = line.partition(" ")
        m = TRACEPARENT.fullmatch(value)
        assert m, f"{path} carried no valid traceparent: {value}"
        out.append((path, m.group(1), m.group(2)))
    return out


def spans_of(result: ProbeResult) -> ProbeTrace:
    assert result.trace is not None
    return result.trace


KINDS = {
    "http-redirect": (
        {"url": "/fault/redirect?to=/healthz"},
        ["/fault/redirect", "/healthz"],
    ),
    "journey": (
        {
            "kind": "feed",
            "url": "/v1/login",
            "method": "POST",
            "json": {"user": "probe", "password": "demo-password"},
            "capture": {"token": "json:access_token"},
            "mask": ["token"],
            "steps": [
                {
                    "name": "feed",
                    "url": "{{base}}/v1/me/feed",
                    "headers": {"Authorization": "Bearer {{token}}"},
                }
            ],
        },
        ["/v1/login", "/v1/me/feed"],
    ),
    "upload-verify": (
        {
            "kind": "upload",
            "url": "/v1/media",
            "upload": {
                "size": 1000,
                "verify_url": "{{base}}/v1/media/{id}",
                "cleanup": {"method": "DELETE", "url": "{{base}}/v1/media/{id}"},
            },
        },
        None,
    ),
    "live-hls": (
        {"kind": "live", "url": "/live/main/index.m3u8", "live": {"segments": 1}},
        None,
    ),
    "live-dash": (
        {"kind": "live", "url": "/live/dash/manifest.mpd", "live": {"segments": 1}},
        None,
    ),
    "messaging-demo-ws": (
        {
            "kind": "messaging",
            "url": "/ws",
            "messaging": {"send": '{"type":"ping"}', "expect": "pong"},
        },
        ["/ws"],
    ),
}


def absolute(target: Recording, probe: dict[str, Any]) -> dict[str, Any]:
    """The probe with the target's URLs; ``{{base}}`` in a template is the target."""
    base = target.base_url
    scheme = "ws" if probe.get("kind") == "messaging" else "http"
    out = {"name": "p", "timeout": "5s", **probe, "url": scheme + base[4:] + probe["url"]}
    text = json.dumps(out).replace("{{base}}", base)
    return dict(json.loads(text))


@pytest.mark.parametrize("name", list(KINDS), ids=list(KINDS))
def test_every_request_of_every_kind_carries_the_probes_one_trace(
    target: Recording, name: str
) -> None:
    probe, paths = KINDS[name]
    [result], seen = run(target, absolute(target, probe))
    assert result.ok, result.error
    got = parsed(seen)
    assert len(got) >= 1
    if paths is not None:
        assert [p for p, _, _ in got] == paths
    if name == "upload-verify":  # the upload, each poll of verify_url, the cleanup
        assert got[0][0] == "/v1/media" and len(got) >= 3
        assert result.details["cleanup_status"] == 204
    # one trace per probe; a span id per request
    assert {t for _, t, _ in got} == {result.trace_id}
    assert len({s for _, _, s in got}) == len(got)
    # each request sent is a span of the probe's, with the span id it carried
    assert [r.span_id for r in spans_of(result).requests] == [s for _, _, s in got]
    assert spans_of(result).trace_id == result.trace_id


@pytest.mark.slow
def test_the_live_ladder_traces_every_variant_under_one_trace(target: Recording) -> None:
    probe = {
        "kind": "live",
        "url": "/live/ladder/master.m3u8",
        "live": {"variant": "all", "segments": 1},
    }
    [result], seen = run(target, absolute(target, probe))
    assert result.ok, result.error
    got = parsed(seen)
    assert {t for _, t, _ in got} == {result.trace_id}
    assert len(got) > 3  # the master, each variant's playlist, their segments
    assert sorted(r.span_id for r in spans_of(result).requests) == sorted(s for _, _, s in got)


def test_retries_share_the_trace_with_a_span_id_each(target: Recording) -> None:
    probe = {
        "name": "p",
        "url": target.base_url + "/fault/reset",
        "timeout": "2s",
        "retries": 2,
        "retry_on": ["network"],
    }
    [result], seen = run(target, probe)
    assert result.attempts == 3
    got = parsed(seen)
    assert len(got) == 3
    assert {t for _, t, _ in got} == {result.trace_id}
    assert len({s for _, _, s in got}) == 3
    requests = spans_of(result).requests
    assert [r.error_type for r in requests] == [result.reason] * 3


def test_each_probe_and_each_run_has_its_own_trace(target: Recording) -> None:
    probe = {"url": target.base_url + "/healthz"}
    results, _ = run(target, {"name": "a", **probe}, {"name": "b", **probe})
    again, _ = run(target, {"name": "a", **probe})
    ids = [r.trace_id for r in (*results, *again)]
    assert all(i is not None and re.fullmatch("[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == 3


@pytest.mark.parametrize(
    ("fields", "sent", "shown"),
    [
        ({}, "ours", True),
        ({"trace_context": False}, None, False),
        (
            {"headers": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}},
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            True,
        ),
        ({"headers": {"TraceParent": "mine, as written"}}, "mine, as written", True),
    ],
    ids=["default", "off", "users-own", "users-own-any-case"],
)
def test_trace_context_off_and_a_users_own_header(
    target: Recording, fields: dict[str, Any], sent: str | None, shown: bool
) -> None:
    [result], seen = run(target, {"name": "p", "url": target.base_url + "/healthz", **fields})
    [line] = seen
    value = line.partition(" ")[2]
    if sent == "ours":
        assert value == traceparent(str(result.trace_id), spans_of(result).requests[0].span_id)
    else:
        assert value == str(sent)
    assert (result.trace_id is not None) is shown
    record = json.loads(encode(result))
    assert ("trace_id" in record) is shown


def test_trace_context_false_merges_from_defaults(target: Recording) -> None:
    text = f"""
defaults: {{trace_context: false}}
probes:
  - {{name: dark, url: "{target.base_url}/healthz"}}
  - {{name: lit, url: "{target.base_url}/healthz", trace_context: true}}
"""
    target.seen.clear()
    off, on = run_specs(specs_from_yaml(text))
    assert off.trace_id is None and on.trace_id is not None
    assert sorted(tp is None for _, tp in target.seen) == [False, True]


@pytest.mark.slow
@pytest.mark.parametrize("on", [True, False], ids=["trace-context", "trace-context-off"])
def test_the_websocket_upgrade_to_websocketd_carries_it(on: bool) -> None:
    """websocketd, not ours: it hands the upgrade's headers to its program as CGI
    variables, and the program answers with the one it got (nothing, when off)."""
    with websocketd("sh", "-c", 'read line; echo "$HTTP_TRACEPARENT"') as url:
        probe = {
            "name": "ws",
            "kind": "messaging",
            "url": url,
            "timeout": "3s",
            "trace_context": on,
            "messaging": {"send": "hello", "expect_regex": TRACEPARENT.pattern},
        }
        [result] = run_specs(specs_from_yaml(probes_text(probe)))
    assert result.ok is on, result.error
    [span] = spans_of(result).requests
    assert span.method == "GET" and span.status == 101


def test_a_journey_step_that_fails_is_the_failed_span(target: Recording) -> None:
    probe = absolute(target, KINDS["journey"][0])
    probe["steps"][0]["expect"] = {"status": [204]}
    [result], seen = run(target, probe)
    assert (result.reason, result.details["step"]) == ("server.status", "feed")
    login, feed = spans_of(result).requests
    assert (login.status, login.error_type) == (200, None)
    assert (feed.status, feed.error_type) == (200, "server.status")
    assert len(parsed(seen)) == 2


def test_phase_events_add_up_to_the_json_lines_timings(target: Recording) -> None:
    [result], _ = run(target, {"name": "p", "url": target.base_url + "/v1/feed"})
    [span] = spans_of(result).requests
    at = span.start_ns
    for phase, end_ns in span.phases:
        assert (end_ns - at) / 1e6 == pytest.approx(result.timings_ms[phase], abs=0.002), phase
        at = end_ns
    assert [p for p, _ in span.phases] == ["connect", "ttfb", "transfer"]
    assert (span.end_ns - span.start_ns) / 1e6 == pytest.approx(
        result.timings_ms["total"], abs=0.005
    )


def test_a_masked_capture_never_reaches_a_span(target: Recording) -> None:
    probe = absolute(target, KINDS["journey"][0])
    probe["steps"][0]["url"] = target.base_url + "/v1/me/feed?t={{token}}"
    [result], _ = run(target, probe)
    assert result.ok, result.error
    urls = [r.url for r in spans_of(result).requests]
    # the demo's tokens are "demo-<hex>": masked as every output masks them
    assert urls[1].startswith(target.base_url + "/v1/me/feed?t=")
    assert "demo-" not in urls[1], urls[1]


def test_the_trace_id_round_trips_through_the_json_line(target: Recording) -> None:
    [result], _ = run(target, {"name": "p", "url": target.base_url + "/healthz"})
    assert decode(encode(result)).trace_id == result.trace_id


@pytest.mark.parametrize(
    ("headers", "found"),
    [((), False), ((("Traceparent", "x"),), True), ((("tracestate", "x"),), False)],
    ids=["none", "any-case", "other-header"],
)
def test_has_traceparent(headers: tuple[tuple[str, str], ...], found: bool) -> None:
    assert has_traceparent(headers) is found


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("http://127.0.0.1:4318", True),
        ("https://otel.example.invalid", True),
        ("grpc://127.0.0.1:4317", False),
        ("127.0.0.1:4318", False),
        ("http://", False),
        ("http://127.0.0.1:99999", False),
        ("http://a b", False),
    ],
    ids=["http", "https", "grpc", "no-scheme", "no-host", "bad-port", "space"],
)
def test_endpoint_problem(url: str, ok: bool) -> None:
    assert (endpoint_problem(url) is None) is ok


def test_every_http3_request_carries_it(
    ca: Any, trusting_network: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's HTTP/3 server (qh3), its request heads recorded: a redirect and its
    hop, both over QUIC, each with a span id of its own, in the probe's trace."""
    from synthprobe.demo import h3

    from .test_http3_real import QuicServerThread, _pems

    seen: list[tuple[str, str | None]] = []
    made = h3._Request.__init__

    def recording(self: Any, headers: list[tuple[bytes, bytes]]) -> None:
        made(self, headers)
        value = dict(headers).get(b"traceparent")
        seen.append((self.target, value.decode() if value else None))

    monkeypatch.setattr(h3._Request, "__init__", recording)
    chain, key = _pems(ca)
    (tmp_path / "cert.pem").write_bytes(chain)
    (tmp_path / "key.pem").write_bytes(key)
    with QuicServerThread(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")) as port:
        probe = {
            "name": "h3",
            "url": f"https://127.0.0.1:{port}/redirect?to=/v1/feed",
            "http_version": "3",
            "timeout": "3s",
        }
        [result] = run_specs(specs_from_yaml(probes_text(probe)), trusting_network)
    assert result.ok, result.error
    got = parsed([f"{path} {tp}" for path, tp in seen])
    assert [p for p, _, _ in got] == ["/redirect?to=/v1/feed", "/v1/feed"]
    assert {t for _, t, _ in got} == {result.trace_id}
    requests = spans_of(result).requests
    assert [r.span_id for r in requests] == [s for _, _, s in got]
    assert [(r.status, r.protocol) for r in requests] == [(302, "3"), (200, "3")]


@given(
    st.one_of(
        st.none(),
        st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
        st.text(max_size=40),
    )
)
@settings(max_examples=200, deadline=None)
def test_a_trace_id_reads_back_only_as_32_lowercase_hex_digits(trace_id: str | None) -> None:
    line = json.loads(encode(_RESULT))
    if trace_id is None:
        line.pop("trace_id", None)
    else:
        line["trace_id"] = trace_id
    read = decode(json.dumps(line).encode())
    valid = trace_id is not None and re.fullmatch("[0-9a-f]{32}", trace_id) is not None
    assert read.trace_id == (trace_id if valid else None)


_RESULT = ProbeResult(
    run_id="R",
    ts="2026-12-01T00:00:00.000Z",
    location="here",
    probe="p",
    kind="http",
    method="GET",
    url="http://127.0.0.1/",
    ok=True,
    failure=None,
    reason=None,
    error=None,
    status=200,
    attempts=1,
    timings_ms={"total": 1.0},
    bytes_in=0,
    bytes_out=0,
    tags=(),
    details={},
    trace_id="0af7651916cd43dd8448eb211c80319c",
)


def test_a_run_that_exports_nothing_sends_context_but_keeps_no_spans(target: Recording) -> None:
    """``probe run`` without an endpoint: traceparent and trace_id as ever, and no
    span built per request (the hot path pays only for what is used)."""
    target.seen.clear()
    specs = specs_from_yaml(probes_text({"name": "p", "url": f"{target.base_url}/v1/feed"}))
    runner = Runner(concurrency=1, location="test", redactor=Redactor(frozenset()), spans=False)
    [result] = asyncio.run(runner.run(specs, lambda _: None))
    [(path, trace_id, _span)] = parsed([f"{p} {tp}" for p, tp in target.seen])
    assert result.ok and result.trace_id == trace_id and path == "/v1/feed"
    assert result.trace is None
