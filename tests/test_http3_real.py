"""HTTP/3 against real servers: Debian's caddy (HTTP/3 on UDP, Alt-Svc over TCP) and the
demo's qh3 server (demo/h3.py) where the server must misbehave on purpose; a UDP socket
that drops everything and a closed UDP port for the network's faults."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from synthprobe.demo.h3 import serve_h3
from synthprobe.probers.base import Network

from .conftest import probe_once, run_specs, specs_from_yaml
from .probing import probes_text
from .realprograms import Caddy, caddy_server, free_port


def _pems(ca: trustme.CA) -> tuple[bytes, bytes]:
    cert = ca.issue_cert("localhost", "127.0.0.1")
    chain = b"".join(blob.bytes() for blob in cert.cert_chain_pems)
    return chain, cert.private_key_pem.bytes()


@pytest.fixture(scope="module")
def caddy(ca: trustme.CA) -> Iterator[Caddy]:
    chain, key = _pems(ca)
    with caddy_server(chain, key) as running:
        yield running


class QuicServerThread:
    """demo/h3.py's qh3 server on its own loop in a thread, on a free UDP port."""

    def __init__(self, cert: str, key: str) -> None:
        self.port = free_port()
        self.cert, self.key = cert, key
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: Any = None

    def __enter__(self) -> int:
        self.thread.start()
        start = serve_h3("127.0.0.1", self.port, self.cert, self.key)
        self.server = asyncio.run_coroutine_threadsafe(start, self.loop).result(10)
        return self.port

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            self.server.close()
            await asyncio.sleep(0.01)  # the transport closes on the loop's next turns

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def quic(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    chain, key = _pems(ca)
    tmp = tmp_path_factory.mktemp("h3")
    (tmp / "cert.pem").write_bytes(chain)
    (tmp / "key.pem").write_bytes(key)
    with QuicServerThread(str(tmp / "cert.pem"), str(tmp / "key.pem")) as port:
        yield port


def test_caddy_answers_over_http3_with_the_handshake_as_connect(
    caddy: Caddy, trusting_network: Network
) -> None:
    result = probe_once(
        f"https://localhost:{caddy.port}/index.txt",
        trusting_network,
        http_version="3",
        ip_version=4,
        expect={"body_contains": "hello over caddy"},
    )
    assert result.ok, result.error
    assert result.details["http_version"] == "HTTP/3"
    timings = result.timings_ms
    # the QUIC handshake is connect (TLS inside it): tls stays null, every other phase set
    assert timings["tls"] is None
    assert all(timings[p] is not None for p in ("dns", "connect", "ttfb", "transfer"))
    assert result.details["remote_ip"] == "127.0.0.1"
    assert result.details["cert_expires_in_days"] > 0


@pytest.mark.parametrize(
    ("http_version", "spoken"),
    [("auto", "HTTP/2"), ("1.1", "HTTP/1.1")],
    ids=["h2", "h1"],
)
def test_alt_svc_h3_is_recorded_over_tcp(
    caddy: Caddy, trusting_network: Network, http_version: str, spoken: str
) -> None:
    result = probe_once(
        f"https://127.0.0.1:{caddy.port}/index.txt", trusting_network, http_version=http_version
    )
    assert result.ok, result.error
    assert result.details["http_version"] == spoken
    assert result.details["alt_svc_h3"] is True


def test_alt_svc_is_absent_where_none_was_advertised(quic: int, trusting_network: Network) -> None:
    result = probe_once(f"https://127.0.0.1:{quic}/v1/feed", trusting_network, http_version="3")
    assert result.ok, result.error
    assert "alt_svc_h3" not in result.details


def test_a_redirect_stays_on_http3_in_a_journey(caddy: Caddy, trusting_network: Network) -> None:
    text = probes_text(
        {
            "name": "journey",
            "url": f"https://127.0.0.1:{caddy.port}/old",
            "http_version": "3",
            "timeout": "3s",
            "expect": {"body_contains": "hello"},
            "steps": [
                {
                    "name": "again",
                    "url": f"https://127.0.0.1:{caddy.port}/old",
                    "expect": {"body_contains": "hello"},
                }
            ],
        }
    )
    [result] = run_specs(specs_from_yaml(text), trusting_network)
    assert result.ok, result.error
    assert result.details["http_version"] == "HTTP/3"
    steps = result.details["steps"]
    assert [s["http_version"] for s in steps] == ["HTTP/3", "HTTP/3"], steps


def test_a_redirect_to_http_cannot_be_followed_over_http3(
    caddy: Caddy, trusting_network: Network
) -> None:
    result = probe_once(
        f"https://127.0.0.1:{caddy.port}/to-http", trusting_network, http_version="3"
    )
    assert result.reason == "network.protocol", result.error
    assert "after a redirect to http://127.0.0.1" in (result.error or "")
    assert "HTTP/3 needs an https:// URL" in (result.error or "")


def test_live_hls_over_http3(caddy: Caddy, trusting_network: Network) -> None:
    # a live playlist and its segments, written here, served by caddy over QUIC
    (caddy.www / "live").mkdir(exist_ok=True)
    segment = bytes([0x47]) + bytes(187)  # one MPEG-TS packet: starts like TS
    for n in (7, 8):
        (caddy.www / "live" / f"seg-{n}.ts").write_bytes(segment * 40)
    (caddy.www / "live" / "index.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n"
        "#EXTINF:2.0,\nseg-7.ts\n#EXTINF:2.0,\nseg-8.ts\n"
    )
    result = probe_once(
        f"https://127.0.0.1:{caddy.port}/live/index.m3u8",
        trusting_network,
        kind="live",
        http_version="3",
        live={"segments": 2},
    )
    assert result.ok, result.error
    assert result.details["http_version"] == "HTTP/3"
    assert result.details["format"] == "hls"


def test_an_upload_and_its_verification_over_http3(quic: int, trusting_network: Network) -> None:
    result = probe_once(
        f"https://127.0.0.1:{quic}/upload/clip-1",
        trusting_network,
        kind="upload",
        http_version="3",
        timeout="5s",
        upload={"size": "64KiB", "verify_url": f"https://127.0.0.1:{quic}/upload/{{id}}"},
        expect={"status": [201]},
    )
    assert result.ok, result.error
    assert result.details["http_version"] == "HTTP/3"
    assert result.bytes_out >= 64 * 1024
    assert result.details["upload_ms"] > 0  # until every byte went out once
    assert result.details["available_ms"] is not None  # verify_url answered over HTTP/3


@pytest.mark.parametrize(
    ("path", "reason", "words"),
    [
        ("/close", "network.protocol", "closed by the server with H3_INTERNAL_ERROR (0x102)"),
        ("/reset", "network.reset", "stream reset by the server (H3_REQUEST_REJECTED (0x10b))"),
        ("/status/404", "server.status", "status 404"),
        pytest.param(
            "/slow?s=5",
            "timeout.read",
            "no response headers within 1s",
            marks=pytest.mark.slow,  # waits out its 1 s deadline
        ),
        ("/huge-head", "network.protocol", "broke HTTP/3"),
    ],
    ids=["close-with-code", "reset-stream", "404", "slow", "oversized-head"],
)
def test_what_an_http3_server_does_gets_its_reason(
    quic: int, trusting_network: Network, path: str, reason: str, words: str
) -> None:
    result = probe_once(
        f"https://127.0.0.1:{quic}{path}", trusting_network, http_version="3", timeout="1s"
    )
    assert result.reason == reason, result.error
    assert words in (result.error or ""), result.error
    assert result.details["http_version"] == "HTTP/3"


@pytest.mark.slow  # waits out its 1 s deadline
def test_a_flood_of_frames_of_unknown_type_ends_at_the_deadline_in_bounded_memory(
    quic: int, trusting_network: Network
) -> None:
    tracemalloc.start()
    try:
        result = probe_once(
            f"https://127.0.0.1:{quic}/unknown-frames",
            trusting_network,
            http_version="3",
            timeout="1s",
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.reason == "timeout.read", result.error
    # what arrived was dropped as it came: far less than what the server sent meanwhile
    assert peak < 8 * 1024 * 1024, peak


def test_a_flood_of_data_frames_is_cut_at_max_body(quic: int, trusting_network: Network) -> None:
    result = probe_once(
        f"https://127.0.0.1:{quic}/flood", trusting_network, http_version="3", max_body="4KiB"
    )
    assert result.ok, result.error
    assert result.details["truncated"] is True
    assert result.details["body_bytes"] == 4096


def test_a_udp_port_that_drops_everything_is_timeout_connect() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        result = probe_once(
            f"https://127.0.0.1:{port}/", http_version="3", timeout="500ms", verify_tls=False
        )
    assert result.reason == "timeout.connect", result.error
    assert result.error == f"no answer to the QUIC handshake within 500ms (127.0.0.1:{port})"
    assert result.timings_ms["connect"] is None


def test_the_deadline_closes_the_udp_socket() -> None:
    # the runner cancels the handshake at its deadline: the socket must go with it
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        url = f"https://127.0.0.1:{silent.getsockname()[1]}/"
        probe_once(url, http_version="3", timeout="100ms", verify_tls=False)  # warm
        before = sorted(os.listdir("/proc/self/fd"))
        result = probe_once(url, http_version="3", timeout="100ms", verify_tls=False)
        assert result.reason == "timeout.connect"
        assert sorted(os.listdir("/proc/self/fd")) == before


def test_a_closed_udp_port_is_refused() -> None:
    port = free_port()  # a TCP port just freed: nothing listens on its UDP twin either
    result = probe_once(f"https://127.0.0.1:{port}/", http_version="3", verify_tls=False)
    assert result.reason == "network.refused", result.error
    assert f"UDP port {port} unreachable (ICMP)" in (result.error or "")


def test_an_untrusted_certificate_is_network_tls(caddy: Caddy) -> None:
    # the default trust (certifi) knows nothing of the test CA
    result = probe_once(f"https://127.0.0.1:{caddy.port}/", Network(), http_version="3")
    assert result.reason == "network.tls", result.error
    assert "QUIC TLS handshake failed" in (result.error or "")


def test_a_name_the_certificate_does_not_cover_is_network_tls(
    ca: trustme.CA, tmp_path: Path
) -> None:
    other = ca.issue_cert("elsewhere.invalid")
    (tmp_path / "cert.pem").write_bytes(b"".join(b.bytes() for b in other.cert_chain_pems))
    (tmp_path / "key.pem").write_bytes(other.private_key_pem.bytes())
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    with QuicServerThread(str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")) as port:
        result = probe_once(
            f"https://127.0.0.1:{port}/v1/feed", Network(trusted=ctx), http_version="3"
        )
    assert result.reason == "network.tls", result.error
