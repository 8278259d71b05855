"""``grpc`` probes: one ``grpc.health.v1.Health/Check`` call, on a connection of its own.

Why not grpclib's ``Channel``: it resolves, connects and handshakes in one
``loop.create_connection`` (no dns, connect or tls of their own, and getaddrinfo
instead of the probe's resolver); it turns an answer that is not gRPC into a gRPC status
of its own making (an HTTP 404 becomes ``UNIMPLEMENTED``, indistinguishable from a
server's), reads a message of whatever length its prefix claims, and its waits wake on a
lost connection only through its ``Wrapper``, which cancels the task. So we drive the
layer under it, h2's ``H2Connection`` (the one grpclib drives), on a socket we open and
time ourselves, as the tcp kind does; from grpclib we take the health messages
(``health_pb2``), the method's path (``health_grpc``), the status codes and the metadata
encodings. This module is imported only when a grpc probe runs (the registry loads it on
first use): grpclib and protobuf cost nothing to a config without one.
"""

from __future__ import annotations

import asyncio
import enum
import socket
import ssl
import struct
import time
from dataclasses import dataclass, field
from typing import cast

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import httpx
from google.protobuf.message import DecodeError
from grpclib.const import Status
from grpclib.health.v1 import health_pb2
from grpclib.metadata import decode_grpc_message, encode_timeout

from synthprobe import __version__
from synthprobe.classify import ProbeFailure
from synthprobe.expect import Reply
from synthprobe.models import ProbeSpec, Reason
from synthprobe.probers.attempt import Attempt, alpn, cert_not_after
from synthprobe.probers.base import Network, ProbeOutcome
from synthprobe.probers.exchange import each_address, resolve
from synthprobe.probers.grpc import TRAILERS, GrpcSpec
from synthprobe.redact import printable
from synthprobe.steps import Step

CHECK = "/grpc.health.v1.Health/Check"
"""The method's path (grpc/health/v1/health.proto), as grpclib's ``health_grpc`` names it:
tests/test_grpc.py holds the two equal."""
MAX_EVENTS = 1000
"""HTTP/2 events (frames, roughly) one health check may take: a real answer takes about
six. A server that sends more (PING or SETTINGS floods, empty DATA frames) is not
answering; without a cap it could keep us busy until the deadline."""
MAX_UNSENT = 256 * 1024
"""Bytes of our own replies (PING and SETTINGS acknowledgements) a peer that does not
read may leave in our write buffer: beyond, the exchange is abandoned."""
MAX_HEADER_LIST = 16 * 1024
"""Bytes of decoded response headers (or trailers) accepted: a health answer has a few
dozen; h2 refuses a longer list as a denial of service."""
RESERVED = frozenset({"te", "content-type", "host", "grpc-timeout", "connection"})
"""Headers of the call itself: a probe's ``headers`` of these names are not sent."""
SHOWN = 200
"""Characters of a server's text kept in an error."""


class Framing(enum.Enum):
    """What is wrong with a response's length-prefixed messages (gRPC over HTTP/2)."""

    NONE = "no response message"
    SHORT = "a message cut short"
    COMPRESSED = "a compressed message although we offered no compression"
    FLAG = "a message whose compressed-flag byte is neither 0 nor 1"
    TOO_LONG = "a message over max_body"
    EXTRA = "more than one message for a unary call"


class FramingError(ValueError):
    def __init__(self, flaw: Framing, detail: str = "") -> None:
        super().__init__(f"{flaw.value}{detail}")
        self.flaw = flaw


def frame(message: bytes) -> bytes:
    """One uncompressed length-prefixed message."""
    return struct.pack(">?I", False, len(message)) + message


