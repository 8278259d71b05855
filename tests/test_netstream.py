"""probers/netstream.py: httpcore on plain asyncio, timed by the kernel's receive times.

The point of the kernel's timestamps: a response that arrived while our event loop was
busy with something else is timed when it arrived. The test makes exactly that happen
(the loop is blocked for BLOCK seconds after the whole response is already in the
socket's buffer) and checks the probe's total against the block, with and without the
timestamps. No threshold of speed: only whether the blocked time is counted or not.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import uvloop

from synthprobe.models import ProbeResult
from synthprobe.probers import netstream
from synthprobe.redact import Redactor
from synthprobe.runner import LoopMonitor, Runner

from .conftest import probe_once, specs_from_yaml
from .sockets import accepting

BLOCK = 0.6
"""Seconds the event loop is kept busy once the server has the request."""
ANSWER_AFTER = 0.05
"""The server answers this long after the request: inside the block."""


@pytest.fixture
def answered() -> Iterator[tuple[int, threading.Event]]:
    """A server answering ANSWER_AFTER seconds after a request; the event is set once it
    has the request."""
    got = threading.Event()

    def answer(conn: socket.socket) -> None:
        conn.recv(65536)
        got.set()
        time.sleep(ANSWER_AFTER)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    with accepting(answer) as port:
        yield port, got


LOOPS = [pytest.param(None, id="asyncio"), pytest.param(uvloop.new_event_loop, id="uvloop")]


def _probe_with_a_busy_loop(
    port: int, got: threading.Event, loop_factory: Callable[[], asyncio.AbstractEventLoop] | None
) -> ProbeResult:
    [spec] = specs_from_yaml(f'probes:\n  - {{name: p, url: "http://127.0.0.1:{port}/"}}\n')
    runner = Runner(concurrency=1, location="test", redactor=Redactor(frozenset()))

    async def main() -> list[ProbeResult]:
        async def hog() -> None:
            # bounded wait for the request to reach the server, then hold the loop (as a
            # burst of other probes' work would) while the answer arrives
            for _ in range(5000):
                if got.is_set():
                    break
                await asyncio.sleep(0.001)
            time.sleep(BLOCK)

        hogging = asyncio.create_task(hog())
        results = await runner.run([spec], lambda _r: None)
        await hogging
        return results

    with asyncio.Runner(loop_factory=loop_factory) as loop_runner:
        [result] = loop_runner.run(main())
    assert result.ok, result.error
    assert got.is_set()
    return result


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_a_response_that_arrived_while_the_loop_was_busy_is_timed_when_it_arrived(
    answered: tuple[int, threading.Event],
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None,
) -> None:
    result = _probe_with_a_busy_loop(*answered, loop_factory)
    # the loop was late by the whole block (so the record says it was busy)...
    assert result.details["loop_lag_ms"] >= (BLOCK - LoopMonitor.INTERVAL) * 1000
    # ...but the response arrived early in the block: the rest of it is not counted
    assert ANSWER_AFTER * 1000 <= result.timings_ms["total"] < BLOCK * 1000


@pytest.mark.parametrize("loop_factory", LOOPS)
def test_without_the_kernels_times_the_busy_loop_is_counted(
    answered: tuple[int, threading.Event],
    monkeypatch: pytest.MonkeyPatch,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None,
) -> None:
    # the same run without SO_TIMESTAMPNS: what every prober that reads a clock after
    # the read returns reports (and the proof that the test above can fail)
    monkeypatch.setattr(netstream, "_SO_TIMESTAMPNS", None)
    result = _probe_with_a_busy_loop(*answered, loop_factory)
    assert result.timings_ms["total"] >= BLOCK * 1000


def test_the_transport_reads_through_our_backend() -> None:
    from synthprobe.probers.base import Network
    from synthprobe.probers.connection import transport

    made = transport(Network(), verify_tls=True, tls=False)
    assert made._pool._network_backend is netstream.BACKEND
    assert transport(Network(), True, "http://127.0.0.1:1")._pool._network_backend is (
        netstream.BACKEND
    )


def test_the_tcp_handshake_is_timed_by_the_kernel() -> None:
    # the connect phase is the kernel's SYN -> SYN-ACK time: never more than what our
    # own clock saw around the whole connect call
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        async def connect() -> tuple[float | None, float]:
            started = time.perf_counter()
            stream = await netstream.BACKEND.connect_tcp("127.0.0.1", port)
            wall = time.perf_counter() - started
            assert isinstance(stream, netstream.PlainStream)
            await stream.aclose()
            return stream.raw.handshake_rtt, wall

        rtt, wall = asyncio.run(connect())
    assert rtt is not None and 0 < rtt <= wall


def test_a_refused_connect_raises_as_httpcore_does() -> None:
    import httpcore

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: refused
        with pytest.raises(httpcore.ConnectError) as caught:
            asyncio.run(netstream.BACKEND.connect_tcp("127.0.0.1", port))
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)


def test_an_http_total_is_the_sum_of_its_phases(answered: tuple[int, threading.Event]) -> None:
    # our own work between the steps (building the request, reading the headers) is not
    # the server's time: a plain HTTP probe's total is its phases added up
    port, _got = answered
    [spec] = specs_from_yaml(f'probes:\n  - {{name: p, url: "http://127.0.0.1:{port}/"}}\n')
    runner = Runner(concurrency=1, location="test", redactor=Redactor(frozenset()))
    [result] = asyncio.run(runner.run([spec], lambda _r: None))
    assert result.ok, result.error
    phases = [v for k, v in result.timings_ms.items() if k != "total" and v is not None]
    assert len(phases) >= 3  # connect, ttfb, transfer
    assert result.timings_ms["total"] == pytest.approx(sum(phases), abs=0.01)
    assert result.timings_ms["ttfb"] >= ANSWER_AFTER * 1000  # the server's own wait is in


def test_a_lookup_is_timed_by_the_thread_that_made_it() -> None:
    # getaddrinfo runs in a thread; a loop busy when it finishes notices late, and the
    # DNS phase must end when the answer came, not when the loop looked
    from synthprobe.probers.base import system_resolver

    async def main() -> tuple[list[str], float]:
        lookup = asyncio.ensure_future(system_resolver("localhost", 80))
        await asyncio.sleep(0)  # the lookup is handed to its thread
        time.sleep(BLOCK)  # ...and answers while the loop is held
        addresses = await lookup
        return addresses, time.perf_counter()

    addresses, noticed = asyncio.run(main())
    assert addresses
    resolved_at = getattr(addresses, "resolved_at", None)
    assert resolved_at is not None and resolved_at < noticed - BLOCK / 2


def _recv_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _read_client_hello(conn: socket.socket) -> None:
    """The whole first TLS record (the ClientHello): its 5-byte header gives its length."""
    conn.settimeout(5)
    header = _recv_exactly(conn, 5)
    _recv_exactly(conn, int.from_bytes(header[3:5], "big"))


def _fin_after_hello(conn: socket.socket) -> None:
    # closing at once raced the hello: one already arrived made the close an RST, so
    # read it all, then a FIN alone (the socket itself is closed when the server stops)
    _read_client_hello(conn)
    conn.shutdown(socket.SHUT_WR)


def _reset_after_hello(conn: socket.socket) -> None:
    _read_client_hello(conn)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()  # SO_LINGER 0: an RST whatever was read


@pytest.mark.parametrize(
    ("handle", "reason", "words"),
    [
        pytest.param(
            _fin_after_hello, "network.tls", "closed the connection mid-handshake", id="fin"
        ),
        pytest.param(_reset_after_hello, "network.reset", "reset by peer", id="rst"),
    ],
)
def test_a_tls_handshake_cut_by_the_server_says_how(
    handle: Callable[[socket.socket], None], reason: str, words: str
) -> None:
    # the reset is read while OpenSSL waits for bytes: it must not come out as the TLS
    # error "The operation did not complete (read)", as it did through anyio
    with accepting(handle) as port:
        result = probe_once(f"https://localhost:{port}/", timeout="2s")
    assert (result.reason, result.timings_ms["connect"] is not None) == (reason, True)
    assert words in (result.error or ""), result.error


def test_a_socket_closed_while_a_read_waits_ends_that_read() -> None:
    # a reader in a task of its own: closing the stream from another must end that
    # read (and let go of the descriptor before its number is reused), not leave it
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        async def main() -> BaseException | None:
            stream = await netstream.BACKEND.connect_tcp("127.0.0.1", port)
            reading = asyncio.ensure_future(stream.read(100))
            await asyncio.sleep(0.05)  # the read now waits: the server sends nothing
            await stream.aclose()
            try:
                async with asyncio.timeout(5):
                    await reading
            except Exception as exc:
                return exc
            return None

        raised = asyncio.run(main())
    import httpcore

    assert isinstance(raised, httpcore.ReadError), raised
