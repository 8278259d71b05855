"""The grpc kind against real servers: grpcio with grpcio-health-checking (the reference
implementation), in a process of its own (its health_pb2 and grpclib's register the same
proto names in protobuf's one pool); a plain HTTP/1.1 server, a silent one and a refused
port; and hostile HTTP/2 servers of our own (the h2 library, as httpx uses it), each
answering the health check wrongly in one way."""

from __future__ import annotations

import contextlib
import datetime
import http.server
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest
import trustme
from grpclib.health.v1 import health_pb2

from synthprobe.probers.base import Network
from synthprobe.probers.grpc.prober import frame

from .commands import results, run_probe
from .conftest import refused_port
from .probing import probes_text, run_beside_healthy, run_together, write_config
from .sockets import accepting

SERVER = """
import sys
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

mode, token, cert, key = sys.argv[1:5]


class Auth(grpc.ServerInterceptor):
    # proves what metadata arrived: a wrong token is named back in the error
    def intercept_service(self, continuation, details):
        given = dict(details.invocation_metadata).get("authorization", "")
        if token and given != token:
            def deny(request, context):
                context.abort(grpc.StatusCode.UNAUTHENTICATED, f"bad authorization {given!r}")
            return grpc.unary_unary_rpc_method_handler(deny)
        return continuation(details)


server = grpc.server(futures.ThreadPoolExecutor(4), interceptors=[Auth()])
if mode == "health":
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("chat.v1.Messages", health_pb2.HealthCheckResponse.SERVING)
    servicer.set("feed.v1.Ranker", health_pb2.HealthCheckResponse.NOT_SERVING)
    servicer.set("feed.v1.Warming", health_pb2.HealthCheckResponse.UNKNOWN)
    servicer.set("feed.v1.Gone", health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
if cert:
    with open(key, "rb") as k, open(cert, "rb") as c:
        creds = grpc.ssl_server_credentials([(k.read(), c.read())])
    port = server.add_secure_port("127.0.0.1:0", creds)
else:
    port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
sys.stdin.read()  # until the test closes our stdin
server.stop(0)
"""

TOKEN = "Bearer right-s3cret"
DAYS_30 = datetime.timedelta(days=30)