def unframe(data: bytes, max_body: int) -> bytes:
    """The one message of a unary response's DATA, or FramingError."""
    if not data:
        raise FramingError(Framing.NONE)
    if len(data) < 5:
        raise FramingError(Framing.SHORT, f" ({len(data)} bytes of its 5-byte prefix)")
    flag, length = data[0], struct.unpack(">I", data[1:5])[0]
    if flag == 1:
        raise FramingError(Framing.COMPRESSED)
    if flag != 0:
        raise FramingError(Framing.FLAG, f" ({flag})")
    if length > max_body:
        raise FramingError(Framing.TOO_LONG, f" ({length} bytes, max_body is {max_body})")
    if len(data) < 5 + length:
        raise FramingError(Framing.SHORT, f" ({len(data) - 5} of {length} bytes)")
    if len(data) > 5 + length:
        raise FramingError(Framing.EXTRA)
    return data[5:]


def serving_status(message: bytes) -> str:
    """The ``ServingStatus`` name a ``HealthCheckResponse`` carries (its number, for one
    this proto does not name); DecodeError for bytes that are not one."""
    reply = health_pb2.HealthCheckResponse.FromString(message)
    number = int(reply.status)
    try:
        name: str = health_pb2.HealthCheckResponse.ServingStatus.Name(number)
    except ValueError:  # proto3 enums are open: a newer server may send a new value
        return str(number)
    return name


def grpc_status(value: str) -> tuple[str, int]:
    """(name, code) of a ``grpc-status`` header; ValueError when it is not a number."""
    text = value.strip()
    if not text.isascii() or not text.isdigit():
        raise ValueError(value)
    code = int(text)
    try:
        return Status(code).name, code
    except ValueError:
        return str(code), code  # a code of a later gRPC: shown as the number


def _text(value: bytes) -> str:
    return printable(value.decode("utf-8", errors="replace"))[:SHOWN]


@dataclass(slots=True)
class _Response:
    """What came back on our stream so far."""

    headers: dict[str, str] | None = None
    headers_at: float | None = None
    """perf_counter when the response headers were read."""
    trailers: dict[str, str] | None = None
    data: bytearray = field(default_factory=bytearray)
    ended: bool = False


