"""Hostile HTTP servers of our own on 127.0.0.1: HTTP/2 response heads curl refuses,
stacked Content-Encodings, redirects that lead nowhere, an upload cleanup that hangs.
Each case asserts its class, reason and a message naming the cause, within the probe's
deadline + 1 s, with a healthy probe recorded in the same run. Property tests feed the
parsers server bytes reach (Location, HTTP/2 heads, Content-Encoding, Set-Cookie)."""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import brotli
import httpx
import pytest
import trustme
from hypothesis import given, settings
from hypothesis import strategies as st

from synthprobe.classify import ProbeFailure
from synthprobe.demo import refused_port
from synthprobe.models import ProbeResult, Reason
from synthprobe.probers import connection, decoding, exchange
from synthprobe.probers import redirects as redirect_rules
from synthprobe.probers.attempt import Attempt
from synthprobe.probers.base import Network
from synthprobe.probers.upload import prober as upload_prober

from .h2server import Crafted, h2_server
from .probing import run_together
from .sockets import accepting

OK_JSON = b'{"status": "ok"}'
TIMEOUT = 3.0
"""Every probe's deadline here; a run must end within it + 1 s."""

# --------------------------------------------------------------------------- servers

Reply = Callable[[socket.socket], None]
"""Writes a whole response to the connection, or holds it (a server that hangs)."""


