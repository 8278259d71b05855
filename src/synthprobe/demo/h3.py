"""The demo's HTTP/3: a QUIC listener (qh3, the library the prober speaks with) serving
the feed over HTTP/3, as an app's edge does. Tests use it too, where a server must
misbehave on purpose; what it does is chosen by the path:

| path | answer |
|---|---|
| ``/v1/feed`` | the feed, 200 |
| ``/status/NNN`` | that status |
| ``/redirect?to=URL`` | 302 to URL |
| ``/slow?s=N`` | the head after N seconds |
| ``/close`` | the connection closed with H3_INTERNAL_ERROR |
| ``/reset`` | the request stream reset with H3_REQUEST_REJECTED |
| ``/huge-head`` | a response head of 1.3 MB |
| ``/flood`` | DATA frames of one byte, without end |
| ``/unknown-frames`` | frames of a reserved type, without end, and no response |
| ``/upload/NAME`` | PUT or POST keeps the body; GET gives it back (404 before) |

The certificate is the demo's throwaway one (demo/h2.py) unless the caller gives one.
"""

from __future__ import annotations

import asyncio
import json
from importlib.resources import as_file, files
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from qh3.asyncio.protocol import QuicConnectionProtocol
from qh3.asyncio.server import QuicServer, serve
from qh3.h3.connection import H3_ALPN, H3Connection
from qh3.h3.events import DataReceived, H3Event, HeadersReceived
from qh3.quic.configuration import QuicConfiguration
from qh3.quic.events import ProtocolNegotiated, QuicEvent

from synthprobe.demo.h2 import feed_body

H3_INTERNAL_ERROR = 0x102
H3_REQUEST_REJECTED = 0x10B


class _Request:
    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        fields = dict(headers)
        self.method = fields.get(b":method", b"GET").decode()
        self.target = fields.get(b":path", b"/").decode()
        self.authority = fields.get(b":authority", b"").decode()
        self.body = bytearray()


