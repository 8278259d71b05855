"""HTTP/3 (RFC 9114) over QUIC for one attempt, on qh3 (docs/http3.md: why qh3).

``H3Transport`` is an httpx transport, so everything after the response head (redirects,
decoding, ``max_body``, uploads, live, journeys) is exchange.py's as over TCP. It is
imported only when a probe says ``http_version: "3"``: qh3 costs about 90 ms to import.

- One UDP socket and one QUIC connection per request, driven in the caller's task (no
  background task): datagrams are read only while the request or its body is waited
  for, so a flooding server fills the kernel's buffer, not ours.
- Timed by the kernel: the socket is read with ``recvmsg`` and ``SO_TIMESTAMPNS``, so the
  handshake ends when the datagram that completed it arrived, and so do the response
  head and body (probers/netstream.py does the same for TCP).
- The runner's deadline is the only clock; on cancellation the socket is closed.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import ssl
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from qh3.h3.connection import H3Connection
from qh3.h3.events import DataReceived, H3Event, HeadersReceived
from qh3.h3.events import StreamReset as H3StreamReset
from qh3.quic.configuration import QuicConfiguration
from qh3.quic.connection import QuicConnection
from qh3.quic.events import ConnectionTerminated, HandshakeCompleted, QuicEvent, StreamReset

from synthprobe.classify import ProbeFailure
from synthprobe.models import Reason
from synthprobe.probers.attempt import Attempt
from synthprobe.probers.connection import response_head
from synthprobe.probers.netstream import _ANCILLARY, _SO_TIMESTAMPNS, ARRIVAL, _arrival, _wake
from synthprobe.steps import KindStep, Step

HANDSHAKE = KindStep(
    "quic_handshake",
    Reason.TIMEOUT_CONNECT,
    "no answer to the QUIC handshake within {t}",
    counts_as=Step.CONNECT,
)
"""The QUIC handshake (it includes TLS): the ``connect`` phase; ``tls`` stays null."""

_DATAGRAMS_PER_TURN = 64
"""Datagrams handled before our own sends go out and the loop gets a turn."""


# RFC 9114 8.1 and RFC 9204 6: the application error codes an HTTP/3 peer sends
H3_ERRORS = {
    0x100: "H3_NO_ERROR",
    0x101: "H3_GENERAL_PROTOCOL_ERROR",
    0x102: "H3_INTERNAL_ERROR",
    0x103: "H3_STREAM_CREATION_ERROR",
    0x104: "H3_CLOSED_CRITICAL_STREAM",
    0x105: "H3_FRAME_UNEXPECTED",
    0x106: "H3_FRAME_ERROR",
    0x107: "H3_EXCESSIVE_LOAD",
    0x108: "H3_ID_ERROR",
    0x109: "H3_SETTINGS_ERROR",
    0x10A: "H3_MISSING_SETTINGS",
    0x10B: "H3_REQUEST_REJECTED",
    0x10C: "H3_REQUEST_CANCELLED",
    0x10D: "H3_REQUEST_INCOMPLETE",
    0x10E: "H3_MESSAGE_ERROR",
    0x10F: "H3_CONNECT_ERROR",
    0x110: "H3_VERSION_FALLBACK",
    0x200: "QPACK_DECOMPRESSION_FAILED",
    0x201: "QPACK_ENCODER_STREAM_ERROR",
    0x202: "QPACK_DECODER_STREAM_ERROR",
}

# RFC 9000 20.1: QUIC's own (transport) error codes
QUIC_ERRORS = {
    0x0: "NO_ERROR",
    0x1: "INTERNAL_ERROR",
    0x2: "CONNECTION_REFUSED",
    0x3: "FLOW_CONTROL_ERROR",
    0x4: "STREAM_LIMIT_ERROR",
    0x5: "STREAM_STATE_ERROR",
    0x6: "FINAL_SIZE_ERROR",
    0x7: "FRAME_ENCODING_ERROR",
    0x8: "TRANSPORT_PARAMETER_ERROR",
    0x9: "CONNECTION_ID_LIMIT_ERROR",
    0xA: "PROTOCOL_VIOLATION",
    0xB: "INVALID_TOKEN",
    0xC: "APPLICATION_ERROR",
    0xD: "CRYPTO_BUFFER_EXCEEDED",
    0xE: "KEY_UPDATE_ERROR",
    0xF: "AEAD_LIMIT_REACHED",
    0x10: "NO_VIABLE_PATH",
}

# RFC 8446 6: the TLS alerts a QUIC CRYPTO_ERROR (0x100 + alert) carries
TLS_ALERTS = {
    10: "unexpected_message",
    40: "handshake_failure",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    48: "unknown_ca",
    50: "decode_error",
    51: "decrypt_error",
    70: "protocol_version",
    80: "internal_error",
    109: "missing_extension",
    112: "unrecognized_name",
    116: "certificate_required",
    120: "no_application_protocol",
}


def code_name(code: int, table: dict[int, str]) -> str:
    """``NAME (0x..)``, or the number alone for a code no RFC names (a GREASE value)."""
    name = table.get(code)
    return f"{name} (0x{code:x})" if name else f"0x{code:x}"


def closed(event: ConnectionTerminated, handshaking: bool, by_us: bool = False) -> ProbeFailure:
    """The connection ended: by whom and why, as a reason. ``by_us``: qh3 closed it over
    something the server sent (an HTTP/3 rule it broke).

    A transport close (RFC 9000 CONNECTION_CLOSE 0x1c, which names the frame that
    triggered it) carries QUIC's codes, where 0x100-0x1ff is a TLS alert; an application
    close (0x1d, no frame type) carries HTTP/3's codes. qh3 reports a close it made
    itself (a certificate it rejected) the same way."""
    code, reason = event.error_code, event.reason_phrase
    said = f": {reason}" if reason else ""
    transport = event.frame_type is not None
    if transport and 0x100 <= code <= 0x1FF:
        alert = code - 0x100
        name = TLS_ALERTS.get(alert, str(alert))
        return ProbeFailure(Reason.NETWORK_TLS, f"QUIC TLS handshake failed: alert {name}{said}")
    if handshaking and transport and code == 0 and "timeout" in reason.lower():
        return ProbeFailure(Reason.TIMEOUT_CONNECT, f"no answer to the QUIC handshake{said}")
    table = QUIC_ERRORS if transport else H3_ERRORS
    if by_us:
        what = f"the server broke HTTP/3: {code_name(code, table)}{said}"
    else:
        when = " during the handshake" if handshaking else ""
        what = f"QUIC connection closed by the server{when} with {code_name(code, table)}{said}"
    return ProbeFailure(Reason.NETWORK_PROTOCOL, what)


def _warm() -> None:
    """qh3's first ClientHello costs about 130 ms (its crypto's one-off set-up): pay it
    at import, outside any probe's handshake. Nothing is sent."""
    config = QuicConfiguration(is_client=True, alpn_protocols=["h3"])
    config.verify_mode = ssl.CERT_NONE
    QuicConnection(configuration=config).connect(("127.0.0.1", 443), now=time.monotonic())