@contextlib.contextmanager
def grpcio_server(mode: str, *, token: str = "", cert: str = "", key: str = "") -> Iterator[int]:
    """grpcio serving on 127.0.0.1: ``health`` (the statuses above) or ``bare`` (no
    health service at all); with ``token``, only calls carrying it as authorization."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, mode, token, cert, key],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip().isdigit(), f"grpcio server did not start: {line!r}"
        yield int(line)
    finally:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()


@pytest.fixture(scope="module")
def health_port() -> Iterator[int]:
    with grpcio_server("health") as port:
        yield port


@pytest.fixture(scope="module")
def bare_port() -> Iterator[int]:
    with grpcio_server("bare") as port:
        yield port


@pytest.fixture(scope="module")
def auth_port() -> Iterator[int]:
    with grpcio_server("health", token=TOKEN) as port:
        yield port


@pytest.fixture(scope="module")
def tls_port(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    folder = tmp_path_factory.mktemp("grpc-tls")
    # 30 days left: cert_min_days can fail on it (trustme's default runs past 3650)
    issued = ca.issue_cert(
        "localhost", "127.0.0.1", not_after=datetime.datetime.now(datetime.UTC) + DAYS_30
    )
    cert, key = folder / "cert.pem", folder / "key.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    key.write_bytes(issued.private_key_pem.bytes())
    with grpcio_server("health", cert=str(cert), key=str(key)) as port:
        yield port


def _probe(name: str, url: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "kind": "grpc", "url": url, "timeout": "2s", **fields}


def _one(probe: dict[str, Any], network: Network | None = None) -> Any:
    return run_together([probe], network=network)[probe["name"]]


# --- the reference server ------------------------------------------------------------

STATUSES = [
    pytest.param("", True, None, "OK", "SERVING", id="whole-server"),
    pytest.param("chat.v1.Messages", True, None, "OK", "SERVING", id="serving"),
    pytest.param(
        "feed.v1.Ranker",
        False,
        ("server.status", "serving status NOT_SERVING"),
        "OK",
        "NOT_SERVING",
        id="not-serving",
    ),
    pytest.param(
        "feed.v1.Warming",
        False,
        ("server.status", "serving status UNKNOWN"),
        "OK",
        "UNKNOWN",
        id="unknown",
    ),
    pytest.param(
        "feed.v1.Gone",
        False,
        ("server.status", "serving status SERVICE_UNKNOWN"),
        "OK",
        "SERVICE_UNKNOWN",
        id="service-unknown",
    ),
    pytest.param(
        "no.such.Service",
        False,
        ("server.status", "grpc status NOT_FOUND"),
        "NOT_FOUND",
        None,
        id="unknown-service",
    ),
]


@pytest.mark.parametrize(("service", "ok", "failed", "grpc_status", "serving"), STATUSES)
def test_the_reference_health_service(
    health_port: int,
    service: str,
    ok: bool,
    failed: tuple[str, str] | None,
    grpc_status: str,
    serving: str | None,
) -> None:
    result = _one(_probe("g", f"grpc://localhost:{health_port}", grpc={"service": service}))
    assert result.ok is ok, result.error
    if failed is not None:
        assert (result.reason.value, result.error.split(" (")[0]) == failed
    assert result.details["grpc_status"] == grpc_status
    assert result.details.get("serving_status") == serving
    timings = result.timings_ms
    assert timings["dns"] is not None and timings["connect"] is not None
    assert timings["tls"] is None and timings["ttfb"] is not None
    assert timings["total"] >= timings["dns"] + timings["connect"] + timings["ttfb"]


def test_a_server_without_the_health_service_is_unimplemented(bare_port: int) -> None:
    result = _one(_probe("g", f"grpc://127.0.0.1:{bare_port}"))
    assert (result.ok, result.reason.value) == (False, "server.status")
    assert result.error.startswith("grpc status UNIMPLEMENTED"), result.error
    assert result.details["grpc_status"] == "UNIMPLEMENTED"


def test_grpcs_verifies_the_certificate_and_reports_its_expiry(
    tls_port: int, trusting_network: Network
) -> None:
    url = f"grpcs://localhost:{tls_port}"
    run = run_together(
        [_probe("trusted", url), _probe("unverified", url, verify_tls=False)],
        network=trusting_network,
    )
    trusted = run["trusted"]
    assert trusted.ok, trusted.error
    assert trusted.details["serving_status"] == "SERVING"
    assert 29 <= trusted.details["cert_expires_in_days"] <= 30
    assert trusted.timings_ms["tls"] is not None
    assert run["unverified"].ok, run["unverified"].error


def test_grpcs_with_an_untrusted_certificate_is_network_tls(tls_port: int) -> None:
    result = _one(_probe("g", f"grpcs://localhost:{tls_port}"))
    assert (result.ok, result.reason.value) == (False, "network.tls")
    assert "certificate" in result.error


def test_cert_min_days_is_judged_on_grpcs(tls_port: int, trusting_network: Network) -> None:
    probe = _probe("g", f"grpcs://localhost:{tls_port}", expect={"cert_min_days": 60})
    result = _one(probe, trusting_network)
    assert (result.ok, result.reason.value) == (False, "server.cert_expiring")


def test_grpc_on_a_tls_port_is_not_grpc(tls_port: int) -> None:
    result = _one(_probe("g", f"grpc://127.0.0.1:{tls_port}"))
    assert not result.ok
    assert result.reason.value in ("network.protocol", "network.closed"), result.error


@pytest.mark.slow  # two runs of the command, each a Python start-up
def test_metadata_arrives_and_a_secret_in_it_is_masked(auth_port: int, tmp_path: Path) -> None:
    url = f"grpc://127.0.0.1:{auth_port}"
    config = write_config(
        tmp_path,
        probes_text(
            _probe("right", url, headers={"authorization": "Bearer ${RIGHT}"}),
            _probe("wrong", url, headers={"Authorization": "Bearer ${WRONG}"}),
        ),
    )
    out = tmp_path / "out.jsonl"
    done = run_probe(
        "run",
        str(config),
        "--output",
        str(out),
        "--no-state",
        env={"RIGHT": "right-s3cret", "WRONG": "wrong-s3cret"},
    )
    assert done.returncode == 1, done.stderr
    lines = {line["probe"]: line for line in results(out)}
    assert lines["right"]["ok"], lines["right"]["error"]
    wrong = lines["wrong"]
    assert wrong["reason"] == "server.status"
    # the server names the value it got: it arrived, and the line shows it masked
    assert wrong["error"].startswith("grpc status UNAUTHENTICATED: bad authorization 'Bearer ***'")
    text = out.read_text() + done.stdout + done.stderr
    assert "s3cret" not in text


# --- faults ----------------------------------------------------------------------------


class _Plain(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def http11_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Plain)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_an_http11_server_behind_a_grpc_url_is_network_protocol(
    http11_port: int, health_port: int
) -> None:
    run = run_beside_healthy(
        _probe("h1", f"grpc://127.0.0.1:{http11_port}"),
        _probe("healthy", f"grpc://127.0.0.1:{health_port}"),
        within=2.5,
    )
    result = run["h1"]
    assert result.reason.value == "network.protocol"
    # Python's server answers a request line of HTTP/2.0 with a bare HTML page
    assert result.error.startswith("not HTTP/2: the server answered '<!DOCTYPE HTML>'")


def _silent(conn: socket.socket) -> None:
    pass  # accepted, read by nobody, answered never


def test_a_server_that_never_answers_is_timeout_read(health_port: int) -> None:
    with accepting(_silent) as port:
        run = run_beside_healthy(
            _probe("silent", f"grpc://127.0.0.1:{port}", timeout="0.5s"),
            _probe("healthy", f"grpc://127.0.0.1:{health_port}"),
            within=1.4,
        )
    result = run["silent"]
    assert (result.reason.value, result.error.split(" (")[0]) == (
        "timeout.read",
        "no response headers within 500ms",
    )
    assert result.timings_ms["connect"] is not None and result.timings_ms["ttfb"] is None


def test_a_refused_port_is_network_refused() -> None:
    sock, port = refused_port()
    try:
        result = _one(_probe("g", f"grpc://127.0.0.1:{port}"))
    finally:
        sock.close()
    assert (result.reason.value, result.error.split(" (")[0]) == (
        "network.refused",
        "connection refused",
    )


# --- hostile HTTP/2 servers ------------------------------------------------------------


Answer = Callable[[h2.connection.H2Connection, int], None]
"""Writes a crafted answer to the health check on stream N (h2's own checks off)."""


def _serve(conn: socket.socket, answer: Answer) -> None:
    config = h2.config.H2Configuration(
        client_side=False, validate_outbound_headers=False, normalize_outbound_headers=False
    )
    h2conn = h2.connection.H2Connection(config)
    h2conn.initiate_connection()
    h2conn.local_settings.max_header_list_size = 2**24
    with contextlib.suppress(OSError):
        conn.sendall(h2conn.data_to_send())
        while data := conn.recv(65536):
            for event in h2conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    if isinstance(answer, Capture):
                        answer.seen.append(event.headers)
                    answer(h2conn, event.stream_id)
                    conn.sendall(h2conn.data_to_send())
                    if isinstance(answer, Flood):
                        answer.flood(conn)
            conn.sendall(h2conn.data_to_send())


@contextlib.contextmanager
def hostile(answer: Answer) -> Iterator[int]:
    def handle(conn: socket.socket) -> None:
        threading.Thread(target=_serve, args=(conn, answer), daemon=True).start()

    with accepting(handle) as port:
        yield port


HEAD = [(":status", "200"), ("content-type", "application/grpc")]
SERVING = frame(
    health_pb2.HealthCheckResponse(
        status=health_pb2.HealthCheckResponse.SERVING
    ).SerializeToString()
)


def _answer(
    data: bytes = SERVING,
    trailers: list[tuple[str, str]] | None = None,
    head: list[tuple[str, str]] = HEAD,
) -> Answer:
    def answer(conn: h2.connection.H2Connection, stream: int) -> None:
        if trailers is None:  # trailers-only: the head carries grpc-status
            conn.send_headers(stream, head, end_stream=True)
            return
        conn.send_headers(stream, head)
        if data:
            conn.send_data(stream, data)
        conn.send_headers(stream, trailers, end_stream=True)

    return answer


def _plain(head: list[tuple[str, str]]) -> Answer:
    """An HTTP/2 answer that is not gRPC: a page, no trailers."""

    def answer(conn: h2.connection.H2Connection, stream: int) -> None:
        conn.send_headers(stream, head)
        conn.send_data(stream, b"<html>not here</html>", end_stream=True)

    return answer


@dataclass
class Capture:
    """Keeps each request's headers, answers SERVING."""

    seen: list[Any] = field(default_factory=list)

    def __call__(self, conn: h2.connection.H2Connection, stream: int) -> None:
        _answer(trailers=[("grpc-status", "0")])(conn, stream)


@dataclass
class Flood:
    """Headers, then endless PING frames: the answer never comes."""

    def __call__(self, conn: h2.connection.H2Connection, stream: int) -> None:
        conn.send_headers(stream, HEAD)

    def flood(self, sock: socket.socket) -> None:
        ping = b"\x00\x00\x08\x06\x00\x00\x00\x00\x00" + b"\x00" * 8
        with contextlib.suppress(OSError):
            for _ in range(20):
                sock.sendall(ping * 500)


HOSTILE = [
    pytest.param(
        _answer(trailers=[("grpc-status", "zero")]),
        {},
        ("network.protocol", "grpc-status 'zero' is not a number"),
        id="grpc-status-not-a-number",
    ),
    pytest.param(
        _answer(head=[*HEAD, ("grpc-status", "14"), ("grpc-message", "backend%20down")]),
        {},
        ("server.status", "grpc status UNAVAILABLE: backend down"),
        id="trailers-only-error",
    ),
    pytest.param(
        _answer(head=[*HEAD, ("grpc-status", "0")]),
        {},
        ("network.protocol", "grpc status OK with no response message"),
        id="trailers-only-ok-without-a-message",
    ),
    pytest.param(
        _answer(data=frame(b"\x08\x01" * 4096), trailers=[("grpc-status", "0")]),
        {"max_body": "1KiB"},
        ("network.protocol", "response message over max_body (1024 bytes): not a health answer"),
        id="message-over-max-body",
    ),
    pytest.param(
        _answer(data=frame(b"\xff\xff\xff\xff"), trailers=[("grpc-status", "0")]),
        {},
        ("network.protocol", "malformed HealthCheckResponse: "),
        id="malformed-protobuf",
    ),
    pytest.param(
        _answer(data=b"\x01" + SERVING[1:], trailers=[("grpc-status", "0")]),
        {},
        ("network.protocol", "grpc status OK with a compressed message"),
        id="compressed-unasked",
    ),
    pytest.param(
        _plain([(":status", "200"), ("content-type", "text/html")]),
        {},
        ("network.protocol", "not gRPC: content-type 'text/html'"),
        id="wrong-content-type",
    ),
    pytest.param(
        _plain([(":status", "404"), ("content-type", "text/plain")]),
        {},
        ("network.protocol", "not gRPC: HTTP status 404"),
        id="http-404",
    ),
    pytest.param(
        _answer(trailers=[("x-other", "1")]),
        {},
        ("network.protocol", "not gRPC: the response has no grpc-status"),
        id="no-grpc-status",
    ),
    pytest.param(
        # 20 KB decoded, over the 16 KiB we announce (pure-Python HPACK makes more slow)
        _answer(head=[*HEAD, ("x-huge", "a" * 20_000)], trailers=[("grpc-status", "0")]),
        {},
        ("network.protocol", "HTTP/2 error from the server: "),
        id="oversized-headers",
    ),
    pytest.param(
        Flood(),
        {"timeout": "3s"},
        ("network.protocol", "server sent over 1000 HTTP/2 frames for one health check"),
        id="ping-flood",
    ),
]


@pytest.mark.parametrize(("answer", "fields", "expected"), HOSTILE)
def test_a_hostile_answer_gets_its_class_and_message_for_that_probe_alone(
    answer: Answer, fields: dict[str, Any], expected: tuple[str, str], health_port: int
) -> None:
    with hostile(answer) as port:
        run = run_beside_healthy(
            _probe("hostile", f"grpc://127.0.0.1:{port}", **{"timeout": "1s", **fields}),
            _probe("healthy", f"grpc://127.0.0.1:{health_port}"),
            within=1.4,
        )
    result = run["hostile"]
    reason, text = expected
    assert (result.ok, result.reason.value) == (False, reason), result.error
    assert result.error.startswith(text), result.error


def test_the_call_as_sent_carries_metadata_a_deadline_and_a_traceparent() -> None:
    capture = Capture()
    with hostile(capture) as port:
        probe = _probe(
            "g",
            f"grpc://localhost:{port}",
            grpc={"service": "chat.v1.Messages"},
            headers={"X-Tenant": "t1", "Content-Type": "text/plain"},
        )
        result = _one(probe)
    assert result.ok, result.error
    [raw] = capture.seen
    sent = {bytes(k).decode(): bytes(v).decode() for k, v in raw}
    assert sent[":method"] == "POST" and sent[":path"] == "/grpc.health.v1.Health/Check"
    assert sent[":authority"] == f"localhost:{port}"
    assert (sent["content-type"], sent["te"], sent["x-tenant"]) == (
        "application/grpc",
        "trailers",
        "t1",
    )
    assert sent["grpc-timeout"].endswith("m")  # the 2 s left, in milliseconds
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", sent["traceparent"])
    assert sent["traceparent"].split("-")[1] == result.trace_id
