"""The embedded demo platform: a small HTTP/1.1 server on 127.0.0.1 with switchable faults.

It is written on raw asyncio streams, not a web framework, because the faults it must
show (a reset, a close without reply, a trickled body, garbage instead of HTTP) are
below what frameworks let an application do. The test suite uses it as one of its
real servers.

Endpoints (``/v1/...`` is the platform, ``/fault/...`` misbehaves on purpose):

    GET  /v1/feed?limit=N         JSON feed
    GET  /v1/feed/trending        JSON feed, 20 ms slower
    POST /v1/media                takes an upload, answers 201 {"id", "bytes"}
    GET  /v1/media/ID             404 until 200 ms after the upload, then 200 (verify_url)
    DELETE /v1/media/ID           204 (cleanup)
    GET  /healthz                 "ok"
    GET  /live/master.m3u8        HLS master playlist: two variants of the main stream
    GET  /live/main/index.m3u8    live HLS that advances every second
    GET  /live/stalled/index.m3u8 live HLS frozen at one media sequence
    GET  /live/ended/index.m3u8   an HLS playlist with #EXT-X-ENDLIST
    GET  /ws                      WebSocket: answers a message containing "ping" with
                                  {"type":"pong"}, echoes anything else
    GET  /ws/wrong                WebSocket: answers "nope" and closes
    GET  /ws/silent               WebSocket: accepts and never answers
    ANY  /fault/status/CODE       answers CODE
    ANY  /fault/reset             reads the request, then resets the connection (RST)
    ANY  /fault/close             reads the request, then closes without a reply
    ANY  /fault/garbage           answers something that is not HTTP
    ANY  /fault/slow-headers?delay=S   waits S seconds (default 30) before answering
    ANY  /fault/slow?delay=S      answers 200 after S seconds (default 1)
    ANY  /fault/trickle?interval=S&bytes=N   a body of N bytes, one byte every S seconds
    ANY  /fault/big?size=N        a body of N bytes (default 200 MiB)
    ANY  /fault/redirect?to=PATH  302 to PATH
    ANY  /fault/redirect-loop     302 to /fault/redirect-loop-b, which 302s back
    ANY  /fault/headers?x=v       200 with the query as response headers
    ANY  /fault/endless           a chunked body that never ends
    ANY  /fault/huge-headers?size=N   one response header N bytes long (default 1 MiB)
    ANY  /fault/cookies?n=N       N Set-Cookie headers (default 1000)
    ANY  /fault/gzip-bomb?size=N  gzip that inflates to N zero bytes (default 1 GiB)
    ANY  /fault/silent            accepts, reads the request, never answers

    PUT    /_demo/faults/ENDPOINT?mode=MODE   make feed|trending|upload|live|chat misbehave
                                              (live also takes stall and end)
    DELETE /_demo/faults/ENDPOINT             back to normal
    GET    /_demo/faults                      the faults set
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import json
import socket
import ssl
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

MAX_HEAD = 64 * 1024
FAULT_MODES = (
    "reset",
    "close",
    "garbage",
    "slow-headers",
    "slow",
    "trickle",
    "big",
    "redirect-loop",
    "500",
    "502",
    "503",
    "504",
    "429",
    "404",
    "stall",
    "end",
)
ENDPOINTS = {
    "/v1/feed": "feed",
    "/v1/feed/trending": "trending",
    "/v1/media": "upload",
    "/live/main/index.m3u8": "live",
    "/live/master.m3u8": "live",
    "/ws": "chat",
}
LIVE_TARGET = 1.0
LIVE_WINDOW = 4
SEGMENT_BYTES = 16 * 1024
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    302: "Found",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(slots=True)
class HttpRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body_bytes: int = 0


@dataclass
class DemoPlatform:
    """The server. ``await start()``, use ``base_url``, ``await close()``."""

    host: str = "127.0.0.1"
    port: int = 0
    tls: ssl.SSLContext | None = None
    faults: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _uploads: int = 0
    _media: dict[str, float] = field(default_factory=dict)
    _started: float = field(default_factory=time.time)

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept,
            self.host,
            self.port,
            ssl=self.tls,
            reuse_address=True,
            limit=MAX_HEAD,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, OSError):
            pass  # the client left: normal for a prober that stops reading at max_body
        except asyncio.CancelledError:
            pass
        finally:
            self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.LimitOverrunError, asyncio.IncompleteReadError, ValueError):
            return
        self.requests += 1
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _version = lines[0].split(" ", 2)
        except ValueError:
            await _respond(writer, 400, b"bad request line\n")
            return
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        parts = urlsplit(target)
        request = HttpRequest(method, parts.path, dict(parse_qsl(parts.query)), headers)
        length = int(headers.get("content-length", "0") or 0)
        remaining = length
        while remaining > 0:
            chunk = await reader.read(min(remaining, 256 * 1024))
            if not chunk:
                break
            remaining -= len(chunk)
            request.body_bytes += len(chunk)
        await self._route(request, reader, writer)

    async def _route(
        self, req: HttpRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if req.path.startswith("/_demo/faults"):
            await self._switch(req, writer)
            return
        if req.path.startswith("/fault/"):
            mode = req.path[len("/fault/") :]
            if mode.startswith("status/"):
                mode = mode[len("status/") :]
            await self._fault(mode, req, writer)
            return
        switched = self.faults.get(ENDPOINTS.get(req.path, ""))
        if switched and switched not in ("stall", "end"):
            await self._fault(switched, req, writer)
            return
        if req.path.startswith("/live/"):
            await self._live(req, writer, self.faults.get("live"))
            return
        if req.path in ("/ws", "/ws/wrong", "/ws/silent"):
            await self._websocket(req, reader, writer)
            return
        if req.path.startswith("/v1/media/"):
            await self._media_item(req, writer)
            return
        if req.path == "/healthz":
            await _respond(writer, 200, b"ok\n", "text/plain")
        elif req.path in ("/v1/feed", "/v1/feed/trending"):
            if req.path.endswith("trending"):
                await asyncio.sleep(0.02)
            limit = _int(req.query.get("limit"), 10)
            items = [
                {"id": f"post-{i}", "author": f"creator{i % 7}", "likes": i * 17}
                for i in range(max(0, min(limit, 100)))
            ]
            body = json.dumps({"status": "ok", "items": items, "next": None}).encode()
            await _respond(writer, 200, body)
        elif req.path == "/v1/media":
            if req.method != "POST":
                await _respond(writer, 405, b'{"error": "POST only"}')
                return
            self._uploads += 1
            media_id = f"media-{self._uploads}"
            self._media[media_id] = time.time() + 0.2  # "transcoding" before it is served
            body = json.dumps(
                {"id": media_id, "bytes": req.body_bytes, "url": f"/v1/media/{media_id}"}
            ).encode()
            await _respond(writer, 201, body)
        else:
            await _respond(writer, 404, b'{"error": "not found"}')

    async def _media_item(self, req: HttpRequest, writer: asyncio.StreamWriter) -> None:
        media_id = req.path.rsplit("/", 1)[1]
        ready = self._media.get(media_id)
        if req.method == "DELETE":
            self._media.pop(media_id, None)
            await _respond(writer, 204 if ready else 404, b"")
        elif ready is None or time.time() < ready:
            await _respond(writer, 404, b'{"error": "not available yet"}')
        else:
            await _respond(writer, 200, json.dumps({"id": media_id, "ready": True}).encode())

    async def _live(self, req: HttpRequest, writer: asyncio.StreamWriter, mode: str | None) -> None:
        parts = req.path.split("/")  # ["", "live", NAME, FILE]
        if req.path == "/live/master.m3u8":
            body = (
                "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\n"
                "main/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=2400000,RESOLUTION=1280x720\n"
                "hd/index.m3u8\n"
            )
            await _respond(writer, 200, body.encode(), "application/vnd.apple.mpegurl")
            return
        if len(parts) != 4 or parts[2] not in ("main", "hd", "stalled", "ended"):
            await _respond(writer, 404, b'{"error": "no such stream"}')
            return
        name, file = parts[2], parts[3]
        if file.startswith("seg-") and file.endswith(".ts"):
            await _respond(writer, 200, b"G" * SEGMENT_BYTES, "video/mp2t")
            return
        if file != "index.m3u8":
            await _respond(writer, 404, b'{"error": "no such file"}')
            return
        if name == "stalled" or (name in ("main", "hd") and mode == "stall"):
            newest, ended, now = 100, False, self._started - 3600
        elif name == "ended" or mode == "end":
            newest, ended, now = 100, True, self._started - 3600
        else:
            now, ended = time.time(), False
            newest = int((now - self._started) / LIVE_TARGET) + LIVE_WINDOW
        await _respond(
            writer, 200, hls_playlist(newest, now, ended).encode(), "application/vnd.apple.mpegurl"
        )

    async def _websocket(
        self, req: HttpRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        key = req.headers.get("sec-websocket-key")
        if req.headers.get("upgrade", "").lower() != "websocket" or not key:
            await _respond(writer, 426, b'{"error": "WebSocket upgrade required"}')
            return
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        writer.write(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        while True:
            opcode, payload = await _read_frame(reader)
            if opcode == 0x8:  # close: answer it and stop
                writer.write(_frame(0x8, payload[:2]))
                await writer.drain()
                return
            if opcode == 0x9:
                writer.write(_frame(0xA, payload))
            elif opcode in (0x1, 0x2):
                if req.path == "/ws/silent":
                    continue
                if req.path == "/ws/wrong":
                    writer.write(_frame(0x1, b"nope") + _frame(0x8, struct.pack("!H", 1000)))
                    await writer.drain()
                    return
                reply = b'{"type":"pong"}' if b"ping" in payload else payload
                writer.write(_frame(opcode, reply))
            await writer.drain()

    async def _switch(self, req: HttpRequest, writer: asyncio.StreamWriter) -> None:
        name = req.path[len("/_demo/faults") :].strip("/")
        if req.method == "GET" and not name:
            await _respond(writer, 200, json.dumps(self.faults).encode())
            return
        if name not in ENDPOINTS.values():
            msg = {"error": f"unknown endpoint {name!r}", "endpoints": sorted(ENDPOINTS.values())}
            await _respond(writer, 404, json.dumps(msg).encode())
            return
        if req.method == "DELETE":
            self.faults.pop(name, None)
        elif req.method in ("PUT", "POST"):
            mode = req.query.get("mode", "")
            if mode not in FAULT_MODES:
                msg = {"error": f"unknown mode {mode!r}", "modes": list(FAULT_MODES)}
                await _respond(writer, 400, json.dumps(msg).encode())
                return
            self.faults[name] = mode
        await _respond(writer, 200, json.dumps(self.faults).encode())

    async def _fault(self, mode: str, req: HttpRequest, writer: asyncio.StreamWriter) -> None:
        q = req.query
        if mode.isdigit():
            code = int(mode)
            await _respond(writer, code, json.dumps({"error": _REASONS.get(code, "")}).encode())
        elif mode == "reset":
            sock = writer.get_extra_info("socket")
            if sock is not None:
                # linger 0: close() sends RST instead of FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        elif mode == "close":
            writer.close()
        elif mode == "garbage":
            writer.write(b"SSH-2.0-OpenSSH_9.2 this is not http\r\n\r\n")
            await writer.drain()
        elif mode == "slow-headers":
            await asyncio.sleep(_float(q.get("delay"), 30.0))
            await _respond(writer, 200, b"finally\n", "text/plain")
        elif mode == "slow":
            await asyncio.sleep(_float(q.get("delay"), 1.0))
            await _respond(writer, 200, b'{"status": "ok", "items": []}')
        elif mode == "trickle":
            size, interval = _int(q.get("bytes"), 100), _float(q.get("interval"), 0.3)
            writer.write(_head(200, size, "text/plain"))
            for _ in range(size):
                await writer.drain()
                await asyncio.sleep(interval)
                writer.write(b"x")
            await writer.drain()
        elif mode == "big":
            size = _int(q.get("size"), 200 * 1024 * 1024)
            writer.write(_head(200, size, "application/octet-stream"))
            block = b"\0" * (256 * 1024)
            sent = 0
            while sent < size:
                piece = block[: min(len(block), size - sent)]
                writer.write(piece)
                await writer.drain()
                sent += len(piece)
        elif mode in ("redirect", "redirect-loop", "redirect-loop-b"):
            target = {
                "redirect-loop": "/fault/redirect-loop-b",
                "redirect-loop-b": "/fault/redirect-loop",
            }.get(mode, q.get("to", "/"))
            await _respond(writer, 302, b"", extra=[("Location", target)])
        elif mode == "headers":
            await _respond(writer, 200, b"{}", extra=list(q.items()))
        elif mode == "endless":
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
            )
            chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"e" * 64 * 1024)
            while True:  # until the client goes away
                writer.write(chunk)
                await writer.drain()
        elif mode == "huge-headers":
            pad = "p" * _int(q.get("size"), 1024 * 1024)
            await _respond(writer, 200, b"{}", extra=[("X-Pad", pad)])
        elif mode == "cookies":
            cookies = [("Set-Cookie", f"c{i}=v{i}; Path=/") for i in range(_int(q.get("n"), 1000))]
            await _respond(writer, 200, b'{"status": "ok"}', extra=cookies)
        elif mode == "gzip-bomb":
            body = gzip_of_zeros(_int(q.get("size"), 1024**3))
            await _respond(writer, 200, body, "text/plain", extra=[("Content-Encoding", "gzip")])
        elif mode == "silent":
            await asyncio.sleep(3600)
        else:
            await _respond(writer, 404, json.dumps({"error": f"unknown fault {mode!r}"}).encode())


def _head(
    status: int, length: int, content_type: str, extra: list[tuple[str, str]] | None = None
) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}",
        f"Content-Type: {content_type}",
        f"Content-Length: {length}",
        "Connection: close",
        "Server: synthprobe-demo",
    ]
    lines += [f"{k}: {v}" for k, v in extra or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _respond(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes,
    content_type: str = "application/json",
    extra: list[tuple[str, str]] | None = None,
) -> None:
    writer.write(_head(status, len(body), content_type, extra or []) + body)
    await writer.drain()


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _float(value: str | None, default: float) -> float:
    try:
        return float(value) if value is not None else default
    except ValueError:
        return default


@functools.lru_cache(maxsize=4)
def gzip_of_zeros(size: int) -> bytes:
    """gzip of ``size`` zero bytes, made in 1 MiB steps (never holding ``size`` bytes)."""
    out = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    parts = []
    for start in range(0, size, len(block)):
        parts.append(out.compress(block[: min(len(block), size - start)]))
    parts.append(out.flush())
    return b"".join(parts)


def hls_playlist(newest: int, now: float, ended: bool) -> str:
    """A media playlist whose newest segment is number ``newest``, starting at ``now``."""
    first = max(0, newest - LIVE_WINDOW + 1)
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        f"#EXT-X-TARGETDURATION:{int(LIVE_TARGET)}",
        f"#EXT-X-MEDIA-SEQUENCE:{first}",
    ]
    for n in range(first, newest + 1):
        start = now - (newest - n + 1) * LIVE_TARGET
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start))
        lines += [
            f"#EXT-X-PROGRAM-DATE-TIME:{stamp}.{int(start % 1 * 1000):03d}Z",
            f"#EXTINF:{LIVE_TARGET:.3f},",
            f"seg-{n}.ts",
        ]
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One client frame (RFC 6455 §5.2): (opcode, unmasked payload)."""
    head = await reader.readexactly(2)
    opcode, length = head[0] & 0x0F, head[1] & 0x7F
    if length == 126:
        length = struct.unpack("!H", await reader.readexactly(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", await reader.readexactly(8))[0]
    if length > 1024 * 1024:
        raise ConnectionError("frame too large")
    mask = await reader.readexactly(4) if head[1] & 0x80 else b"\0\0\0\0"
    data = await reader.readexactly(length)
    return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def _frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked server frame."""
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, size)
    elif size < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, size)
    return head + payload


def refused_port() -> tuple[socket.socket, int]:
    """A bound, non-listening socket: connecting to its port is refused, and nobody else
    can take the port while we hold it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]


class PlatformThread:
    """Runs a ``DemoPlatform`` on its own event loop in a daemon thread, so a blocking
    caller (``probe demo``, the test suite) can probe it from its own loop."""

    def __init__(self, platform: DemoPlatform) -> None:
        self.platform = platform
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="synthprobe-demo"
        )

    def __enter__(self) -> DemoPlatform:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.platform.start(), self._loop).result(10)
        return self.platform

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.platform.close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