class H3Server(QuicConnectionProtocol):
    """One QUIC connection of the demo's HTTP/3 listener."""

    uploads: ClassVar[dict[str, bytes]] = {}
    """Bodies uploaded to ``/upload/NAME``, shared by the listener's connections."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.h3: H3Connection | None = None
        self.requests: dict[int, _Request] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ProtocolNegotiated) and event.alpn_protocol in H3_ALPN:
            self.h3 = H3Connection(self._quic)
        if self.h3 is not None:
            for h3_event in self.h3.handle_event(event):
                self._h3_event(h3_event)

    def _h3_event(self, event: H3Event) -> None:
        if isinstance(event, HeadersReceived):
            request = self.requests.setdefault(event.stream_id, _Request(event.headers))
            if event.stream_ended:
                self._start(event.stream_id, request)
        elif isinstance(event, DataReceived) and event.stream_id in self.requests:
            request = self.requests[event.stream_id]
            request.body += event.data
            if event.stream_ended:
                self._start(event.stream_id, request)

    def _start(self, stream_id: int, request: _Request) -> None:
        task = asyncio.get_running_loop().create_task(self._answer(stream_id, request))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _send(self, stream_id: int, status: int, body: bytes, *extra: tuple[bytes, bytes]) -> None:
        assert self.h3 is not None
        headers = [
            (b":status", str(status).encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"server", b"synthprobe-demo-h3"),
            *extra,
        ]
        self.h3.send_headers(stream_id, headers, end_stream=not body)
        if body:
            self.h3.send_data(stream_id, body, end_stream=True)
        self.transmit()

    async def _answer(self, stream_id: int, request: _Request) -> None:
        try:
            await self._route(stream_id, request)
        except Exception:  # the client went away mid-answer (a flood cut by its deadline)
            return

    async def _route(self, stream_id: int, request: _Request) -> None:
        assert self.h3 is not None
        url = urlsplit(request.target)
        query = dict(parse_qsl(url.query))
        path = url.path
        if path in ("/v1/feed", "/v1/feed/trending"):
            limit = query.get("limit", "10")
            self._send(stream_id, 200, feed_body(int(limit) if limit.isdigit() else 10))
        elif path.startswith("/status/") and path[8:].isdigit():
            self._send(stream_id, int(path[8:]), b"{}")
        elif path == "/redirect":
            self._send(stream_id, 302, b"", (b"location", query.get("to", "/").encode()))
        elif path == "/slow":
            await asyncio.sleep(float(query.get("s", "1")))
            self._send(stream_id, 200, b'{"slow": true}')
        elif path == "/close":
            self._quic.close(error_code=H3_INTERNAL_ERROR, reason_phrase="closing on purpose")
            self.transmit()
        elif path == "/reset":
            self._quic.reset_stream(stream_id, H3_REQUEST_REJECTED)
            self.transmit()
        elif path == "/huge-head":
            # over qh3's 1 MiB limit of a client's response head, written by hand: qh3's
            # own encoder keeps to the limit the client announced
            filler = b"x" * 8000
            extra = [(f"x-filler-{i}".encode(), filler) for i in range(160)]
            self._quic.send_stream_data(
                stream_id, raw_headers_frame([(b":status", b"200"), *extra])
            )
            self.transmit()
        elif path == "/flood":
            self.h3.send_headers(stream_id, [(b":status", b"200")])
            for _ in range(1_000_000):  # until the client gives up, or about 1 MB
                self.h3.send_data(stream_id, b"x", end_stream=False)
                self.transmit()
                await asyncio.sleep(0)
        elif path == "/unknown-frames":
            # frames of a reserved type (RFC 9114 7.2.8), which a client must ignore, and
            # never a response: up to 100 MB of them while the client waits
            frame = b"\x21" + _varint(1000) + b"g" * 1000
            for _ in range(100_000):
                self._quic.send_stream_data(stream_id, frame)
                self.transmit()
                await asyncio.sleep(0)
        elif path.startswith("/upload/"):
            name = path[8:]
            if request.method in ("PUT", "POST"):
                H3Server.uploads[name] = bytes(request.body)
                self._send(stream_id, 201, json.dumps({"id": name}).encode())
            elif name in H3Server.uploads:
                self._send(stream_id, 200, H3Server.uploads[name])
            else:
                self._send(stream_id, 404, b'{"error": "not uploaded yet"}')
        else:
            self._send(stream_id, 404, b'{"error": "not found over HTTP/3"}')


def _prefixed(value: int, bits: int, flags: int) -> bytes:
    """An HPACK/QPACK integer with a ``bits``-bit prefix (RFC 7541 5.1)."""
    top = (1 << bits) - 1
    if value < top:
        return bytes([flags | value])
    out, value = bytearray([flags | top]), value - top
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def _varint(value: int) -> bytes:
    """A QUIC variable-length integer (RFC 9000 16), up to 2^30."""
    if value < 1 << 6:
        return bytes([value])
    if value < 1 << 14:
        return (value | 0x4000).to_bytes(2, "big")
    return (value | 0x80000000).to_bytes(4, "big")


def raw_headers_frame(headers: list[tuple[bytes, bytes]]) -> bytes:
    """An HTTP/3 HEADERS frame, QPACK-encoded with literal names and values only (RFC
    9204 4.5.6): what any size of head looks like on the wire, whatever the limits."""
    section = bytearray(b"\x00\x00")  # required insert count 0, base 0: no dynamic table
    for name, value in headers:
        section += _prefixed(len(name), 3, 0x20) + name
        section += _prefixed(len(value), 7, 0x00) + value
    return b"\x01" + _varint(len(section)) + bytes(section)


def server_configuration(cert: str | None = None, key: str | None = None) -> QuicConfiguration:
    """A server configuration for h3 with ``cert``/``key`` (PEM files), or the demo's
    throwaway pair."""
    # qh3's H3 layer announces H3_DATAGRAM, which a client accepts only with this set
    config = QuicConfiguration(
        is_client=False, alpn_protocols=list(H3_ALPN), max_datagram_frame_size=65536
    )
    if cert is not None:
        config.load_cert_chain(cert, key)
        return config
    package = files("synthprobe.demo")
    with (
        as_file(package.joinpath("throwaway-cert.pem")) as cert_path,
        as_file(package.joinpath("throwaway-key.pem")) as key_path,
    ):
        config.load_cert_chain(str(cert_path), str(key_path))
    return config


async def serve_h3(
    host: str, port: int, cert: str | None = None, key: str | None = None
) -> QuicServer:
    """The HTTP/3 listener on UDP ``host``:``port``; close it with ``.close()``."""
    return await serve(
        host, port, configuration=server_configuration(cert, key), create_protocol=H3Server
    )