_warm()

_TRUST: weakref.WeakKeyDictionary[ssl.SSLContext, bytes] = weakref.WeakKeyDictionary()


def trust_of(context: ssl.SSLContext) -> bytes:
    """The CA certificates an ``ssl`` context trusts, as PEM for qh3: the same trust as
    over TCP (certifi, $SSL_CERT_FILE or a test's CA), read once per context."""
    found = _TRUST.get(context)
    if found is None:
        ders = context.get_ca_certs(binary_form=True)
        found = _TRUST[context] = "".join(ssl.DER_cert_to_PEM_cert(d) for d in ders).encode()
    return found


@dataclass(slots=True)
class _Stream:
    """What arrived on our request stream and is not yet read."""

    head: list[tuple[bytes, bytes]] | None = None
    chunks: collections.deque[bytes] = field(default_factory=collections.deque)
    ended: bool = False
    reset: int | None = None


class _Udp:
    """A connected UDP socket that knows when its last datagram arrived (kernel time)."""

    def __init__(self, address: tuple[str, int]) -> None:
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.stamped = False
        if _SO_TIMESTAMPNS is not None and _ANCILLARY:
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
                self.stamped = True
            except OSError:
                pass
        self.last_arrival: float | None = None
        # connected: the kernel filters other senders, and an ICMP port unreachable
        # comes back as ECONNREFUSED on the next call
        self.sock.connect(address)

    def receive(self) -> bytes | None:
        """One datagram if one is waiting, else None."""
        try:
            if self.stamped:
                data, ancillary, _flags, _addr = self.sock.recvmsg(65536, _ANCILLARY)
            else:
                data, ancillary = self.sock.recv(65536), []
        except (BlockingIOError, InterruptedError):
            return None
        self.last_arrival = _arrival(ancillary)
        return data

    async def readable(self, timeout: float | None) -> None:
        """Until a datagram (or an error) is waiting, or ``timeout`` seconds passed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        fd = self.sock.fileno()
        loop.add_reader(fd, _wake, future)
        try:
            if timeout is None:
                await future
            else:
                await asyncio.wait([future], timeout=timeout)
        finally:
            loop.remove_reader(fd)

    def close(self) -> None:
        self.sock.close()


class _Connection:
    """One QUIC connection with one request on it, driven by whoever waits on it."""

    def __init__(
        self,
        attempt: Attempt,
        address: tuple[str, int],
        server_name: str,
        config: QuicConfiguration,
    ) -> None:
        self.attempt = attempt
        self.address = address
        self.server_name = server_name
        self.verified = config.verify_mode != ssl.CERT_NONE
        self.quic = QuicConnection(configuration=config)
        self.closed_by_us = False
        quic_close = self.quic.close

        def close_locally(*args: Any, **kwargs: Any) -> None:
            # qh3's H3 layer closes through here when the server breaks a rule; a close
            # the server sent, or a TLS failure, does not come this way
            self.closed_by_us = True
            quic_close(*args, **kwargs)

        self.quic.close = close_locally  # type: ignore[method-assign]
        self.h3 = H3Connection(self.quic)
        self.udp: _Udp | None = None
        self.connected = False
        self.failure: ProbeFailure | None = None
        self.stream: _Stream | None = None
        self.stream_id: int | None = None

    # the attempt's ``stream``: what a cancelled attempt closes, where arrivals are read
    def get_extra_info(self, info: str) -> Any:
        if info == ARRIVAL:
            return None if self.udp is None else self.udp.last_arrival
        if info == "server_addr":
            return self.address
        return None

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        """Say goodbye if we can (one datagram, never waited on), then close the socket."""
        udp, self.udp = self.udp, None
        if udp is None:
            return
        try:
            if self.connected and self.failure is None:
                quic_close = QuicConnection.close
                quic_close(self.quic, error_code=0x100)  # H3_NO_ERROR: we are done
                self._flush(udp)
        except Exception:  # a goodbye that fails changes nothing
            pass
        udp.close()

    def _flush(self, udp: _Udp) -> None:
        for data, _addr in self.quic.datagrams_to_send(now=time.monotonic()):
            try:
                udp.sock.send(data)
            except BlockingIOError:
                return  # the kernel's buffer is full: QUIC resends what is lost
            except ConnectionRefusedError as exc:
                raise self._refused() from exc

    def _refused(self) -> ProbeFailure:
        return ProbeFailure(
            Reason.NETWORK_REFUSED,
            f"UDP port {self.address[1]} unreachable (ICMP): no QUIC server there",
        )

    async def connect(self) -> None:
        clock = self.attempt.clock
        self.attempt.target, self.attempt.remote = self.address, None
        clock.begin(HANDSHAKE)
        self.udp = _Udp(self.address)
        self.attempt.stream = self
        self.quic.connect(self.address, now=time.monotonic())
        self._flush(self.udp)
        while not self.connected:
            await self._turn()
        clock.end(HANDSHAKE, self._arrived())
        self.attempt.remote = self.address
        self.attempt.protocol = "HTTP/3"
        peer = self.quic.get_peercert()
        # only a verified certificate's expiry is reported, as over TCP
        if peer is not None and self.verified:
            self.attempt.cert_not_after = float(peer.not_valid_after)

    def _arrived(self) -> float:
        now = time.perf_counter()
        arrival = None if self.udp is None else self.udp.last_arrival
        return now if arrival is None else min(arrival, now)

    async def _turn(self) -> None:
        """Wait for datagrams or QUIC's next timer, handle what came, send what is due;
        raise the connection's end or a reset of our stream."""
        udp = self.udp
        if udp is None:
            raise ProbeFailure(Reason.NETWORK_CLOSED, "QUIC connection already closed")
        timer = self.quic.get_timer()
        wait = None if timer is None else max(0.0, timer - time.monotonic())
        if wait is None or wait > 0:
            await udp.readable(wait)
        try:
            for _ in range(_DATAGRAMS_PER_TURN):
                data = udp.receive()
                if data is None:
                    break
                self._handle(self.quic.receive_datagram, data, self.address, now=time.monotonic())
        except ConnectionRefusedError as exc:
            raise self._refused() from exc
        timer = self.quic.get_timer()
        if timer is not None and timer <= time.monotonic():
            self._handle(self.quic.handle_timer, now=time.monotonic())
        while True:
            event = self.quic.next_event()
            if event is None:
                break
            self._event(event)
        self._flush(udp)
        self._check()

    def _check(self) -> None:
        """Raise what ended the exchange, if anything did: qh3 reports a close at once
        (``_close_event``) but its event only once the connection drained."""
        ended = self.quic._close_event  # qh3 has no public flag for it
        if self.failure is None and ended is not None:
            self.failure = closed(ended, not self.connected, self.closed_by_us)
        if self.failure is not None:
            raise self.failure

    def _handle(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        """A call into qh3 with what the peer sent: a failure of the library on it is
        the peer's ``network.protocol``, not a bug of ours."""
        try:
            return call(*args, **kwargs)
        except ProbeFailure:
            raise
        except Exception as exc:
            self._check()  # the connection is closed: that is what happened
            self.failure = ProbeFailure(
                Reason.NETWORK_PROTOCOL, f"QUIC: {type(exc).__name__}: {exc}"[:300]
            )
            raise self.failure from exc

    def _event(self, event: QuicEvent) -> None:
        if isinstance(event, HandshakeCompleted):
            self.connected = True
        elif isinstance(event, ConnectionTerminated):
            if self.failure is None:
                self.failure = closed(event, not self.connected, self.closed_by_us)
            return
        elif isinstance(event, StreamReset) and event.stream_id == self.stream_id:
            self._reset(event.error_code)
        h3_events: list[H3Event] = self._handle(self.h3.handle_event, event)
        for h3_event in h3_events:
            stream = self.stream
            if stream is None or getattr(h3_event, "stream_id", None) != self.stream_id:
                continue  # another stream (a push we never asked for): nothing of ours
            if isinstance(h3_event, HeadersReceived):
                if stream.head is None:
                    stream.head = list(h3_event.headers)
                # a second HEADERS is trailers: not part of what we judge
                stream.ended = stream.ended or h3_event.stream_ended
            elif isinstance(h3_event, DataReceived):
                if h3_event.data:
                    stream.chunks.append(h3_event.data)
                stream.ended = stream.ended or h3_event.stream_ended
            elif isinstance(h3_event, H3StreamReset):
                self._reset(h3_event.error_code)

    def _reset(self, code: int) -> None:
        if self.failure is None:
            self.failure = ProbeFailure(
                Reason.NETWORK_RESET,
                f"HTTP/3 stream reset by the server ({code_name(code, H3_ERRORS)})",
            )

    async def request(
        self, method: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]]]:
        """Send the request; wait for the response head (status, headers)."""
        assert self.udp is not None
        clock = self.attempt.clock
        clock.begin(Step.SEND)
        self.stream_id = self.quic.get_next_available_stream_id()
        self.stream = stream = _Stream()
        self._handle(
            self.h3.send_headers,
            self.stream_id,
            [(b":method", method), *headers],
            end_stream=not body,
        )
        self._flush(self.udp)
        clock.end(Step.SEND)
        if body:
            clock.begin(Step.SEND_BODY)
            self._handle(self.h3.send_data, self.stream_id, body, end_stream=True)
            self._flush(self.udp)
            # sent when every byte went out once, as a TCP body is when the kernel took
            # it: flow control and congestion hold the rest until the server's frames come
            while self.quic.get_send_buffer_size(self.stream_id) > 0:
                await self._turn()
            clock.end(Step.SEND_BODY)
        clock.begin(Step.WAIT, clock.last_end)
        while stream.head is None:
            if stream.ended:
                raise ProbeFailure(Reason.NETWORK_CLOSED, "HTTP/3 stream ended without a response")
            await self._turn()
        clock.end(Step.WAIT, self._arrived())
        head = stream.head
        status, rest = response_head(head, "HTTP/3")
        # an interim (1xx) head: the final one follows
        while 100 <= status < 200:
            stream.head = None
            while stream.head is None:
                await self._turn()
            status, rest = response_head(stream.head, "HTTP/3")
        return status, rest

    async def body(self) -> AsyncIterator[bytes]:
        """The response body as it arrives; the ``transfer`` phase."""
        stream = self.stream
        assert stream is not None
        clock = self.attempt.clock
        clock.begin(Step.BODY, clock.last_end)
        while True:
            while stream.chunks:
                yield stream.chunks.popleft()
            if stream.ended:
                break
            await self._turn()
        at = self._arrived()
        clock.end(Step.BODY, at)
        clock.last_byte = at


