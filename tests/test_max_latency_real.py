"""``max_latency`` is judged for every kind, against real servers (SPEC "Fourth
wave"): each kind fails ``server.slow`` when slower than its limit and passes within
it. Slowness is real: a server that waits before it answers (the demo platform's
``/fault/slow``, a TCP service of our own, websocketd running a script that sleeps,
dnsmasq behind a UDP relay that holds each query, a TCP relay that holds each
connection before the demo platform's live stream)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from synthprobe.demo.server import DemoPlatform
from synthprobe.models import ProbeResult

from .conftest import probe_once
from .realprograms import dnsmasq, websocketd
from .sockets import accepting

pytestmark = pytest.mark.slow  # each case waits for a server that waits

HOLD = 0.3
"""Seconds each slow server waits before it answers."""
TOO_TIGHT = "100ms"
ROOMY = "20s"


def in_thread(handle: Callable[[socket.socket], None]) -> Callable[[socket.socket], None]:
    """A connection handler that waits, run in a thread of its own (``accepting`` calls
    its handler in the accepting thread)."""
    return lambda conn: threading.Thread(target=handle, args=(conn,), daemon=True).start()


@contextlib.contextmanager
def udp_serving(serve: Callable[[socket.socket], None]) -> Iterator[int]:
    """A UDP socket on 127.0.0.1 served by ``serve`` in a daemon thread; yields its port."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        threading.Thread(target=serve, args=(sock,), daemon=True).start()
        yield int(sock.getsockname()[1])


def _slow_pong(conn: socket.socket) -> None:
    with conn:
        conn.settimeout(10)
        with contextlib.suppress(OSError):
            conn.recv(1024)
            time.sleep(HOLD)
            conn.sendall(b"+PONG\r\n")
            conn.recv(1024)  # until the prober closes


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


def holding_relay(port: int) -> Callable[[socket.socket], None]:
    """Each connection held HOLD seconds, then relayed to 127.0.0.1:port both ways."""

    def relay(conn: socket.socket) -> None:
        time.sleep(HOLD)
        with conn, socket.create_connection(("127.0.0.1", port), timeout=10) as upstream:
            back = threading.Thread(target=_pump, args=(upstream, conn), daemon=True)
            back.start()
            _pump(conn, upstream)
            back.join(10)

    return relay


def holding_udp_relay(port: int) -> Callable[[socket.socket], None]:
    """Each DNS query held HOLD seconds, then asked of 127.0.0.1:port; the answer
    returned to whoever asked."""

    def answer(sock: socket.socket, query: bytes, asker: Any) -> None:
        time.sleep(HOLD)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as up:
            up.settimeout(5)
            up.sendto(query, ("127.0.0.1", port))
            with contextlib.suppress(OSError):
                sock.sendto(up.recv(65535), asker)

    def serve(sock: socket.socket) -> None:
        for _ in range(100):  # bounded: a test asks a handful of times
            try:
                query, asker = sock.recvfrom(65535)
            except OSError:
                return
            threading.Thread(target=answer, args=(sock, query, asker), daemon=True).start()

    return serve


def judged(result: ProbeResult, limit: str) -> None:
    """Slow against a tight limit fails as server.slow; a roomy one passes."""
    total = result.timings_ms["total"]
    assert total is not None
    if limit == TOO_TIGHT:
        assert result.reason is not None and result.reason.value == "server.slow", result.error
        assert result.error is not None and f"took {total:.0f}ms" in result.error
        assert "max_latency is 100ms" in result.error
        assert total > 100
    else:
        assert result.ok, result.error
        assert total >= HOLD * 1000  # the server really was slow


LIMITS = pytest.mark.parametrize("limit", [TOO_TIGHT, ROOMY], ids=["slower", "within"])


@LIMITS
def test_http(platform: DemoPlatform, limit: str) -> None:
    url = f"{platform.base_url}/fault/slow?delay={HOLD}"
    judged(probe_once(url, expect={"max_latency": limit}), limit)


@LIMITS
def test_journey_step(platform: DemoPlatform, limit: str) -> None:
    step = {"name": "slow-step", "url": f"{platform.base_url}/fault/slow?delay={HOLD}"}
    step["expect"] = {"max_latency": limit}  # type: ignore[assignment]
    result = probe_once(f"{platform.base_url}/v1/feed", steps=[step], timeout="5s")
    if limit == TOO_TIGHT:
        assert result.reason is not None and result.reason.value == "server.slow", result.error
        assert result.error is not None and result.error.startswith("slow-step: took ")
        [_, slow] = result.details["steps"]
        assert slow["name"] == "slow-step" and slow["total_ms"] >= HOLD * 1000
    else:
        assert result.ok, result.error


@LIMITS
def test_upload(platform: DemoPlatform, limit: str) -> None:
    url = f"{platform.base_url}/fault/slow?delay={HOLD}"
    result = probe_once(url, kind="upload", upload={"size": "4KiB"}, expect={"max_latency": limit})
    judged(result, limit)
    assert result.bytes_out > 4096


@LIMITS
def test_live(platform: DemoPlatform, limit: str) -> None:
    with accepting(in_thread(holding_relay(platform.port))) as port:
        url = f"http://127.0.0.1:{port}/live/master.m3u8"
        result = probe_once(url, kind="live", timeout="10s", expect={"max_latency": limit})
    judged(result, limit)
    assert result.details["format"] == "hls"


@LIMITS
def test_tcp(limit: str) -> None:
    with accepting(in_thread(_slow_pong)) as port:
        result = probe_once(
            f"tcp://127.0.0.1:{port}",
            kind="tcp",
            tcp={"send": "PING\r\n", "expect": "+PONG"},
            expect={"max_latency": limit},
        )
    judged(result, limit)
    assert result.details["reply"] == "+PONG\r\n"


@LIMITS
def test_messaging(limit: str) -> None:
    script = f'while read line; do sleep {HOLD}; echo "$line"; done'
    with websocketd("sh", "-c", script) as url:
        result = probe_once(
            url,
            kind="messaging",
            timeout="5s",
            messaging={"send": "ping", "expect": "ping"},
            expect={"max_latency": limit},
        )
    judged(result, limit)


@LIMITS
def test_dns(limit: str) -> None:
    with dnsmasq() as dns_port, udp_serving(holding_udp_relay(dns_port)) as port:
        result = probe_once(
            f"dns://127.0.0.1:{port}/web.synth.invalid?type=A",
            kind="dns",
            expect={"max_latency": limit, "answers": {"min": 1}},
        )
    judged(result, limit)