def _read_request(conn: socket.socket) -> str:
    """The request's path. Headers and a Content-Length body are read whole, so the
    close that follows never carries unread bytes (which would make it an RST)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return ""
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        rest += chunk
    return lines[0].split(" ")[1]


def answer(status: int, headers: list[tuple[str, bytes]], body: bytes = b"") -> Reply:
    def reply(conn: socket.socket) -> None:
        head = f"HTTP/1.1 {status} X\r\n".encode()
        for name, value in [*headers, ("Content-Length", str(len(body)).encode())]:
            head += name.encode() + b": " + value + b"\r\n"
        conn.sendall(head + b"Connection: close\r\n\r\n" + body)
        conn.shutdown(socket.SHUT_WR)  # a clean FIN; the client closes its side

    return reply


def hang(conn: socket.socket) -> None:
    """Never answers: the connection stays open until the server stops."""


@contextlib.contextmanager
def http_server(routes: dict[str, Reply]) -> Iterator[str]:
    """HTTP/1.1 on 127.0.0.1, one thread per connection, a route per path (404 else)."""

    def handle(conn: socket.socket) -> None:
        def serve() -> None:
            with contextlib.suppress(OSError):
                conn.settimeout(10)
                path = _read_request(conn)
                routes.get(path, answer(404, []))(conn)

        threading.Thread(target=serve, daemon=True).start()

    with accepting(handle) as port:
        yield f"http://127.0.0.1:{port}"


def run_timed(
    probes: dict[str, dict[str, Any]], network: Network | None = None
) -> dict[str, ProbeResult]:
    """One run of every probe (TIMEOUT each, no retries); the run ends within the
    deadline + 1 s and records every probe."""
    named = [
        {"name": name, "timeout": f"{TIMEOUT}s", "retries": 0, **p} for name, p in probes.items()
    ]
    return run_together(named, within=TIMEOUT + 1, network=network).results


def assert_failed(result: ProbeResult, reason: str, *words: str) -> None:
    assert result.reason == reason, (result.probe, result.reason, result.error)
    assert result.failure is not None and result.failure.value == reason.split(".")[0]
    for word in words:
        assert word in (result.error or ""), (result.probe, result.error)


# --------------------------------------------------------------------------- HTTP/2

H2_HEADS: Crafted = {
    b"/status-abc": [(b":status", b"abc"), (b"content-type", b"application/json")],
    b"/status-2000": [(b":status", b"2000")],
    b"/status-underscore": [(b":status", b"2_00")],
    b"/no-status": [(b"content-type", b"application/json")],
    b"/upper": [(b":status", b"200"), (b"X-Upper", b"1")],
    b"/connection": [(b":status", b"200"), (b"connection", b"keep-alive")],
    b"/late-status": [(b"server", b"x"), (b":status", b"200")],
    b"/own-pseudo": [(b":status", b"200"), (b":path", b"/")],
}


@pytest.fixture(scope="module")
def h2_crafted(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cert = ca.issue_cert("localhost", "127.0.0.1")
    chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems)
    tmp = tmp_path_factory.mktemp("h2-crafted")
    with h2_server(chain, cert.private_key_pem.bytes(), str(tmp), H2_HEADS) as port:
        yield f"https://127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("path", "words"),
    [
        pytest.param("/status-abc", ["invalid :status 'abc'"], id="status-abc"),
        pytest.param("/status-2000", ["invalid :status '2000'"], id="status-2000"),
        pytest.param("/status-underscore", ["invalid :status '2_00'"], id="status-2_00"),
        pytest.param("/no-status", ["HTTP/2 response without :status"], id="no-status"),
        pytest.param("/upper", ["'X-Upper' has upper-case letters"], id="uppercase-name"),
        pytest.param("/connection", ["connection-specific header 'connection'"], id="connection"),
        pytest.param("/late-status", [":status after other headers"], id="status-late"),
        pytest.param("/own-pseudo", ["pseudo-header ':path'"], id="request-pseudo"),
    ],
)
def test_an_http2_head_curl_refuses_is_network_protocol(
    h2_crafted: str, trusting_network: Network, path: str, words: list[str]
) -> None:
    results = run_timed(
        {"hostile": {"url": f"{h2_crafted}{path}"}, "healthy": {"url": f"{h2_crafted}/"}},
        trusting_network,
    )
    assert_failed(results["hostile"], "network.protocol", *words)
    assert results["hostile"].details["http_version"] == "HTTP/2"
    assert results["healthy"].ok, results["healthy"].error
    assert results["healthy"].details["http_version"] == "HTTP/2"


# --------------------------------------------------------------------------- encodings


def _double_gzip_bomb(size: int) -> bytes:
    """gzip of gzip of ``size`` zero bytes, made a MiB at a time."""
    inner = zlib.compressobj(wbits=31)
    zeros = bytes(1 << 20)
    once = b"".join(inner.compress(zeros) for _ in range(size >> 20)) + inner.flush()
    return gzip.compress(once)


@pytest.fixture(scope="module")
def encodings() -> Iterator[str]:
    json_body = json.dumps({"status": "ok", "pad": "x" * 2000}).encode()
    stacked = brotli.compress(gzip.compress(json_body))
    routes: dict[str, Reply] = {
        "/gzip-br": answer(200, [("Content-Encoding", b"gzip, br")], stacked),
        "/two-headers": answer(
            200, [("Content-Encoding", b"gzip"), ("Content-Encoding", b"br")], stacked
        ),
        "/identity-deflate": answer(
            200, [("Content-Encoding", b"Identity, DEFLATE")], zlib.compress(json_body)
        ),
        "/bomb": answer(200, [("Content-Encoding", b"gzip, gzip")], _double_gzip_bomb(256 << 20)),
        "/not-gzip-inside": answer(
            200, [("Content-Encoding", b"gzip, br")], brotli.compress(json_body)
        ),
        "/six": answer(200, [("Content-Encoding", b"gzip, gzip, gzip, gzip, gzip, gzip")], b"x"),
        "/ok": answer(200, [], OK_JSON),
    }
    with http_server(routes) as base:
        yield base


JSON_OK = {"json": [{"path": "status", "equals": "ok"}]}


def test_stacked_content_encodings_are_decoded_in_order(encodings: str) -> None:
    results = run_timed(
        {
            "gzip-br": {"url": f"{encodings}/gzip-br", "expect": JSON_OK},
            "two-headers": {"url": f"{encodings}/two-headers", "expect": JSON_OK},
            "identity-deflate": {"url": f"{encodings}/identity-deflate", "expect": JSON_OK},
            "healthy": {"url": f"{encodings}/ok", "expect": JSON_OK},
        }
    )
    for name, result in results.items():
        assert result.ok, (name, result.error)
        assert result.details["truncated"] is False, name


def test_a_bomb_inside_a_stack_stays_bounded(encodings: str) -> None:
    results = run_timed(
        {
            "bomb": {"url": f"{encodings}/bomb", "max_body": "1MiB"},
            "healthy": {"url": f"{encodings}/ok"},
        }
    )
    bomb = results["bomb"]
    assert bomb.ok, bomb.error
    assert bomb.details["truncated"] is True and bomb.details["body_bytes"] == 1 << 20
    assert results["healthy"].ok


@pytest.mark.parametrize(
    ("path", "words"),
    [
        pytest.param("/not-gzip-inside", ["not valid gzip data"], id="invalid-inner-coding"),
        pytest.param(
            "/six",
            ["Content-Encoding: gzip, gzip, gzip, gzip, gzip, gzip", "cannot decode"],
            id="more-than-five-codings",
        ),
    ],
)
def test_a_body_that_cannot_be_decoded_is_network_protocol(
    encodings: str, path: str, words: list[str]
) -> None:
    results = run_timed(
        {
            "hostile": {"url": f"{encodings}{path}", "expect": {"body_contains": "ok"}},
            "healthy": {"url": f"{encodings}/ok"},
        }
    )
    assert_failed(results["hostile"], "network.protocol", *words)
    assert results["healthy"].ok


# --------------------------------------------------------------------------- redirects


@pytest.fixture(scope="module")
def refused() -> Iterator[int]:
    sock, port = refused_port()
    with sock:
        yield port


@pytest.fixture(scope="module")
def redirects(refused: int) -> Iterator[str]:
    def to(location: bytes, *extra: tuple[str, bytes]) -> Reply:
        return answer(302, [("Location", location), *extra])

    routes: dict[str, Reply] = {
        "/to-refused": to(f"http://127.0.0.1:{refused}/next".encode()),
        "/to-nxdomain": to(b"//nonexistent.invalid/"),
        "/to-broken-ipv6": to(b"http://[::1"),
        "/to-huge": to(b"/" + b"x" * 70_000),
        "/to-port-out-of-range": to(b"http://127.0.0.1:99999/"),
        "/to-port-zero": to(b"http://127.0.0.1:0/"),
        "/to-bad-idna": to(b"http://xn--ls8h.invalid/"),
        "/to-space-host": to(b"http://a b.invalid/"),
        "/to-ftp": to(b"ftp://127.0.0.1/"),
        "/to-utf8-path": to("/été".encode()),
        "/%C3%A9t%C3%A9": answer(200, [], OK_JSON),
        "/utf8-cookie": to(b"/ok", ("Set-Cookie", "a=été; Path=/".encode())),
        "/ok": answer(200, [], OK_JSON),
    }
    with http_server(routes) as base:
        yield base


def test_a_redirect_hop_that_fails_is_named(redirects: str, refused: int) -> None:
    results = run_timed(
        {
            "refused": {"url": f"{redirects}/to-refused"},
            "nxdomain": {"url": f"{redirects}/to-nxdomain"},
            "healthy": {"url": f"{redirects}/ok"},
        }
    )
    hop = f"http://127.0.0.1:{refused}/next"
    assert_failed(
        results["refused"],
        "network.refused",
        f"after a redirect to {hop}: connection refused",
        f"(127.0.0.1:{refused})",
    )
    assert_failed(
        results["nxdomain"],
        "dns.nxdomain",
        "after a redirect to http://nonexistent.invalid/: nonexistent.invalid",
    )
    assert results["healthy"].ok


@pytest.mark.parametrize(
    ("path", "words"),
    [
        pytest.param("/to-broken-ipv6", ["Location 'http://[::1'"], id="broken-ipv6"),
        pytest.param("/to-huge", ["URL too long", "(70001 characters)"], id="huge"),
        pytest.param(
            "/to-port-out-of-range", ["port 99999 out of range", "127.0.0.1:99999"], id="port"
        ),
        pytest.param("/to-port-zero", ["port 0 out of range"], id="port-zero"),
        pytest.param("/to-bad-idna", ["'http://xn--ls8h.invalid/'"], id="bad-idna"),
        pytest.param("/to-space-host", ["invalid host name 'a%20b.invalid'"], id="space-host"),
        pytest.param("/to-ftp", ["unsupported scheme 'ftp'"], id="ftp"),
    ],
)
def test_a_redirect_to_no_valid_url_is_server_redirects(
    redirects: str, path: str, words: list[str]
) -> None:
    results = run_timed(
        {"hostile": {"url": f"{redirects}{path}"}, "healthy": {"url": f"{redirects}/ok"}}
    )
    assert_failed(results["hostile"], "server.redirects", *words)
    assert results["healthy"].ok


def test_odd_but_legal_redirects_are_followed(redirects: str) -> None:
    results = run_timed(
        {
            "utf8-path": {"url": f"{redirects}/to-utf8-path", "expect": JSON_OK},
            "utf8-cookie": {"url": f"{redirects}/utf8-cookie", "expect": JSON_OK},
        }
    )
    for name, result in results.items():
        assert result.ok, (name, result.error)
        assert result.details["redirects"] == 1, name


# --------------------------------------------------------------------------- upload


@pytest.fixture(scope="module")
def uploads(refused: int) -> Iterator[str]:
    routes: dict[str, Reply] = {
        "/upload": answer(200, [("Content-Type", b"application/json")], b'{"id": "abc"}'),
        "/media/abc": answer(204, []),
        "/hanging/abc": hang,
        "/verify-broken/abc": answer(500, []),
        "/upload-deep": answer(200, [], b"[" * 100_000 + b"]" * 100_000),
        "/upload-nul": answer(200, [], b'{"id": "a\\u0000b"}'),
        "/ok": answer(200, [], OK_JSON),
    }
    with http_server(routes) as base:
        yield base


def _upload(base: str, cleanup: str) -> dict[str, Any]:
    return {
        "kind": "upload",
        "url": f"{base}/upload",
        "upload": {"size": "4KiB", "cleanup": cleanup},
    }


@pytest.mark.slow
def test_a_hanging_cleanup_neither_fails_nor_delays_the_probe(uploads: str, refused: int) -> None:
    results = run_timed(
        {
            "hanging-cleanup": _upload(uploads, f"{uploads}/hanging/{{id}}"),
            "refused-cleanup": _upload(uploads, f"http://127.0.0.1:{refused}/{{id}}"),
            "cleanup-ok": _upload(uploads, f"{uploads}/media/{{id}}"),
            "healthy": {"url": f"{uploads}/ok"},
        }
    )
    for name, result in results.items():
        assert result.ok, (name, result.error)
    hanging = results["hanging-cleanup"].details
    assert hanging["cleanup"].startswith("still running at the probe's deadline"), hanging
    assert "cleanup_status" not in hanging
    assert results["refused-cleanup"].details["cleanup"] == "failed: connection refused"
    assert results["cleanup-ok"].details["cleanup"] == "ok"
    assert results["cleanup-ok"].details["cleanup_status"] == 204


def test_a_cleanup_has_a_time_of_its_own(uploads: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upload_prober, "CLEANUP_TIMEOUT", 0.3)
    results = run_timed(
        {
            "hanging-cleanup": _upload(uploads, f"{uploads}/hanging/{{id}}"),
            "healthy": {"url": f"{uploads}/ok"},
        }
    )
    assert results["hanging-cleanup"].ok, results["hanging-cleanup"].error
    assert results["hanging-cleanup"].details["cleanup"] == "timed out after 300ms"
    assert results["healthy"].ok


# --------------------------------------------------------------------------- properties

_URLISH = st.one_of(
    st.text(max_size=80),
    st.builds(
        lambda scheme, host, port, path: f"{scheme}{host}{port}{path}",
        st.sampled_from(["http://", "https://", "//", "ftp://", "http:", "", "HTTP://"]),
        st.one_of(
            st.text(max_size=20),
            st.sampled_from(["[::1", "[::1]", "127.0.0.1", "xn--ls8h.invalid", "a b", "[v1.x]"]),
        ),
        st.one_of(st.just(""), st.integers(-10, 10**6).map(lambda p: f":{p}"), st.text(max_size=6)),
        st.text(max_size=30),
    ),
)


@settings(max_examples=200, deadline=None)
@given(location=_URLISH)
def test_any_location_is_a_url_we_can_use_or_server_redirects(location: str) -> None:
    base = httpx.URL("http://127.0.0.1:8080/a/b")
    try:
        nxt = redirect_rules.redirect_target(base, location)
    except ProbeFailure as failure:
        assert failure.classified.reason is Reason.SERVER_REDIRECTS
        return
    # everything a hop asks of the URL later must hold
    assert nxt.scheme in ("http", "https") and nxt.host
    exchange.route(nxt, "127.0.0.1", (), Attempt())
    redirect_rules.hop_headers((), nxt, "GET", httpx.Cookies(), None, redirect_rules.origin(base))
    httpx.Request("GET", nxt)


_HEADER_NAMES = st.one_of(
    st.sampled_from([b":status", b":path", b"content-type", b"X-Up", b"connection", b"te"]),
    st.binary(max_size=12),
)


@settings(max_examples=200, deadline=None)
@given(headers=st.lists(st.tuples(_HEADER_NAMES, st.binary(max_size=8)), max_size=6))
def test_any_http2_head_is_read_or_network_protocol(headers: list[tuple[bytes, bytes]]) -> None:
    try:
        status, regular = connection.h2_response_head(headers)
    except ProbeFailure as failure:
        assert failure.classified.reason is Reason.NETWORK_PROTOCOL
        return
    assert 100 <= status <= 999 and all(not name.startswith(b":") for name, _ in regular)


def _encoded(payload: bytes, coding: str) -> bytes:
    if coding in ("gzip", "x-gzip"):
        return gzip.compress(payload)
    if coding == "deflate":
        return zlib.compress(payload)
    if coding == "br":
        return bytes(brotli.compress(payload))
    return payload


_CODINGS = st.sampled_from(["gzip", "x-gzip", "deflate", "br", "identity", "zstd", " GZIP ", ""])


@settings(max_examples=200, deadline=None)
@given(
    listed=st.lists(_CODINGS, max_size=7),
    payload=st.binary(max_size=3000),
    garbage=st.booleans(),
    max_body=st.integers(0, 4000),
    chunk=st.integers(1, 5000),
)
def test_any_body_decodes_within_max_body_or_is_network_protocol(
    listed: list[str], payload: bytes, garbage: bool, max_body: int, chunk: int
) -> None:
    data = payload
    if not garbage:  # a body coded as its header says; else the bytes as they are
        for coding in listed:
            data = _encoded(data, coding.strip().lower())
    decoder = decoding.BoundedDecoder(", ".join(listed), max_body)
    body = b""
    try:
        for start in range(0, max(len(data), 1), chunk):
            piece, more = decoder.decode(data[start : start + chunk], max_body - len(body))
            body += piece
            assert len(body) <= max_body
            if more or decoder.finished:
                break
    except ProbeFailure as failure:
        assert failure.classified.reason is Reason.NETWORK_PROTOCOL
        return
    if not garbage and decoding.undecodable(", ".join(listed)) is None:
        assert body == payload[:max_body]


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.text(max_size=40), min_size=1, max_size=4))
def test_any_set_cookie_is_kept_or_left_out(values: list[str]) -> None:
    url = httpx.URL("http://127.0.0.1:8080/a")
    attempt = Attempt()
    headers = tuple(("set-cookie", v) for v in values)
    exchange._keep_cookies(headers, "GET", url, attempt)
    stored = list(attempt.jar.jar) if attempt.jar is not None else []
    for cookie in stored:  # whatever the jar keeps is masked in every output
        assert not cookie.value or cookie.value in attempt.secrets, cookie
    sent = redirect_rules.hop_headers((), url, "GET", attempt.jar, None, redirect_rules.origin(url))
    request = httpx.Request("GET", url, headers=sent)  # what is kept can be sent back
    cookie_header = request.headers.get("cookie", "")
    assert cookie_header.isascii()
    for cookie in stored:  # and is: the next hop carries every stored cookie
        pair = cookie.name if cookie.value is None else f"{cookie.name}={cookie.value}"
        assert pair in cookie_header, (cookie, cookie_header)
        assert pair.isascii()  # a cookie in UTF-8 could not be sent: never kept


def test_cleanup_is_recorded_when_the_verify_step_fails(uploads: str) -> None:
    upload = _upload(uploads, f"{uploads}/media/{{id}}")
    upload["upload"]["verify_url"] = f"{uploads}/verify-broken/{{id}}"
    results = run_timed({"verify-fails": upload, "healthy": {"url": f"{uploads}/ok"}})
    assert_failed(results["verify-fails"], "server.status", "verify_url", "status 500")
    assert results["verify-fails"].details["cleanup"] == "ok"
    assert results["healthy"].ok


@pytest.mark.parametrize(
    ("path", "words"),
    [
        pytest.param(
            "/upload-deep", ["upload response has no value for {id}"], id="json-nested-deep"
        ),
        pytest.param("/upload-nul", ["is not a URL", "/media/a\\x00b'"], id="nul-in-value"),
    ],
)
def test_an_upload_response_that_fills_no_url_is_server_assertion(
    uploads: str, path: str, words: list[str]
) -> None:
    hostile = {
        "kind": "upload",
        "url": f"{uploads}{path}",
        "upload": {"size": "4KiB", "verify_url": f"{uploads}/media/{{id}}"},
    }
    results = run_timed({"hostile": hostile, "healthy": {"url": f"{uploads}/ok"}})
    assert_failed(results["hostile"], "server.assertion", *words)
    assert results["healthy"].ok