class _Call(asyncio.Protocol):
    """One HTTP/2 connection carrying one call. Sans-I/O h2 does the framing; this
    protocol feeds it, records what came back on our stream and wakes the prober."""

    def __init__(self, max_body: int) -> None:
        self.max_body = max_body
        self.transport: asyncio.Transport | None = None
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        # told to the server in our SETTINGS, and enforced by h2's HPACK decoder
        self.h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_LIST},
        )
        self.h2.decoder.max_header_list_size = MAX_HEADER_LIST
        self.stream_id: int | None = None
        self.response = _Response()
        self.failure: BaseException | None = None
        self.changed = asyncio.Event()
        self.events = 0
        self.pending = bytearray()
        """Bytes read before we spoke (a server's early SETTINGS): fed once we have."""
        self.started = False
        self.first = True
        self.head = bytearray()
        """The server's first bytes, until they show whether it speaks HTTP/2."""

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but the same protocol
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # our small frames (SETTINGS ACK, WINDOW_UPDATE) must not wait for an ACK:
            # uvloop leaves Nagle on, and a 40 ms delayed ACK then shows in ttfb
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self.failure is not None:
            return
        if not self.started:
            self.pending += data
            if len(self.pending) > MAX_UNSENT:
                self._fail(ProbeFailure(Reason.NETWORK_PROTOCOL, "over 256 KiB before the request"))
            return
        self._feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            self._fail(exc)  # classified as any socket error (reset, TLS)
        elif not self.response.ended:
            self._fail(ProbeFailure(Reason.NETWORK_CLOSED, self._closed_text()))
        self.changed.set()

    def _closed_text(self) -> str:
        if self.response.headers is None:
            return "connection closed by the server before any response"
        return "connection closed by the server before the call ended (no grpc-status)"

    # the call

    def send(
        self, transport: asyncio.Transport, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        """The client preface, our SETTINGS, the request headers and its one message."""
        self.transport = transport  # after start_tls: the TLS transport
        self.h2.initiate_connection()
        self.stream_id = self.h2.get_next_available_stream_id()
        self.h2.send_headers(self.stream_id, headers)
        self.h2.send_data(self.stream_id, body, end_stream=True)
        self.started = True
        self._flush()
        if self.pending:
            early, self.pending = bytes(self.pending), bytearray()
            self._feed(early)

    def _feed(self, data: bytes) -> None:
        if self.first:
            # an HTTP/2 server's first frame is SETTINGS (RFC 9113 3.4): anything else (an
            # HTTP/1.x answer to our preface) is said as what it is, not as h2's frame error
            # or, worse, a wait for a 4 MB "frame" that never completes
            self.head += data
            if len(self.head) < 4:
                return
            if self.head[3] != 0x04:
                line = bytes(self.head).split(b"\n", 1)[0].strip()
                self._fail(
                    ProbeFailure(
                        Reason.NETWORK_PROTOCOL,
                        f"not HTTP/2: the server answered {_text(line[:80])!r} (not gRPC)",
                    )
                )
                return
            self.first = False
            data, self.head = bytes(self.head), bytearray()
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._fail(
                ProbeFailure(Reason.NETWORK_PROTOCOL, f"HTTP/2 error from the server: {exc}")
            )
            return
        for event in events:
            self._event(event)
            if self.failure is not None:
                return
        self._flush()
        self.changed.set()

    def _event(self, event: h2.events.Event) -> None:
        self.events += 1
        if self.events > MAX_EVENTS:
            self._fail(
                ProbeFailure(
                    Reason.NETWORK_PROTOCOL,
                    f"server sent over {MAX_EVENTS} HTTP/2 frames for one health check (a flood)",
                )
            )
            return
        ours = getattr(event, "stream_id", None) == self.stream_id
        response = self.response
        match event:
            case h2.events.ResponseReceived() if ours:
                response.headers = _headers(event.headers)
                response.headers_at = time.perf_counter()
            case h2.events.TrailersReceived() if ours:
                response.trailers = _headers(event.headers)
            case h2.events.DataReceived() if ours:
                response.data += event.data
                if event.flow_controlled_length:
                    self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                if len(response.data) > 5 + self.max_body:
                    self._fail(
                        ProbeFailure(
                            Reason.NETWORK_PROTOCOL,
                            f"response message over max_body ({self.max_body} bytes): "
                            "not a health answer",
                        )
                    )
            case h2.events.StreamEnded() if ours:
                response.ended = True
            case h2.events.StreamReset() if ours:
                self._fail(
                    ProbeFailure(
                        Reason.NETWORK_RESET,
                        f"HTTP/2 stream reset by the server (RST_STREAM {_code(event.error_code)})",
                    )
                )
            case h2.events.ConnectionTerminated():
                # a graceful GOAWAY that still covers our stream lets the call finish
                last = event.last_stream_id if event.last_stream_id is not None else 0
                if event.error_code != 0 or self.stream_id is None or last < self.stream_id:
                    self._fail(
                        ProbeFailure(
                            Reason.NETWORK_CLOSED,
                            "HTTP/2 connection closed by the server "
                            f"(GOAWAY {_code(event.error_code)})",
                        )
                    )
            case _:
                pass  # settings, pings, window updates: h2 answers them; 1xx: not the answer

    def _flush(self) -> None:
        transport = self.transport
        out = self.h2.data_to_send()
        if transport is None or not out or transport.is_closing():
            return
        transport.write(out)
        if transport.get_write_buffer_size() > MAX_UNSENT:
            self._fail(
                ProbeFailure(
                    Reason.NETWORK_PROTOCOL,
                    "server does not read what HTTP/2 makes us answer (over 256 KiB unsent)",
                )
            )

    def _fail(self, failure: BaseException) -> None:
        if self.failure is None:
            self.failure = failure
        self.changed.set()

    async def until(self, ready: str) -> None:
        """Wait until the response has ``headers`` or has ``ended``; raise what failed."""
        while True:
            response = self.response
            if ready == "headers" and response.headers is not None:
                return
            if response.ended:
                return
            if self.failure is not None:
                raise self.failure
            self.changed.clear()
            await self.changed.wait()

    def close(self) -> None:
        """Abort: never wait on a peer that stopped reading (its RST is no loss to us)."""
        if self.transport is not None:
            self.transport.abort()


def _headers(raw: list[tuple[bytes, bytes]] | None) -> dict[str, str]:
    """Header names lower-cased -> values (the last of a repeated name)."""
    return {bytes(k).decode("latin-1").lower(): bytes(v).decode("latin-1") for k, v in raw or ()}


def _code(code: int | None) -> str:
    if code is None:
        return "without a code"
    try:
        return h2.errors.ErrorCodes(code).name
    except ValueError:
        return f"error {code}"


def metadata(headers: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    """The probe's ``headers`` (and its ``traceparent``) as gRPC metadata: names
    lower-cased (HTTP/2 requires it); those of the call itself left out; our user-agent
    unless the probe gives one."""
    sent = [(k.lower(), v) for k, v in headers if k.lower() not in RESERVED]
    if not any(k == "user-agent" for k, _ in sent):
        sent.append(("user-agent", f"synthprobe/{__version__} grpclib"))
    return sent


class GrpcProber:
    """DNS, connect, TLS for ``grpcs://``, then one health check call."""

    def prepare(self, spec: ProbeSpec[GrpcSpec]) -> None:
        """Nothing to build: the modules were imported with this one."""

    async def probe(
        self, spec: ProbeSpec[GrpcSpec], attempt: Attempt, net: Network
    ) -> ProbeOutcome:
        url = httpx.URL(spec.url)
        addresses = await resolve(url, attempt, net, spec.ip_version, spec.resolver)
        port = url.port
        assert port is not None  # the kind's URL rule requires one
        tls = url.scheme == "grpcs"

        async def at_address(ip: str) -> ProbeOutcome:
            attempt.target = (ip, port)
            loop = asyncio.get_running_loop()
            call = _Call(spec.max_body)
            with attempt.clock.timing(Step.CONNECT, OSError):
                transport, _ = await loop.create_connection(lambda: call, ip, port)
            try:
                peer = transport.get_extra_info("peername")
                if isinstance(peer, tuple):
                    attempt.remote = (str(peer[0]), int(peer[1]))
                if tls:
                    transport = await _handshake(
                        loop, transport, call, url.host, spec, attempt, net
                    )
                return await _call(spec, url, call, transport, attempt)
            finally:
                call.close()
                transport.abort()

        return await each_address(addresses, attempt, at_address)


async def _handshake(
    loop: asyncio.AbstractEventLoop,
    transport: asyncio.Transport,
    call: _Call,
    host: str,
    spec: ProbeSpec[GrpcSpec],
    attempt: Attempt,
    net: Network,
) -> asyncio.Transport:
    context = net.ssl_context(spec.verify_tls, h2=True)
    # gRPC is HTTP/2 only; httpcore sets its own offer on this shared context at each of
    # its connects, as we do here (the offer is read when the handshake object is made)
    context.set_alpn_protocols(["h2"])
    with attempt.clock.timing(Step.TLS, OSError, EOFError, ssl.SSLError):
        secured = await loop.start_tls(transport, call, context, server_hostname=host)
    assert secured is not None  # start_tls returns None only after close()
    attempt.cert_not_after = cert_not_after(secured)
    chosen = alpn(secured)
    if chosen is not None and chosen != "h2":
        raise ProbeFailure(
            Reason.NETWORK_PROTOCOL, f"not gRPC: the server chose {chosen} by ALPN, not h2"
        )
    return secured


async def _call(
    spec: ProbeSpec[GrpcSpec],
    url: httpx.URL,
    call: _Call,
    transport: asyncio.Transport,
    attempt: Attempt,
) -> ProbeOutcome:
    clock = attempt.clock
    body = frame(health_pb2.HealthCheckRequest(service=spec.options.service).SerializeToString())
    left = max(spec.timeout - (time.perf_counter() - clock.started), 0.001)
    headers = [
        (":method", "POST"),
        (":scheme", "https" if url.scheme == "grpcs" else "http"),
        (":path", CHECK),
        (":authority", url.netloc.decode("ascii")),
        ("te", "trailers"),
        ("content-type", "application/grpc"),
        # the server may give up when we do, as grpc_health_probe's -rpc-timeout tells it
        ("grpc-timeout", encode_timeout(left)),
        # the call's span begins here, and its traceparent goes as metadata (tracing.py)
        *metadata(attempt.sending("POST", url, spec.headers)),
    ]
    clock.begin(Step.SEND)
    call.send(transport, headers, body)
    clock.end(Step.SEND)
    clock.begin(Step.WAIT, clock.last_end)
    try:
        await call.until("headers")
    except Exception:  # not our deadline's cancellation: a step it cut stays null
        clock.fail(Step.WAIT)
        raise
    head = call.response.headers
    if head is None:  # ended without headers: h2 would have refused that
        raise ProbeFailure(Reason.NETWORK_PROTOCOL, "stream ended without response headers")
    clock.end(Step.WAIT, call.response.headers_at)
    if "grpc-status" not in head:  # else a trailers-only answer: it is its own judge
        status = head.get(":status", "")
        if status != "200":
            raise ProbeFailure(
                Reason.NETWORK_PROTOCOL, f"not gRPC: HTTP status {_text(status.encode())}"
            )
        kind = head.get("content-type", "")
        if not kind.startswith("application/grpc"):
            raise ProbeFailure(
                Reason.NETWORK_PROTOCOL,
                f"not gRPC: content-type {_text(kind.encode())!r}"
                if kind
                else "not gRPC: no content-type",
            )
        clock.begin(TRAILERS, clock.last_end)
        try:
            await call.until("ended")
        except Exception:  # not our deadline's cancellation: a step it cut stays null
            clock.fail(TRAILERS)
            raise
        clock.end(TRAILERS)
    else:
        # a trailers-only answer ends with its headers; what may follow is no matter
        call.response.trailers = head
    return judge(call.response, spec.max_body, attempt, len(body))


def judge(response: _Response, max_body: int, attempt: Attempt, sent: int) -> ProbeOutcome:
    """The call's outcome from what came back: ``SERVING`` passes; anything else raises."""
    trailers = response.trailers
    if trailers is None or "grpc-status" not in trailers:
        raise ProbeFailure(Reason.NETWORK_PROTOCOL, "not gRPC: the response has no grpc-status")
    raw = trailers["grpc-status"]
    try:
        name, code = grpc_status(raw)
    except ValueError:
        raise ProbeFailure(
            Reason.NETWORK_PROTOCOL, f"grpc-status {_text(raw.encode())!r} is not a number"
        ) from None
    attempt.details["grpc_status"] = name
    if code != Status.OK.value:
        message = printable(decode_grpc_message(trailers.get("grpc-message", "")))[:SHOWN]
        said = f"grpc status {name}: {message}" if message else f"grpc status {name}"
        raise ProbeFailure(Reason.SERVER_STATUS, said)
    try:
        message_bytes = unframe(bytes(response.data), max_body)
        serving = serving_status(message_bytes)
    except FramingError as exc:
        raise ProbeFailure(Reason.NETWORK_PROTOCOL, f"grpc status OK with {exc}") from None
    except DecodeError as exc:
        raise ProbeFailure(
            Reason.NETWORK_PROTOCOL, f"malformed HealthCheckResponse: {printable(str(exc))}"
        ) from None
    attempt.details["serving_status"] = serving
    if serving != "SERVING":
        raise ProbeFailure(Reason.SERVER_STATUS, f"serving status {serving}")
    return ProbeOutcome(Reply(serving), len(response.data), sent)


__all__ = [
    "Framing",
    "FramingError",
    "GrpcProber",
    "frame",
    "grpc_status",
    "serving_status",
    "unframe",
]
