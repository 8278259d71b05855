"""HTTP versions and the tcp kind against real programs: nginx with and without HTTP/2,
redis-server, our own HTTP/2 server for RST_STREAM and GOAWAY, and small sockets for a
service that closes at once or never answers."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from synthprobe.demo import DemoPlatform
from synthprobe.models import Failure
from synthprobe.probers.base import Network

from .conftest import probe_once
from .h2server import h2_server
from .realprograms import NginxTls, nginx_tls, redis_server
from .sockets import accepting


@pytest.fixture(scope="module")
def nginx(ca: trustme.CA) -> Iterator[NginxTls]:
    cert = ca.issue_cert("localhost", "127.0.0.1")
    chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems)
    with nginx_tls(chain, cert.private_key_pem.bytes()) as running:
        yield running


@pytest.fixture(scope="module")
def redis() -> Iterator[int]:
    with redis_server() as port:
        yield port


@pytest.fixture(scope="module")
def h2_faults(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    cert = ca.issue_cert("localhost", "127.0.0.1")
    chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems)
    tmp = tmp_path_factory.mktemp("h2")
    with h2_server(chain, cert.private_key_pem.bytes(), str(tmp)) as port:
        yield port


@pytest.mark.parametrize(
    ("port_of", "http_version", "spoken"),
    [
        ("h2_port", "auto", "HTTP/2"),
        ("h1_port", "auto", "HTTP/1.1"),
        ("h2_port", "1.1", "HTTP/1.1"),
        ("h2_port", "2", "HTTP/2"),
    ],
    ids=["auto-h2-server", "auto-h1-server", "1.1-forced", "2-offered"],
)
def test_http_version_is_negotiated_by_alpn(
    nginx: NginxTls, trusting_network: Network, port_of: str, http_version: str, spoken: str
) -> None:
    port = getattr(nginx, port_of)
    result = probe_once(
        f"https://localhost:{port}/v1/feed",
        trusting_network,
        http_version=http_version,
        ip_version=4,
        expect={"json": [{"path": "status", "equals": "ok"}]},
    )
    assert result.ok, result.error
    assert result.details["http_version"] == spoken
    # every phase measured, whichever version: DNS (a name), connect, TLS, ttfb, body
    assert all(v is not None for v in result.timings_ms.values()), result.timings_ms


def test_http2_demanded_of_a_server_without_it_is_network_protocol(
    nginx: NginxTls, trusting_network: Network
) -> None:
    result = probe_once(
        f"https://localhost:{nginx.h1_port}/", trusting_network, http_version="2", ip_version=4
    )
    assert (result.failure, result.reason) == (Failure.NETWORK, "network.protocol")
    assert "does not offer HTTP/2" in (result.error or "")
    assert result.details["http_version"] == "HTTP/1.1"


def test_plain_http_stays_http1(platform: DemoPlatform) -> None:
    result = probe_once(f"{platform.base_url}/v1/feed")
    assert result.ok and result.details["http_version"] == "HTTP/1.1"


def test_no_connection_means_no_http_version(refused_url: str) -> None:
    result = probe_once(refused_url)
    assert result.reason == "network.refused"
    assert result.details["http_version"] is None


@pytest.mark.parametrize(
    ("path", "reason", "words"),
    [("/rst", "network.reset", "RST_STREAM"), ("/goaway", "network.closed", "GOAWAY")],
    ids=["rst-stream", "goaway"],
)
def test_http2_stream_reset_and_goaway_before_a_response(
    h2_faults: int, trusting_network: Network, path: str, reason: str, words: str
) -> None:
    result = probe_once(
        f"https://127.0.0.1:{h2_faults}{path}", trusting_network, retries=0, timeout="5s"
    )
    assert result.reason == reason, result.error
    assert words in (result.error or "")
    assert result.details["http_version"] == "HTTP/2"


def test_our_http2_server_answers_when_asked_nicely(
    h2_faults: int, trusting_network: Network
) -> None:
    # the control for the two faults above: the same server, a path it answers
    result = probe_once(f"https://127.0.0.1:{h2_faults}/", trusting_network)
    assert result.ok, result.error
    assert result.details["http_version"] == "HTTP/2"


# --------------------------------------------------------------------------- tcp


def tcp_probe(url: str, network: Network | None = None, **fields: object) -> dict[str, object]:
    result = probe_once(url, network, kind="tcp", **fields)
    return {
        "ok": result.ok,
        "reason": result.reason,
        "error": result.error,
        "details": result.details,
        "timings": result.timings_ms,
        "method": result.method,
    }


def test_redis_ping_pong(redis: int) -> None:
    r = tcp_probe(f"tcp://127.0.0.1:{redis}", tcp={"send": "PING\r\n", "expect": "+PONG"})
    assert r["ok"], r["error"]
    assert r["details"]["reply"] == "+PONG\r\n"  # type: ignore[index]
    timings = r["timings"]
    assert isinstance(timings, dict)
    assert timings["connect"] is not None and timings["ttfb"] is not None
    assert timings["tls"] is None and timings["transfer"] is None
    assert r["method"] == "TCP"
    assert "http_version" not in r["details"]  # type: ignore[operator]


def test_redis_reply_that_does_not_match_is_server_reply(redis: int) -> None:
    r = tcp_probe(f"tcp://127.0.0.1:{redis}", tcp={"send": "PING\r\n", "expect_regex": r"^\+PANG"})
    assert r["reason"] == "server.reply"
    assert "+PONG" in str(r["error"]) and "PANG" in str(r["error"])
    assert r["details"]["reply"] == "+PONG\r\n"  # type: ignore[index]


def test_redis_connect_check(redis: int) -> None:
    assert tcp_probe(f"tcp://127.0.0.1:{redis}")["ok"]


def test_tcp_refused(refused_url: str) -> None:
    port = refused_url.rsplit(":", 1)[1]
    assert tcp_probe(f"tcp://127.0.0.1:{port}")["reason"] == "network.refused"


@pytest.mark.slow
def test_tcp_service_that_never_replies_is_timeout_read() -> None:
    with accepting(lambda conn: None) as port:  # accepts, never answers
        r = tcp_probe(
            f"tcp://127.0.0.1:{port}", tcp={"send": "PING\r\n", "expect": "+PONG"}, timeout="1s"
        )
    assert r["reason"] == "timeout.read", r["error"]
    assert "no reply within 1s" in str(r["error"])


def test_tcp_service_that_closes_at_once_is_network_closed() -> None:
    with accepting(lambda conn: conn.close()) as port:
        r = tcp_probe(f"tcp://127.0.0.1:{port}", tcp={"expect": "220 "})
    assert r["reason"] == "network.closed", r["error"]
    assert str(r["error"]).startswith("closed without any reply")


def test_a_reply_that_stops_growing_does_not_wait_for_the_deadline(redis: int) -> None:
    # the quiet period ends it: far sooner than the 20 s deadline (a correctness check
    # on which rule ended the probe, not a timing threshold)
    r = tcp_probe(
        f"tcp://127.0.0.1:{redis}", tcp={"send": "PING\r\n", "expect": "nope"}, timeout="20s"
    )
    assert r["reason"] == "server.reply" and "nothing more for" in str(r["error"])


def test_tls_scheme_against_nginx_records_the_certificate(
    nginx: NginxTls, trusting_network: Network
) -> None:
    r = tcp_probe(f"tls://localhost:{nginx.h1_port}", trusting_network, ip_version=4)
    assert r["ok"], r["error"]
    assert r["timings"]["tls"] is not None  # type: ignore[index]
    assert r["details"]["cert_expires_in_days"] > 0  # type: ignore[index, operator]


def test_tls_scheme_with_an_untrusted_certificate_is_network_tls(nginx: NginxTls) -> None:
    r = tcp_probe(f"tls://localhost:{nginx.h1_port}", ip_version=4)
    assert r["reason"] == "network.tls", r["error"]
    assert tcp_probe(f"tls://localhost:{nginx.h1_port}", ip_version=4, verify_tls=False)["ok"]


def test_tcp_result_writes_a_whole_json_line(tmp_path: Path, redis: int) -> None:
    from synthprobe.output.jsonl import JsonlWriter
    from synthprobe.record import decode

    result = probe_once(
        f"tcp://127.0.0.1:{redis}", kind="tcp", tcp={"send": "PING\r\n", "expect": "+PONG"}
    )
    writer = JsonlWriter(str(tmp_path / "r.jsonl"))
    writer.write(result)
    writer.close()
    line = decode((tmp_path / "r.jsonl").read_bytes())
    assert (line.kind, line.failure) == ("tcp", None)


@pytest.mark.slow
def test_a_reply_that_keeps_coming_without_matching_is_server_reply_at_the_deadline() -> None:
    import threading
    import time

    def trickle(conn: socket.socket) -> None:
        def send() -> None:
            for _ in range(30):  # a byte every 0.2 s: never quiet for 0.5 s, never a match
                try:
                    conn.sendall(b"x")
                except OSError:
                    return
                time.sleep(0.2)

        threading.Thread(target=send, daemon=True).start()

    with accepting(trickle) as port:
        r = tcp_probe(f"tcp://127.0.0.1:{port}", tcp={"expect": "+OK"}, timeout="1s")
    assert r["reason"] == "server.reply", r["error"]
    assert str(r["error"]).startswith("reply still not matching after 1s")
    assert str(r["details"]["reply"]).startswith("xx")  # type: ignore[index]