class _Body(httpx.AsyncByteStream):
    def __init__(self, connection: _Connection) -> None:
        self.connection = connection

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.connection.body():
            yield chunk

    async def aclose(self) -> None:
        self.connection.close()


class H3Transport(httpx.AsyncBaseTransport):
    """httpx's transport for one HTTP/3 request per connection, like ``curl --http3-only``:
    no fallback to TCP."""

    def __init__(self, attempt: Attempt, trust: bytes | None) -> None:
        """``trust``: PEM CA certificates to verify against; None skips verification."""
        self.attempt = attempt
        self.trust = trust
        self.connections: list[_Connection] = []

    def _config(self, server_name: str) -> QuicConfiguration:
        config = QuicConfiguration(is_client=True, alpn_protocols=["h3"])
        config.server_name = server_name
        # the runner's deadline is the clock: qh3's idle timer must never end it first
        config.idle_timeout = 3600.0
        if self.trust is None:
            config.verify_mode = ssl.CERT_NONE
        else:
            config.load_verify_locations(cadata=self.trust)
        return config

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme != "https":
            raise ProbeFailure(
                Reason.NETWORK_PROTOCOL,
                f'HTTP/3 needs an https:// URL, not {url.scheme}:// (http_version is "3")',
            )
        server_name = request.extensions.get("sni_hostname") or url.host
        address = (url.host, url.port or 443)
        connection = _Connection(self.attempt, address, server_name, self._config(server_name))
        self.connections.append(connection)
        await connection.connect()
        authority = request.headers.get("host", url.netloc.decode("ascii"))
        headers = [
            (b":scheme", b"https"),
            (b":authority", authority.encode("ascii")),
            (b":path", url.raw_path),
        ]
        headers += [
            (k.lower(), v)
            for k, v in request.headers.raw
            if k.lower() not in (b"host", b"connection", b"transfer-encoding", b"keep-alive")
        ]
        body = b"".join([chunk async for chunk in request.stream])  # type: ignore[union-attr]
        status, rest = await connection.request(request.method.encode(), headers, body)
        return httpx.Response(
            status,
            headers=rest,
            stream=_Body(connection),
            extensions={"http_version": b"HTTP/3"},
        )

    async def aclose(self) -> None:
        for connection in self.connections:
            connection.close()
